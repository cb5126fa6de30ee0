//! One queue shard of an event: the fans whose users hash to it, in place order, their joins,
//! leaves, sightings and idle skips, its head report and its side of the admission tick.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::place::{
    prequeue_draw, recorded_arrival_ms, shard_of, ArrivalStamp, BucketCounts, Place, ShardCount,
    ShardIndex,
};
use super::protocol::{AdmitAnswer, HandedOver, HeadEntry, HeadReport, Pick};
pub use super::snapshot::ShardSnapshot;
use crate::domain::waitroom::{
    estimated_wait_seconds, SessionEndReason, SessionStatus, WaitroomConfig,
};

/// Head rows one report may look at, bounding the work when many idle fans sit at the head.
pub const HEAD_SCAN_LIMIT: usize = 2_048;
/// Queued fans expired per upkeep call once the sale has closed.
pub const CLOSE_DRAIN_BATCH: usize = 256;
/// A sighting closer than this to the last recorded one is not written.
pub const TOUCH_WRITE_INTERVAL_MS: i64 = 10_000;

/// What a shard must know of the sale; the hub sends it with every configuration change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSettings {
    pub event_id: String,
    pub shard: ShardIndex,
    pub shards: ShardCount,
    /// The event's shuffle seed: keys the pre-queue draws.
    pub shuffle_seed: u64,
    pub sale_starts_at: i64,
    pub sale_ends_at: i64,
    pub cancelled: bool,
    pub idle_timeout_seconds: u32,
}

impl ShardSettings {
    /// The settings of shard `shard` from the event's waitroom config.
    pub fn of_waitroom(
        event_id: &str,
        shard: ShardIndex,
        shards: ShardCount,
        shuffle_seed: u64,
        config: &WaitroomConfig,
    ) -> Self {
        Self {
            event_id: event_id.to_owned(),
            shard,
            shards,
            shuffle_seed,
            sale_starts_at: config.sale_starts_at,
            sale_ends_at: config.sale_ends_at,
            cancelled: config.cancelled,
            idle_timeout_seconds: config.idle_timeout_seconds,
        }
    }

    fn closure_at(&self, now: i64) -> Option<ShardClosure> {
        if self.cancelled {
            Some(ShardClosure::EventCancelled)
        } else if now >= self.sale_ends_at {
            Some(ShardClosure::SaleEnded)
        } else {
            None
        }
    }
}

/// Why the shard's queue closed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShardClosure {
    SaleEnded,
    EventCancelled,
}

/// Where a fan's latest stay in this shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FanStatus {
    Queued {
        joined_at: i64,
        last_seen_at: i64,
    },
    /// Handed to the hub's checkout slots by tick `tick_id`.
    Admitted {
        tick_id: u64,
        checkout_expires_at: i64,
    },
    /// The hub's checkout ended; the fan may join again.
    CheckoutEnded {
        reason: Option<SessionEndReason>,
    },
    Left,
    IdleAtHead,
    Closed(ShardClosure),
}

/// A fan's latest stay: one row per user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanRecord {
    pub session_id: String,
    pub place: Place,
    pub status: FanStatus,
}

/// A shard's refusal; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShardRejection {
    #[error("the ticket sale is not open")]
    SaleNotOpen,
    /// The user hashes to another shard: a misrouted or forged call.
    #[error("this user belongs to another queue shard")]
    WrongShard,
    /// The message names another event, or settings try to move or shrink the shard.
    #[error("the message does not match this queue shard")]
    Mismatch,
}

/// What a leave did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leave {
    /// Left the queue.
    Left,
    /// The fan is in checkout: the slot is the hub's, so the shell forwards the leave there.
    HeldByHub(Place),
    /// Nothing to give up.
    NotQueued,
}

/// A fan's session as the shard can show it (the shell adds ids and tokens).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardView {
    pub status: FanStatus,
    /// 1-based; exact among this shard's fans, estimated for the others (see [`Self::position`]).
    pub position: Option<u64>,
    pub queue_length: u64,
    pub estimated_wait_seconds: Option<u64>,
}

