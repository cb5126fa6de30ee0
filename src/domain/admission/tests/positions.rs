//! Positions, the status, the pre-queue shuffle and snapshots.

use super::*;

#[test]
fn with_one_shard_every_position_is_exact() {
    let mut cluster = Cluster::new(1, config(0, 1), 3);
    for i in 0..50 {
        cluster.join(&format!("u{i:02}"), SALE_START + i * 300, 0);
    }
    cluster.shard_mut("u10").leave("u10", SALE_START + 20_000);
    let now = SALE_START + 20_000;
    let shard = &cluster.shards[0];
    let order: Vec<String> = shard
        .queued_places()
        .map(|p| p.user_id().to_owned())
        .collect();
    for (i, user) in order.iter().enumerate() {
        let view = shard.view(user, now).expect("a fan");
        assert_eq!(view.position, Some(i as u64 + 1), "{user}");
        assert_eq!(view.queue_length, 49);
    }
}

#[test]
fn positions_across_shards_are_within_the_same_second_of_other_shards() {
    let mut cluster = Cluster::new(8, config(0, 1), 3);
    for i in 0..400i64 {
        cluster.join(&format!("u{i}"), SALE_START + i * 37, i as u64);
    }
    let now = SALE_START + 20_000;
    cluster.tick(now); // no slots: only refreshes the summaries the shards hold
    cluster.tick(now + 1);
    let everyone: Vec<Place> = cluster.queued().into_iter().collect();
    let mut worst = 0;
    for (i, place) in everyone.iter().enumerate() {
        let exact = i as u64 + 1;
        let home = shard_of(place.user_id(), count(8));
        let shown = cluster.shards[usize::from(home.0)]
            .view(place.user_id(), now + 2)
            .and_then(|v| v.position)
            .expect("queued");
        let same_bucket_elsewhere = everyone
            .iter()
            .filter(|p| p.bucket() == place.bucket() && shard_of(p.user_id(), count(8)) != home)
            .count() as u64;
        assert!(
            shown.abs_diff(exact) <= same_bucket_elsewhere,
            "{place:?}: {shown} vs {exact}"
        );
        worst = worst.max(shown.abs_diff(exact));
    }
    // About 24 fans a second arrive on other shards; interpolating within the second keeps
    // the error to a few places.
    assert!(worst <= 8, "worst error {worst}");
}

#[test]
fn the_status_counts_the_queue_and_the_last_minute_of_admissions() {
    let mut cluster = Cluster::new(4, config(3, 10), 3);
    for i in 0..10 {
        cluster.join(&format!("u{i}"), SALE_START - 1_000 + i, 0);
    }
    let before = cluster.hub.status(SALE_START - 1, false);
    assert_eq!(before.state, SaleState::Prequeue);
    cluster.tick(open(0));
    let status = cluster.hub.status(open(1), false);
    assert_eq!(status.state, SaleState::Open);
    assert_eq!(status.queue_length, 7);
    assert_eq!(status.admitted_last_minute, 3);
    assert_eq!(status.shards, 4);
    assert_eq!(
        cluster.hub.status(open(61_000), false).admitted_last_minute,
        0
    );
    assert_eq!(cluster.hub.status(open(1), true).state, SaleState::SoldOut);
}

/// Permutations of five fans by index: 5! = 120 cells.
fn permutation_index(order: &[usize]) -> usize {
    let mut rest: Vec<usize> = (0..order.len()).collect();
    let mut index = 0;
    for &item in order {
        let at = rest.iter().position(|&r| r == item).unwrap_or(0);
        index = index * rest.len() + at;
        rest.remove(at);
    }
    index
}

