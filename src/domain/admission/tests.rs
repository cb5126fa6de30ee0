//! Host tests of admission across shards: a synchronous cluster (hub and shards calling each
//! other directly) drives the protocol; the message-level faults are in
//! `tests/shard_simulation.rs`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::hub::{AdmissionHub, HubRejection, Outgoing, SaleState, STRAGGLER_TIMEOUT_MS};
use super::place::{shard_of, ArrivalStamp, Place, ShardCount, ShardIndex, STAMP_GRACE_MS};
use super::protocol::{Pick, ToShard};
use super::shard::{FanStatus, Leave, ShardQueue, ShardRejection};
use crate::domain::waitroom::WaitroomConfig;

const SALE_START: i64 = 1_000_000;

fn config(cap: u32, batch: u32) -> WaitroomConfig {
    WaitroomConfig {
        max_concurrent_checkouts: cap,
        admission_batch: batch,
        sale_starts_at: SALE_START,
        sale_ends_at: SALE_START + 86_400_000,
        ..WaitroomConfig::default()
    }
}

fn count(n: u16) -> ShardCount {
    ShardCount::new(n).expect("1..=64")
}

/// A hub and its shards wired together with instant, reliable delivery.
struct Cluster {
    hub: AdmissionHub,
    shards: Vec<ShardQueue>,
}

impl Cluster {
    fn new(shards: u16, config: WaitroomConfig, seed: u64) -> Self {
        let hub = AdmissionHub::new("ev", seed, config, count(shards)).expect("valid config");
        let shards = count(shards)
            .shards()
            .map(|s| ShardQueue::new(hub.shard_settings(s)))
            .collect();
        Self { hub, shards }
    }

    fn shard_mut(&mut self, user: &str) -> &mut ShardQueue {
        let index = shard_of(user, self.hub.shards());
        &mut self.shards[usize::from(index.0)]
    }

    fn join(&mut self, user: &str, at_ms: i64, tie_break: u64) -> Place {
        let shard = self.shard_mut(user);
        let stamp = ArrivalStamp { at_ms, tie_break };
        shard
            .join(user, &format!("s-{user}"), stamp, at_ms)
            .expect("join accepted")
            .place
            .clone()
    }

    /// Delivers messages to shards; returns nothing (answers are settled at once).
    fn deliver(&mut self, out: Vec<Outgoing>, now: i64) {
        for Outgoing { to, message } in out {
            let shard = &mut self.shards[usize::from(to.0)];
            match message {
                ToShard::Admit { tick_id, picks, .. } => {
                    let answer = shard.apply_picks(tick_id, &picks, now, &|_| false);
                    self.hub
                        .accept_answer(&answer)
                        .expect("answer accounts for every pick");
                }
                ToShard::CheckoutsEnded { ends, .. } => {
                    for end in ends {
                        shard.checkout_ended(&end.place, end.reason);
                    }
                }
                ToShard::CheckoutEnded { place, reason, .. } => {
                    shard.checkout_ended(&place, reason)
                }
                ToShard::Configure { settings } => shard.configure(settings).expect("same shard"),
                ToShard::Adopt { fans, .. } => shard.adopt(fans).expect("their shard"),
                ToShard::Heads { .. } | ToShard::HandOver { .. } => {}
            }
        }
    }

    /// One round; `between` runs after the reports and before the picks reach the shards.
    /// Returns the places admitted, in pick order.
    fn tick_with(&mut self, now: i64, between: impl FnOnce(&mut Self)) -> Vec<Place> {
        let (mut round, out) = self.hub.start_round(0, now);
        let mut admits_first = Vec::new();
        for Outgoing { to, message } in out {
            match message {
                ToShard::Heads {
                    tick_id,
                    want,
                    others,
                    admission_rate,
                    ..
                } => {
                    let shard = &mut self.shards[usize::from(to.0)];
                    shard.accept_summary(others, admission_rate);
                    let report = shard.report_head(tick_id, want, now, &|_| false);
                    self.hub
                        .accept_report(&mut round, report)
                        .expect("our shard");
                }
                other => admits_first.push(Outgoing { to, message: other }),
            }
        }
        self.deliver(admits_first, now);
        assert!(self.hub.round_ready(&round, now));
        let picks = self.hub.decide(round, now);
        let admitted: Vec<Place> = picks
            .iter()
            .flat_map(|o| match &o.message {
                ToShard::Admit { picks, .. } => picks.clone(),
                _ => Vec::new(),
            })
            .filter(Pick::is_admit)
            .map(|p| p.place().clone())
            .collect();
        between(self);
        self.deliver(picks, now);
        let checkouts = self.hub.checkouts();
        let mut confirmed: Vec<Place> = admitted
            .into_iter()
            .filter(|p| checkouts.get(p.user_id()).is_some_and(|c| &c.place == p))
            .collect();
        confirmed.sort();
        confirmed
    }