/// The queue of one shard: everything here is what the shard's storage holds; nothing lives
/// only in memory, so a restart loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardQueue {
    settings: ShardSettings,
    /// Promised to the hub: no place with a lower arrival ms is recorded again.
    frontier: i64,
    closed: Option<ShardClosure>,
    /// Queued fans in place order (the index the head is read from).
    queue: BTreeMap<Place, String>,
    /// Each user's latest stay.
    fans: BTreeMap<String, FanRecord>,
    /// Queued fans per bucket: the summary, kept with every queue change.
    own: BucketCounts,
    /// The other shards' summed summary as the hub last sent it (`None`: not yet complete).
    others: Option<BucketCounts>,
    admission_rate: Option<f64>,
    /// The latest place the hub picked (admit or idle skip) from this shard: every fan after
    /// it is still as the shard last said (only the fan's own join or leave can change them).
    #[serde(default)]
    picked_through: Option<Place>,
    /// Users whose record changed since the shell last wrote them (not state: a bookmark).
    #[serde(skip)]
    dirty: BTreeSet<String>,
    /// The [`ShardMeta`] changed since the shell last wrote it.
    #[serde(skip)]
    meta_dirty: bool,
}

/// The shard's state besides its fans: one row in the object's storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardMeta {
    pub settings: ShardSettings,
    pub frontier: i64,
    pub closed: Option<ShardClosure>,
    pub others: Option<BucketCounts>,
    pub admission_rate: Option<f64>,
    /// The latest place the hub picked from this shard (see [`ShardSnapshot`]).
    #[serde(default)]
    pub picked_through: Option<Place>,
}

/// What changed since the last [`ShardQueue::take_changes`]: the rows the shell writes.
#[derive(Debug, Default)]
pub struct ShardChanges {
    pub meta: Option<ShardMeta>,
    /// Each changed user's record now (`None`: handed over to another shard, delete it).
    pub fans: Vec<(String, Option<FanRecord>)>,
}

impl ShardView {
    /// The session status and end reason the API shows for this stay, spelled as the
    /// one-object waitroom spells them, so a fan's page reads the same at any shard count.
    pub fn session_status(&self) -> (SessionStatus, Option<SessionEndReason>) {
        match self.status {
            FanStatus::Queued { .. } => (SessionStatus::Queued, None),
            FanStatus::Admitted { .. } => (SessionStatus::Admitted, None),
            FanStatus::CheckoutEnded {
                reason: None | Some(SessionEndReason::Completed),
            } => (SessionStatus::Completed, Some(SessionEndReason::Completed)),
            FanStatus::CheckoutEnded {
                reason: Some(SessionEndReason::Left),
            }
            | FanStatus::Left => (SessionStatus::Left, Some(SessionEndReason::Left)),
            FanStatus::CheckoutEnded {
                reason: Some(reason),
            } => (SessionStatus::Expired, Some(reason)),
            FanStatus::IdleAtHead => (SessionStatus::Expired, Some(SessionEndReason::IdleAtHead)),
            FanStatus::Closed(ShardClosure::SaleEnded) => {
                (SessionStatus::Expired, Some(SessionEndReason::SaleEnded))
            }
            FanStatus::Closed(ShardClosure::EventCancelled) => (
                SessionStatus::Expired,
                Some(SessionEndReason::EventCancelled),
            ),
        }
    }
}

impl ShardChanges {
    pub fn is_empty(&self) -> bool {
        self.meta.is_none() && self.fans.is_empty()
    }
}

impl ShardQueue {
    pub fn new(settings: ShardSettings) -> Self {
        Self {
            settings,
            frontier: i64::MIN,
            closed: None,
            queue: BTreeMap::new(),
            fans: BTreeMap::new(),
            own: BucketCounts::new(),
            others: None,
            admission_rate: None,
            picked_through: None,
            dirty: BTreeSet::new(),
            meta_dirty: true,
        }
    }

    /// The queue as its storage holds it: the meta row and every fan's latest stay. The queue
    /// index and the summary are derived from the records, so they cannot disagree with them.
    pub fn restore(meta: ShardMeta, fans: impl IntoIterator<Item = FanRecord>) -> Self {
        let mut queue = Self::new(meta.settings);
        queue.frontier = meta.frontier;
        queue.closed = meta.closed;
        queue.others = meta.others;
        queue.admission_rate = meta.admission_rate;
        queue.picked_through = meta.picked_through;
        queue.meta_dirty = false;
        for record in fans {
            let user_id = record.place.user_id().to_owned();
            if matches!(record.status, FanStatus::Queued { .. }) {
                queue.own.add(record.place.bucket(), 1);
                queue.queue.insert(record.place.clone(), user_id.clone());
            }
            queue.fans.insert(user_id, record);
        }
        queue
    }