#[test]
fn the_pre_queue_shuffle_is_one_uniform_permutation_across_shards() {
    let users = ["ana", "binh", "chau", "dung", "em"];
    let shards_used: BTreeSet<ShardIndex> = users.iter().map(|u| shard_of(u, count(4))).collect();
    assert!(
        shards_used.len() >= 3,
        "the fans must sit on several shards"
    );
    let trials = 24_000u64;
    let mut cells = vec![0u64; 120];
    for seed in 0..trials {
        let mut cluster = Cluster::new(4, config(10, 10), seed);
        for (i, user) in users.iter().enumerate() {
            cluster.join(user, SALE_START - 60_000 + i as i64, 0);
        }
        let admitted = cluster.tick(open(0));
        let order: Vec<usize> = admitted
            .iter()
            .filter_map(|p| users.iter().position(|u| *u == p.user_id()))
            .collect();
        assert_eq!(order.len(), 5);
        cells[permutation_index(&order)] += 1;
    }
    // Chi-square with 119 degrees of freedom: 99.9% of uniform samples stay under 173.
    let expected = trials as f64 / 120.0;
    let chi2: f64 = cells
        .iter()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 173.0, "chi-square {chi2}: {cells:?}");
}

#[test]
fn the_first_place_after_the_shuffle_goes_to_each_shard_by_its_share_of_fans() {
    let shards = count(8);
    let users: Vec<String> = (0..64).map(|i| format!("fan-{i}")).collect();
    let mut share = [0u64; 8];
    for user in &users {
        share[usize::from(shard_of(user, shards).0)] += 1;
    }
    let trials = 4_000u64;
    let mut first = [0u64; 8];
    for seed in 0..trials {
        let mut cluster = Cluster::new(8, config(1, 1), seed);
        for user in &users {
            cluster.join(user, SALE_START - 5_000, 0);
        }
        let admitted = cluster.tick(open(0));
        let winner = admitted.first().expect("one admitted");
        first[usize::from(shard_of(winner.user_id(), shards).0)] += 1;
    }
    // Each shard's count is binomial(trials, share/64); allow 5 standard deviations.
    for (won, held) in first.iter().zip(share) {
        let p = held as f64 / 64.0;
        let mean = trials as f64 * p;
        let sd = (trials as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (*won as f64 - mean).abs() <= 5.0 * sd + 1.0,
            "{first:?} vs {share:?}"
        );
    }
    assert!(first.iter().filter(|&&n| n > 0).count() >= 7, "{first:?}");
}

