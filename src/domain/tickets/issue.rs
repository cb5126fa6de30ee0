//! Which tickets a COMPLETED order gets: one per unit, each with an id and a short human code
//! derived from (order, class, unit number within the class). Deriving instead of minting is
//! what makes issuing idempotent: however often and in whatever order completion is seen, the
//! plan names the same tickets, and the store inserts each id at most once.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::domain::validation::FieldError;

/// One line of the order as issuing sees it; several lines of one class add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueLine {
    pub ticket_class_id: String,
    pub quantity: u32,
}

/// A ticket the order is owed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlannedTicket {
    pub id: String,
    pub code: TicketCode,
    pub ticket_class_id: String,
    /// The unit's number within its class on this order, from 0.
    pub unit: u32,
}

/// The tickets for `order_id`, in class-id then unit order. The result depends only on the
/// order id and how many units of each class it holds, not on how the lines are listed.
pub fn plan_tickets(order_id: &str, lines: &[IssueLine]) -> Vec<PlannedTicket> {
    let mut per_class: BTreeMap<&str, u32> = BTreeMap::new();
    for line in lines {
        let units = per_class.entry(line.ticket_class_id.as_str()).or_default();
        *units = units.saturating_add(line.quantity);
    }
    per_class
        .into_iter()
        .flat_map(|(class_id, quantity)| {
            (0..quantity).map(move |unit| {
                let id = ticket_id(order_id, class_id, unit);
                PlannedTicket {
                    code: TicketCode::for_ticket(&id),
                    id,
                    ticket_class_id: class_id.to_string(),
                    unit,
                }
            })
        })
        .collect()
}

