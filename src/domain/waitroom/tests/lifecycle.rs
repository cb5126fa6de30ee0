//! Closing, estimated waits, wake-ups, storage, and cost at depth.

use super::*;
use crate::domain::fenwick::FenwickIndex;

// --- closing ------------------------------------------------------------------------------

#[test]
fn cancelling_expires_the_queue_and_admits_no_one() {
    let mut room = Room::open(config());
    room.join_all(&["ann", "bob", "cat"]);
    room.tick();
    let outcome = room.reconfigure(|c| {
        c.cancelled = true;
        c.max_concurrent_checkouts = 100;
    });
    assert_eq!(
        expired_users(&outcome),
        vec![("cat".to_string(), SessionEndReason::EventCancelled)]
    );
    assert!(outcome.effects.iter().any(|e| matches!(
        e,
        WaitroomEffect::Publish(WaitroomEvent::QueueClosed {
            reason: ClosedReason::EventCancelled,
            ..
        })
    )));
    room.now += TICK_INTERVAL_MS;
    assert!(admitted_users(&room.tick()).is_empty());
    assert_eq!(
        rejection(room.apply(WaitroomCommand::Join {
            user_id: "dan".into(),
            session_id: "late".into()
        })),
        Some(WaitroomRejection::SaleNotOpen)
    );
    let cat = room.view("cat").expect("view");
    assert_eq!((cat.status, cat.queue_length), (SessionStatus::Expired, 0));
    // Admitted fans keep their slot until the token expires.
    assert_eq!(room.status("ann"), SessionStatus::Admitted);
    room.now = SALE_START + 60_000;
    room.tick();
    assert_eq!(room.status("ann"), SessionStatus::Expired);
    assert_eq!(room.state().slots_in_use, 0);
    assert_eq!(room.tick().next_wake_up(), None);
}

#[test]
fn the_sale_end_closes_the_queue() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 0,
        ..config()
    });
    room.join_all(&["ann", "bob"]);
    assert_eq!(room.tick().next_wake_up(), Some(SALE_END));
    room.now = SALE_END;
    // Seen at once, before any command records it.
    assert_eq!(room.status("ann"), SessionStatus::Expired);
    let outcome = room.tick();
    assert_eq!(
        expired_users(&outcome),
        vec![
            ("ann".to_string(), SessionEndReason::SaleEnded),
            ("bob".to_string(), SessionEndReason::SaleEnded),
        ]
    );
    assert_eq!(outcome.next_wake_up(), None);
    assert_eq!(
        rejection(room.apply(WaitroomCommand::Join {
            user_id: "cat".into(),
            session_id: "late".into()
        })),
        Some(WaitroomRejection::SaleNotOpen)
    );
}

#[test]
fn cancelling_before_the_sale_expires_the_prequeue_without_shuffling() {
    let mut room = Room::configured_at(SALE_START - 10_000, config());
    room.join_all(&["ann", "bob"]);
    let outcome = room.reconfigure(|c| c.cancelled = true);
    assert_eq!(expired_users(&outcome).len(), 2);
    assert!(!room.state().sale_opened);
    assert!(room.room.store().sessions().all(|s| s.seq.is_none()));
}

#[test]
fn a_large_closed_queue_drains_in_batches() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 0,
        ..config()
    });
    let fans = users("fan", 600);
    room.join_all(&as_strs(&fans));
    let outcome = room.reconfigure(|c| c.cancelled = true);
    assert_eq!(expired_users(&outcome).len(), CLOSE_DRAIN_BATCH as usize);
    assert_eq!(outcome.next_wake_up(), Some(room.now), "keep draining");
    assert_eq!(
        room.status("fan599"),
        SessionStatus::Expired,
        "already final"
    );
    let mut commands = 1;
    while room.state().queued > 0 {
        room.tick();
        commands += 1;
    }
    assert_eq!(commands, 3);
    assert_eq!(room.tick().next_wake_up(), None);
}

// --- estimated wait -----------------------------------------------------------------------

#[test]
fn estimated_wait_is_unknown_until_an_admission_rate_is_measured() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 10,
        admission_batch: 1,
        ..config()
    });
    room.join_all(&as_strs(&users("fan", 6)));
    assert_eq!(
        room.view("fan5").expect("view").estimated_wait_seconds,
        None
    );
    room.tick();
    assert_eq!(
        room.view("fan5").expect("view").estimated_wait_seconds,
        None
    );
    room.now += 2_000;
    room.tick();
    // One admission per 2 s; fan5 is 4th.
    let view = room.view("fan5").expect("view");
    assert_eq!(view.position, Some(4));
    assert_eq!(view.estimated_wait_seconds, Some(8));
    room.now += 1_000;
    room.tick();
    // Smoothed: 0.5 + 0.3 * (1.0 - 0.5) = 0.65/s; position 3 → ceil(4.6) s.
    assert_eq!(
        room.view("fan5").expect("view").estimated_wait_seconds,
        Some(5)
    );
    assert_eq!(estimated_wait_seconds(10, Some(0.0)), None);
}

// --- wake-ups -----------------------------------------------------------------------------

