//! The event hub's side of admission across queue shards: checkout slots, the two-phase
//! admission tick (heads in, picks out, answers settle), the shards' summaries and the status.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::place::{shard_of, BucketCounts, Place, ShardCount, ShardIndex, STAMP_GRACE_MS};
use super::protocol::{AdmitAnswer, EndedCheckout, HeadReport, Pick, ToShard};
use super::shard::{FanRecord, ShardSettings, HEAD_SCAN_LIMIT};
use crate::domain::waitroom::{estimated_wait_seconds, SessionEndReason, WaitroomConfig};

/// A round starts this long after the previous one (later when that one waited for a shard).
pub const TICK_INTERVAL_MS: i64 = 1_000;
/// Rounds of a sale whose last round found nobody waiting and nothing in flight come this far
/// apart; a shard that records a join into its empty queue wakes the hub at once
/// ([`AdmissionHub::wake`]), so the first fan after a lull does not wait for it.
pub const IDLE_TICK_INTERVAL_MS: i64 = 30_000;
/// Checkout ends one [`ToShard::CheckoutsEnded`] carries at most.
pub const ENDS_PER_MESSAGE: usize = 500;
/// A shard that leaves head requests unanswered this long while the hub is up is left out of
/// rounds until it answers again (its own fans wait, nobody else does).
pub const STRAGGLER_TIMEOUT_MS: i64 = 5_000;
/// Unanswered head requests and admit requests are sent again this often.
pub const RESEND_AFTER_MS: i64 = 250;
/// Weight of the newest measurement in the smoothed admission rate.
pub const RATE_SMOOTHING: f64 = 0.3;
const MINUTE_MS: i64 = 60_000;

/// A message for one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub to: ShardIndex,
    pub message: ToShard,
}

/// A checkout slot held for an admitted fan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// The session the fan's checkout token names.
    pub session_id: String,
    pub place: Place,
    pub shard: ShardIndex,
    pub expires_at: i64,
    /// An order holds the slot past `expires_at` until the saga resolves it.
    pub order_bound: bool,
    /// The order bound to the checkout (the saga names its order, not its fan).
    #[serde(default)]
    pub order_id: Option<String>,
}

/// Why an order may not take a checkout; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindRefusal {
    /// No live checkout for that user and session (never admitted, ended, expired).
    #[error("the checkout token does not name an active checkout")]
    CheckoutNotActive,
    /// The checkout already carries another order.
    #[error("the checkout is already used by another order")]
    CheckoutAlreadyBound,
    /// The order is bound to another checkout.
    #[error("the order is already bound to another checkout")]
    OrderAlreadyBound,
}

/// Something the hub refuses; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HubRejection {
    /// A report or answer from a shard outside the event's count, for another event, or an
    /// answer that does not account for every pick: a forged or corrupt message.
    #[error("the shard message does not match this event's admission")]
    Mismatch,
    /// The shard count may rise until the sale opens, never fall.
    #[error("the shard count may only be raised, and only until the sale opens")]
    ShardCountLocked,
    #[error("invalid waitroom config: {0}")]
    InvalidConfig(&'static str),
    /// The checkout has an order in progress: its slot goes when the saga resolves the order.
    #[error("the session has an order in progress")]
    CheckoutInProgress,
}

/// The public waitroom state (`GET .../waitroom/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaleState {
    Prequeue,
    Open,
    SoldOut,
    Closed,
}

/// The body of `GET .../waitroom/status` (the shell answers `NOT_OPEN` for an event it has not
/// set a hub up for).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomStatus {
    pub state: SaleState,
    pub sale_opens_at: i64,
    pub queue_length: u64,
    pub admitted_last_minute: u64,
    pub estimated_wait_seconds: Option<u64>,
    pub shards: u16,
}

/// One round of the admission tick in progress. Held in memory only: a hub restart loses it,
/// which undoes the round (phase 1 wrote nothing at the hub and only raised frontiers).
#[derive(Debug, Clone)]
pub struct AdmissionRound {
    pub tick_id: u64,
    pub started_at: i64,
    /// When this hub instance started (after its last restart): a shard counts as silent
    /// only after the hub has been up and asking for a whole timeout.
    awake_since: i64,
    last_sent_at: i64,
    reports: BTreeMap<ShardIndex, HeadReport>,
}

impl AdmissionRound {
    pub fn reported(&self) -> impl Iterator<Item = ShardIndex> + '_ {
        self.reports.keys().copied()
    }
}

