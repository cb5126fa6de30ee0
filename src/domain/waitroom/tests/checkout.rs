//! Checkout slots, order binding and idle fans.

use super::*;

// --- checkout slots -----------------------------------------------------------------------

/// A redelivered or late command changed nothing: its only effect is the wake-up time.
fn assert_only_wake_up(outcome: &WaitroomOutcome, order: &str) {
    assert!(
        outcome
            .effects
            .iter()
            .all(|e| matches!(e, WaitroomEffect::NextWakeUp(_))),
        "{order}: only the wake-up"
    );
}

fn room_with_two_in_checkout() -> Room {
    let mut room = Room::open(config());
    room.join_all(&["ann", "bob", "cat", "dan"]);
    room.tick();
    accepted(room.bind("ann", "order-ann"));
    accepted(room.bind("bob", "order-bob"));
    room
}

#[test]
fn a_completed_order_frees_the_slot_and_completes_the_session() {
    let mut room = room_with_two_in_checkout();
    let outcome = room.resolve("order-ann", CheckoutOutcome::Completed);
    assert_eq!(
        outcome.session.as_ref().map(|s| s.status),
        Some(SessionStatus::Completed)
    );
    assert!(outcome.effects.iter().any(|e| matches!(
        e,
        WaitroomEffect::Publish(WaitroomEvent::CheckoutCompleted { .. })
    )));
    assert_eq!(room.state().slots_in_use, 1);
    assert_eq!(
        outcome.next_wake_up(),
        Some(SALE_START + TICK_INTERVAL_MS),
        "a freed slot schedules the next tick"
    );
    room.now += TICK_INTERVAL_MS;
    assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
}

#[test]
fn failed_cancelled_and_expired_orders_free_the_slot() {
    for (outcome, reason) in [
        (CheckoutOutcome::Failed, SessionEndReason::OrderFailed),
        (CheckoutOutcome::Cancelled, SessionEndReason::OrderCancelled),
        (CheckoutOutcome::Expired, SessionEndReason::OrderExpired),
    ] {
        let mut room = room_with_two_in_checkout();
        let resolved = room.resolve("order-bob", outcome);
        assert_eq!(expired_users(&resolved), vec![("bob".to_string(), reason)]);
        assert_eq!(room.status("bob"), SessionStatus::Expired);
        assert_eq!(room.state().slots_in_use, 1);
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
    }
}

#[test]
fn redelivered_and_unknown_checkout_events_change_nothing() {
    let mut room = room_with_two_in_checkout();
    room.resolve("order-ann", CheckoutOutcome::Completed);
    let settled = room.room.store().data.clone();
    for (order, outcome) in [
        ("order-ann", CheckoutOutcome::Completed),
        ("order-ann", CheckoutOutcome::Failed),
        ("order-ann", CheckoutOutcome::Expired),
        ("order-nobody", CheckoutOutcome::Completed),
        ("order-nobody", CheckoutOutcome::Cancelled),
    ] {
        assert_only_wake_up(&room.resolve(order, outcome), order);
    }
    assert_eq!(room.room.store().data, settled);
    assert_eq!(room.state().slots_in_use, 1);
    assert_eq!(room.status("ann"), SessionStatus::Completed);
}

#[test]
fn a_bound_order_keeps_its_slot_past_the_checkout_expiry() {
    let mut room = room_with_two_in_checkout();
    room.now += 3_600_000;
    room.touch("cat");
    room.touch("dan");
    let outcome = room.tick();
    assert!(admitted_users(&outcome).is_empty());
    assert_eq!(room.status("ann"), SessionStatus::Admitted);
    assert_eq!(room.state().slots_in_use, 2);
    assert_eq!(
        outcome.next_wake_up(),
        Some(SALE_END),
        "nothing is due before sale end while orders hold every slot"
    );
    room.resolve("order-ann", CheckoutOutcome::Expired);
    room.now += TICK_INTERVAL_MS;
    assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
}