#[test]
fn an_empty_waitroom_needs_no_alarm() {
    let mut room = Room::open(config());
    assert_eq!(room.tick().next_wake_up(), None);
}

#[test]
fn joins_do_not_push_the_next_tick_back() {
    let mut room = Room::open(WaitroomConfig {
        admission_batch: 1,
        max_concurrent_checkouts: 10,
        ..config()
    });
    room.join_all(&["a", "b", "c"]);
    room.tick();
    for step in 1..=5 {
        room.now += 150;
        let outcome = room.apply(WaitroomCommand::Join {
            user_id: format!("late{step}"),
            session_id: format!("late-s{step}"),
        });
        let unused_expiry = SALE_START + 60_000;
        assert_eq!(
            outcome.next_wake_up(),
            Some((SALE_START + TICK_INTERVAL_MS).min(unused_expiry))
        );
    }
}

#[test]
fn every_outcome_ends_with_exactly_one_wake_up() {
    let mut room = Room::open(config());
    let outcomes = [room.tick(), {
        room.join("a");
        room.tick()
    }];
    for outcome in outcomes {
        let wakes = outcome
            .effects
            .iter()
            .filter(|e| matches!(e, WaitroomEffect::NextWakeUp(_)))
            .count();
        assert_eq!(wakes, 1);
        assert!(matches!(
            outcome.effects.last(),
            Some(WaitroomEffect::NextWakeUp(_))
        ));
    }
}

// --- storage ------------------------------------------------------------------------------

#[test]
fn a_tick_whose_plan_cannot_be_read_writes_nothing() {
    let mut room = Room::open(config());
    room.join_all(&["ann", "bob", "cat"]);
    let before = room.room.store().data.clone();
    room.room.store_mut().fail_on = Some("queue_head");
    let result = room.room.apply(WaitroomCommand::AdmissionTick, room.now);
    assert!(matches!(
        result,
        Err(WaitroomError::Store(MemoryStoreError::Injected(
            "queue_head"
        )))
    ));
    assert_eq!(room.room.store().data, before);
}

#[test]
fn commands_before_configuration_are_refused() {
    let mut room = Waitroom::new(MemoryWaitroomStore::new());
    assert!(matches!(
        room.apply(WaitroomCommand::AdmissionTick, 0),
        Err(WaitroomError::NotConfigured)
    ));
}

#[test]
fn configuration_is_validated_and_bound_to_one_event() {
    let mut room = Room::open(config());
    let bad = room.try_apply(WaitroomCommand::Configure {
        event_id: EVENT.into(),
        config: WaitroomConfig {
            checkout_ttl_seconds: 0,
            ..config()
        },
        shuffle_seed: SEED,
    });
    assert!(matches!(bad, Err(WaitroomError::InvalidConfig(_))));
    let other = room.try_apply(WaitroomCommand::Configure {
        event_id: "evt-2".into(),
        config: config(),
        shuffle_seed: SEED,
    });
    assert!(matches!(other, Err(WaitroomError::EventMismatch { .. })));
    room.apply(WaitroomCommand::Configure {
        event_id: EVENT.into(),
        config: config(),
        shuffle_seed: 42,
    });
    assert_eq!(
        room.state().shuffle_seed,
        SEED,
        "the seed cannot be re-rolled"
    );
    let ends_first = WaitroomConfig {
        sale_ends_at: SALE_START,
        ..config()
    };
    assert!(ends_first.validate().is_err());
}

#[test]
fn the_config_reads_the_event_config_spelling_with_defaults() {
    let parsed: WaitroomConfig = serde_json::from_value(serde_json::json!({
        "maxConcurrentCheckouts": 5,
        "saleStartsAt": 10,
        "saleEndsAt": 20
    }))
    .expect("parse");
    assert_eq!(parsed.max_concurrent_checkouts, 5);
    assert_eq!(parsed.checkout_ttl_seconds, DEFAULT_CHECKOUT_TTL_SECONDS);
    assert_eq!(parsed.admission_batch, DEFAULT_ADMISSION_BATCH);
    assert_eq!(parsed.idle_timeout_seconds, DEFAULT_IDLE_TIMEOUT_SECONDS);
}

#[test]
fn the_view_serializes_as_the_api_waitroom_session() {
    let mut room = Room::open(config());
    room.join("ann");
    let queued = serde_json::to_value(room.join("bob")).expect("json");
    assert_eq!(
        queued,
        serde_json::json!({
            "sessionId": "s2",
            "eventId": EVENT,
            "status": "QUEUED",
            "position": 2,
            "queueLength": 2,
            "estimatedWaitSeconds": null
        })
    );
    room.tick();
    let admitted = serde_json::to_value(room.view("ann")).expect("json");
    assert_eq!(admitted["status"], "ADMITTED");
    assert_eq!(admitted["position"], serde_json::Value::Null);
    assert_eq!(admitted["checkoutExpiresAt"], "2023-11-14T22:14:20.000Z");
}