/// The hub's admission state: all of it is what the hub's storage holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionHub {
    event_id: String,
    shuffle_seed: u64,
    config: WaitroomConfig,
    shards: ShardCount,
    /// Never reused, so a report or answer of an older round is recognised as such.
    next_tick_id: u64,
    /// Confirmed checkouts plus slots reserved for admit picks not yet answered.
    slots_in_use: u64,
    /// Picks recorded (phase 2) but not yet answered, per shard and tick: the intent that a
    /// restart completes by sending them again.
    #[serde(with = "as_pairs")]
    pending: BTreeMap<(ShardIndex, u64), Vec<Pick>>,
    /// Stored as one row each, not in the hub's own document (up to 10,000 of them would make
    /// every save rewrite them all): see [`Self::restore_checkouts`] and
    /// [`Self::take_changed_checkouts`].
    #[serde(skip)]
    checkouts: BTreeMap<String, Checkout>,
    /// Users whose checkout changed since the shell last wrote them (a bookmark, not state).
    #[serde(skip)]
    changed_checkouts: BTreeSet<String>,
    /// Each shard's queued fans per bucket as of its last report, less the admits picked since.
    #[serde(with = "as_pairs")]
    summaries: BTreeMap<ShardIndex, BucketCounts>,
    /// Since when each shard has left a head request unanswered (absent: it answered the
    /// last one). Stored, so a round restarted after a hub restart does not wait for a silent
    /// shard all over again; per request, not per report, so a round that itself waited long
    /// does not make the healthy shards look silent in the next.
    #[serde(with = "as_pairs")]
    unanswered_since: BTreeMap<ShardIndex, i64>,
    recent_admissions: VecDeque<(i64, u64)>,
    admission_rate: Option<f64>,
    last_admission_at: Option<i64>,
    last_round_at: Option<i64>,
    /// Rounds decided without every shard's report (exact order is promised only without).
    pub rounds_with_stragglers: u64,
    /// Checkout ends not yet acknowledged by the fan's shard: sent again until they are, so a
    /// fan is never stuck as admitted in their shard (which would refuse their next join).
    #[serde(default)]
    #[serde(with = "as_pairs")]
    unacknowledged_ends: BTreeMap<(ShardIndex, Place), Option<SessionEndReason>>,
    /// The shards have not all acknowledged the current settings yet.
    #[serde(default)]
    settings_unsent: bool,
    /// Bumped by every change of settings, so an acknowledgement of older settings that
    /// arrives after a change does not count for the new ones.
    #[serde(default)]
    settings_version: u64,
    /// The last round found every shard empty and no pick in flight (see
    /// [`IDLE_TICK_INTERVAL_MS`]).
    #[serde(default)]
    idle: bool,
    /// The count was raised from this one and the moved fans are not all adopted yet: no
    /// round starts until they are (each fan must be in one shard only when admission begins).
    #[serde(default)]
    resharding_from: Option<ShardCount>,
}

impl AdmissionHub {
    pub fn new(
        event_id: &str,
        shuffle_seed: u64,
        config: WaitroomConfig,
        shards: ShardCount,
    ) -> Result<Self, HubRejection> {
        config.validate().map_err(HubRejection::InvalidConfig)?;
        Ok(Self {
            event_id: event_id.to_owned(),
            shuffle_seed,
            config,
            shards,
            next_tick_id: 1,
            slots_in_use: 0,
            pending: BTreeMap::new(),
            checkouts: BTreeMap::new(),
            changed_checkouts: BTreeSet::new(),
            summaries: BTreeMap::new(),
            unanswered_since: BTreeMap::new(),
            recent_admissions: VecDeque::new(),
            admission_rate: None,
            last_admission_at: None,
            last_round_at: None,
            rounds_with_stragglers: 0,
            unacknowledged_ends: BTreeMap::new(),
            settings_unsent: true,
            settings_version: 1,
            idle: false,
            resharding_from: None,
        })
    }

    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    pub fn shards(&self) -> ShardCount {
        self.shards
    }

    pub fn config(&self) -> &WaitroomConfig {
        &self.config
    }

    /// Admissions per second, smoothed (`None` until two rounds admitted someone).
    pub fn admission_rate(&self) -> Option<f64> {
        self.admission_rate
    }

    pub fn slots_in_use(&self) -> u64 {
        self.slots_in_use
    }

