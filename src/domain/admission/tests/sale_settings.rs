//! The sale's settings: closing, cancelling, misrouted joins, the shard count and its hand-over.

use super::*;

#[test]
fn closing_the_sale_drains_every_shard_and_refuses_joins() {
    let mut config = config(0, 10);
    config.sale_ends_at = SALE_START + 10_000;
    let mut cluster = Cluster::new(4, config, 3);
    for i in 0..600 {
        cluster.join(&format!("u{i}"), SALE_START + i, 0);
    }
    let closed = SALE_START + 10_000;
    for shard in &mut cluster.shards {
        while shard.upkeep(closed) {}
    }
    assert!(cluster.queued().is_empty());
    assert!(cluster.hub.next_round_at(closed).is_none());
    assert!(cluster.tick(closed).is_empty());
    let shard = cluster.shard_mut("u1");
    assert!(matches!(
        shard.fan("u1").map(|f| f.status),
        Some(FanStatus::Closed(_))
    ));
    assert_eq!(
        shard
            .join(
                "u1",
                "s",
                ArrivalStamp {
                    at_ms: closed,
                    tie_break: 0
                },
                closed
            )
            .err(),
        Some(ShardRejection::SaleNotOpen)
    );
    assert_eq!(cluster.hub.status(closed, false).state, SaleState::Closed);
}

#[test]
fn cancelling_the_event_reaches_every_shard_and_drains_it() {
    let mut cluster = Cluster::new(4, config(10, 10), 3);
    for i in 0..40 {
        cluster.join(&format!("u{i}"), SALE_START + i, 0);
    }
    let mut cancelled = cluster.hub.config().clone();
    cancelled.cancelled = true;
    let now = open(0);
    let out = cluster
        .hub
        .reconfigure(cancelled, count(4), now)
        .expect("same count");
    assert_eq!(out.len(), 4);
    cluster.deliver(out, now);
    for shard in &mut cluster.shards {
        while shard.upkeep(now) {}
    }
    assert!(cluster.queued().is_empty());
    assert!(
        cluster.tick(now).is_empty(),
        "nobody is admitted once cancelled"
    );
    assert_eq!(cluster.hub.status(now, false).state, SaleState::Closed);
}

#[test]
fn settings_for_another_event_or_shard_are_refused() {
    let cluster = Cluster::new(4, config(1, 1), 3);
    let mut shard = ShardQueue::new(cluster.hub.shard_settings(ShardIndex(1)));
    let mut other_event = cluster.hub.shard_settings(ShardIndex(1));
    other_event.event_id = "other".into();
    assert_eq!(shard.configure(other_event), Err(ShardRejection::Mismatch));
    let other_shard = cluster.hub.shard_settings(ShardIndex(2));
    assert_eq!(shard.configure(other_shard), Err(ShardRejection::Mismatch));
    assert_eq!(
        shard.configure(cluster.hub.shard_settings(ShardIndex(1))),
        Ok(())
    );
}

#[test]
fn a_join_on_the_wrong_shard_is_refused_and_writes_nothing() {
    let mut cluster = Cluster::new(4, config(1, 1), 3);
    let home = shard_of("u", count(4));
    let wrong = (home.0 + 1) % 4;
    let shard = &mut cluster.shards[usize::from(wrong)];
    let stamp = ArrivalStamp {
        at_ms: SALE_START,
        tie_break: 0,
    };
    assert_eq!(
        shard.join("u", "s", stamp, SALE_START).err(),
        Some(ShardRejection::WrongShard)
    );
    assert_eq!(shard.queued(), 0);
    assert!(shard.fan("u").is_none());
}

#[test]
fn joining_twice_keeps_the_first_place() {
    let mut cluster = Cluster::new(4, config(1, 1), 3);
    let first = cluster.join("u", SALE_START + 5, 1);
    let again = cluster.join("u", SALE_START + 900, 2);
    assert_eq!(first, again);
    assert_eq!(cluster.queued().len(), 1);
}

