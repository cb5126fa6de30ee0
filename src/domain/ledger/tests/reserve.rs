//! Reserving: stock, idempotency, validation, sale state and windows, the per-user limit.

use super::*;

// ----- reserve -----

#[test]
fn reserve_holds_every_line_and_expires_after_the_default_fifteen_minutes() {
    let mut ledger = open_ledger();

    let hold = ledger
        .reserve(&request("o1", "u1", &[("vip", 1), ("ga", 3)]), T0)
        .unwrap();

    assert_eq!(hold.state, HoldState::Active);
    assert_eq!(hold.expires_at, T0 + 15 * MINUTE);
    assert_eq!(
        hold.items,
        vec![
            HoldItem {
                ticket_class_id: "ga".into(),
                quantity: 3
            },
            HoldItem {
                ticket_class_id: "vip".into(),
                quantity: 1
            },
        ],
        "lines are sorted by class id"
    );
    assert_eq!(counters(&ledger, "ga"), (3, 0, 7));
    assert_eq!(counters(&ledger, "vip"), (1, 0, 1));
    assert_eq!(ledger.next_expiry().unwrap(), Some(T0 + 15 * MINUTE));
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn reserve_honours_a_custom_hold_duration_and_rejects_a_non_positive_one() {
    let mut ledger = open_ledger();
    let mut short = request("o1", "u1", &[("ga", 1)]);
    short.hold_for_ms = Some(30_000);
    assert_eq!(ledger.reserve(&short, T0).unwrap().expires_at, T0 + 30_000);

    let mut zero = request("o2", "u1", &[("ga", 1)]);
    zero.hold_for_ms = Some(0);
    assert_eq!(
        ledger.reserve(&zero, T0).unwrap_err().code(),
        "VALIDATION_FAILED"
    );
}

#[test]
fn reserve_holds_nothing_when_one_class_of_the_order_is_short() {
    let mut ledger = open_ledger();
    let before = contents(ledger.store());

    let error = ledger
        .reserve(&request("o1", "u1", &[("ga", 2), ("vip", 3)]), T0)
        .unwrap_err();

    assert_eq!(
        error,
        LedgerError::InsufficientInventory {
            ticket_class_id: "vip".into(),
            requested: 3,
            available: 2,
        }
    );
    assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
    assert_eq!(contents(ledger.store()), before);
    assert_eq!(ledger.hold("o1").unwrap(), None);
}

#[test]
fn reserve_can_take_the_last_ticket_but_not_one_more() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("vip", 2)]), T0)
        .unwrap();

    let error = ledger
        .reserve(&request("o2", "u2", &[("vip", 1)]), T0)
        .unwrap_err();

    assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
    assert_eq!(counters(&ledger, "vip"), (2, 0, 0));
}

#[test]
fn repeating_a_reserve_returns_the_same_hold_and_reserves_nothing_more() {
    let mut ledger = open_ledger();
    let first = ledger
        .reserve(&request("o1", "u1", &[("ga", 2), ("vip", 1)]), T0)
        .unwrap();

    let again = ledger
        .reserve(&request("o1", "u1", &[("vip", 1), ("ga", 2)]), T0 + MINUTE)
        .unwrap();

    assert_eq!(again, first);
    assert_eq!(counters(&ledger, "ga"), (2, 0, 8));
    assert_eq!(counters(&ledger, "vip"), (1, 0, 1));
}

#[test]
fn repeating_a_reserve_after_the_hold_expired_returns_the_expired_hold_without_renewing_it() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();
    ledger.expire_due(T0 + 15 * MINUTE).unwrap();
    ledger.set_sale_state(SaleState::Closed).unwrap();

    let again = ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0 + 20 * MINUTE)
        .unwrap();

    assert_eq!(again.state, HoldState::Expired);
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
}

#[test]
fn reusing_an_order_id_for_other_items_or_another_user_is_a_conflict() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();
    let before = contents(ledger.store());

    let other_items = ledger
        .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
        .unwrap_err();
    let other_user = ledger
        .reserve(&request("o1", "u2", &[("ga", 2)]), T0)
        .unwrap_err();

    assert_eq!(other_items.code(), "ORDER_ID_CONFLICT");
    assert_eq!(other_user.code(), "ORDER_ID_CONFLICT");
    assert_eq!(contents(ledger.store()), before);
}