#[test]
fn an_unbound_order_leaves_the_checkout_admitted_with_its_deadline() {
    let mut room = room_with_two_in_checkout();
    let deadline = room.session_of("ann").checkout_expires_at;
    assert_eq!(deadline, Some(SALE_START + 60_000));
    room.now += 10_000;
    let outcome = accepted(room.unbind("order-ann"));
    let view = outcome.session.as_ref().expect("the session");
    assert_eq!(
        (view.status, view.checkout_expires_at),
        (SessionStatus::Admitted, deadline)
    );
    assert!(
        !outcome.effects.iter().any(|e| matches!(
            e,
            WaitroomEffect::Publish(_) | WaitroomEffect::Expired { .. }
        )),
        "the fan's checkout did not change: nothing to announce or push"
    );
    assert_eq!(room.session_of("ann").order_id, None);
    assert_eq!(room.state().slots_in_use, 2, "the slot stays with ann");
    assert_eq!(
        outcome.next_wake_up(),
        deadline,
        "the unbound checkout's deadline is due again"
    );

    // The same checkout places another order; the first order's late news touches nothing.
    accepted(room.bind("ann", "order-ann-2"));
    room.resolve("order-ann", CheckoutOutcome::Failed);
    room.unbind("order-ann");
    assert_eq!(room.status("ann"), SessionStatus::Admitted);
    assert_eq!(
        room.session_of("ann").order_id.as_deref(),
        Some("order-ann-2")
    );
    room.resolve("order-ann-2", CheckoutOutcome::Completed);
    assert_eq!(room.status("ann"), SessionStatus::Completed);
    assert_eq!(room.state().slots_in_use, 1);
}

#[test]
fn an_unbound_checkout_still_ends_with_its_token() {
    let mut room = room_with_two_in_checkout();
    room.unbind("order-ann");
    room.now = SALE_START + 60_000;
    let outcome = room.tick();
    assert_eq!(
        expired_users(&outcome),
        vec![("ann".to_string(), SessionEndReason::CheckoutTokenExpired)]
    );
    assert_eq!(admitted_users(&outcome), vec!["cat".to_string()]);
    assert_eq!(
        rejection(room.bind("ann", "order-ann-2")),
        Some(WaitroomRejection::CheckoutNotActive)
    );
}

#[test]
fn unbinding_after_the_deadline_ends_the_checkout_at_once() {
    let mut room = room_with_two_in_checkout();
    // A bound order holds the slot past the deadline; once unbound nothing holds it.
    room.now = SALE_START + 90_000;
    let outcome = accepted(room.unbind("order-ann"));
    assert_eq!(
        expired_users(&outcome),
        vec![("ann".to_string(), SessionEndReason::CheckoutTokenExpired)]
    );
    assert!(outcome
        .effects
        .iter()
        .any(|e| matches!(e, WaitroomEffect::Expired { session } if session.user_id == "ann")));
    assert_eq!(room.status("ann"), SessionStatus::Expired);
    assert_eq!(room.state().slots_in_use, 1);
    assert_eq!(
        outcome.next_wake_up(),
        Some(room.now),
        "the freed slot is offered at once"
    );
    assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
}

#[test]
fn an_expired_hold_ends_the_checkout_only_once_its_token_ran_out_too() {
    let mut room = room_with_two_in_checkout();
    // Time left on the token: the saga decides (payment page or not); nothing changes here.
    let settled = room.room.store().data.clone();
    assert_only_wake_up(&accepted(room.hold_expired("order-ann")), "order-ann");
    assert_eq!(room.room.store().data, settled);
    assert_eq!(room.status("ann"), SessionStatus::Admitted);

    // Past the deadline it ends at once: the token could not be used again anyway.
    room.now = SALE_START + 90_000;
    let outcome = accepted(room.hold_expired("order-ann"));
    assert_eq!(
        expired_users(&outcome),
        vec![("ann".to_string(), SessionEndReason::OrderExpired)]
    );
    assert_eq!(room.state().slots_in_use, 1);

    // The saga's own word after it, a redelivery and an unknown order change nothing.
    let settled = room.room.store().data.clone();
    let again = [
        room.resolve("order-ann", CheckoutOutcome::Expired),
        room.unbind("order-ann"),
        room.hold_expired("order-ann"),
        room.hold_expired("order-nobody"),
    ];
    for outcome in &again {
        assert_only_wake_up(outcome, "order-ann");
    }
    assert_eq!(room.room.store().data, settled);
}