#[test]
fn the_shard_count_may_rise_before_the_sale_and_never_fall() {
    let mut cluster = Cluster::new(4, config(1, 1), 3);
    let cfg = cluster.hub.config().clone();
    assert_eq!(
        cluster.hub.reconfigure(cfg.clone(), count(2), 0).err(),
        Some(HubRejection::ShardCountLocked)
    );
    assert_eq!(
        cluster
            .hub
            .reconfigure(cfg.clone(), count(8), 0)
            .map(|o| o.len()),
        Ok(8)
    );
    assert_eq!(
        cluster.hub.reconfigure(cfg, count(16), SALE_START).err(),
        Some(HubRejection::ShardCountLocked)
    );
}

#[test]
fn raising_the_count_before_the_sale_hands_moved_fans_over_with_their_places() {
    let mut cluster = Cluster::new(4, config(100, 100), 5);
    let mut before: BTreeMap<String, Place> = BTreeMap::new();
    for i in 0..200 {
        let user = format!("u{i}");
        let place = cluster.join(&user, SALE_START - 30_000 + i, 0);
        before.insert(user, place);
    }
    let cfg = cluster.hub.config().clone();
    cluster
        .hub
        .reconfigure(cfg, count(6), SALE_START - 20_000)
        .expect("raised before the sale");
    let mut shards: Vec<ShardQueue> = count(6)
        .shards()
        .map(|s| match cluster.shards.get(usize::from(s.0)) {
            Some(old) => old.clone(),
            None => ShardQueue::new(cluster.hub.shard_settings(s)),
        })
        .collect();
    let mut moved = Vec::new();
    for s in 0..4u16 {
        let settings = cluster.hub.shard_settings(ShardIndex(s));
        moved.extend(
            shards[usize::from(s)]
                .hand_over(settings)
                .expect("same shard"),
        );
    }
    assert!(!moved.is_empty());
    // One moved fan joins again at the new shard before the hand-over arrives.
    let early = moved[0].place.user_id().to_owned();
    let home = usize::from(shard_of(&early, count(6)).0);
    let stamp = ArrivalStamp {
        at_ms: SALE_START - 19_000,
        tie_break: 9,
    };
    shards[home]
        .join(&early, "s2", stamp, SALE_START - 19_000)
        .expect("joins");
    for record in moved {
        let to = usize::from(shard_of(record.place.user_id(), count(6)).0);
        assert!(to >= 4, "jump hashing moves fans only to the new shards");
        shards[to].adopt(vec![record]).expect("belongs here");
    }
    cluster.shards = shards;
    let after: BTreeMap<String, Place> = cluster
        .queued()
        .into_iter()
        .map(|p| (p.user_id().to_owned(), p))
        .collect();
    assert_eq!(after, before, "everyone kept exactly their place, once");
    let order: Vec<Place> = cluster.tick(open(0));
    assert_eq!(order.len(), 100);
}

#[test]
fn a_raised_count_moves_each_pre_queued_fan_to_one_new_home_before_any_round() {
    let mut cluster = Cluster::new(2, config(100, 100), 5);
    let mut before: BTreeMap<String, Place> = BTreeMap::new();
    for i in 0..120 {
        let user = format!("u{i}");
        before.insert(
            user.clone(),
            cluster.join(&user, SALE_START - 30_000 + i, 0),
        );
    }
    let cfg = cluster.hub.config().clone();
    let now = SALE_START - 20_000;
    cluster
        .hub
        .reconfigure(cfg, count(5), now)
        .expect("raised before the sale");
    cluster
        .shards
        .extend((2..5).map(|s| ShardQueue::new(cluster.hub.shard_settings(ShardIndex(s)))));
    assert_eq!(
        cluster.hub.next_round_at(SALE_START + 5_000),
        None,
        "no round before the hand-over"
    );
    // Reported twice (a lost answer): the report changes nothing, the adoption is idempotent.
    for _ in 0..2 {
        let requests = cluster.hub.handover_requests().expect("due");
        assert_eq!(requests.len(), 2, "the shards of the old count");
        let mut moving = Vec::new();
        for Outgoing { to, message } in requests {
            if let ToShard::HandOver { settings } = message {
                moving.extend(cluster.shards[usize::from(to.0)].moving(settings.shards));
            }
        }
        assert!(!moving.is_empty());
        let adoptions = cluster.hub.adoptions(moving);
        cluster.deliver(adoptions, now);
    }
    cluster.hub.handover_done();
    let (_, configure) = cluster.hub.unsent_settings().expect("the raised count");
    for Outgoing { to, message } in configure {
        if let ToShard::Configure { settings } = message {
            cluster.shards[usize::from(to.0)]
                .hand_over(settings)
                .expect("same shard");
        }
    }
    // Every fan in exactly one shard, the one they hash to, in the very same place.
    for (user, place) in &before {
        let holders: Vec<usize> = (0..5)
            .filter(|&s| {
                cluster.shards[s]
                    .fan(user)
                    .is_some_and(|f| matches!(f.status, FanStatus::Queued { .. }))
            })
            .collect();
        assert_eq!(holders, vec![usize::from(shard_of(user, count(5)).0)]);
        assert_eq!(
            cluster.shards[holders[0]].fan(user).map(|f| &f.place),
            Some(place)
        );
    }
    assert!(cluster.hub.next_round_at(SALE_START + 5_000).is_some());
}

