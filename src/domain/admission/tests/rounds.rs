//! Rounds: arrival order, the checkout cap, expiries, leaves and idle fans.

use super::*;

#[test]
fn one_shard_admits_in_arrival_order_up_to_the_batch() {
    let mut cluster = Cluster::new(1, config(100, 3), 7);
    for (i, user) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        cluster.join(user, SALE_START + 10 * i as i64, 0);
    }
    let first = cluster.tick(open(0));
    let users: Vec<&str> = first.iter().map(Place::user_id).collect();
    assert_eq!(users, ["a", "b", "c"]);
    let second = cluster.tick(open(1_000));
    let users: Vec<&str> = second.iter().map(Place::user_id).collect();
    assert_eq!(users, ["d", "e"]);
    assert_eq!(cluster.hub.slots_in_use(), 5);
}

#[test]
fn nobody_is_admitted_before_every_frontier_has_passed_the_arrival() {
    let mut cluster = Cluster::new(4, config(100, 100), 7);
    cluster.join("late", SALE_START + 5_000, 0);
    // The shards' frontiers are a grace behind their clocks: the fan waits a grace.
    assert!(cluster.tick(SALE_START + 5_500).is_empty());
    assert_eq!(cluster.tick(SALE_START + 6_001).len(), 1);
}

#[test]
fn a_join_stamped_behind_an_admitted_fan_is_recorded_after_it() {
    let mut cluster = Cluster::new(4, config(100, 100), 7);
    cluster.join("first", SALE_START + 1_000, 0);
    let now = SALE_START + 3_000;
    assert_eq!(cluster.tick(now).len(), 1);
    // A slow delivery stamped before the admitted fan lands now: the shard lifts it to its
    // frontier, so it cannot sort ahead of someone already admitted.
    let shard = cluster.shard_mut("slow");
    let record = shard
        .join(
            "slow",
            "s",
            ArrivalStamp {
                at_ms: SALE_START,
                tie_break: 0,
            },
            now,
        )
        .expect("joins");
    let Place::Queue { at_ms, .. } = record.place else {
        panic!("a queue place")
    };
    assert!(at_ms >= now - STAMP_GRACE_MS);
}

#[test]
fn checkout_slots_never_exceed_the_cap_and_freed_slots_admit_the_next() {
    let mut cluster = Cluster::new(8, config(5, 100), 1);
    for i in 0..40 {
        cluster.join(&format!("u{i}"), SALE_START + i, i as u64);
    }
    assert_eq!(cluster.tick(open(0)).len(), 5);
    assert!(cluster.tick(open(1_000)).is_empty());
    assert_eq!(cluster.hub.slots_in_use(), 5);
    cluster.resolve_all_checkouts(open(1_500));
    assert_eq!(cluster.hub.slots_in_use(), 0);
    assert_eq!(cluster.tick(open(2_000)).len(), 5);
}

#[test]
fn an_unused_checkout_expires_and_its_fan_may_join_again_at_the_back() {
    let mut cluster = Cluster::new(2, config(1, 1), 1);
    let first = cluster.join("a", SALE_START, 0);
    cluster.join("b", SALE_START + 1, 0);
    assert_eq!(cluster.tick(open(0)), vec![first.clone()]);
    let ttl_ms = i64::from(cluster.hub.config().checkout_ttl_seconds) * 1_000;
    let out = cluster.hub.expire_checkouts(open(0) + ttl_ms);
    assert_eq!(out.len(), 1);
    cluster.deliver(out, open(0) + ttl_ms);
    assert_eq!(cluster.hub.slots_in_use(), 0);
    let again = cluster.join("a", open(0) + ttl_ms, 0);
    assert!(again > first, "a new stay goes to the back");
}

