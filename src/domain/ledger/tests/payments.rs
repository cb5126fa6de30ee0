//! Confirming, releasing and expiring holds, and the organiser's class changes.

use super::*;

// ----- confirm -----

#[test]
fn confirm_moves_held_tickets_to_sold_and_answers_the_same_when_repeated() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 3), ("vip", 1)]), T0)
        .unwrap();

    let first = ledger.confirm("o1", T0 + MINUTE).unwrap();
    let second = ledger.confirm("o1", T0 + 2 * MINUTE).unwrap();

    let ConfirmOutcome::Confirmed(hold) = &first else {
        panic!("expected Confirmed, got {first:?}");
    };
    assert_eq!(hold.state, HoldState::Confirmed);
    assert_eq!(hold.updated_at, T0 + MINUTE);
    assert_eq!(second, first);
    assert_eq!(counters(&ledger, "ga"), (0, 3, 7));
    assert_eq!(counters(&ledger, "vip"), (0, 1, 1));
    assert_eq!(ledger.next_expiry().unwrap(), None);
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn confirm_sells_an_active_hold_past_its_expiry_that_the_alarm_has_not_expired_yet() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("vip", 2)]), T0)
        .unwrap();

    let outcome = ledger.confirm("o1", T0 + 16 * MINUTE).unwrap();

    assert!(matches!(outcome, ConfirmOutcome::Confirmed(_)));
    assert_eq!(counters(&ledger, "vip"), (0, 2, 0));
}

#[test]
fn a_late_payment_for_an_expired_hold_sells_when_the_stock_is_still_there() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2), ("vip", 1)]), T0)
        .unwrap();
    ledger.expire_due(T0 + 15 * MINUTE).unwrap();
    ledger.set_class_status("vip", ClassStatus::Paused).unwrap();

    let outcome = ledger.confirm("o1", T0 + 17 * MINUTE).unwrap();

    let ConfirmOutcome::Confirmed(hold) = outcome else {
        panic!("expected Confirmed, got {outcome:?}");
    };
    assert_eq!(hold.state, HoldState::Confirmed);
    assert_eq!(counters(&ledger, "ga"), (0, 2, 8));
    assert_eq!(counters(&ledger, "vip"), (0, 1, 1));
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn a_late_payment_for_a_hold_whose_tickets_were_resold_is_paid_but_no_stock_for_good() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 1), ("vip", 2)]), T0)
        .unwrap();
    ledger.release("o1", T0 + MINUTE).unwrap();
    ledger
        .reserve(&request("o2", "u2", &[("vip", 1)]), T0 + 2 * MINUTE)
        .unwrap();
    let before = contents(ledger.store());

    let late = ledger.confirm("o1", T0 + 3 * MINUTE).unwrap();

    let ConfirmOutcome::PaidButNoStock(hold) = &late else {
        panic!("expected PaidButNoStock, got {late:?}");
    };
    assert_eq!(hold.state, HoldState::Released);
    assert_eq!(
        hold.refused_payment,
        Some(RefusedPayment {
            reason: RefusalReason::NoStock,
            at: T0 + 3 * MINUTE
        })
    );
    assert_eq!(
        before.1,
        contents(ledger.store()).1,
        "no counter moved, not even ga's"
    );

    // The saga refunds on that answer, so stock freeing up later must not turn it into a sale.
    ledger.release("o2", T0 + 4 * MINUTE).unwrap();
    assert_eq!(ledger.confirm("o1", T0 + 5 * MINUTE).unwrap(), late);
    assert_eq!(counters(&ledger, "vip"), (0, 0, 2));
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn a_payment_on_a_cancelled_event_is_refused_and_releases_the_hold() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();
    ledger.set_sale_state(SaleState::Cancelled).unwrap();

    let outcome = ledger.confirm("o1", T0 + MINUTE).unwrap();

    let ConfirmOutcome::PaidButEventCancelled(hold) = &outcome else {
        panic!("expected PaidButEventCancelled, got {outcome:?}");
    };
    assert_eq!(hold.state, HoldState::Released);
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    assert_eq!(ledger.confirm("o1", T0 + 2 * MINUTE).unwrap(), outcome);
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn confirming_an_order_without_a_hold_is_hold_not_found() {
    let mut ledger = open_ledger();

    let error = ledger.confirm("nope", T0).unwrap_err();

    assert_eq!(error.code(), "HOLD_NOT_FOUND");
}

// ----- release -----

#[test]
fn release_frees_the_tickets_once_and_is_a_no_op_afterwards() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
        .unwrap();

    let first = ledger.release("o1", T0 + MINUTE).unwrap();
    let before = contents(ledger.store());
    let second = ledger.release("o1", T0 + 2 * MINUTE).unwrap();

    assert!(
        matches!(first, ReleaseOutcome::Released(ref hold) if hold.state == HoldState::Released)
    );
    assert!(matches!(second, ReleaseOutcome::AlreadyReleased(_)));
    assert_eq!(contents(ledger.store()), before);
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
}

#[test]
fn release_after_confirm_keeps_the_tickets_sold() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
        .unwrap();
    ledger.confirm("o1", T0).unwrap();

    let outcome = ledger.release("o1", T0 + MINUTE).unwrap();

    assert!(matches!(outcome, ReleaseOutcome::AlreadyConfirmed(_)));
    assert_eq!(counters(&ledger, "ga"), (0, 4, 6));
}

#[test]
fn release_of_an_expired_hold_or_an_unknown_order_is_a_no_op() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
        .unwrap();
    ledger.expire_due(T0 + 15 * MINUTE).unwrap();
    let before = contents(ledger.store());

    let expired = ledger.release("o1", T0 + 16 * MINUTE).unwrap();
    let unknown = ledger.release("nope", T0).unwrap();

    assert!(matches!(expired, ReleaseOutcome::AlreadyExpired(_)));
    assert_eq!(unknown, ReleaseOutcome::UnknownOrder);
    assert_eq!(contents(ledger.store()), before);
}