    fn tick(&mut self, now: i64) -> Vec<Place> {
        self.tick_with(now, |_| {})
    }

    fn queued(&self) -> BTreeSet<Place> {
        self.shards
            .iter()
            .flat_map(|s| s.queued_places().cloned())
            .collect()
    }

    fn resolve_all_checkouts(&mut self, now: i64) {
        let users: Vec<String> = self.hub.checkouts().keys().cloned().collect();
        for user in users {
            let out: Vec<Outgoing> = self.hub.checkout_resolved(&user).into_iter().collect();
            self.deliver(out, now);
        }
    }
}

/// A moment when every fan who joined in the sale's first second is sealed by the frontiers.
fn open(now_after_start: i64) -> i64 {
    SALE_START + STAMP_GRACE_MS + 1_000 + now_after_start
}

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

#[test]
fn a_redelivered_pick_is_answered_as_the_first_time_and_settled_once() {
    let mut cluster = Cluster::new(1, config(10, 10), 3);
    let place = cluster.join("a", SALE_START, 1);
    let picks = vec![Pick::Admit {
        place: place.clone(),
        checkout_expires_at: 9,
    }];
    let shard = &mut cluster.shards[0];
    let first = shard.apply_picks(4, &picks, open(0), &|_| false);
    let again = shard.apply_picks(4, &picks, open(5), &|_| false);
    assert_eq!(first, again);
    let handed: Vec<&Place> = first.confirmed.iter().map(|h| &h.place).collect();
    assert_eq!(handed, vec![&place]);
    assert_eq!(first.confirmed[0].session_id, "s-a");
    // The same place under another tick id was not handed over by it: withdrawn.
    assert_eq!(
        shard.apply_picks(5, &picks, open(6), &|_| false).withdrawn,
        vec![place]
    );
}