    /// Puts back the checkouts stored beside the hub's document (after a restart).
    pub fn restore_checkouts(&mut self, checkouts: impl IntoIterator<Item = (String, Checkout)>) {
        self.checkouts = checkouts.into_iter().collect();
        self.changed_checkouts.clear();
    }

    /// The checkouts changed since the last call, for the shell to write in the same step
    /// (`None`: ended, delete it).
    pub fn take_changed_checkouts(&mut self) -> Vec<(String, Option<Checkout>)> {
        std::mem::take(&mut self.changed_checkouts)
            .into_iter()
            .map(|user| {
                let checkout = self.checkouts.get(&user).cloned();
                (user, checkout)
            })
            .collect()
    }

    pub fn checkouts(&self) -> &BTreeMap<String, Checkout> {
        &self.checkouts
    }

    /// Admit picks still waiting for their shard's answer.
    pub fn pending_admits(&self) -> u64 {
        self.pending
            .values()
            .flatten()
            .filter(|p| p.is_admit())
            .count() as u64
    }

    /// The settings every shard gets.
    pub fn shard_settings(&self, shard: ShardIndex) -> ShardSettings {
        ShardSettings::of_waitroom(
            &self.event_id,
            shard,
            self.shards,
            self.shuffle_seed,
            &self.config,
        )
    }

    /// Configure messages for every shard (at set-up and after every change).
    pub fn configure_shards(&self) -> Vec<Outgoing> {
        self.shards
            .shards()
            .map(|to| Outgoing {
                to,
                message: ToShard::Configure {
                    settings: self.shard_settings(to),
                },
            })
            .collect()
    }

    /// A config change. The count may rise until the sale opens (jump hashing moves only the
    /// fans whose shard changed, to the new shards), never fall.
    pub fn reconfigure(
        &mut self,
        config: WaitroomConfig,
        shards: ShardCount,
        now: i64,
    ) -> Result<Vec<Outgoing>, HubRejection> {
        config.validate().map_err(HubRejection::InvalidConfig)?;
        if shards < self.shards || (shards > self.shards && now >= self.config.sale_starts_at) {
            return Err(HubRejection::ShardCountLocked);
        }
        if shards > self.shards && self.resharding_from.is_none() {
            self.resharding_from = Some(self.shards);
        }
        self.config = config;
        self.shards = shards;
        self.settings_unsent = true;
        self.settings_version += 1;
        Ok(self.configure_shards())
    }

    /// While a raised count's hand-over is due: the requests to every shard of the old count
    /// (each reports its fans that now belong elsewhere).
    pub fn handover_requests(&self) -> Option<Vec<Outgoing>> {
        let from = self.resharding_from?;
        Some(
            from.shards()
                .map(|to| Outgoing {
                    to,
                    message: ToShard::HandOver {
                        settings: self.shard_settings(to),
                    },
                })
                .collect(),
        )
    }

    /// The adoptions the reported fans need: each to the shard it hashes to now.
    pub fn adoptions(&self, moving: Vec<FanRecord>) -> Vec<Outgoing> {
        let mut by_shard: BTreeMap<ShardIndex, Vec<FanRecord>> = BTreeMap::new();
        for fan in moving {
            by_shard
                .entry(shard_of(fan.place.user_id(), self.shards))
                .or_default()
                .push(fan);
        }
        by_shard
            .into_iter()
            .map(|(to, fans)| Outgoing {
                to,
                message: ToShard::Adopt {
                    settings: self.shard_settings(to),
                    fans,
                },
            })
            .collect()
    }

    /// Every moved fan has been adopted: the new settings may go out (they drop the moved
    /// fans from their old shards) and rounds may start.
    pub fn handover_done(&mut self) {
        self.resharding_from = None;
    }

    /// The settings every shard still has to acknowledge, with their version (`None`: all
    /// shards have the current ones).
    pub fn unsent_settings(&self) -> Option<(u64, Vec<Outgoing>)> {
        self.settings_unsent
            .then(|| (self.settings_version, self.configure_shards()))
    }

    /// Every shard acknowledged the settings of `version`.
    pub fn settings_acknowledged(&mut self, version: u64) {
        if version == self.settings_version {
            self.settings_unsent = false;
        }
    }