// ----- expiry -----

#[test]
fn expire_due_expires_only_holds_whose_time_has_come_earliest_first() {
    let mut ledger = open_ledger();
    for (order, hold_for) in [
        ("late", 10 * MINUTE),
        ("b", 5 * MINUTE),
        ("a", 5 * MINUTE),
        ("early", MINUTE),
    ] {
        let mut req = request(order, "u1", &[("ga", 1)]);
        req.hold_for_ms = Some(hold_for);
        ledger.reserve(&req, T0).unwrap();
    }
    ledger
        .reserve(&request("paid", "u2", &[("ga", 1)]), T0)
        .unwrap();
    ledger.confirm("paid", T0).unwrap();

    let nothing = ledger.expire_due(T0 + MINUTE - 1).unwrap();
    let expired = ledger.expire_due(T0 + 5 * MINUTE).unwrap();

    assert!(nothing.is_empty());
    let order_ids: Vec<&str> = expired.iter().map(|e| e.order_id.as_str()).collect();
    assert_eq!(
        order_ids,
        ["early", "a", "b"],
        "by expiresAt, then order id"
    );
    assert_eq!(
        expired[0],
        ExpiredHold {
            order_id: "early".into(),
            user_id: "u1".into(),
            expires_at: T0 + MINUTE
        }
    );
    assert_eq!(state_of(&ledger, "late"), HoldState::Active);
    assert_eq!(state_of(&ledger, "paid"), HoldState::Confirmed);
    assert_eq!(counters(&ledger, "ga"), (1, 1, 8));
    assert_eq!(ledger.next_expiry().unwrap(), Some(T0 + 10 * MINUTE));
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn expire_due_works_in_batches_and_next_expiry_says_when_more_are_due() {
    let mut ledger = open_ledger();
    for order in ["o1", "o2", "o3"] {
        ledger
            .reserve(&request(order, "u1", &[("ga", 1)]), T0)
            .unwrap();
    }
    let now = T0 + 15 * MINUTE;

    let first = ledger.expire_due_at_most(now, 2).unwrap();
    let still_due = ledger.next_expiry().unwrap();
    let rest = ledger.expire_due_at_most(now, 2).unwrap();

    assert_eq!(first.len(), 2);
    assert!(still_due.is_some_and(|at| at <= now));
    assert_eq!(rest.len(), 1);
    assert_eq!(ledger.next_expiry().unwrap(), None);
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
}

#[test]
fn expire_due_with_nothing_due_writes_nothing() {
    let mut ledger = open_ledger();
    ledger.store_mut().fail_next_write();

    assert_eq!(ledger.expire_due(T0).unwrap(), vec![]);
}

// ----- class management -----

#[test]
fn set_total_refuses_a_total_below_what_is_held_or_sold() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
        .unwrap();
    ledger
        .reserve(&request("o2", "u2", &[("ga", 2)]), T0)
        .unwrap();
    ledger.confirm("o2", T0).unwrap();

    let below = ledger.set_total("ga", 4).unwrap_err();
    let at = ledger.set_total("ga", 5).unwrap();

    assert_eq!(
        below,
        LedgerError::TotalBelowCommitted {
            ticket_class_id: "ga".into(),
            total: 4,
            committed: 5
        }
    );
    assert_eq!(below.code(), "TOTAL_BELOW_COMMITTED");
    assert_eq!((at.total, at.available()), (5, 0));
    assert_eq!(
        ledger.set_total("ga", -1).unwrap_err().code(),
        "VALIDATION_FAILED"
    );
    assert_eq!(
        ledger.set_total("nope", 1).unwrap_err().code(),
        "UNKNOWN_TICKET_CLASS"
    );
}

#[test]
fn upsert_class_keeps_the_counters_and_guards_the_total() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
        .unwrap();

    let updated = ledger
        .upsert_class(TicketClassSpec {
            status: ClassStatus::Paused,
            ..spec("ga", 20)
        })
        .unwrap();
    let shrunk = ledger.upsert_class(spec("ga", 2)).unwrap_err();
    let bad_window = ledger
        .upsert_class(TicketClassSpec {
            sale_start_at: Some(T0),
            sale_end_at: Some(T0),
            ..spec("ga", 20)
        })
        .unwrap_err();

    assert_eq!(
        (updated.total, updated.reserved, updated.status),
        (20, 3, ClassStatus::Paused)
    );
    assert_eq!(shrunk.code(), "TOTAL_BELOW_COMMITTED");
    assert_eq!(bad_window.code(), "VALIDATION_FAILED");
    assert_eq!(
        ledger.upsert_class(spec("", 1)).unwrap_err().code(),
        "VALIDATION_FAILED"
    );
    assert_eq!(
        ledger.upsert_class(spec("x", -1)).unwrap_err().code(),
        "VALIDATION_FAILED"
    );
    assert_eq!(class(&ledger, "ga"), updated);
}

#[test]
fn availability_lists_every_class_with_live_counters() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
        .unwrap();
    ledger
        .reserve(&request("o2", "u1", &[("vip", 1)]), T0)
        .unwrap();
    ledger.confirm("o2", T0).unwrap();

    let availability = ledger.availability().unwrap();

    let summary: Vec<(&str, u32, u32, u32, u32)> = availability
        .iter()
        .map(|c| (c.id.as_str(), c.total, c.reserved, c.sold, c.available))
        .collect();
    assert_eq!(summary, [("ga", 10, 3, 0, 7), ("vip", 2, 0, 1, 1)]);
}