/// A UUID (version 8, "custom") from a hash of the unit's coordinates, so it looks and parses
/// like every other id of the API.
fn ticket_id(order_id: &str, class_id: &str, unit: u32) -> String {
    let digest = Sha256::new()
        .chain_update(b"tb-ticket-v1\0")
        .chain_update(order_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(class_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(unit.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed at the door has no
/// look-alike letters; typing O for 0 or I/L for 1 still finds the ticket.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 12 symbols = 60 bits: a collision stays below one in a million up to a million tickets,
/// and the store's unique index refuses (rather than hides) the one that would happen.
const CODE_SYMBOLS: usize = 12;

/// The short code printed under the QR and typed at the door when a phone will not scan:
/// `7KQ4-M2XD-9B0F`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketCode(String);

impl TicketCode {
    /// The code of a ticket id (a hash of it, so the code reveals nothing else).
    pub fn for_ticket(ticket_id: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"tb-ticket-code-v1\0")
            .chain_update(ticket_id.as_bytes())
            .finalize();
        let mut bits = 0u64;
        for byte in &digest[..8] {
            bits = (bits << 8) | u64::from(*byte);
        }
        let symbols: Vec<u8> = (0..CODE_SYMBOLS)
            .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize])
            .collect();
        Self::from_symbols(&symbols)
    }

    fn from_symbols(symbols: &[u8]) -> Self {
        let text: Vec<String> = symbols
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        Self(text.join("-"))
    }

    /// A code as typed: any case, with or without hyphens and spaces, O for 0, I or L for 1.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("code", "is not a ticket code");
        let mut symbols = Vec::with_capacity(CODE_SYMBOLS);
        for c in raw.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || symbols.len() == CODE_SYMBOLS {
                return Err(invalid());
            }
            symbols.push(c as u8);
        }
        if symbols.len() != CODE_SYMBOLS {
            return Err(invalid());
        }
        Ok(Self::from_symbols(&symbols))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;
    use crate::domain::saga::{
        after_confirm, decide, ConfirmAnswer, OrderStatus, SagaInput, SagaStep,
    };

    fn line(class: &str, quantity: u32) -> IssueLine {
        IssueLine {
            ticket_class_id: class.to_string(),
            quantity,
        }
    }

    #[test]
    fn an_order_gets_one_ticket_per_unit_with_stable_ids_and_codes() {
        let order = "0190f3a2-7c1e-7b4d-9a3f-0000000000aa";
        let plan = plan_tickets(order, &[line("vip", 2), line("ga", 1)]);
        assert_eq!(plan.len(), 3);
        assert_eq!(
            plan.iter()
                .map(|t| (t.ticket_class_id.as_str(), t.unit))
                .collect::<Vec<_>>(),
            [("ga", 0), ("vip", 0), ("vip", 1)]
        );
        assert_eq!(
            plan,
            plan_tickets(order, &[line("ga", 1), line("vip", 1), line("vip", 1)])
        );
        for t in &plan {
            assert!(uuid::Uuid::parse_str(&t.id).is_ok(), "{}", t.id);
            assert_eq!(TicketCode::parse(t.code.as_str()), Ok(t.code.clone()));
        }
        let other = plan_tickets("0190f3a2-7c1e-7b4d-9a3f-0000000000ab", &[line("ga", 1)]);
        assert_ne!(other[0].id, plan[0].id);
        assert_ne!(other[0].code, plan[0].code);
    }

    #[test]
    fn codes_read_back_however_they_are_typed() {
        let code = TicketCode::parse("7KQ4-M2XD-9B0F").expect("a valid code");
        assert_eq!(code.as_str(), "7KQ4-M2XD-9B0F");
        assert_eq!(TicketCode::parse(" 7kq4 m2xd 9bOf "), Ok(code.clone()));
        assert_eq!(
            TicketCode::parse("1111-2222-3333"),
            TicketCode::parse("iIlL-2222-3333")
        );
        for bad in [
            "",
            "7KQ4-M2XD-9B0",
            "7KQ4-M2XD-9B0FF",
            "7KQ4-M2XD-9B0U",
            "7KQ4-M2XD-9B0É",
        ] {
            assert!(TicketCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// One completion-side message about one order, as the saga consumer may receive it.
    #[derive(Debug, Clone)]
    struct Message {
        order: usize,
        input: SagaInput,
        /// How this delivery lists the order's lines (the store returns them in any order).
        rotation: usize,
    }

    fn input() -> impl Strategy<Value = SagaInput> {
        prop_oneof![
            4 => Just(SagaInput::PaymentSucceeded),
            1 => Just(SagaInput::PaymentFailed),
            1 => Just(SagaInput::HoldExpired),
        ]
    }

    fn orders() -> impl Strategy<Value = Vec<Vec<IssueLine>>> {
        let order = prop::collection::vec((0..4usize, 1..4u32), 1..4).prop_map(|lines| {
            lines
                .into_iter()
                .map(|(class, quantity)| line(&format!("class-{class}"), quantity))
                .collect()
        });
        prop::collection::vec(order, 1..6)
    }

    proptest! {
        /// The saga shell issues after every message that leaves the order COMPLETED (the
        /// first completion, and every duplicate that finds it completed); whatever arrives,
        /// twice or out of order, each completed order holds exactly its units once, and an
        /// order that never completed holds none.
        #[test]
        fn tickets_are_issued_exactly_once_under_duplicate_and_reordered_messages(
            orders in orders(),
            messages in prop::collection::vec((0..6usize, input(), 0..4usize), 1..40),
        ) {
            let messages: Vec<Message> = messages
                .into_iter()
                .map(|(order, input, rotation)| Message { order: order % orders.len(), input, rotation })
                .collect();
            let mut status = vec![OrderStatus::Pending; orders.len()];
            let mut store: HashMap<String, (usize, PlannedTicket)> = HashMap::new();
            for m in &messages {
                let before = status[m.order];
                status[m.order] = match decide(before, m.input) {
                    SagaStep::ConfirmHold => after_confirm(ConfirmAnswer::Confirmed, before).status,
                    SagaStep::ReleaseAndClose { status, .. } | SagaStep::Close { status, .. } => status,
                    SagaStep::Ignore(_) | SagaStep::Refuse => before,
                };
                if status[m.order] == OrderStatus::Completed {
                    let mut lines = orders[m.order].clone();
                    let len = lines.len();
                    lines.rotate_left(m.rotation % len);
                    for ticket in plan_tickets(&format!("order-{}", m.order), &lines) {
                        // INSERT ... ON CONFLICT (id) DO NOTHING
                        store.entry(ticket.id.clone()).or_insert((m.order, ticket));
                    }
                }
            }
            for (index, lines) in orders.iter().enumerate() {
                let held: Vec<&PlannedTicket> =
                    store.values().filter(|(o, _)| *o == index).map(|(_, t)| t).collect();
                let owed: u32 = lines.iter().map(|l| l.quantity).sum();
                let expected = if status[index] == OrderStatus::Completed { owed as usize } else { 0 };
                prop_assert_eq!(held.len(), expected, "order {}", index);
                if expected > 0 {
                    for class in lines.iter().map(|l| &l.ticket_class_id).collect::<HashSet<_>>() {
                        let owed: u32 = lines.iter().filter(|l| &l.ticket_class_id == class).map(|l| l.quantity).sum();
                        let got = held.iter().filter(|t| &t.ticket_class_id == class).count();
                        prop_assert_eq!(got, owed as usize);
                    }
                }
            }
            let codes: HashSet<&TicketCode> = store.values().map(|(_, t)| &t.code).collect();
            prop_assert_eq!(codes.len(), store.len());
        }
    }
}