    /// When the hub must act next without being asked: the next round, a retry of messages
    /// the shards have not acknowledged (`retry_ms` from now), or the first unused checkout
    /// to run out once the sale has closed (while it is open, every round expires them).
    pub fn wake_at(&self, now: i64, retry_ms: i64) -> Option<i64> {
        let retry = (self.settings_unsent || !self.unacknowledged_ends.is_empty())
            .then(|| now.saturating_add(retry_ms));
        let expiry = self
            .checkouts
            .values()
            .filter(|c| !c.order_bound)
            .map(|c| c.expires_at)
            .min();
        [self.next_round_at(now), retry, expiry]
            .into_iter()
            .flatten()
            .min()
    }

    fn closed_at(&self, now: i64) -> bool {
        self.config.cancelled || now >= self.config.sale_ends_at
    }

    /// When the next round should start: the sale's first (once every shard's frontier can
    /// have passed the sale start), then every [`TICK_INTERVAL_MS`]; none once closed. Joins
    /// land on the shards without telling the hub, so an open sale is ticked even while the
    /// last summaries showed nobody waiting.
    pub fn next_round_at(&self, now: i64) -> Option<i64> {
        // Once closed, rounds go on only to settle picks still unanswered (they admit nobody).
        if self.closed_at(now) && self.pending.is_empty() {
            return None;
        }
        if self.resharding_from.is_some() {
            return None;
        }
        let first = self.config.sale_starts_at.saturating_add(STAMP_GRACE_MS);
        let interval = if self.idle {
            IDLE_TICK_INTERVAL_MS
        } else {
            TICK_INTERVAL_MS
        };
        let next = self
            .last_round_at
            .map_or(first, |at| at.saturating_add(interval))
            .max(first);
        Some(next.max(now))
    }

    /// A shard recorded a join into its empty queue: rounds go back to every
    /// [`TICK_INTERVAL_MS`]. Returns whether that changed anything (a busy hub ignores it).
    pub fn wake(&mut self) -> bool {
        std::mem::take(&mut self.idle)
    }

    /// Whether rounds are spaced [`IDLE_TICK_INTERVAL_MS`] apart.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// How many head entries to ask of each shard: the picks of a tick spread over the shards
    /// at random (users hash uniformly), so twice the fair share plus a margin almost always
    /// covers a shard's part; when it does not, the merge's cut keeps the order exact and the
    /// tick admits fewer.
    fn head_request_size(&self, wanted: u64) -> u64 {
        let shards = u64::from(self.shards.get());
        if shards == 1 {
            return wanted;
        }
        (wanted.saturating_mul(2).div_ceil(shards) + 16).min(wanted)
    }

    fn wanted(&self) -> u64 {
        u64::from(self.config.max_concurrent_checkouts)
            .saturating_sub(self.slots_in_use)
            .min(u64::from(self.config.admission_batch))
    }

    /// The other shards' summed summary, for `shard`'s positions; `None` until every shard
    /// has reported once (a partial sum would show fans too far ahead).
    fn others_summary(&self, shard: ShardIndex) -> Option<BucketCounts> {
        if self.summaries.len() < usize::from(self.shards.get()) {
            return None;
        }
        let mut others = BucketCounts::new();
        for (from, counts) in &self.summaries {
            if *from != shard {
                others.merge(counts);
            }
        }
        Some(others)
    }

    /// Phase 1: a new round asks every shard for its head; unanswered picks are sent again.
    /// `awake_since` is when this hub instance started (the shell keeps it in memory).
    pub fn start_round(&mut self, awake_since: i64, now: i64) -> (AdmissionRound, Vec<Outgoing>) {
        let tick_id = self.next_tick_id;
        self.next_tick_id += 1;
        self.last_round_at = Some(now);
        for shard in self.shards.shards() {
            self.unanswered_since.entry(shard).or_insert(now);
        }
        let round = AdmissionRound {
            tick_id,
            started_at: now,
            awake_since,
            last_sent_at: now,
            reports: BTreeMap::new(),
        };
        let mut out = self.head_requests(&round);
        out.extend(self.admit_requests());
        (round, out)
    }

    fn head_requests(&self, round: &AdmissionRound) -> Vec<Outgoing> {
        let share = self.head_request_size(self.wanted());
        self.shards
            .shards()
            .filter(|s| !round.reports.contains_key(s))
            .map(|to| {
                let pending = self
                    .pending
                    .range((to, 0)..=(to, u64::MAX))
                    .map(|(_, picks)| picks.len() as u64)
                    .sum::<u64>();
                Outgoing {
                    to,
                    message: ToShard::Heads {
                        event_id: self.event_id.clone(),
                        tick_id: round.tick_id,
                        want: share + pending,
                        others: self.others_summary(to),
                        admission_rate: self.admission_rate,
                    },
                }
            })
            .collect()
    }

