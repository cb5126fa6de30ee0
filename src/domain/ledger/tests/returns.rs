//! Returning a refunded order's sold tickets to sale: once, never sold again to that order,
//! and no longer counted against the buyer's limit.

use super::*;

/// An open ledger where `o1` (u1) bought 3 GA and 1 VIP.
fn sold_ledger() -> Ledger<MemoryLedgerStore> {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 3), ("vip", 1)]), T0)
        .unwrap();
    ledger.confirm("o1", T0 + MINUTE).unwrap();
    ledger
}

#[test]
fn returning_a_sold_order_puts_its_tickets_back_on_sale() {
    let mut ledger = sold_ledger();

    let outcome = ledger.return_sold("o1", T0 + 2 * MINUTE).unwrap();

    let ReturnOutcome::Returned(hold) = &outcome else {
        panic!("expected Returned, got {outcome:?}");
    };
    assert_eq!(hold.state, HoldState::Confirmed);
    assert_eq!(hold.returned_at, Some(T0 + 2 * MINUTE));
    assert_eq!(hold.updated_at, T0 + 2 * MINUTE);
    assert_eq!(ledger.hold("o1").unwrap().as_ref(), Some(hold));
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    assert_eq!(counters(&ledger, "vip"), (0, 0, 2));
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn a_repeated_return_answers_already_returned_and_changes_nothing() {
    let mut ledger = sold_ledger();
    ledger.return_sold("o1", T0 + 2 * MINUTE).unwrap();
    let before = contents(ledger.store());

    let again = ledger.return_sold("o1", T0 + 3 * MINUTE).unwrap();

    let ReturnOutcome::AlreadyReturned(hold) = again else {
        panic!("expected AlreadyReturned, got {again:?}");
    };
    assert_eq!(hold.returned_at, Some(T0 + 2 * MINUTE));
    assert_eq!(contents(ledger.store()), before);
}

#[test]
fn a_payment_redelivered_after_the_return_sells_nothing_again() {
    let mut ledger = sold_ledger();
    ledger.return_sold("o1", T0 + 2 * MINUTE).unwrap();
    // Someone else buys the returned VIP ticket meanwhile.
    ledger
        .reserve(&request("o2", "u2", &[("vip", 2)]), T0 + 3 * MINUTE)
        .unwrap();
    let before = contents(ledger.store());

    let outcome = ledger.confirm("o1", T0 + 4 * MINUTE).unwrap();

    let ConfirmOutcome::Confirmed(hold) = outcome else {
        panic!("expected the stored Confirmed answer, got {outcome:?}");
    };
    assert_eq!(hold.returned_at, Some(T0 + 2 * MINUTE));
    assert_eq!(contents(ledger.store()), before);
    assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    assert_eq!(counters(&ledger, "vip"), (2, 0, 0));
    // Neither does a release: the order's tickets are not held any more.
    assert!(matches!(
        ledger.release("o1", T0 + 5 * MINUTE).unwrap(),
        ReleaseOutcome::AlreadyConfirmed(_)
    ));
    assert_eq!(contents(ledger.store()), before);
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn an_order_that_never_sold_has_nothing_to_return() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("active", "u1", &[("ga", 1)]), T0)
        .unwrap();
    ledger
        .reserve(&request("released", "u1", &[("ga", 1)]), T0)
        .unwrap();
    ledger.release("released", T0).unwrap();
    ledger
        .reserve(&request("expired", "u2", &[("vip", 2)]), T0)
        .unwrap();
    ledger.expire_due(T0 + 15 * MINUTE).unwrap();
    ledger
        .reserve(&request("taken", "u3", &[("vip", 2)]), T0 + 16 * MINUTE)
        .unwrap();
    // Paid too late: the VIP tickets went to `taken`, so the payment was refused.
    assert!(matches!(
        ledger.confirm("expired", T0 + 17 * MINUTE).unwrap(),
        ConfirmOutcome::PaidButNoStock(_)
    ));
    let before = contents(ledger.store());

    for order_id in ["active", "released", "expired"] {
        let outcome = ledger.return_sold(order_id, T0 + 20 * MINUTE).unwrap();
        assert!(
            matches!(&outcome, ReturnOutcome::NotSold(hold) if hold.order_id == order_id),
            "{order_id}: {outcome:?}"
        );
    }
    assert_eq!(
        ledger.return_sold("nobody", T0 + 20 * MINUTE).unwrap(),
        ReturnOutcome::UnknownOrder
    );
    assert_eq!(contents(ledger.store()), before);
}

#[test]
fn returned_tickets_no_longer_count_toward_the_buyers_limit() {
    let mut ledger = open_ledger();
    ledger.set_max_tickets_per_user(Some(4)).unwrap();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
        .unwrap();
    ledger.confirm("o1", T0).unwrap();
    let over = ledger.reserve(&request("o2", "u1", &[("ga", 1)]), T0 + MINUTE);
    assert_eq!(over.unwrap_err().code(), "PURCHASE_LIMIT_EXCEEDED");

    ledger.return_sold("o1", T0 + 2 * MINUTE).unwrap();

    assert_eq!(ledger.store().user_committed_quantity("u1").unwrap(), 0);
    let again = ledger
        .reserve(&request("o3", "u1", &[("ga", 4)]), T0 + 3 * MINUTE)
        .unwrap();
    assert_eq!(again.state, HoldState::Active);
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn the_store_refuses_a_return_mark_on_a_hold_that_is_not_confirmed() {
    let mut ledger = open_ledger();
    let mut hold = ledger
        .reserve(&request("o1", "u1", &[("ga", 1)]), T0)
        .unwrap();
    hold.returned_at = Some(T0);
    let before = contents(ledger.store());

    let written = ledger.store_mut().commit(&LedgerChanges {
        holds: vec![hold],
        ..LedgerChanges::default()
    });

    assert!(matches!(written, Err(StoreError::Unavailable(_))));
    assert_eq!(contents(ledger.store()), before);
}
