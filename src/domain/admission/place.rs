//! Where a fan stands across queue shards: the arrival stamp, the place (the one total order
//! admission follows), the pre-queue draw, the shard of a user and the buckets positions count in.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most queue shards an event may have (`eventConfig.waitroom.shards`).
pub const MAX_SHARDS: u16 = 64;
/// A shard records an edge stamp at most this far from its own clock, either way: it bounds
/// what a skewed edge clock (or a slow delivery) can win or lose, and how long admission waits
/// for joins still in flight (see [`super::shard::ShardQueue::report_head`]).
pub const STAMP_GRACE_MS: i64 = 1_000;
/// Width of an arrival bucket in the per-shard summaries the hub keeps for positions.
pub const ARRIVAL_BUCKET_MS: i64 = 1_000;
/// The pre-queue's draws are bucketed by their top bits: 1,024 buckets.
pub const PREQUEUE_BUCKET_BITS: u32 = 10;

/// How many queue shards an event has: parsed once, 1..=[`MAX_SHARDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct ShardCount(u16);

impl ShardCount {
    pub const ONE: Self = Self(1);

    pub fn new(count: u16) -> Option<Self> {
        (1..=MAX_SHARDS).contains(&count).then_some(Self(count))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// Every shard of the event, in index order.
    pub fn shards(self) -> impl Iterator<Item = ShardIndex> {
        (0..self.0).map(ShardIndex)
    }
}

impl TryFrom<u16> for ShardCount {
    type Error = &'static str;
    fn try_from(count: u16) -> Result<Self, Self::Error> {
        Self::new(count).ok_or("shards must be between 1 and 64")
    }
}

impl From<ShardCount> for u16 {
    fn from(count: ShardCount) -> u16 {
        count.0
    }
}

/// One of an event's queue shards, `0..count`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct ShardIndex(pub u16);

/// The shard that holds a user's place, for every join, poll, leave and socket of that user.
///
/// Jump consistent hashing (Lamping and Veach, 2014) over the first 8 bytes of SHA-256 of the
/// user id: stable across builds and platforms (unlike `std`'s hasher), uniform, and when the
/// count is raised (allowed until the sale opens) only the users who must move do, each to one
/// of the new shards, so a raise hands over about `1 − old/new` of the pre-queue and no more.
pub fn shard_of(user_id: &str, count: ShardCount) -> ShardIndex {
    let digest = Sha256::digest(user_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let mut key = u64::from_be_bytes(first);
    let buckets = i64::from(count.get());
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < buckets {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let step = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * step) as i64;
    }
    ShardIndex(u16::try_from(bucket.max(0)).unwrap_or(0))
}

/// Durable Object location hints Cloudflare accepts.
pub const LOCATION_HINTS: [&str; 9] = [
    "wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me",
];

/// The location hint shard `shard` is created with, from `QUEUE_SHARD_LOCATION_HINTS` (a
/// comma list, taken round-robin by shard index): an event that sells to Hanoi and Ho Chi Minh
/// City keeps its shards near those fans. `None` (no list, or an unknown hint, which the
/// configuration check reports): the shard is created near its first caller. A hint only
/// matters when the object is created; later calls reach it wherever it is.
pub fn location_hint(hints: &str, shard: ShardIndex) -> Option<&str> {
    let hints: Vec<&str> = hints
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hints.is_empty() {
        return None;
    }
    let hint = hints[usize::from(shard.0) % hints.len()];
    LOCATION_HINTS.contains(&hint).then_some(hint)
}

/// The entries of a `QUEUE_SHARD_LOCATION_HINTS` list that are no hint Cloudflare knows.
pub fn unknown_location_hints(hints: &str) -> Vec<String> {
    hints
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty() && !LOCATION_HINTS.contains(h))
        .map(str::to_owned)
        .collect()
}

/// A join as the edge Worker stamped it: its clock in unix ms and a random tie-break (from the
/// Worker's secure random source), so fans of the same millisecond are ordered at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrivalStamp {
    pub at_ms: i64,
    pub tie_break: u64,
}

/// A fan's place in the admission order of the whole event, across every shard.
///
/// The derived order *is* the admission order: every pre-queue place (by its draw: the
/// shuffle) before every queue place (by arrival ms, then tie-break); the user id comes last,
/// so two fans never compare equal. A place is also the identity of one stay in the queue: a
/// fan who leaves and joins again after the sale opened gets a new place, so a message about
/// the old one can never touch the new one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(
    tag = "lane",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Place {
    Prequeue {
        draw: u64,
        user_id: String,
    },
    Queue {
        at_ms: i64,
        tie_break: u64,
        user_id: String,
    },
}