#[test]
fn reserve_rejects_an_order_that_lists_a_ticket_class_twice() {
    let mut ledger = open_ledger();

    let error = ledger
        .reserve(
            &request("o1", "u1", &[("ga", 1), ("vip", 1), ("ga", 1)]),
            T0,
        )
        .unwrap_err();

    assert!(matches!(&error, LedgerError::Invalid { field, .. } if field == "items"));
    assert_eq!(error.code(), "VALIDATION_FAILED");
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
}

#[test]
fn reserve_rejects_zero_negative_and_oversized_quantities_and_empty_orders() {
    let mut ledger = open_ledger();
    let before = contents(ledger.store());

    for lines in [
        vec![("ga", 0)],
        vec![("ga", -2)],
        vec![("vip", 1), ("ga", 0)],
        vec![("ga", i64::from(u32::MAX) + 1)],
        vec![],
    ] {
        let error = ledger
            .reserve(&request("o1", "u1", &lines), T0)
            .unwrap_err();
        assert_eq!(error.code(), "VALIDATION_FAILED", "{lines:?}");
    }
    for (order, user) in [("", "u1"), ("o1", "")] {
        let error = ledger
            .reserve(&request(order, user, &[("ga", 1)]), T0)
            .unwrap_err();
        assert_eq!(error.code(), "VALIDATION_FAILED");
    }
    assert_eq!(contents(ledger.store()), before);
}

#[test]
fn reserve_is_refused_unless_the_event_is_open() {
    let mut ledger = Ledger::new(MemoryLedgerStore::new());
    ledger.upsert_class(spec("ga", 10)).unwrap();

    let fresh = ledger
        .reserve(&request("o1", "u1", &[("ga", 1)]), T0)
        .unwrap_err();
    ledger.set_sale_state(SaleState::Cancelled).unwrap();
    let cancelled = ledger
        .reserve(&request("o1", "u1", &[("ga", 1)]), T0)
        .unwrap_err();

    assert_eq!(
        fresh,
        LedgerError::SaleNotOpen {
            state: SaleState::Closed
        }
    );
    assert_eq!(
        cancelled,
        LedgerError::SaleNotOpen {
            state: SaleState::Cancelled
        }
    );
    assert_eq!(cancelled.code(), "SALE_NOT_OPEN");
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
}

#[test]
fn a_cancelled_sale_cannot_be_reopened() {
    let mut ledger = open_ledger();
    ledger.set_sale_state(SaleState::Cancelled).unwrap();

    let error = ledger.set_sale_state(SaleState::Open).unwrap_err();

    assert_eq!(error.code(), "INVALID_STATUS_TRANSITION");
    assert_eq!(ledger.settings().unwrap().state, SaleState::Cancelled);
    assert!(ledger.set_sale_state(SaleState::Cancelled).is_ok());
}

#[test]
fn reserve_respects_the_event_sale_window_start_inclusive_end_exclusive() {
    let mut ledger = open_ledger();
    let start = T0 + 10 * MINUTE;
    let end = T0 + 20 * MINUTE;
    ledger
        .configure_sale(SaleSettings {
            state: SaleState::Open,
            max_tickets_per_user: None,
            sale_starts_at: Some(start),
            sale_ends_at: Some(end),
        })
        .unwrap();

    let too_early = ledger.reserve(&request("o1", "u1", &[("ga", 1)]), start - 1);
    let at_start = ledger.reserve(&request("o2", "u1", &[("ga", 1)]), start);
    let last_moment = ledger.reserve(&request("o3", "u1", &[("ga", 1)]), end - 1);
    let at_end = ledger.reserve(&request("o4", "u1", &[("ga", 1)]), end);

    assert_eq!(too_early.unwrap_err(), LedgerError::OutsideSaleWindow);
    assert!(at_start.is_ok());
    assert!(last_moment.is_ok());
    let at_end = at_end.unwrap_err();
    assert_eq!(at_end, LedgerError::OutsideSaleWindow);
    assert_eq!(at_end.code(), "SALE_NOT_OPEN");
    assert_eq!(counters(&ledger, "ga"), (2, 0, 8));
}

#[test]
fn configure_sale_writes_everything_at_once_and_keeps_a_cancellation_final() {
    let mut ledger = open_ledger();
    let wanted = SaleSettings {
        state: SaleState::Open,
        max_tickets_per_user: Some(4),
        sale_starts_at: Some(T0),
        sale_ends_at: Some(T0 + MINUTE),
    };

    assert_eq!(ledger.configure_sale(wanted.clone()).unwrap(), wanted);
    assert_eq!(ledger.configure_sale(wanted.clone()).unwrap(), wanted);
    assert_eq!(ledger.settings().unwrap(), wanted);

    let inverted = SaleSettings {
        sale_ends_at: Some(T0),
        ..wanted.clone()
    };
    assert_eq!(
        ledger.configure_sale(inverted).unwrap_err().code(),
        "VALIDATION_FAILED"
    );

    let cancelled = SaleSettings {
        state: SaleState::Cancelled,
        ..wanted.clone()
    };
    ledger.configure_sale(cancelled.clone()).unwrap();
    assert_eq!(
        ledger.configure_sale(wanted).unwrap_err(),
        LedgerError::SaleCancelled
    );
    assert_eq!(ledger.configure_sale(cancelled.clone()).unwrap(), cancelled);
}