    pub fn meta(&self) -> ShardMeta {
        ShardMeta {
            settings: self.settings.clone(),
            frontier: self.frontier,
            closed: self.closed,
            others: self.others.clone(),
            admission_rate: self.admission_rate,
            picked_through: self.picked_through.clone(),
        }
    }

    /// What polls are answered from for a second: the counts and how far the hub has picked.
    pub fn snapshot(&mut self, now: i64) -> ShardSnapshot {
        self.upkeep(now);
        ShardSnapshot {
            event_id: self.settings.event_id.clone(),
            shard: self.settings.shard,
            shards: self.settings.shards,
            taken_at: now,
            sale_starts_at: self.settings.sale_starts_at,
            sale_ends_at: self.settings.sale_ends_at,
            closed: self.closed.or_else(|| self.settings.closure_at(now)),
            own: self.own.clone(),
            others: self.others.clone(),
            admission_rate: self.admission_rate,
            picked_through: self.picked_through.clone(),
        }
    }

    /// The rows changed since the last call, for the shell to write in the same step.
    pub fn take_changes(&mut self) -> ShardChanges {
        let meta = std::mem::take(&mut self.meta_dirty).then(|| self.meta());
        let fans = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|user| {
                let record = self.fans.get(&user).cloned();
                (user, record)
            })
            .collect();
        ShardChanges { meta, fans }
    }

    /// The queue closed for good (sale ended or event cancelled).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    pub fn settings(&self) -> &ShardSettings {
        &self.settings
    }

    pub fn frontier(&self) -> i64 {
        self.frontier
    }

    pub fn queued(&self) -> u64 {
        self.queue.len() as u64
    }

    pub fn queued_places(&self) -> impl Iterator<Item = &Place> {
        self.queue.keys()
    }

    pub fn fan(&self, user_id: &str) -> Option<&FanRecord> {
        self.fans.get(user_id)
    }

    pub fn own_summary(&self) -> &BucketCounts {
        &self.own
    }

    /// New sale settings. The shard and event stay, the count may only rise, a closure is final.
    pub fn configure(&mut self, settings: ShardSettings) -> Result<(), ShardRejection> {
        if settings.event_id != self.settings.event_id
            || settings.shard != self.settings.shard
            || settings.shards < self.settings.shards
        {
            return Err(ShardRejection::Mismatch);
        }
        if self.settings != settings {
            self.settings = settings;
            self.meta_dirty = true;
        }
        Ok(())
    }

    /// Observes closure and expires the next batch of a closed queue. Returns whether queued
    /// fans remain to drain (the shell wakes again at once).
    pub fn upkeep(&mut self, now: i64) -> bool {
        if self.closed.is_none() {
            self.closed = self.settings.closure_at(now);
            self.meta_dirty |= self.closed.is_some();
        }
        let Some(reason) = self.closed else {
            return false;
        };
        let batch: Vec<Place> = self.queue.keys().take(CLOSE_DRAIN_BATCH).cloned().collect();
        for place in batch {
            self.end_stay(&place, FanStatus::Closed(reason));
        }
        !self.queue.is_empty()
    }

    /// Records a join stamped at the edge; idempotent per user while the stay is live.
    pub fn join(
        &mut self,
        user_id: &str,
        session_id: &str,
        stamp: ArrivalStamp,
        now: i64,
    ) -> Result<&FanRecord, ShardRejection> {
        self.upkeep(now);
        if self.closed.is_some() {
            return Err(ShardRejection::SaleNotOpen);
        }
        if shard_of(user_id, self.settings.shards) != self.settings.shard {
            return Err(ShardRejection::WrongShard);
        }
        let entry = match self.fans.entry(user_id.to_owned()) {
            Entry::Occupied(live)
                if matches!(
                    live.get().status,
                    FanStatus::Queued { .. } | FanStatus::Admitted { .. }
                ) =>
            {
                return Ok(live.into_mut());
            }
            entry => entry,
        };
        let at_ms = recorded_arrival_ms(stamp.at_ms, self.frontier, now);
        let place = if at_ms < self.settings.sale_starts_at {
            Place::Prequeue {
                draw: prequeue_draw(self.settings.shuffle_seed, &self.settings.event_id, user_id),
                user_id: user_id.to_owned(),
            }
        } else {
            Place::Queue {
                at_ms,
                tie_break: stamp.tie_break,
                user_id: user_id.to_owned(),
            }
        };
        self.own.add(place.bucket(), 1);
        self.queue.insert(place.clone(), user_id.to_owned());
        self.dirty.insert(user_id.to_owned());
        let record = FanRecord {
            session_id: session_id.to_owned(),
            place,
            status: FanStatus::Queued {
                joined_at: now,
                last_seen_at: now,
            },
        };
        Ok(match entry {
            Entry::Occupied(mut ended) => {
                ended.insert(record);
                ended.into_mut()
            }
            Entry::Vacant(new) => new.insert(record),
        })
    }

    /// Gives the fan's place up.
    pub fn leave(&mut self, user_id: &str, now: i64) -> Leave {
        self.upkeep(now);
        let Some(record) = self.fans.get(user_id) else {
            return Leave::NotQueued;
        };
        match record.status {
            FanStatus::Queued { .. } => {
                let place = record.place.clone();
                self.end_stay(&place, FanStatus::Left);
                Leave::Left
            }
            FanStatus::Admitted { .. } => Leave::HeldByHub(record.place.clone()),
            _ => Leave::NotQueued,
        }
    }

    /// The fan was seen (poll, socket message). Returns whether it wrote: sightings closer
    /// than [`TOUCH_WRITE_INTERVAL_MS`] apart are not written, so polls stay reads.
    pub fn touch(&mut self, user_id: &str, now: i64) -> bool {
        match self.fans.get_mut(user_id).map(|f| &mut f.status) {
            Some(FanStatus::Queued { last_seen_at, .. })
                if now.saturating_sub(*last_seen_at) >= TOUCH_WRITE_INTERVAL_MS =>
            {
                *last_seen_at = now;
                self.dirty.insert(user_id.to_owned());
                true
            }
            _ => false,
        }
    }

    fn is_idle(&self, user_id: &str, now: i64) -> bool {
        let idle_before = now.saturating_sub(i64::from(self.settings.idle_timeout_seconds) * 1_000);
        matches!(
            self.fans.get(user_id).map(|f| f.status),
            Some(FanStatus::Queued { last_seen_at, .. }) if last_seen_at <= idle_before
        )
    }

    /// Phase 1 of a tick: promises the frontier (`now −` [`super::place::STAMP_GRACE_MS`], never
    /// lower than before) and reports the head: fans in place order until `want` who are not
    /// idle (`connected` tells which fans have a socket open: they count as seen), at most
    /// [`HEAD_SCAN_LIMIT`] rows.
    pub fn report_head(
        &mut self,
        tick_id: u64,
        want: u64,
        now: i64,
        connected: &dyn Fn(&str) -> bool,
    ) -> HeadReport {
        self.upkeep(now);
        let frontier = self
            .frontier
            .max(now.saturating_sub(super::place::STAMP_GRACE_MS));
        self.meta_dirty |= frontier != self.frontier;
        self.frontier = frontier;
        let mut head = Vec::new();
        let mut active = 0u64;
        let mut rows = self.queue.iter();
        let mut more = false;
        for (place, user_id) in rows.by_ref() {
            if active >= want || head.len() >= HEAD_SCAN_LIMIT {
                more = true;
                break;
            }
            let idle = self.is_idle(user_id, now) && !connected(user_id);
            active += u64::from(!idle);
            head.push(HeadEntry {
                place: place.clone(),
                idle,
            });
        }
        HeadReport {
            event_id: self.settings.event_id.clone(),
            tick_id,
            shard: self.settings.shard,
            frontier: self.frontier,
            head,
            more,
            summary: self.own.clone(),
        }
    }

    /// Keeps the other shards' summary for positions (sent with every head request).
    pub fn accept_summary(&mut self, others: Option<BucketCounts>, admission_rate: Option<f64>) {
        if self.others != others || self.admission_rate != admission_rate {
            self.others = others;
            self.admission_rate = admission_rate;
            self.meta_dirty = true;
        }
    }

    /// Phase 2 of a tick. The answer comes from the fans' records, not from a log of ticks, so
    /// a redelivered (or very late) request answers as the first did, and a request about a
    /// place that is no longer the fan's stay withdraws without touching the new stay.
    ///
    /// `connected` is as in [`Self::report_head`]: a fan who opened a socket since the report
    /// is seen, and is kept rather than skipped.
    pub fn apply_picks(
        &mut self,
        tick_id: u64,
        picks: &[Pick],
        now: i64,
        connected: &dyn Fn(&str) -> bool,
    ) -> AdmitAnswer {
        self.upkeep(now);
        let mut answer = AdmitAnswer {
            event_id: self.settings.event_id.clone(),
            tick_id,
            shard: self.settings.shard,
            ..AdmitAnswer::default()
        };
        if let Some(last) = picks.iter().map(Pick::place).max() {
            if self.picked_through.as_ref().is_none_or(|p| last > p) {
                self.picked_through = Some(last.clone());
                self.meta_dirty = true;
            }
        }
        for pick in picks {
            let place = pick.place();
            let Some((status, session_id)) = self
                .fans
                .get(place.user_id())
                .filter(|f| &f.place == place)
                .map(|f| (f.status, f.session_id.clone()))
            else {
                answer.withdrawn.push(place.clone());
                continue;
            };
            let handed_over = HandedOver {
                place: place.clone(),
                session_id,
            };
            match (pick, status) {
                (
                    Pick::Admit {
                        checkout_expires_at,
                        ..
                    },
                    FanStatus::Queued { .. },
                ) => {
                    self.end_stay(
                        place,
                        FanStatus::Admitted {
                            tick_id,
                            checkout_expires_at: *checkout_expires_at,
                        },
                    );
                    answer.confirmed.push(handed_over);
                }
                (Pick::Admit { .. }, FanStatus::Admitted { tick_id: by, .. }) if by == tick_id => {
                    answer.confirmed.push(handed_over);
                }
                (Pick::SkipIfIdle { .. }, FanStatus::Queued { .. }) => {
                    if self.is_idle(place.user_id(), now) && !connected(place.user_id()) {
                        self.end_stay(place, FanStatus::IdleAtHead);
                        answer.skipped.push(place.clone());
                    } else {
                        answer.kept.push(place.clone());
                    }
                }
                (Pick::SkipIfIdle { .. }, FanStatus::IdleAtHead) => {
                    answer.skipped.push(place.clone());
                }
                _ => answer.withdrawn.push(place.clone()),
            }
        }
        answer
    }

    /// The queued fans who belong to another shard under a count of `shards` (nothing is
    /// changed: see [`super::protocol::ToShard::HandOver`]).
    pub fn moving(&self, shards: ShardCount) -> Vec<FanRecord> {
        self.queue
            .values()
            .filter(|user| shard_of(user, shards) != self.settings.shard)
            .filter_map(|user| self.fans.get(user).cloned())
            .collect()
    }

    /// Takes out the queued fans who belong to another shard under `settings` (a count
    /// raised before the sale opens), for the shell to hand to their new shards, and adopts
    /// the new settings. Before the sale every place is a pre-queue draw, a function of the
    /// user alone, so a moved fan keeps exactly their place; the new shard records the same
    /// place whether the hand-over or the fan's next join reaches it first.
    pub fn hand_over(&mut self, settings: ShardSettings) -> Result<Vec<FanRecord>, ShardRejection> {
        self.configure(settings)?;
        let moving: Vec<String> = self
            .queue
            .values()
            .filter(|user| shard_of(user, self.settings.shards) != self.settings.shard)
            .cloned()
            .collect();
        let mut handed = Vec::new();
        for user_id in moving {
            if let Some(record) = self.fans.remove(&user_id) {
                self.dirty.insert(user_id.clone());
                if self.queue.remove(&record.place).is_some() {
                    self.own.remove(record.place.bucket(), 1);
                }
                handed.push(record);
            }
        }
        Ok(handed)
    }

    /// Takes in fans handed over by another shard. Idempotent per user: a fan who already
    /// joined here (same place, since the draw depends on the user only) is kept as is.
    pub fn adopt(&mut self, fans: Vec<FanRecord>) -> Result<(), ShardRejection> {
        if fans
            .iter()
            .any(|f| shard_of(f.place.user_id(), self.settings.shards) != self.settings.shard)
        {
            return Err(ShardRejection::WrongShard);
        }
        for record in fans {
            let user_id = record.place.user_id().to_owned();
            if self.fans.contains_key(&user_id)
                || !matches!(record.status, FanStatus::Queued { .. })
            {
                continue;
            }
            self.own.add(record.place.bucket(), 1);
            self.queue.insert(record.place.clone(), user_id.clone());
            self.dirty.insert(user_id.clone());
            self.fans.insert(user_id, record);
        }
        Ok(())
    }

    /// The hub ended the fan's checkout; applies only to that very stay.
    pub fn checkout_ended(&mut self, place: &Place, reason: Option<SessionEndReason>) {
        if let Some(record) = self.fans.get_mut(place.user_id()) {
            if &record.place == place && matches!(record.status, FanStatus::Admitted { .. }) {
                record.status = FanStatus::CheckoutEnded { reason };
                self.dirty.insert(place.user_id().to_owned());
            }
        }
    }

    /// Takes a queued place out of the queue and records how the stay ended.
    fn end_stay(&mut self, place: &Place, status: FanStatus) {
        if self.queue.remove(place).is_some() {
            self.own.remove(place.bucket(), 1);
        }
        if let Some(record) = self.fans.get_mut(place.user_id()) {
            if &record.place == place {
                record.status = status;
                self.dirty.insert(place.user_id().to_owned());
            }
        }
    }

    /// Fans of this shard ahead of `place`, exactly: whole buckets from the summary, then the
    /// place's own bucket row by row (one bucket is one second of this shard's joins).
    pub fn ahead_in_shard(&self, place: &Place) -> u64 {
        let bucket = place.bucket();
        // Counted from whichever end of the bucket is nearer, both walked in step: a new fan
        // is near its bucket's end, and a second of 17,000 joins a second is a long bucket.
        let mut ahead = self.queue.range(bucket.first_place()..place.clone()).rev();
        let mut from_place = self
            .queue
            .range(place.clone()..)
            .take_while(|(p, _)| p.bucket() == bucket);
        let mut walked = 0u64;
        let within = loop {
            if ahead.next().is_none() {
                break walked;
            }
            if from_place.next().is_none() {
                // Everything in the bucket but the places from this one on.
                break self.own.get(bucket).saturating_sub(walked);
            }
            walked += 1;
        };
        self.own.before(bucket) + within
    }

    /// The fan's session as this shard shows it at `now`, without changing anything.
    ///
    /// The position is `1 +` the fans ahead in this shard (exact) `+` the other shards' fans
    /// in earlier buckets `+` the share of their fans in the fan's own bucket that the fan's
    /// offset into it predicts (from the hub's summary). It is exact with one shard; with
    /// more it can be off by the other shards' fans in the same bucket and by what changed in
    /// them since their last report (README, "Queue shards").
    pub fn view(&self, user_id: &str, now: i64) -> Option<ShardView> {
        let record = self.fans.get(user_id)?;
        let closed = self.closed.or_else(|| self.settings.closure_at(now));
        let status = match (record.status, closed) {
            (FanStatus::Queued { .. }, Some(reason)) => FanStatus::Closed(reason),
            (status, _) => status,
        };
        // Alone, the shard needs nobody's summary: its positions are exact from the start.
        let alone = BucketCounts::new();
        let others = if self.settings.shards == ShardCount::ONE {
            Some(&alone)
        } else {
            self.others.as_ref()
        };
        let queue_length = if closed.is_some() {
            0
        } else {
            self.own.total() + others.map_or(0, BucketCounts::total)
        };
        let position = match (status, others) {
            // Before the sale opens the pre-queue has no order yet to show; without every
            // shard's summary a position would put the fan too far ahead.
            (FanStatus::Queued { .. }, Some(others)) if now >= self.settings.sale_starts_at => {
                Some(1 + self.ahead_in_shard(&record.place) + others.estimated_ahead(&record.place))
            }
            _ => None,
        };
        Some(ShardView {
            status,
            position,
            queue_length,
            estimated_wait_seconds: position
                .and_then(|p| estimated_wait_seconds(p, self.admission_rate)),
        })
    }
}