impl Place {
    /// The place as text whose byte order is the admission order (pre-queue `p:` before queue
    /// `q:`, numbers zero-padded), for consumers that cannot hold a `u64` exactly (JSON in
    /// JavaScript): the flash-crowd checker compares admissions across shards with it.
    pub fn arrival_key(&self) -> String {
        match self {
            Place::Prequeue { draw, user_id } => format!("p:{draw:020}:{user_id}"),
            Place::Queue {
                at_ms,
                tie_break,
                user_id,
            } => format!(
                "q:{:020}:{tie_break:020}:{user_id}",
                // The sign bit flipped: signed order as unsigned order.
                (*at_ms as u64) ^ (1 << 63)
            ),
        }
    }

    pub fn user_id(&self) -> &str {
        match self {
            Self::Prequeue { user_id, .. } | Self::Queue { user_id, .. } => user_id,
        }
    }

    pub fn is_prequeue(&self) -> bool {
        matches!(self, Self::Prequeue { .. })
    }

    /// The summary bucket this place is counted in.
    pub fn bucket(&self) -> Bucket {
        match self {
            Self::Prequeue { draw, .. } => {
                Bucket::Prequeue((draw >> (64 - PREQUEUE_BUCKET_BITS)) as u16)
            }
            Self::Queue { at_ms, .. } => Bucket::Arrival(at_ms.div_euclid(ARRIVAL_BUCKET_MS)),
        }
    }

    /// How far into its bucket the place sorts, in `[0, 1)`: arrivals within a second and
    /// draws within a bucket are close to uniform, so this share of another shard's count in
    /// the same bucket is the expected number of them ahead.
    pub fn share_of_bucket(&self) -> f64 {
        match self {
            Self::Prequeue { draw, .. } => {
                let within = draw & (u64::MAX >> PREQUEUE_BUCKET_BITS);
                within as f64 / (1u64 << (64 - PREQUEUE_BUCKET_BITS)) as f64
            }
            Self::Queue { at_ms, .. } => {
                at_ms.rem_euclid(ARRIVAL_BUCKET_MS) as f64 / ARRIVAL_BUCKET_MS as f64
            }
        }
    }

    /// Whether this place sorts before every key a shard that promised `frontier` may still
    /// record: only then may it be admitted ahead of that shard's future joins.
    pub fn is_sealed_by(&self, frontier: i64, sale_starts_at: i64) -> bool {
        match self {
            // No shard records a pre-queue place once its frontier passed the sale start.
            Self::Prequeue { .. } => frontier >= sale_starts_at,
            Self::Queue { at_ms, .. } => *at_ms < frontier,
        }
    }
}

/// A group of places counted together in a shard's summary: pre-queue draws by their top bits,
/// arrivals by [`ARRIVAL_BUCKET_MS`]. Ordered like the places in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Bucket {
    Prequeue(u16),
    Arrival(i64),
}

impl Bucket {
    /// The smallest place the bucket can hold (an empty user id sorts first).
    pub fn first_place(self) -> Place {
        match self {
            Self::Prequeue(top) => Place::Prequeue {
                draw: u64::from(top) << (64 - PREQUEUE_BUCKET_BITS),
                user_id: String::new(),
            },
            Self::Arrival(bucket) => Place::Queue {
                at_ms: bucket.saturating_mul(ARRIVAL_BUCKET_MS),
                tie_break: 0,
                user_id: String::new(),
            },
        }
    }
}

/// Queued fans per bucket: a shard's summary, or the sum of several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(Bucket, u64)>", into = "Vec<(Bucket, u64)>")]
pub struct BucketCounts(BTreeMap<Bucket, u64>);

impl BucketCounts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, bucket: Bucket, count: u64) {
        if count > 0 {
            *self.0.entry(bucket).or_insert(0) += count;
        }
    }

    /// Takes up to `count` out of `bucket` (a summary never goes below zero).
    pub fn remove(&mut self, bucket: Bucket, count: u64) {
        if let Some(held) = self.0.get_mut(&bucket) {
            *held = held.saturating_sub(count);
            if *held == 0 {
                self.0.remove(&bucket);
            }
        }
    }

    pub fn get(&self, bucket: Bucket) -> u64 {
        self.0.get(&bucket).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Fans in buckets strictly before `bucket`.
    pub fn before(&self, bucket: Bucket) -> u64 {
        self.0.range(..bucket).map(|(_, n)| n).sum()
    }

    /// How many of the counted places sort before `place`, estimated: whole earlier buckets,
    /// plus the share of the place's own bucket its offset into it predicts. Off by at most
    /// the count of that one bucket.
    pub fn estimated_ahead(&self, place: &Place) -> u64 {
        let bucket = place.bucket();
        let same_bucket = self.get(bucket) as f64 * place.share_of_bucket();
        self.before(bucket) + same_bucket.round() as u64
    }

    pub fn merge(&mut self, other: &BucketCounts) {
        for (bucket, count) in &other.0 {
            self.add(*bucket, *count);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Bucket, u64)> + '_ {
        self.0.iter().map(|(b, n)| (*b, *n))
    }
}