#[test]
fn redelivered_unknown_and_late_unbinds_change_nothing() {
    let mut room = room_with_two_in_checkout();
    room.unbind("order-ann");
    room.resolve("order-bob", CheckoutOutcome::Failed);
    let settled = room.room.store().data.clone();
    for order in ["order-ann", "order-bob", "order-nobody"] {
        let outcome = room.unbind(order);
        assert_eq!(outcome.rejection, None);
        assert_only_wake_up(&outcome, order);
    }
    assert_eq!(room.room.store().data, settled);
    assert_eq!(
        room.status("bob"),
        SessionStatus::Expired,
        "an ended checkout is not reopened"
    );
    assert_eq!(
        room.session_of("bob").order_id.as_deref(),
        Some("order-bob")
    );
}

#[test]
fn an_unused_checkout_token_expires_and_frees_its_slot() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 1,
        ..config()
    });
    room.join_all(&["ann", "bob"]);
    let admitted = room.tick();
    assert_eq!(admitted_users(&admitted), vec!["ann".to_string()]);
    assert_eq!(
        admitted.next_wake_up(),
        Some(SALE_START + 60_000),
        "wake when the token expires"
    );
    room.now = SALE_START + 59_999;
    room.touch("bob");
    assert_eq!(room.status("ann"), SessionStatus::Admitted);
    room.now = SALE_START + 60_000;
    let outcome = room.tick();
    assert_eq!(
        expired_users(&outcome),
        vec![("ann".to_string(), SessionEndReason::CheckoutTokenExpired)]
    );
    assert!(outcome
        .effects
        .iter()
        .any(|e| matches!(e, WaitroomEffect::Expired { session } if session.user_id == "ann")));
    assert_eq!(admitted_users(&outcome), vec!["bob".to_string()]);
    assert_eq!(room.state().slots_in_use, 1);
}

#[test]
fn leaving_an_unused_checkout_frees_the_slot() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 1,
        ..config()
    });
    room.join_all(&["ann", "bob"]);
    room.tick();
    accepted(room.leave("ann"));
    assert_eq!(room.status("ann"), SessionStatus::Left);
    assert_eq!(room.state().slots_in_use, 0);
    room.now += TICK_INTERVAL_MS;
    assert_eq!(admitted_users(&room.tick()), vec!["bob".to_string()]);
}

#[test]
fn leaving_with_an_order_in_progress_is_refused() {
    let mut room = room_with_two_in_checkout();
    let refused = room.leave("ann");
    assert_eq!(
        refused.rejection,
        Some(WaitroomRejection::CheckoutInProgress)
    );
    assert_eq!(
        refused.session.map(|s| s.status),
        Some(SessionStatus::Admitted)
    );
    assert_eq!(room.state().slots_in_use, 2);
}

#[test]
fn binding_an_order_checks_user_token_expiry_and_uniqueness() {
    let mut room = room_with_two_in_checkout();
    accepted(room.bind("ann", "order-ann"));
    assert_eq!(
        rejection(room.bind("ann", "order-other")),
        Some(WaitroomRejection::CheckoutAlreadyBound)
    );
    assert_eq!(
        rejection(room.bind("cat", "order-x")),
        Some(WaitroomRejection::CheckoutNotActive)
    );
    let ann = room.session_of("ann").session_id;
    let stranger = room.apply(WaitroomCommand::BindOrder {
        session_id: ann,
        user_id: "mallory".into(),
        order_id: "order-m".into(),
    });
    assert_eq!(
        stranger.rejection,
        Some(WaitroomRejection::CheckoutNotActive)
    );
    assert_eq!(
        stranger.session, None,
        "nothing about another fan's session"
    );
    let unknown = room.apply(WaitroomCommand::BindOrder {
        session_id: "nope".into(),
        user_id: "ann".into(),
        order_id: "order-n".into(),
    });
    assert_eq!(unknown.rejection, Some(WaitroomRejection::SessionNotFound));

    let mut room = Room::open(config());
    room.join_all(&["ann", "bob"]);
    room.tick();
    accepted(room.bind("ann", "order-1"));
    assert_eq!(
        rejection(room.bind("bob", "order-1")),
        Some(WaitroomRejection::OrderAlreadyBound)
    );
    room.now = SALE_START + 60_000;
    let late = room.bind("bob", "order-2");
    assert_eq!(late.rejection, Some(WaitroomRejection::CheckoutNotActive));
    // The refused command's upkeep still counts: the token expiry it swept is kept.
    assert_eq!(room.status("bob"), SessionStatus::Expired);
    assert_eq!(
        expired_users(&late),
        vec![("bob".to_string(), SessionEndReason::CheckoutTokenExpired)]
    );
}

