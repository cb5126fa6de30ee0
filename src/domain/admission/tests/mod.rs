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

mod checkouts;
mod faults;
mod positions;
mod properties;
mod rounds;
mod sale_settings;