#[test]
fn a_fan_who_leaves_between_report_and_pick_is_withdrawn_and_the_slot_returns() {
    let mut cluster = Cluster::new(4, config(10, 10), 3);
    cluster.join("stays", SALE_START, 1);
    cluster.join("goes", SALE_START, 2);
    let admitted = cluster.tick_with(open(0), |c| {
        assert_eq!(c.shard_mut("goes").leave("goes", open(0)), Leave::Left);
    });
    let users: Vec<&str> = admitted.iter().map(Place::user_id).collect();
    assert_eq!(users, ["stays"]);
    assert_eq!(cluster.hub.slots_in_use(), 1);
    assert_eq!(cluster.hub.pending_admits(), 0);
}

#[test]
fn an_admitted_fan_leaving_is_forwarded_to_the_hub_unless_an_order_holds_the_slot() {
    let mut cluster = Cluster::new(2, config(10, 10), 3);
    let place = cluster.join("a", SALE_START, 1);
    cluster.tick(open(0));
    assert_eq!(
        cluster
            .hub
            .checkouts()
            .get("a")
            .map(|c| c.session_id.as_str()),
        Some("s-a"),
        "the hub binds orders by the session the token names"
    );
    assert_eq!(
        cluster.shard_mut("a").leave("a", open(10)),
        Leave::HeldByHub(place)
    );
    assert!(cluster.hub.bind_order("a"));
    assert_eq!(
        cluster.hub.leave_checkout("a"),
        Err(HubRejection::CheckoutInProgress)
    );
    let out: Vec<Outgoing> = cluster.hub.checkout_resolved("a").into_iter().collect();
    cluster.deliver(out, open(20));
    assert_eq!(cluster.hub.slots_in_use(), 0);
    assert!(matches!(
        cluster.shard_mut("a").fan("a").map(|f| f.status),
        Some(FanStatus::CheckoutEnded { .. })
    ));
}

#[test]
fn a_fan_who_gives_the_checkout_back_and_joins_again_is_admitted_again_at_the_back() {
    let mut cluster = Cluster::new(1, config(11, 2), 3);
    let first = cluster.join("u99", SALE_START, 0);
    assert_eq!(cluster.tick(open(0)), vec![first.clone()]);
    let Leave::HeldByHub(held) = cluster.shard_mut("u99").leave("u99", open(10)) else {
        panic!("in checkout")
    };
    assert_eq!(held, first);
    let out: Vec<Outgoing> = cluster
        .hub
        .leave_checkout("u99")
        .expect("no order")
        .into_iter()
        .collect();
    cluster.deliver(out, open(10));
    assert!(cluster.hub.checkouts().is_empty());
    let again = cluster.join("u99", open(20), 35);
    let other = cluster.join("u91", open(30), 1);
    assert!(again > first);
    assert_eq!(cluster.tick(open(3_000)), vec![again, other]);
    assert_eq!(cluster.hub.checkouts().len(), 2);
}

#[test]
fn an_idle_fan_at_the_head_is_skipped_without_a_slot_and_a_returning_one_is_kept() {
    let mut cluster = Cluster::new(1, config(1, 1), 3);
    cluster.join("idle", SALE_START, 1);
    cluster.join("back", SALE_START + 1, 1);
    cluster.join("next", SALE_START + 2, 1);
    let idle_ms = i64::from(cluster.hub.config().idle_timeout_seconds) * 1_000;
    let now = SALE_START + idle_ms + 10;
    // "back" is idle at the report but polls before the picks arrive.
    let admitted = cluster.tick_with(now, |c| {
        c.shard_mut("back").touch("back", now);
    });
    assert!(
        admitted.is_empty(),
        "both reported fans were idle: {admitted:?}"
    );
    let shard = cluster.shard_mut("idle");
    assert!(matches!(
        shard.fan("idle").map(|f| f.status),
        Some(FanStatus::IdleAtHead)
    ));
    assert!(matches!(
        shard.fan("back").map(|f| f.status),
        Some(FanStatus::Queued { .. })
    ));
    assert_eq!(cluster.hub.slots_in_use(), 0);
    let admitted = cluster.tick(now + 1_000);
    let users: Vec<&str> = admitted.iter().map(Place::user_id).collect();
    assert_eq!(users, ["back"]);
}