#[test]
fn a_hub_restart_after_the_picks_were_recorded_completes_the_tick() {
    let mut cluster = Cluster::new(4, config(10, 10), 3);
    for i in 0..6 {
        cluster.join(&format!("u{i}"), SALE_START + i, 0);
    }
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads { tick_id, want, .. } = message {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    let lost = cluster.hub.decide(round, now);
    assert!(!lost.is_empty());
    // The admit requests are lost with the crash; the stored intent survives.
    let stored = serde_json::to_string(&cluster.hub).expect("serializes");
    cluster.hub = serde_json::from_str(&stored).expect("deserializes");
    assert_eq!(cluster.hub.pending_admits(), 6);
    assert_eq!(cluster.hub.slots_in_use(), 6);
    // The next round sends them again and excludes them from its own picks.
    let again = cluster.tick(now + 1_000);
    assert!(again.is_empty(), "nobody is picked twice: {again:?}");
    assert_eq!(cluster.hub.checkouts().len(), 6);
    assert_eq!(cluster.hub.slots_in_use(), 6);
}

#[test]
fn a_hub_restart_before_the_picks_were_recorded_undoes_the_round() {
    let mut cluster = Cluster::new(4, config(10, 10), 3);
    for i in 0..6 {
        cluster.join(&format!("u{i}"), SALE_START + i, 0);
    }
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads { tick_id, want, .. } = message {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    drop(round);
    assert_eq!(cluster.hub.slots_in_use(), 0);
    assert_eq!(cluster.queued().len(), 6);
    assert_eq!(cluster.tick(now + 1_000).len(), 6);
}

#[test]
fn an_answer_that_skips_a_pick_or_comes_from_a_foreign_shard_is_refused() {
    let mut cluster = Cluster::new(2, config(10, 10), 3);
    cluster.join("a", SALE_START, 0);
    cluster.join("b", SALE_START, 1);
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads { tick_id, want, .. } = message {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    let out = cluster.hub.decide(round, now);
    let Some(Outgoing {
        to,
        message: ToShard::Admit { tick_id, picks, .. },
    }) = out.first().cloned()
    else {
        panic!("an admit request")
    };
    let mut answer =
        cluster.shards[usize::from(to.0)].apply_picks(tick_id, &picks, now, &|_| false);
    let full = answer.clone();
    answer.confirmed.clear();
    assert_eq!(
        cluster.hub.accept_answer(&answer),
        Err(HubRejection::Mismatch)
    );
    let mut forged = full.clone();
    forged.shard = ShardIndex(9);
    assert_eq!(
        cluster.hub.accept_answer(&forged),
        Err(HubRejection::Mismatch)
    );
    let mut other_event = full.clone();
    other_event.event_id = "other".into();
    assert_eq!(
        cluster.hub.accept_answer(&other_event),
        Err(HubRejection::Mismatch)
    );
    assert!(cluster.hub.pending_admits() > 0);
    assert_eq!(cluster.hub.accept_answer(&full), Ok(()));
}

#[test]
fn a_silent_shard_delays_only_its_own_fans_and_loses_none() {
    let mut cluster = Cluster::new(4, config(100, 100), 3);
    let mut by_shard: BTreeMap<ShardIndex, Vec<String>> = BTreeMap::new();
    for i in 0..40 {
        let user = format!("u{i}");
        cluster.join(&user, SALE_START + i, 0);
        by_shard
            .entry(shard_of(&user, count(4)))
            .or_default()
            .push(user);
    }
    let silent = ShardIndex(2);
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let (ToShard::Heads { tick_id, want, .. }, true) = (message, to != silent) {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    assert!(!cluster.hub.round_ready(&round, now + 1_000));
    assert!(cluster.hub.round_ready(&round, now + STRAGGLER_TIMEOUT_MS));
    let out = cluster.hub.decide(round, now + STRAGGLER_TIMEOUT_MS);
    cluster.deliver(out, now + STRAGGLER_TIMEOUT_MS);
    let admitted: BTreeSet<&String> = cluster.hub.checkouts().keys().collect();
    let silent_fans = by_shard.get(&silent).map_or(0, Vec::len);
    assert!(silent_fans > 0);
    assert_eq!(admitted.len(), 40 - silent_fans);
    assert!(by_shard[&silent].iter().all(|u| !admitted.contains(u)));
    assert_eq!(cluster.hub.rounds_with_stragglers, 1);
    // Still silent in the next round: not waited for again, while a hub restart (a new
    // instance) gives it one more timeout.
    let later = now + STRAGGLER_TIMEOUT_MS + 500;
    for awake_since in [0, later] {
        let (mut round, out) = cluster.hub.start_round(awake_since, later);
        for Outgoing { to, message } in out {
            if let (ToShard::Heads { tick_id, want, .. }, true) = (message, to != silent) {
                let report =
                    cluster.shards[usize::from(to.0)].report_head(tick_id, want, later, &|_| false);
                cluster.hub.accept_report(&mut round, report).expect("ours");
            }
        }
        assert_eq!(cluster.hub.round_ready(&round, later), awake_since == 0);
    }
    // Back: its fans are admitted by the next round, none lost.
    cluster.tick(now + STRAGGLER_TIMEOUT_MS + 1_000);
    assert_eq!(cluster.hub.checkouts().len(), 40);
}

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

/// One step of a generated run.
#[derive(Debug, Clone)]
enum Step {
    Join { user: u16, after_ms: u16, tie: u64 },
    Leave { user: u16 },
    Tick { after_ms: u16, resolve: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u16..120, 0u16..400, any::<u64>()).prop_map(|(user, after_ms, tie)| Step::Join { user, after_ms, tie }),
        1 => (0u16..120).prop_map(|user| Step::Leave { user }),
        2 => (0u16..1_500, any::<bool>()).prop_map(|(after_ms, resolve)| Step::Tick { after_ms, resolve }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever joins, leaves and ticks come, across any shard count: admissions follow place
    /// order exactly (nobody admitted while an earlier place still waits), nobody twice, and
    /// the slots in use never pass the cap.
    #[test]
    fn admission_follows_place_order_across_shards(
        shards in 1u16..=16,
        cap in 1u32..20,
        batch in 1u32..20,
        prequeue in 0usize..30,
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut cluster = Cluster::new(shards, config(cap, batch), 11);
        let mut now = SALE_START - 10_000;
        for user in 0..prequeue {
            cluster.join(&format!("p{user}"), now + user as i64, 0);
        }
        now = SALE_START;
        let mut admitted_ever: BTreeSet<Place> = BTreeSet::new();
        let mut live: BTreeMap<String, Place> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Join { user, after_ms, tie } => {
                    now += i64::from(after_ms);
                    let user = format!("u{user}");
                    let stamp = ArrivalStamp { at_ms: now - i64::from(after_ms % 700), tie_break: tie };
                    let shard = cluster.shard_mut(&user);
                    let _ = shard.join(&user, "s", stamp, now);
                }
                Step::Leave { user } => {
                    let user = format!("u{user}");
                    if let Leave::HeldByHub(_) = cluster.shard_mut(&user).leave(&user, now) {
                        let out: Vec<Outgoing> = cluster.hub.leave_checkout(&user).ok().flatten().into_iter().collect();
                        if !out.is_empty() {
                            // The checkout was given back: the fan may join again.
                            live.remove(&user);
                        }
                        cluster.deliver(out, now);
                    }
                }
                Step::Tick { after_ms, resolve } => {
                    now += i64::from(after_ms);
                    let waiting_before = cluster.queued();
                    let admitted = cluster.tick(now);
                    prop_assert!(cluster.hub.slots_in_use() <= u64::from(cap));
                    for place in &admitted {
                        prop_assert!(admitted_ever.insert(place.clone()), "admitted twice: {:?}", place);
                        prop_assert!(!live.contains_key(place.user_id()), "two checkouts for one fan");
                        live.insert(place.user_id().to_owned(), place.clone());
                    }
                    // Every place still waiting after the tick that was waiting before it
                    // sorts after everything the tick admitted.
                    if let Some(last) = admitted.last() {
                        for place in cluster.queued().intersection(&waiting_before) {
                            prop_assert!(place > last, "{:?} skipped for {:?}", place, last);
                        }
                    }
                    if resolve {
                        cluster.resolve_all_checkouts(now);
                        live.clear();
                    }
                }
            }
        }
        prop_assert_eq!(cluster.hub.slots_in_use(), cluster.hub.checkouts().len() as u64);
        // Then the queue drains: everybody still waiting is admitted, in place order.
        let mut waiting: Vec<Place> = cluster.queued().into_iter().collect();
        let mut drained = Vec::new();
        for _ in 0..200 {
            if cluster.queued().is_empty() {
                break;
            }
            now += 1_000;
            cluster.resolve_all_checkouts(now);
            drained.extend(cluster.tick(now));
        }
        prop_assert!(cluster.queued().is_empty(), "fans left waiting");
        waiting.sort();
        prop_assert_eq!(drained, waiting);
    }
}

#[test]
fn an_order_binds_only_the_live_checkout_its_token_names_and_resolving_it_frees_the_slot() {
    let mut cluster = Cluster::new(2, config(5, 5), 3);
    let a = cluster.join("a", SALE_START, 1);
    cluster.join("b", SALE_START, 2);
    assert_eq!(cluster.tick(open(0)).len(), 2);
    let hub = &mut cluster.hub;
    use super::hub::BindRefusal;
    assert_eq!(
        hub.bind_checkout("a", "s-b", "o1", open(1)),
        Err(BindRefusal::CheckoutNotActive),
        "another fan's session"
    );
    assert_eq!(hub.bind_checkout("a", "s-a", "o1", open(1)), Ok(()));
    assert_eq!(
        hub.bind_checkout("a", "s-a", "o1", open(2)),
        Ok(()),
        "a retried order"
    );
    assert_eq!(
        hub.bind_checkout("a", "s-a", "o2", open(2)),
        Err(BindRefusal::CheckoutAlreadyBound)
    );
    assert_eq!(
        hub.bind_checkout("b", "s-b", "o1", open(2)),
        Err(BindRefusal::OrderAlreadyBound)
    );
    let ttl = i64::from(WaitroomConfig::default().checkout_ttl_seconds) * 1_000;
    assert_eq!(
        hub.bind_checkout("b", "s-b", "o3", open(ttl)),
        Err(BindRefusal::CheckoutNotActive),
        "the token ran out, even before the sweep"
    );
    // The bound order holds its slot past the token's deadline; the unbound one goes.
    let out = hub.expire_checkouts(open(ttl + 1));
    assert_eq!(out.len(), 1);
    assert_eq!(hub.slots_in_use(), 1);
    let ended = hub
        .resolve_order("o1", crate::domain::waitroom::SessionEndReason::Completed)
        .expect("a's checkout");
    assert_eq!(ended.to, shard_of("a", count(2)));
    assert_eq!(hub.slots_in_use(), 0);
    assert!(
        hub.resolve_order("o1", crate::domain::waitroom::SessionEndReason::Completed)
            .is_none(),
        "at-least-once delivery"
    );
    // Both ends are sent until the shards acknowledge them.
    assert_eq!(hub.unacknowledged_end_count(), 2);
    hub.end_acknowledged(ended.to, &a);
    assert_eq!(hub.unacknowledged_end_count(), 1);
}

#[test]
fn an_unbound_order_leaves_the_checkout_to_the_fan_until_the_token_runs_out() {
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    cluster.join("a", SALE_START, 1);
    cluster.join("b", SALE_START, 2);
    cluster.tick(open(0));
    let hub = &mut cluster.hub;
    hub.bind_checkout("a", "s-a", "o1", open(1)).expect("live");
    assert!(hub.unbind_order("o1", open(2)).is_none());
    assert_eq!(hub.bind_checkout("a", "s-a", "o4", open(3)), Ok(()));
    let ttl = i64::from(WaitroomConfig::default().checkout_ttl_seconds) * 1_000;
    hub.bind_checkout("b", "s-b", "o5", open(3)).expect("live");
    assert!(
        hub.unbind_order("o5", open(ttl + 5)).is_some(),
        "overdue: goes at once"
    );
    assert_eq!(hub.slots_in_use(), 1);
}

proptest! {
    /// The shell writes only what `take_changes` reports; a shard restored from those rows
    /// is the shard that wrote them: same queue, same records, same positions and head.
    #[test]
    fn a_shard_restored_from_its_written_rows_is_the_same_shard(
        ops in proptest::collection::vec((0u8..6, 0usize..12, 0i64..4_000), 1..120)
    ) {
        let hub = AdmissionHub::new("ev", 9, config(4, 4), count(1)).expect("valid");
        let mut shard = ShardQueue::new(hub.shard_settings(ShardIndex(0)));
        let mut meta = None;
        let mut rows: BTreeMap<String, super::shard::FanRecord> = BTreeMap::new();
        let mut tick = 0;
        for (op, user, at) in ops {
            let user = format!("u{user}");
            let now = SALE_START - 1_000 + at;
            match op {
                0 | 1 => {
                    let stamp = ArrivalStamp { at_ms: now, tie_break: at as u64 };
                    let _ = shard.join(&user, &format!("s-{user}-{at}"), stamp, now);
                }
                2 => { shard.leave(&user, now); }
                3 => { shard.touch(&user, now + 20_000); }
                4 => {
                    tick += 1;
                    let report = shard.report_head(tick, 2, now, &|_| false);
                    let picks: Vec<Pick> = report.head.iter().map(|e| Pick::Admit {
                        place: e.place.clone(), checkout_expires_at: now + 60_000,
                    }).collect();
                    shard.apply_picks(tick, &picks, now, &|_| false);
                }
                _ => {
                    if let Some(place) = shard.fan(&user).map(|f| f.place.clone()) {
                        shard.checkout_ended(&place, None);
                    }
                }
            }
            let changes = shard.take_changes();
            if let Some(m) = changes.meta { meta = Some(m); }
            for (user, record) in changes.fans {
                match record {
                    Some(r) => { rows.insert(user, r); }
                    None => { rows.remove(&user); }
                }
            }
        }
        let restored = ShardQueue::restore(meta.expect("written at creation"), rows.into_values());
        prop_assert_eq!(restored.meta(), shard.meta());
        prop_assert_eq!(restored.queued_places().collect::<Vec<_>>(), shard.queued_places().collect::<Vec<_>>());
        prop_assert_eq!(restored.own_summary(), shard.own_summary());
        for u in 0..12 {
            let user = format!("u{u}");
            prop_assert_eq!(restored.fan(&user), shard.fan(&user));
            prop_assert_eq!(restored.view(&user, SALE_START + 5_000), shard.view(&user, SALE_START + 5_000));
        }
    }
}

#[test]
fn a_shard_spells_each_ending_as_the_one_object_waitroom_does() {
    use crate::domain::waitroom::{SessionEndReason as R, SessionStatus as S};
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    let place = cluster.join("a", SALE_START, 1);
    let now = open(0);
    let shown = |c: &mut Cluster| {
        c.shard_mut("a")
            .view("a", now)
            .map(|v| v.session_status())
            .expect("joined")
    };
    assert_eq!(shown(&mut cluster), (S::Queued, None));
    cluster.tick(now);
    assert_eq!(shown(&mut cluster), (S::Admitted, None));
    for (reason, expected) in [
        (None, (S::Completed, Some(R::Completed))),
        (Some(R::Left), (S::Left, Some(R::Left))),
        (Some(R::OrderFailed), (S::Expired, Some(R::OrderFailed))),
        (
            Some(R::CheckoutTokenExpired),
            (S::Expired, Some(R::CheckoutTokenExpired)),
        ),
    ] {
        let mut c = Cluster::new(1, config(5, 5), 3);
        let p = c.join("a", SALE_START, 1);
        c.tick(now);
        c.shard_mut("a").checkout_ended(&p, reason);
        assert_eq!(shown(&mut c), expected);
    }
    assert_eq!(place.user_id(), "a");
}

#[test]
fn the_hub_wakes_for_its_next_round_for_unacknowledged_messages_and_for_expiries() {
    let mut cluster = Cluster::new(2, config(5, 5), 3);
    let first_round = SALE_START + STAMP_GRACE_MS;
    assert_eq!(
        cluster.hub.wake_at(0, 500),
        Some(500),
        "settings not yet acknowledged"
    );
    let (version, out) = cluster.hub.unsent_settings().expect("unsent");
    assert_eq!(out.len(), 2);
    cluster.hub.settings_acknowledged(version + 1);
    assert!(cluster.hub.unsent_settings().is_some(), "another version");
    cluster.hub.settings_acknowledged(version);
    assert!(cluster.hub.unsent_settings().is_none());
    assert_eq!(cluster.hub.wake_at(0, 500), Some(first_round));
    // A change makes every shard's acknowledgement due again.
    let mut raised = config(5, 5);
    raised.admission_batch = 3;
    cluster
        .hub
        .reconfigure(raised, count(2), 0)
        .expect("same count");
    assert!(cluster.hub.unsent_settings().is_some());
    assert_ne!(cluster.hub.unsent_settings().map(|(v, _)| v), Some(version));
    // Closed: no more rounds, but an unused checkout still runs out on time.
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    cluster.hub.settings_acknowledged(1);
    cluster.join("a", SALE_START, 1);
    cluster.tick(open(0));
    let expires = cluster.hub.checkout_of("a").map(|c| c.expires_at);
    let mut closed = config(5, 5);
    closed.cancelled = true;
    cluster
        .hub
        .reconfigure(closed, count(1), open(1))
        .expect("ok");
    cluster.hub.settings_acknowledged(2);
    assert_eq!(cluster.hub.wake_at(open(2), 500), expires);
}

#[test]
fn a_hub_restored_from_its_document_and_its_checkout_rows_is_the_same_hub() {
    let mut cluster = Cluster::new(3, config(4, 4), 3);
    let mut rows: BTreeMap<String, super::hub::Checkout> = BTreeMap::new();
    let mut write = |hub: &mut AdmissionHub| {
        for (user, checkout) in hub.take_changed_checkouts() {
            match checkout {
                Some(c) => {
                    rows.insert(user, c);
                }
                None => {
                    rows.remove(&user);
                }
            }
        }
        (
            serde_json::to_string(&*hub).expect("serializes"),
            rows.clone(),
        )
    };
    for (i, user) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        cluster.join(user, SALE_START + i as i64, 0);
    }
    cluster.tick(open(0));
    cluster
        .hub
        .bind_checkout("a", "s-a", "o1", open(1))
        .expect("live");
    let out: Vec<Outgoing> = cluster
        .hub
        .leave_checkout("b")
        .expect("unbound")
        .into_iter()
        .collect();
    cluster.deliver(out, open(2));
    let (document, stored) = write(&mut cluster.hub);
    let mut restored: AdmissionHub = serde_json::from_str(&document).expect("deserializes");
    assert!(
        !document.contains("\"checkouts\""),
        "checkouts live in their rows"
    );
    restored.restore_checkouts(stored);
    assert_eq!(restored.checkouts(), cluster.hub.checkouts());
    assert_eq!(restored.slots_in_use(), cluster.hub.slots_in_use());
    assert_eq!(restored.checkouts().len(), 3);
    assert_eq!(
        restored.checkout_of("a").and_then(|c| c.order_id.clone()),
        Some("o1".to_owned())
    );
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
    use super::hub::{IDLE_TICK_INTERVAL_MS, TICK_INTERVAL_MS};
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
    use super::snapshot::shown_position;
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
    use super::hub::ENDS_PER_MESSAGE;
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