impl From<Vec<(Bucket, u64)>> for BucketCounts {
    fn from(pairs: Vec<(Bucket, u64)>) -> Self {
        let mut counts = Self::new();
        for (bucket, count) in pairs {
            counts.add(bucket, count);
        }
        counts
    }
}

impl From<BucketCounts> for Vec<(Bucket, u64)> {
    fn from(counts: BucketCounts) -> Self {
        counts.0.into_iter().collect()
    }
}

/// A pre-queued fan's draw: HMAC-SHA256 keyed by the event's shuffle seed over the event and
/// user id, first 8 bytes.
///
/// Sorting every pre-queued fan by an independent uniform draw is one uniform permutation of
/// the whole pre-queue, whichever shard holds each fan, and shards merge it exactly like
/// arrival keys, with no shard ever seeing another's fans. Keyed by a seed the event keeps
/// secret until the sale opens, nobody can predict a draw; fixed per user, leaving and joining
/// again before the sale re-rolls nothing; and an audit with the seed replays the order.
pub fn prequeue_draw(shuffle_seed: u64, event_id: &str, user_id: &str) -> u64 {
    // HMAC takes any key length; a 64-byte key (one SHA-256 block) makes `new` infallible.
    let mut key = [0u8; 64];
    key[..8].copy_from_slice(&shuffle_seed.to_be_bytes());
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key.into());
    mac.update(event_id.as_bytes());
    mac.update(&[0]);
    mac.update(user_id.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&tag[..8]);
    u64::from_be_bytes(first)
}