/// Delivers one round's head requests (summaries out, reports in) without deciding.
fn exchange_heads(cluster: &mut Cluster, now: i64) {
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads {
            tick_id,
            want,
            others,
            admission_rate,
            ..
        } = message
        {
            let shard = &mut cluster.shards[usize::from(to.0)];
            shard.accept_summary(others, admission_rate);
            let report = shard.report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    cluster.hub.decide(round, now);
}

proptest! {
    /// A poll answered from the shard's snapshot is off from the exact position by at most the
    /// fans who arrived in the same second as the fan, across all shards (README, "Queue shards").
    #[test]
    fn a_position_from_the_snapshot_is_within_one_arrival_second_of_exact(
        arrivals in proptest::collection::vec(0i64..5_000, 1..150),
        shards in 2u16..6,
    ) {
        // No slots: nobody is admitted, the summaries settle after two rounds.
        let mut cluster = Cluster::new(shards, config(0, 5), 3);
        for (i, at) in arrivals.iter().enumerate() {
            cluster.join(&format!("u{i}"), SALE_START + at, i as u64);
        }
        let now = SALE_START + 8_000;
        exchange_heads(&mut cluster, now);
        exchange_heads(&mut cluster, now + 1_000);
        let everyone: Vec<Place> = cluster.queued().into_iter().collect();
        for (exact, place) in everyone.iter().enumerate() {
            let user = place.user_id().to_owned();
            let shard = cluster.shard_mut(&user);
            let record = shard.fan(&user).cloned().expect("queued");
            let snapshot = shard.snapshot(now + 1_000);
            let view = snapshot.view_of(&record, now + 1_000).expect("still queued");
            let estimate = view.position.expect("summaries complete") as i64;
            let same_second = everyone
                .iter()
                .filter(|p| p.bucket() == place.bucket() && *p != place)
                .count() as i64;
            prop_assert!(
                (estimate - (exact as i64 + 1)).abs() <= same_second,
                "fan {user}: estimate {estimate}, exact {}, same second {same_second}", exact + 1
            );
            prop_assert_eq!(view.queue_length, everyone.len() as u64);
        }
    }
}

#[test]
fn a_snapshot_leaves_to_the_shard_every_fan_the_hub_has_picked_up_to_and_every_ended_stay() {
    let mut cluster = Cluster::new(2, config(1, 5), 3);
    let users = ["a", "b", "c", "d"];
    for (i, user) in users.iter().enumerate() {
        cluster.join(user, SALE_START + i as i64 * 10, 0);
    }
    let now = open(0);
    cluster.tick(now);
    for user in users {
        let shard = cluster.shard_mut(user);
        let record = shard.fan(user).cloned().expect("joined");
        let snapshot = shard.snapshot(now);
        let view = snapshot.view_of(&record, now);
        match record.status {
            // Admitted: only the shard can say (the token, the deadline).
            FanStatus::Admitted { .. } => assert_eq!(view, None),
            _ => {
                let picked = snapshot.picked_through.clone();
                if picked.as_ref().is_some_and(|p| &record.place <= p) {
                    assert_eq!(view, None, "{user} may have been picked");
                } else {
                    assert!(view.is_some(), "{user} is still queued for sure");
                }
            }
        }
    }
    // A closed sale is told without the shard.
    let mut closed = config(1, 5);
    closed.cancelled = true;
    for out in cluster.hub.reconfigure(closed, count(2), now).expect("ok") {
        if let ToShard::Configure { settings } = out.message {
            let shard = &mut cluster.shards[usize::from(out.to.0)];
            let before: Vec<_> = users
                .iter()
                .filter_map(|u| shard.fan(u).cloned())
                .filter(|r| matches!(r.status, FanStatus::Queued { .. }))
                .collect();
            let mut snapshot = shard.snapshot(now);
            snapshot.picked_through = None;
            snapshot.closed = None;
            shard.configure(settings).expect("same shard");
            let after = shard.snapshot(now);
            for record in before {
                assert!(snapshot.view_of(&record, now).is_some());
                let view = after
                    .view_of(&record, now)
                    .or_else(|| {
                        let mut unpicked = after.clone();
                        unpicked.picked_through = None;
                        unpicked.view_of(&record, now)
                    })
                    .expect("told");
                assert!(matches!(view.status, FanStatus::Closed(_)));
            }
        }
    }
}

#[test]
fn an_empty_sale_is_asked_every_thirty_seconds_until_a_shard_wakes_the_hub() {
    use crate::domain::admission::hub::{IDLE_TICK_INTERVAL_MS, TICK_INTERVAL_MS};
    let mut cluster = Cluster::new(3, config(5, 5), 3);
    let now = open(0);
    cluster.tick(now);
    assert!(cluster.hub.is_idle(), "every shard reported an empty queue");
    assert_eq!(
        cluster.hub.next_round_at(now),
        Some(now + IDLE_TICK_INTERVAL_MS)
    );
    cluster.join("late", now + 10, 7);
    assert!(cluster.hub.wake());
    assert!(!cluster.hub.wake(), "a second wake changes nothing");
    assert_eq!(
        cluster.hub.next_round_at(now + 20),
        Some(now + TICK_INTERVAL_MS)
    );
    let admitted = cluster.tick(now + 2_000);
    assert_eq!(admitted.len(), 1);
    assert!(!cluster.hub.is_idle(), "a pick was in flight in that round");
    cluster.tick(now + 3_000);
    assert!(cluster.hub.is_idle());
}