#[test]
fn a_shown_position_never_rises_within_a_stay() {
    use crate::domain::admission::snapshot::shown_position;
    assert_eq!(shown_position(None, Some(40)), Some(40));
    assert_eq!(shown_position(Some(40), Some(43)), Some(40));
    assert_eq!(shown_position(Some(40), Some(12)), Some(12));
    assert_eq!(
        shown_position(Some(40), None),
        None,
        "no position to show yet"
    );
}

#[test]
fn checkout_ends_go_out_per_shard_in_a_few_messages_and_are_acknowledged_one_by_one() {
    use crate::domain::admission::hub::ENDS_PER_MESSAGE;
    let fans = ENDS_PER_MESSAGE * 2 + 10;
    let mut cluster = Cluster::new(2, config(10_000, 10_000), 3);
    for i in 0..fans {
        cluster.join(&format!("u{i}"), SALE_START + i as i64, 0);
    }
    cluster.tick(open(0));
    let fans = cluster.hub.checkouts().len();
    assert!(fans > ENDS_PER_MESSAGE, "{fans} admitted");
    let ttl = i64::from(WaitroomConfig::default().checkout_ttl_seconds) * 1_000;
    cluster.hub.expire_checkouts(open(ttl));
    assert_eq!(cluster.hub.unacknowledged_end_count(), fans);
    let messages = cluster.hub.unacknowledged_ends();
    assert!(
        messages.len() <= 2 * (fans / ENDS_PER_MESSAGE + 1),
        "{}",
        messages.len()
    );
    let carried: usize = messages
        .iter()
        .map(|o| match &o.message {
            ToShard::CheckoutsEnded { ends, .. } => {
                assert!(ends.len() <= ENDS_PER_MESSAGE);
                ends.len()
            }
            _ => 0,
        })
        .sum();
    assert_eq!(carried, fans);
    for Outgoing { to, message } in messages {
        if let ToShard::CheckoutsEnded { ends, .. } = message {
            for end in ends {
                cluster.hub.end_acknowledged(to, &end.place);
            }
        }
    }
    assert_eq!(cluster.hub.unacknowledged_end_count(), 0);
}

proptest! {
    /// Counting a bucket from its nearer end gives the count from its start.
    #[test]
    fn fans_ahead_in_a_shard_are_counted_exactly(
        arrivals in proptest::collection::vec((0i64..3_000, 0u64..4), 1..200),
        leaves in proptest::collection::vec(0usize..200, 0..40),
    ) {
        let mut cluster = Cluster::new(1, config(0, 5), 3);
        for (i, (at, tie)) in arrivals.iter().enumerate() {
            cluster.join(&format!("u{i}"), SALE_START + at, *tie);
        }
        for i in leaves {
            let user = format!("u{}", i % arrivals.len());
            cluster.shard_mut(&user).leave(&user, SALE_START + 5_000);
        }
        let shard = &cluster.shards[0];
        let queued: Vec<Place> = shard.queued_places().cloned().collect();
        for (exact, place) in queued.iter().enumerate() {
            prop_assert_eq!(shard.ahead_in_shard(place), exact as u64);
        }
    }
}
