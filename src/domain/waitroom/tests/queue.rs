//! Joining, admission order, the pre-queue shuffle and positions.

use super::*;

// --- join ---------------------------------------------------------------------------------

#[test]
fn joining_twice_returns_the_same_session_and_place() {
    let mut room = Room::open(config());
    let first = room.join("ann");
    room.join("bob");
    let again = room.apply(WaitroomCommand::Join {
        user_id: "ann".into(),
        session_id: "a-fresh-uuid".into(),
    });
    let again_view = again.session.clone().expect("session");
    assert_eq!(again_view.session_id, first.session_id);
    assert_eq!(again_view.position, Some(1));
    assert_eq!(again_view.queue_length, 2);
    assert!(
        !again.effects.iter().any(|e| matches!(
            e,
            WaitroomEffect::Publish(WaitroomEvent::QueueJoined { .. })
        )),
        "no second QueueJoined"
    );
    assert_eq!(room.state().queued, 2);
}

#[test]
fn joining_while_admitted_returns_the_checkout() {
    let mut room = Room::open(config());
    room.join("ann");
    room.tick();
    let again = room.join("ann");
    assert_eq!(again.status, SessionStatus::Admitted);
    assert_eq!(again.checkout_expires_at, Some(SALE_START + 60_000));
    assert_eq!(room.state().slots_in_use, 1);
}

#[test]
fn a_fan_who_left_joins_again_at_the_back() {
    let mut room = Room::open(config());
    let first = room.join("ann");
    room.join("bob");
    accepted(room.leave("ann"));
    assert_eq!(room.status("ann"), SessionStatus::Left);
    let second = room.join("ann");
    assert_ne!(second.session_id, first.session_id);
    assert_eq!(second.position, Some(2), "behind bob");
    assert_eq!(room.session_of("ann").seq, Some(3), "a new seq");
    assert_eq!(room.position("bob"), Some(1));
}

#[test]
fn a_reused_session_id_is_refused() {
    let mut room = Room::open(config());
    room.join("ann");
    let reused = room.apply(WaitroomCommand::Join {
        user_id: "bob".into(),
        session_id: "s1".into(),
    });
    assert_eq!(
        reused.rejection,
        Some(WaitroomRejection::DuplicateSessionId)
    );
    assert_eq!(room.view("bob"), None);
}

#[test]
fn leaving_without_a_session_is_a_no_op() {
    let mut room = Room::open(config());
    let outcome = accepted(room.leave("nobody"));
    assert_eq!(outcome.session, None);
}

// --- admission order ----------------------------------------------------------------------

#[test]
fn admission_follows_join_order_after_the_sale_opens() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 3,
        ..config()
    });
    let fans = users("fan", 6);
    room.join_all(&as_strs(&fans));
    assert_eq!(admitted_users(&room.tick()), fans[..3]);
    for (i, fan) in fans[3..].iter().enumerate() {
        assert_eq!(room.position(fan), Some(i as u64 + 1));
    }
    accepted(room.bind(&fans[1], "order-1"));
    room.resolve("order-1", CheckoutOutcome::Completed);
    room.now += TICK_INTERVAL_MS;
    assert_eq!(admitted_users(&room.tick()), fans[3..4]);
    assert_eq!(room.position(&fans[5]), Some(2));
}

#[test]
fn a_tick_admits_at_most_the_admission_batch() {
    let mut room = Room::open(WaitroomConfig {
        max_concurrent_checkouts: 10,
        admission_batch: 3,
        ..config()
    });
    room.join_all(&as_strs(&users("fan", 8)));
    assert_eq!(admitted_users(&room.tick()).len(), 3);
    room.now += TICK_INTERVAL_MS;
    assert_eq!(admitted_users(&room.tick()).len(), 3);
    room.now += TICK_INTERVAL_MS;
    assert_eq!(admitted_users(&room.tick()).len(), 2);
}

#[test]
fn prequeue_is_shuffled_at_sale_start_and_later_fans_are_appended() {
    let mut room = Room::configured_at(
        SALE_START - 60_000,
        WaitroomConfig {
            max_concurrent_checkouts: 0,
            ..config()
        },
    );
    let early = users("early", 6);
    for (i, fan) in early.iter().enumerate() {
        let view = room.join(fan);
        assert_eq!(view.status, SessionStatus::Queued);
        assert_eq!(view.position, None, "no place before the shuffle");
        assert_eq!(view.queue_length, i as u64 + 1);
    }
    assert_eq!(
        room.tick().next_wake_up(),
        Some(SALE_START),
        "wake at sale start"
    );

    room.now = SALE_START;
    let opened = room.tick();
    assert!(opened.effects.iter().any(|e| matches!(
        e,
        WaitroomEffect::Publish(WaitroomEvent::SaleOpened { shuffled: 6, .. })
    )));
    let mut expected: Vec<u64> = (1..=6).collect();
    shuffle_prequeue(&mut expected, SEED);
    let mut order_by_position = vec![String::new(); 6];
    for fan in &early {
        let join_no = room.session_of(fan).join_no;
        let place = expected.iter().position(|j| *j == join_no).expect("placed");
        assert_eq!(room.position(fan), Some(place as u64 + 1));
        assert_eq!(
            room.session_of(fan).seq,
            Some(place as u64 + 1),
            "seqs 1..=k"
        );
        order_by_position[place] = fan.clone();
    }
    assert_ne!(order_by_position, early, "this seed reorders the pre-queue");

    let late = room.join("late");
    assert_eq!(late.position, Some(7));
    assert_eq!(room.session_of("late").seq, Some(7));

    room.reconfigure(|c| c.max_concurrent_checkouts = 10);
    let mut admitted = admitted_users(&room.tick());
    order_by_position.push("late".into());
    assert_eq!(admitted.len(), 7);
    admitted.truncate(7);
    assert_eq!(admitted, order_by_position);
}