#[test]
fn status_and_reason_spellings_round_trip() {
    for status in [
        SessionStatus::Queued,
        SessionStatus::Admitted,
        SessionStatus::Completed,
        SessionStatus::Expired,
        SessionStatus::Left,
    ] {
        assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).expect("json"),
            serde_json::json!(status.as_str())
        );
    }
    for reason in [
        SessionEndReason::IdleAtHead,
        SessionEndReason::CheckoutTokenExpired,
        SessionEndReason::OrderCancelled,
    ] {
        assert_eq!(SessionEndReason::parse(reason.as_str()), Some(reason));
        assert_eq!(
            serde_json::to_value(reason).expect("json"),
            serde_json::json!(reason.as_str())
        );
    }
    assert_eq!(
        ClosedReason::parse("EVENT_CANCELLED"),
        Some(ClosedReason::EventCancelled)
    );
}

#[test]
fn rfc3339_formatting_matches_known_instants() {
    assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        format_rfc3339_millis(1_700_000_000_123),
        "2023-11-14T22:13:20.123Z"
    );
    assert_eq!(
        format_rfc3339_millis(951_782_400_000),
        "2000-02-29T00:00:00.000Z"
    );
    assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
}

#[test]
fn instants_beyond_four_year_digits_are_clamped_to_the_nearest_writable_one() {
    // 2^53 - 1 ms, the object's "no end", lies in the year 287396.
    assert_eq!(
        format_rfc3339_millis((1 << 53) - 1),
        "9999-12-31T23:59:59.999Z"
    );
    assert_eq!(format_rfc3339_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
    assert_eq!(
        format_rfc3339_millis(253_402_300_799_999),
        "9999-12-31T23:59:59.999Z"
    );
}

#[test]
fn the_schema_declares_every_table_and_index_the_store_uses() {
    for name in [
        "waitroom_config",
        "waitroom_state",
        "waitroom_session",
        "waitroom_fenwick",
        "waitroom_session_user",
        "waitroom_session_order",
        "waitroom_session_queue",
        "waitroom_session_prequeue",
        "waitroom_session_checkout_expiry",
        "waitroom_session_join_no",
    ] {
        assert!(WAITROOM_SCHEMA.contains(name), "{name}");
    }
}

// --- cost at depth ------------------------------------------------------------------------

struct DepthCost {
    join: StoreStats,
    view: StoreStats,
    position: Option<u64>,
}

/// Join and view at the back of a queue `depth` long with 100 departures spread through it.
/// The queue is fast-forwarded through the store trait (counters and tree nodes) instead of
/// joining `depth` fans one by one, which would only measure the test.
fn join_and_view_at_depth(depth: u64) -> DepthCost {
    const DEPARTED: u64 = 100;
    let mut room = Room::open(config());
    let store = room.room.store_mut();
    let mut state = store.load_state().expect("load").expect("state");
    state.next_seq = depth;
    state.next_join_no = depth;
    state.queued = depth - 1 - DEPARTED;
    state.sale_opened = true;
    store.save_state(&state).expect("save");
    for k in 0..DEPARTED {
        let seq = FenwickIndex::new(1 + k * (depth - 1) / DEPARTED).expect("seq");
        fenwick::add(store, seq, 1).expect("depart");
    }

    store.stats = StoreStats::default();
    room.room
        .apply(
            WaitroomCommand::Join {
                user_id: "fan".into(),
                session_id: "fan-session".into(),
            },
            room.now,
        )
        .expect("join");
    let join = std::mem::take(&mut room.room.store_mut().stats);
    let position = room
        .room
        .view_of_user("fan", room.now)
        .expect("view")
        .and_then(|v| v.position);
    let view = room.room.store().stats;
    DepthCost {
        join,
        view,
        position,
    }
}

#[test]
fn join_and_position_cost_the_same_at_a_million_as_at_a_thousand() {
    let small = join_and_view_at_depth(1_000);
    let large = join_and_view_at_depth(1_000_000);
    assert_eq!(small.position, Some(1_000 - 100));
    assert_eq!(large.position, Some(1_000_000 - 100));

    for cost in [&small, &large] {
        for stats in [cost.join, cost.view] {
            assert!(stats.session_rows_read <= 2, "no queue scan: {stats:?}");
            assert!(stats.session_rows_written <= 1);
            assert!(stats.fenwick_nodes_read <= fenwick::MAX_PATH_LEN as u64);
            assert_eq!(stats.fenwick_nodes_written, 0);
        }
    }
    assert_eq!(small.join.calls, large.join.calls, "same round trips");
    assert_eq!(small.view.calls, large.view.calls);
    assert_eq!(small.join.session_rows_read, large.join.session_rows_read);
}

#[test]
fn a_departure_at_a_million_deep_touches_at_most_forty_nodes() {
    let mut store = MemoryWaitroomStore::new();
    let seq = FenwickIndex::new(999_999).expect("seq");
    fenwick::add(&mut store, seq, 1).expect("depart");
    assert_eq!(store.stats.calls, 1);
    assert!(store.stats.fenwick_nodes_written <= fenwick::MAX_PATH_LEN as u64);
    assert_eq!(fenwick::prefix_sum(&mut store, 1_000_000).expect("sum"), 1);
}