    fn admit_requests(&self) -> Vec<Outgoing> {
        self.pending
            .iter()
            .map(|((to, tick_id), picks)| Outgoing {
                to: *to,
                message: ToShard::Admit {
                    event_id: self.event_id.clone(),
                    tick_id: *tick_id,
                    picks: picks.clone(),
                },
            })
            .collect()
    }

    /// What to send again while a round waits: head requests to shards that have not
    /// reported and every unanswered admit request, at most every [`RESEND_AFTER_MS`].
    pub fn resend(&self, round: &mut AdmissionRound, now: i64) -> Vec<Outgoing> {
        if now.saturating_sub(round.last_sent_at) < RESEND_AFTER_MS {
            return Vec::new();
        }
        round.last_sent_at = now;
        let mut out = self.head_requests(round);
        out.extend(self.admit_requests());
        out
    }

    fn check_shard(&self, event_id: &str, shard: ShardIndex) -> Result<(), HubRejection> {
        if event_id != self.event_id || shard.0 >= self.shards.get() {
            return Err(HubRejection::Mismatch);
        }
        Ok(())
    }

    /// A head report. One for another round (late or duplicated) only tells that the shard
    /// is answering again.
    pub fn accept_report(
        &mut self,
        round: &mut AdmissionRound,
        report: HeadReport,
    ) -> Result<(), HubRejection> {
        self.check_shard(&report.event_id, report.shard)?;
        if report.tick_id == round.tick_id {
            self.unanswered_since.remove(&report.shard);
            round.reports.insert(report.shard, report);
        }
        Ok(())
    }

    /// Whether the round can be decided: every shard reported, except those that have left
    /// head requests unanswered for [`STRAGGLER_TIMEOUT_MS`] while this hub instance was up,
    /// which are left out.
    pub fn round_ready(&self, round: &AdmissionRound, now: i64) -> bool {
        self.shards.shards().all(|s| {
            let asked = self
                .unanswered_since
                .get(&s)
                .copied()
                .unwrap_or(round.started_at);
            round.reports.contains_key(&s)
                || now.saturating_sub(asked.max(round.awake_since)) >= STRAGGLER_TIMEOUT_MS
        })
    }