#[test]
fn a_fan_joining_after_sale_start_but_before_the_tick_queues_behind_the_prequeue() {
    let mut room = Room::configured_at(SALE_START - 1, config());
    room.join_all(&["a", "b", "c"]);
    room.now = SALE_START + 10;
    let view = room.join("d");
    assert_eq!(view.position, Some(4));
    assert_eq!(room.state().prequeued, 0);
}

/// Chi-square statistic of observed counts against equal expected counts.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|c| (*c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Counts how often each of the 24 orders of 4 items comes out of `shuffle`.
fn permutation_counts(runs: u64, mut shuffle: impl FnMut(&mut [u8; 4], u64)) -> Vec<u64> {
    let mut seeds = SplitMix64::new(0x0DD5_EED5);
    let mut counts: BTreeMap<[u8; 4], u64> = BTreeMap::new();
    for _ in 0..runs {
        let mut items = [0, 1, 2, 3];
        shuffle(&mut items, seeds.next_u64());
        *counts.entry(items).or_insert(0) += 1;
    }
    let mut all: Vec<u64> = counts.values().copied().collect();
    all.resize(24, 0);
    all
}

/// 23 degrees of freedom, p = 0.001.
const CHI_SQUARE_23_DOF_P001: f64 = 49.728;

#[test]
fn the_prequeue_shuffle_is_uniform_over_all_orders() {
    let counts = permutation_counts(24_000, |items, seed| shuffle_prequeue(items, seed));
    assert!(counts.iter().all(|c| *c > 0), "every order occurs");
    let statistic = chi_square(&counts);
    assert!(
        statistic < CHI_SQUARE_23_DOF_P001,
        "chi-square {statistic} over {counts:?}"
    );
}

#[test]
fn the_uniformity_check_rejects_the_classic_biased_shuffle() {
    // Swapping each item with any position (not only the unshuffled ones) is the textbook
    // biased shuffle: the test above must be able to see bias of that size.
    let counts = permutation_counts(24_000, |items, seed| {
        let mut rng = SplitMix64::new(seed);
        for i in 0..items.len() {
            let j = rng.below(items.len() as u64) as usize;
            items.swap(i, j);
        }
    });
    assert!(chi_square(&counts) > CHI_SQUARE_23_DOF_P001);
}

#[test]
fn the_opened_queue_puts_each_early_fan_first_equally_often() {
    // Through the machine: 4 early fans, many seeds; who gets seq 1.
    let mut seeds = SplitMix64::new(0xFA1E);
    let mut first = [0u64; 4];
    for _ in 0..2_000 {
        let mut room = Waitroom::new(MemoryWaitroomStore::new());
        let mut at = SALE_START - 1_000;
        room.apply(
            WaitroomCommand::Configure {
                event_id: EVENT.into(),
                config: config(),
                shuffle_seed: seeds.next_u64(),
            },
            at,
        )
        .expect("configure");
        for i in 0..4 {
            at += 1;
            room.apply(
                WaitroomCommand::Join {
                    user_id: format!("u{i}"),
                    session_id: format!("s{i}"),
                },
                at,
            )
            .expect("join");
        }
        room.apply(WaitroomCommand::AdmissionTick, SALE_START)
            .expect("tick");
        let head = room
            .store()
            .sessions()
            .find(|s| s.seq == Some(1))
            .expect("seq 1")
            .join_no;
        first[(head - 1) as usize] += 1;
    }
    // 3 degrees of freedom, p = 0.001.
    assert!(chi_square(&first) < 16.266, "first places {first:?}");
}

#[test]
fn below_is_unbiased_at_the_edges() {
    let mut rng = SplitMix64::new(1);
    assert_eq!(rng.below(0), 0);
    assert_eq!(rng.below(1), 0);
    assert!((0..1_000).all(|_| rng.below(3) < 3));
    assert!((0..1_000).all(|_| rng.below(u64::MAX) < u64::MAX));
}

// --- positions ----------------------------------------------------------------------------

#[test]
fn positions_stay_exact_after_leaves_admissions_and_expiries() {
    let mut room = Room::open(config());
    let fans = users("fan", 8);
    room.join_all(&as_strs(&fans));
    accepted(room.leave(&fans[2]));
    accepted(room.leave(&fans[5]));
    assert_eq!(room.position(&fans[3]), Some(3));
    assert_eq!(room.position(&fans[7]), Some(6));

    // fan0, fan1 admitted (2 slots).
    assert_eq!(admitted_users(&room.tick()), fans[..2]);
    assert_eq!(room.position(&fans[3]), Some(1));
    assert_eq!(room.position(&fans[7]), Some(4));

    // fan3 goes idle; the others stay seen. fan0 completes, fan1's token expires.
    accepted(room.bind(&fans[0], "o0"));
    room.now += 601_000;
    for fan in [&fans[4], &fans[6], &fans[7]] {
        room.touch(fan);
    }
    room.resolve("o0", CheckoutOutcome::Completed);
    // fan1's unused token was swept by the first command after its expiry.
    let fan1 = room.view(&fans[1]).expect("view");
    assert_eq!(
        fan1.end_reason,
        Some(SessionEndReason::CheckoutTokenExpired)
    );
    let outcome = room.tick();
    assert_eq!(
        expired_users(&outcome),
        vec![(fans[3].clone(), SessionEndReason::IdleAtHead)]
    );
    assert_eq!(
        admitted_users(&outcome),
        vec![fans[4].clone(), fans[6].clone()]
    );
    assert_eq!(room.position(&fans[7]), Some(1));
    assert_eq!(room.view(&fans[7]).expect("view").queue_length, 1);
}
