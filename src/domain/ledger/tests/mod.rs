//! The ledger's host tests: shared fixtures and the invariant check; the cases live in the
//! files below, by operation.

mod payments;
mod properties;
mod reserve;
mod returns;
mod storage;

use std::collections::BTreeMap;

use super::*;

const T0: Millis = 1_700_000_000_000;
const MINUTE: Millis = 60_000;

type Contents = (
    Option<SaleSettings>,
    BTreeMap<String, TicketClass>,
    BTreeMap<String, Hold>,
);

fn contents(store: &MemoryLedgerStore) -> Contents {
    (
        store.settings.clone(),
        store.classes.clone(),
        store.holds.clone(),
    )
}

fn spec(id: &str, total: i64) -> TicketClassSpec {
    TicketClassSpec {
        id: id.to_owned(),
        total,
        status: ClassStatus::Active,
        sale_start_at: None,
        sale_end_at: None,
    }
}

fn request(order_id: &str, user_id: &str, lines: &[(&str, i64)]) -> ReserveRequest {
    ReserveRequest {
        order_id: order_id.to_owned(),
        user_id: user_id.to_owned(),
        items: lines
            .iter()
            .map(|(class, quantity)| RequestedItem::new(*class, *quantity))
            .collect(),
        hold_for_ms: None,
    }
}

/// An event on sale with no per-user limit: 10 GA tickets and 2 VIP tickets.
fn open_ledger() -> Ledger<MemoryLedgerStore> {
    let mut ledger = Ledger::new(MemoryLedgerStore::new());
    ledger.set_sale_state(SaleState::Open).unwrap();
    ledger.upsert_class(spec("ga", 10)).unwrap();
    ledger.upsert_class(spec("vip", 2)).unwrap();
    ledger
}

fn class(ledger: &Ledger<MemoryLedgerStore>, id: &str) -> TicketClass {
    ledger.store().class(id).unwrap().unwrap()
}

fn counters(ledger: &Ledger<MemoryLedgerStore>, id: &str) -> (u32, u32, u32) {
    let class = class(ledger, id);
    (class.reserved, class.sold, class.available())
}

fn state_of(ledger: &Ledger<MemoryLedgerStore>, order_id: &str) -> HoldState {
    ledger.hold(order_id).unwrap().unwrap().state
}

/// Every invariant the ledger promises, recomputed from the holds.
fn check_invariants(store: &MemoryLedgerStore) -> Result<(), String> {
    for class in store.classes.values() {
        if class.committed() > u64::from(class.total) {
            return Err(format!("{class:?} is oversold"));
        }
        let sum_in = |state: HoldState| -> u64 {
            store
                .holds
                .values()
                .filter(|hold| hold.state == state)
                .flat_map(|hold| &hold.items)
                .filter(|item| item.ticket_class_id == class.id)
                .map(|item| u64::from(item.quantity))
                .sum()
        };
        if u64::from(class.reserved) != sum_in(HoldState::Active) {
            return Err(format!("{class:?}: reserved != ACTIVE holds"));
        }
        let sold: u64 = store
            .holds
            .values()
            .filter(|hold| hold.state == HoldState::Confirmed && hold.returned_at.is_none())
            .flat_map(|hold| &hold.items)
            .filter(|item| item.ticket_class_id == class.id)
            .map(|item| u64::from(item.quantity))
            .sum();
        if u64::from(class.sold) != sold {
            return Err(format!("{class:?}: sold != CONFIRMED holds not returned"));
        }
    }
    for hold in store.holds.values() {
        if hold.returned_at.is_some() && hold.state != HoldState::Confirmed {
            return Err(format!("{hold:?} was returned without being sold"));
        }
        let sorted_unique = hold
            .items
            .windows(2)
            .all(|pair| pair[0].ticket_class_id < pair[1].ticket_class_id);
        if hold.items.is_empty() || !sorted_unique || hold.items.iter().any(|i| i.quantity == 0) {
            return Err(format!("{hold:?} has malformed lines"));
        }
    }
    let earliest = store
        .holds
        .values()
        .filter(|hold| hold.state == HoldState::Active)
        .map(|hold| hold.expires_at)
        .min();
    if store.next_expiry().map_err(|e| e.to_string())? != earliest {
        return Err("next_expiry is not the earliest ACTIVE expiry".to_owned());
    }
    Ok(())
}