    /// Phase 2: picks the globally earliest places the reports prove safe, records them as
    /// the intent (slots reserved), and returns the admit requests.
    ///
    /// A place is safe when no shard can still hold or record an earlier one: it is below
    /// every reporting shard's frontier (later joins sort after it) and not beyond the last
    /// entry of any report that was cut short (that shard may hold more before it).
    pub fn decide(&mut self, round: AdmissionRound, now: i64) -> Vec<Outgoing> {
        if self
            .shards
            .shards()
            .any(|s| !round.reports.contains_key(&s))
        {
            self.rounds_with_stragglers += 1;
        }
        if round.reports.is_empty() || self.closed_at(now) {
            return Vec::new();
        }
        let pending: BTreeSet<&Place> = self.pending.values().flatten().map(Pick::place).collect();
        let mut frontier = i64::MAX;
        let mut cut: Option<&Place> = None;
        let mut blocked = false;
        for report in round.reports.values() {
            frontier = frontier.min(report.frontier);
            if report.more {
                match report.head.last() {
                    Some(last) => cut = Some(cut.map_or(&last.place, |c| c.min(&last.place))),
                    None => blocked = true,
                }
            }
        }
        let mut candidates: Vec<(&Place, bool, ShardIndex)> = round
            .reports
            .values()
            .flat_map(|r| r.head.iter().map(move |e| (&e.place, e.idle, r.shard)))
            // A report can predate the answer that settled an earlier pick: neither a pick in
            // flight nor a fan already in checkout is picked again.
            .filter(|(place, _, _)| {
                !pending.contains(place)
                    && self
                        .checkouts
                        .get(place.user_id())
                        .is_none_or(|c| &c.place != *place)
            })
            .collect();
        candidates.sort();

        let wanted = self.wanted();
        let expires_at = now.saturating_add(i64::from(self.config.checkout_ttl_seconds) * 1_000);
        let mut picks: BTreeMap<ShardIndex, Vec<Pick>> = BTreeMap::new();
        let mut admitted = 0u64;
        let mut skipped = 0usize;
        for (place, idle, shard) in candidates {
            let safe = !blocked
                && cut.is_none_or(|c| place <= c)
                && place.is_sealed_by(frontier, self.config.sale_starts_at);
            if !safe || admitted >= wanted || skipped >= HEAD_SCAN_LIMIT {
                break;
            }
            let pick = if idle {
                skipped += 1;
                Pick::SkipIfIdle {
                    place: place.clone(),
                }
            } else {
                admitted += 1;
                Pick::Admit {
                    place: place.clone(),
                    checkout_expires_at: expires_at,
                }
            };
            picks.entry(shard).or_default().push(pick);
        }

        let mut out = Vec::new();
        for (to, shard_picks) in picks {
            out.push(Outgoing {
                to,
                message: ToShard::Admit {
                    event_id: self.event_id.clone(),
                    tick_id: round.tick_id,
                    picks: shard_picks.clone(),
                },
            });
            self.pending.insert((to, round.tick_id), shard_picks);
        }
        self.slots_in_use += admitted;
        for (shard, report) in round.reports {
            let mut summary = report.summary;
            for ((_, _), shard_picks) in self.pending.range((shard, 0)..=(shard, u64::MAX)) {
                for pick in shard_picks.iter().filter(|p| p.is_admit()) {
                    summary.remove(pick.place().bucket(), 1);
                }
            }
            self.summaries.insert(shard, summary);
        }
        if admitted > 0 {
            self.record_admissions(admitted, now);
        }
        // Nobody waiting anywhere (every shard reported) and nothing in flight: slow down.
        self.idle = self.summaries.len() == usize::from(self.shards.get())
            && self.queue_length() == 0
            && self.pending.is_empty();
        out
    }