#[test]
fn an_expired_token_cannot_bind_even_before_the_sweep_reaches_it() {
    let fans = users("fan", 300);
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 300,
        admission_batch: 300,
        ..config()
    });
    room.join_all(&as_strs(&fans));
    room.tick();
    // One sweep expires CHECKOUT_EXPIRY_BATCH tokens; the last in index order is left over.
    let last = room
        .room
        .store()
        .sessions()
        .filter(|s| s.status == SessionStatus::Admitted)
        .max_by_key(|s| (s.checkout_expires_at, s.session_id.clone()))
        .cloned()
        .expect("admitted");
    room.now = SALE_START + 60_000;
    let late = room.apply(WaitroomCommand::BindOrder {
        session_id: last.session_id.clone(),
        user_id: last.user_id.clone(),
        order_id: "order-late".into(),
    });
    assert_eq!(late.rejection, Some(WaitroomRejection::CheckoutNotActive));
    assert_eq!(
        late.session.as_ref().map(|s| s.status),
        Some(SessionStatus::Admitted),
        "not swept yet"
    );
    assert_eq!(
        late.next_wake_up(),
        Some(room.now),
        "the sweep continues at once"
    );
    room.tick();
    assert_eq!(room.state().slots_in_use, 0);
}

// --- idle fans ----------------------------------------------------------------------------

#[test]
fn idle_fans_at_the_head_are_skipped_without_spending_a_slot() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 1,
        ..config()
    });
    room.join_all(&["gone", "here"]);
    room.now += 600_000;
    room.touch("here");
    let outcome = room.tick();
    assert_eq!(
        expired_users(&outcome),
        vec![("gone".to_string(), SessionEndReason::IdleAtHead)]
    );
    assert_eq!(admitted_users(&outcome), vec!["here".to_string()]);
    assert_eq!(room.state().slots_in_use, 1);
    let gone = room.view("gone").expect("view");
    assert_eq!(gone.end_reason, Some(SessionEndReason::IdleAtHead));
}

#[test]
fn a_connected_fan_counts_as_seen() {
    let mut room = Room::open(config());
    room.join_all(&["socket", "gone"]);
    room.now += 3_600_000;
    let connected = |user: &str| user == "socket";
    let outcome = room
        .room
        .apply_with_presence(WaitroomCommand::AdmissionTick, room.now, &connected)
        .expect("tick");
    assert_eq!(admitted_users(&outcome), vec!["socket".to_string()]);
    assert_eq!(
        expired_users(&outcome),
        vec![("gone".to_string(), SessionEndReason::IdleAtHead)]
    );
}

#[test]
fn connected_fans_get_their_own_positions_in_one_pass() {
    let mut room = Room::open(config());
    room.join_all(&["a", "b", "c", "d"]);
    let outcome = room.tick();
    assert!(outcome
        .effects
        .iter()
        .any(|e| matches!(e, WaitroomEffect::HeadMoved { queue_length: 2 })));
    let before = room.room.store().stats.calls;
    let views = room
        .room
        .views_of_users(["c", "d", "nobody"], room.now)
        .expect("views");
    let positions: Vec<_> = views
        .iter()
        .map(|(user, view)| (*user, view.as_ref().and_then(|v| v.position)))
        .collect();
    assert_eq!(
        positions,
        vec![("c", Some(1)), ("d", Some(2)), ("nobody", None)]
    );
    // Config and state once, then a session read and a prefix sum per queued fan.
    assert_eq!(room.room.store().stats.calls - before, 2 + 2 * 2 + 1);
}

#[test]
fn touching_writes_at_most_once_per_interval() {
    let mut room = Room::open(config());
    room.join("ann");
    let written = room.room.store().stats.session_rows_written;
    room.now += TOUCH_WRITE_INTERVAL_MS - 1;
    room.touch("ann");
    assert_eq!(room.room.store().stats.session_rows_written, written);
    room.now += 1;
    room.touch("ann");
    assert_eq!(room.room.store().stats.session_rows_written, written + 1);
    assert_eq!(room.session_of("ann").last_seen_at, room.now);
}