#[test]
fn reserve_refuses_a_paused_class_and_an_unknown_class() {
    let mut ledger = open_ledger();
    ledger.set_class_status("vip", ClassStatus::Paused).unwrap();

    let paused = ledger
        .reserve(&request("o1", "u1", &[("ga", 1), ("vip", 1)]), T0)
        .unwrap_err();
    let unknown = ledger
        .reserve(&request("o1", "u1", &[("ga", 1), ("balcony", 1)]), T0)
        .unwrap_err();

    assert_eq!(paused.code(), "CLASS_NOT_ON_SALE");
    assert_eq!(unknown.code(), "UNKNOWN_TICKET_CLASS");
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
}

#[test]
fn reserve_respects_the_class_sale_window_start_inclusive_end_exclusive() {
    let mut ledger = open_ledger();
    let start = T0 + 10 * MINUTE;
    let end = T0 + 20 * MINUTE;
    ledger
        .upsert_class(TicketClassSpec {
            sale_start_at: Some(start),
            sale_end_at: Some(end),
            ..spec("early", 5)
        })
        .unwrap();

    let too_early = ledger.reserve(&request("o1", "u1", &[("early", 1)]), start - 1);
    let at_start = ledger.reserve(&request("o2", "u1", &[("early", 1)]), start);
    let last_moment = ledger.reserve(&request("o3", "u1", &[("early", 1)]), end - 1);
    let at_end = ledger.reserve(&request("o4", "u1", &[("early", 1)]), end);

    assert_eq!(too_early.unwrap_err().code(), "SALE_NOT_OPEN");
    assert!(at_start.is_ok());
    assert!(last_moment.is_ok());
    assert_eq!(
        at_end.unwrap_err(),
        LedgerError::ClassSaleWindowClosed {
            ticket_class_id: "early".into()
        }
    );
}

// ----- per-user limit -----

#[test]
fn the_purchase_limit_counts_active_and_confirmed_holds_across_classes() {
    let mut ledger = open_ledger();
    ledger.set_max_tickets_per_user(Some(4)).unwrap();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();
    ledger.confirm("o1", T0 + MINUTE).unwrap();
    ledger
        .reserve(&request("o2", "u1", &[("vip", 1)]), T0)
        .unwrap();

    let over = ledger
        .reserve(&request("o3", "u1", &[("ga", 2)]), T0)
        .unwrap_err();
    let exactly_at = ledger.reserve(&request("o4", "u1", &[("ga", 1)]), T0);
    let someone_else = ledger.reserve(&request("o5", "u2", &[("ga", 4)]), T0);

    assert_eq!(
        over,
        LedgerError::PurchaseLimitExceeded {
            limit: 4,
            already_committed: 3,
            requested: 2
        }
    );
    assert_eq!(over.code(), "PURCHASE_LIMIT_EXCEEDED");
    assert!(exactly_at.is_ok());
    assert!(someone_else.is_ok(), "the limit is per user");
}

#[test]
fn released_and_expired_holds_no_longer_count_against_the_purchase_limit() {
    let mut ledger = open_ledger();
    ledger.set_max_tickets_per_user(Some(2)).unwrap();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();
    ledger.release("o1", T0).unwrap();
    let mut brief = request("o2", "u1", &[("ga", 2)]);
    brief.hold_for_ms = Some(MINUTE);
    ledger.reserve(&brief, T0).unwrap();
    ledger.expire_due(T0 + MINUTE).unwrap();

    let again = ledger.reserve(&request("o3", "u1", &[("ga", 2)]), T0 + MINUTE);

    assert!(again.is_ok());
}

#[test]
fn a_single_order_above_the_limit_is_refused() {
    let mut ledger = open_ledger();
    ledger.set_max_tickets_per_user(Some(2)).unwrap();

    let error = ledger
        .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
        .unwrap_err();

    assert_eq!(error.code(), "PURCHASE_LIMIT_EXCEEDED");
}