/// The arrival ms a shard records for an edge stamp: within [`STAMP_GRACE_MS`] of the shard's
/// clock and never below what the shard promised the hub (`frontier`), so a late or skewed
/// stamp can never sort ahead of fans already admitted.
pub fn recorded_arrival_ms(stamped_at: i64, frontier: i64, now: i64) -> i64 {
    let lowest = frontier.max(now.saturating_sub(STAMP_GRACE_MS));
    let highest = now.saturating_add(STAMP_GRACE_MS).max(lowest);
    stamped_at.clamp(lowest, highest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_take_the_hints_round_robin_and_an_unknown_one_is_none() {
        use super::{location_hint, unknown_location_hints, ShardIndex};
        assert_eq!(location_hint("", ShardIndex(3)), None);
        assert_eq!(location_hint("apac, oc", ShardIndex(0)), Some("apac"));
        assert_eq!(location_hint("apac, oc", ShardIndex(1)), Some("oc"));
        assert_eq!(location_hint("apac, oc", ShardIndex(4)), Some("apac"));
        assert_eq!(location_hint("apac,hanoi", ShardIndex(1)), None);
        assert_eq!(
            unknown_location_hints("apac, hanoi ,oc"),
            vec!["hanoi".to_owned()]
        );
    }

    proptest::proptest! {
        #[test]
        fn arrival_keys_sort_as_places_do(
            a in (proptest::bool::ANY, proptest::num::i64::ANY, proptest::num::u64::ANY, "[a-f0-9]{1,8}"),
            b in (proptest::bool::ANY, proptest::num::i64::ANY, proptest::num::u64::ANY, "[a-f0-9]{1,8}"),
        ) {
            let place = |(pre, at_ms, n, user_id): (bool, i64, u64, String)| if pre {
                super::Place::Prequeue { draw: n, user_id }
            } else {
                super::Place::Queue { at_ms, tie_break: n, user_id }
            };
            let (a, b) = (place(a), place(b));
            proptest::prop_assert_eq!(a.cmp(&b), a.arrival_key().cmp(&b.arrival_key()));
        }
    }

    use super::*;

    fn queue_place(at_ms: i64, tie_break: u64, user: &str) -> Place {
        Place::Queue {
            at_ms,
            tie_break,
            user_id: user.into(),
        }
    }

    #[test]
    fn pre_queue_places_sort_before_every_queue_place() {
        let pre = Place::Prequeue {
            draw: u64::MAX,
            user_id: "z".into(),
        };
        assert!(pre < queue_place(i64::MIN, 0, ""));
    }

    #[test]
    fn queue_places_sort_by_ms_then_tie_break_then_user() {
        assert!(queue_place(5, 9, "a") < queue_place(6, 0, "a"));
        assert!(queue_place(5, 1, "z") < queue_place(5, 2, "a"));
        assert!(queue_place(5, 1, "a") < queue_place(5, 1, "b"));
    }

    #[test]
    fn a_user_always_lands_on_the_same_shard_within_range() {
        for count in 1..=MAX_SHARDS {
            let count = ShardCount::new(count).expect("in range");
            for user in ["u-1", "u-2", "someone@example", ""] {
                let shard = shard_of(user, count);
                assert!(shard.0 < count.get());
                assert_eq!(shard, shard_of(user, count));
            }
        }
    }

    #[test]
    fn users_spread_evenly_over_shards() {
        let count = ShardCount::new(32).expect("in range");
        let mut per_shard = [0u32; 32];
        for i in 0..64_000 {
            per_shard[usize::from(shard_of(&format!("user-{i}"), count).0)] += 1;
        }
        // 2,000 expected per shard; 5 standard deviations is about ±220.
        for n in per_shard {
            assert!((1_780..=2_220).contains(&n), "{per_shard:?}");
        }
    }

    #[test]
    fn raising_the_shard_count_moves_users_only_to_the_new_shards() {
        let four = ShardCount::new(4).expect("in range");
        let six = ShardCount::new(6).expect("in range");
        let mut moved = 0;
        for i in 0..6_000 {
            let user = format!("user-{i}");
            let (before, after) = (shard_of(&user, four), shard_of(&user, six));
            if before != after {
                assert!(after.0 >= 4, "{user} moved between old shards");
                moved += 1;
            }
        }
        // A third of the users should move (1 − 4/6).
        assert!((1_800..=2_200).contains(&moved), "{moved}");
    }

    #[test]
    fn shard_counts_outside_one_to_sixty_four_are_refused() {
        assert!(ShardCount::new(0).is_none());
        assert!(ShardCount::new(65).is_none());
        assert!(serde_json::from_str::<ShardCount>("0").is_err());
        assert_eq!(
            serde_json::from_str::<ShardCount>("8").ok(),
            ShardCount::new(8)
        );
    }

    #[test]
    fn the_draw_is_fixed_per_user_and_seed_and_differs_between_them() {
        let a = prequeue_draw(7, "ev", "u1");
        assert_eq!(a, prequeue_draw(7, "ev", "u1"));
        assert_ne!(a, prequeue_draw(8, "ev", "u1"));
        assert_ne!(a, prequeue_draw(7, "ev", "u2"));
        assert_ne!(a, prequeue_draw(7, "ev2", "u1"));
    }

    #[test]
    fn a_stamp_is_recorded_within_the_grace_and_never_below_the_frontier() {
        let now = 100_000;
        assert_eq!(recorded_arrival_ms(now - 300, 0, now), now - 300);
        assert_eq!(
            recorded_arrival_ms(now - 60_000, 0, now),
            now - STAMP_GRACE_MS
        );
        assert_eq!(
            recorded_arrival_ms(now + 60_000, 0, now),
            now + STAMP_GRACE_MS
        );
        assert_eq!(recorded_arrival_ms(now - 900, now - 500, now), now - 500);
    }

    #[test]
    fn buckets_hold_their_places_and_count_what_comes_before() {
        let place = queue_place(2_500, 3, "u");
        let bucket = place.bucket();
        assert_eq!(bucket, Bucket::Arrival(2));
        assert!(bucket.first_place() <= place);
        assert!(queue_place(1_999, u64::MAX, "zz") < bucket.first_place());
        assert_eq!(place.share_of_bucket(), 0.5);
        let pre = Place::Prequeue {
            draw: (3u64 << 54) | (1u64 << 53),
            user_id: "p".into(),
        };
        assert_eq!(pre.bucket(), Bucket::Prequeue(3));
        assert_eq!(pre.share_of_bucket(), 0.5);
        let mut counts = BucketCounts::new();
        counts.add(Bucket::Prequeue(3), 4);
        counts.add(Bucket::Arrival(1), 2);
        counts.add(Bucket::Arrival(2), 5);
        assert_eq!(counts.before(Bucket::Arrival(2)), 6);
        counts.remove(Bucket::Arrival(2), 9);
        assert_eq!(counts.total(), 6);
        let json = serde_json::to_string(&counts).expect("serializes");
        assert_eq!(
            serde_json::from_str::<BucketCounts>(&json).ok(),
            Some(counts)
        );
    }
}