    fn record_admissions(&mut self, admitted: u64, now: i64) {
        if let Some(previous) = self.last_admission_at {
            let gap_ms = now.saturating_sub(previous).max(1);
            let measured = admitted as f64 * 1_000.0 / gap_ms as f64;
            self.admission_rate = Some(match self.admission_rate {
                Some(rate) => rate + RATE_SMOOTHING * (measured - rate),
                None => measured,
            });
        }
        self.last_admission_at = Some(now);
        self.recent_admissions.push_back((now, admitted));
        while self
            .recent_admissions
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) >= MINUTE_MS)
        {
            self.recent_admissions.pop_front();
        }
    }

    /// Settles one shard's answer to a tick's picks: confirmed fans get their checkout, the
    /// slots of withdrawn ones go back. A duplicate or stale answer changes nothing; an answer
    /// that does not account for every pick is refused and the picks stay pending.
    pub fn accept_answer(&mut self, answer: &AdmitAnswer) -> Result<(), HubRejection> {
        self.check_shard(&answer.event_id, answer.shard)?;
        let key = (answer.shard, answer.tick_id);
        let Some(picks) = self.pending.get(&key) else {
            return Ok(());
        };
        let confirmed: BTreeMap<&Place, &str> = answer
            .confirmed
            .iter()
            .map(|h| (&h.place, h.session_id.as_str()))
            .collect();
        let withdrawn: BTreeSet<&Place> = answer.withdrawn.iter().collect();
        let settled_skip = |p: &Place| answer.skipped.contains(p) || answer.kept.contains(p);
        let complete = picks.iter().all(|pick| match pick {
            Pick::Admit { place, .. } => confirmed.contains_key(place) != withdrawn.contains(place),
            Pick::SkipIfIdle { place } => settled_skip(place) || withdrawn.contains(place),
        });
        if !complete {
            return Err(HubRejection::Mismatch);
        }
        let Some(picks) = self.pending.remove(&key) else {
            return Ok(());
        };
        for pick in picks {
            if let Pick::Admit {
                place,
                checkout_expires_at,
            } = pick
            {
                let session_id = confirmed.get(&place).map(|s| (*s).to_owned());
                if let (Some(session_id), false) =
                    (session_id, self.checkouts.contains_key(place.user_id()))
                {
                    self.changed_checkouts.insert(place.user_id().to_owned());
                    self.checkouts.insert(
                        place.user_id().to_owned(),
                        Checkout {
                            session_id,
                            place,
                            shard: answer.shard,
                            expires_at: checkout_expires_at,
                            order_bound: false,
                            order_id: None,
                        },
                    );
                } else {
                    // Withdrawn (or, impossibly, a second live checkout for one user): the
                    // slot reserved at the pick goes back.
                    self.slots_in_use = self.slots_in_use.saturating_sub(1);
                }
            }
        }
        Ok(())
    }

    /// An order was placed with the fan's checkout: the slot stays until the order resolves.
    pub fn bind_order(&mut self, user_id: &str) -> bool {
        match self.checkouts.get_mut(user_id) {
            Some(checkout) => {
                checkout.order_bound = true;
                self.changed_checkouts.insert(user_id.to_owned());
                true
            }
            None => false,
        }
    }

    /// Binds order `order_id` to the checkout that `session_id` (the token's `sid`) names.
    /// A retried bind of the same order is accepted again; the token's own expiry is checked
    /// here too, since an overdue checkout may not be swept yet.
    pub fn bind_checkout(
        &mut self,
        user_id: &str,
        session_id: &str,
        order_id: &str,
        now: i64,
    ) -> Result<(), BindRefusal> {
        let elsewhere = self
            .checkouts
            .iter()
            .any(|(user, c)| user != user_id && c.order_id.as_deref() == Some(order_id));
        let checkout = self
            .checkouts
            .get_mut(user_id)
            .filter(|c| c.session_id == session_id)
            .ok_or(BindRefusal::CheckoutNotActive)?;
        match checkout.order_id.as_deref() {
            Some(bound) if bound == order_id => return Ok(()),
            Some(_) => return Err(BindRefusal::CheckoutAlreadyBound),
            None => {}
        }
        if now >= checkout.expires_at {
            return Err(BindRefusal::CheckoutNotActive);
        }
        if elsewhere {
            return Err(BindRefusal::OrderAlreadyBound);
        }
        checkout.order_bound = true;
        checkout.order_id = Some(order_id.to_owned());
        self.changed_checkouts.insert(user_id.to_owned());
        Ok(())
    }

    fn user_of_order(&self, order_id: &str) -> Option<String> {
        self.checkouts
            .iter()
            .find(|(_, c)| c.order_id.as_deref() == Some(order_id))
            .map(|(user, _)| user.clone())
    }

    /// The saga resolved order `order_id`: its checkout ends. Unknown orders are a no-op
    /// (at-least-once delivery, or an order placed without the waitroom).
    pub fn resolve_order(&mut self, order_id: &str, reason: SessionEndReason) -> Option<Outgoing> {
        let user = self.user_of_order(order_id)?;
        self.release(&user, reason)
    }

    /// The hold of order `order_id` expired. Its checkout ends now if its own deadline has
    /// passed too (the token could not be used again, whatever the saga decides; with the
    /// defaults that is every expiry); otherwise it stays bound until the saga, which knows
    /// whether the buyer saw a payment page, ends it ([`Self::resolve_order`]) or gives it
    /// back ([`Self::unbind_order`]).
    pub fn hold_expired(&mut self, order_id: &str, now: i64) -> Option<Outgoing> {
        let user = self.user_of_order(order_id)?;
        if self.checkouts.get(&user)?.expires_at > now {
            return None;
        }
        self.release(&user, SessionEndReason::OrderExpired)
    }

    /// The order gave its checkout back without resolving it (its hold was refused after the
    /// bind): the checkout stays the fan's until its token runs out, and goes at once if it
    /// already has.
    pub fn unbind_order(&mut self, order_id: &str, now: i64) -> Option<Outgoing> {
        let user = self.user_of_order(order_id)?;
        let checkout = self.checkouts.get_mut(&user)?;
        checkout.order_bound = false;
        checkout.order_id = None;
        self.changed_checkouts.insert(user.clone());
        if now >= checkout.expires_at {
            return self.release(&user, SessionEndReason::CheckoutTokenExpired);
        }
        None
    }

    fn release(&mut self, user_id: &str, reason: SessionEndReason) -> Option<Outgoing> {
        let checkout = self.checkouts.remove(user_id)?;
        self.changed_checkouts.insert(user_id.to_owned());
        self.slots_in_use = self.slots_in_use.saturating_sub(1);
        self.unacknowledged_ends
            .insert((checkout.shard, checkout.place.clone()), Some(reason));
        Some(Outgoing {
            to: checkout.shard,
            message: ToShard::CheckoutEnded {
                event_id: self.event_id.clone(),
                place: checkout.place,
                reason: Some(reason),
            },
        })
    }

    /// Every checkout end a shard has not acknowledged yet, to send (again): one message per
    /// shard and [`ENDS_PER_MESSAGE`] ends, so a wave of 10,000 ended checkouts is a few calls,
    /// not 10,000.
    pub fn unacknowledged_ends(&self) -> Vec<Outgoing> {
        let mut by_shard: BTreeMap<ShardIndex, Vec<EndedCheckout>> = BTreeMap::new();
        for ((to, place), reason) in &self.unacknowledged_ends {
            by_shard.entry(*to).or_default().push(EndedCheckout {
                place: place.clone(),
                reason: *reason,
            });
        }
        by_shard
            .into_iter()
            .flat_map(|(to, ends)| {
                ends.chunks(ENDS_PER_MESSAGE)
                    .map(|chunk| Outgoing {
                        to,
                        message: ToShard::CheckoutsEnded {
                            event_id: self.event_id.clone(),
                            ends: chunk.to_vec(),
                        },
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// How many checkout ends wait for their shard's acknowledgement.
    pub fn unacknowledged_end_count(&self) -> usize {
        self.unacknowledged_ends.len()
    }

    /// Shard `shard` applied the end of `place` (idempotent on its side).
    pub fn end_acknowledged(&mut self, shard: ShardIndex, place: &Place) {
        self.unacknowledged_ends.remove(&(shard, place.clone()));
    }

    /// The checkout of `user_id`, if it is live.
    pub fn checkout_of(&self, user_id: &str) -> Option<&Checkout> {
        self.checkouts.get(user_id)
    }

    /// The saga resolved the fan's order (completed, failed, cancelled, expired): the slot is
    /// free and the fan's shard is told. At-least-once: an unknown fan is a no-op.
    pub fn checkout_resolved(&mut self, user_id: &str) -> Option<Outgoing> {
        self.release(user_id, SessionEndReason::Completed)
    }

    /// The fan gives up an unused checkout (their shard forwarded the leave).
    pub fn leave_checkout(&mut self, user_id: &str) -> Result<Option<Outgoing>, HubRejection> {
        if self.checkouts.get(user_id).is_some_and(|c| c.order_bound) {
            return Err(HubRejection::CheckoutInProgress);
        }
        Ok(self.release(user_id, SessionEndReason::Left))
    }

    /// Ends unused checkouts whose token expired.
    pub fn expire_checkouts(&mut self, now: i64) -> Vec<Outgoing> {
        let overdue: Vec<String> = self
            .checkouts
            .iter()
            .filter(|(_, c)| !c.order_bound && c.expires_at <= now)
            .map(|(user, _)| user.clone())
            .collect();
        overdue
            .iter()
            .filter_map(|u| self.release(u, SessionEndReason::CheckoutTokenExpired))
            .collect()
    }

    /// Fans waiting in every shard, from the summaries.
    pub fn queue_length(&self) -> u64 {
        self.summaries.values().map(BucketCounts::total).sum()
    }

    /// The public status at `now`; `sold_out` comes from the inventory the hub also holds.
    pub fn status(&self, now: i64, sold_out: bool) -> WaitroomStatus {
        let state = if self.closed_at(now) {
            SaleState::Closed
        } else if sold_out {
            SaleState::SoldOut
        } else if now < self.config.sale_starts_at {
            SaleState::Prequeue
        } else {
            SaleState::Open
        };
        let open = matches!(state, SaleState::Prequeue | SaleState::Open);
        let queue_length = if open { self.queue_length() } else { 0 };
        WaitroomStatus {
            state,
            sale_opens_at: self.config.sale_starts_at,
            queue_length,
            admitted_last_minute: self
                .recent_admissions
                .iter()
                .filter(|(at, _)| now.saturating_sub(*at) < MINUTE_MS)
                .map(|(_, n)| n)
                .sum(),
            estimated_wait_seconds: if open {
                estimated_wait_seconds(queue_length + 1, self.admission_rate)
            } else {
                None
            },
            shards: self.shards.get(),
        }
    }
}

/// Maps with structured keys stored as a list of pairs (JSON object keys must be strings).
mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Vec::<(K, V)>::deserialize(deserializer).map(|pairs| pairs.into_iter().collect())
    }
}
