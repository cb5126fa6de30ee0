//! What a queue shard publishes for a second so that the Worker answers a queued fan's poll
//! without calling the shard: its counts, the hub's summary of the others, and how far the hub
//! has picked from it. A queued fan after that point is still queued in the place the shard last
//! told the Worker (a tick only touches the head; only the fan's own join or leave, which go
//! through the Worker, change anyone else), so the Worker needs only the fan's record (from the
//! fan's last call that reached the shard) and this snapshot.
//!
//! The position is an estimate even for the fan's own shard: whole buckets exactly, the fan's
//! own bucket (one second of arrivals) by its offset into it. With the snapshot's age (at most
//! a second in the caches) the bound is: off by at most the fans who arrived in the same second
//! as the fan, across all shards, plus the admissions and departures of the last two seconds.

use serde::{Deserialize, Serialize};

use super::place::{BucketCounts, Place, ShardCount, ShardIndex};
use super::shard::{FanRecord, FanStatus, ShardClosure, ShardView};
use crate::domain::waitroom::estimated_wait_seconds;

/// The position to show a fan who was last shown `shown` for the same stay. A fan's true
/// position never rises (everyone who arrives later queues behind them; everyone who goes was
/// ahead), so an estimate above what was shown is the estimate's error (another shard's
/// summary catching up with the fan's own arrival second), and the lower one stays.
pub fn shown_position(shown: Option<u64>, estimate: Option<u64>) -> Option<u64> {
    match (shown, estimate) {
        (Some(shown), Some(estimate)) => Some(shown.min(estimate)),
        (_, estimate) => estimate,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSnapshot {
    pub event_id: String,
    pub shard: ShardIndex,
    pub shards: ShardCount,
    pub taken_at: i64,
    pub sale_starts_at: i64,
    pub sale_ends_at: i64,
    pub closed: Option<ShardClosure>,
    pub own: BucketCounts,
    /// The other shards' summed summary as the hub last sent it (`None` until complete).
    pub others: Option<BucketCounts>,
    pub admission_rate: Option<f64>,
    pub picked_through: Option<Place>,
}

impl ShardSnapshot {
    /// The fan's session at `now` from this snapshot and the fan's last known record, or
    /// `None` when only the shard can tell (the record is not a queued stay, or the hub has
    /// picked at or past it since: it may have been admitted or skipped).
    pub fn view_of(&self, record: &FanRecord, now: i64) -> Option<ShardView> {
        if !matches!(record.status, FanStatus::Queued { .. }) {
            return None;
        }
        if self
            .picked_through
            .as_ref()
            .is_some_and(|p| &record.place <= p)
        {
            return None;
        }
        let closed = self.closed.or(if now >= self.sale_ends_at {
            Some(ShardClosure::SaleEnded)
        } else {
            None
        });
        if let Some(reason) = closed {
            return Some(ShardView {
                status: FanStatus::Closed(reason),
                position: None,
                queue_length: 0,
                estimated_wait_seconds: None,
            });
        }
        let alone = BucketCounts::new();
        let others = if self.shards == ShardCount::ONE {
            Some(&alone)
        } else {
            self.others.as_ref()
        };
        let queue_length = self.own.total() + others.map_or(0, BucketCounts::total);
        let position = match others {
            Some(others) if now >= self.sale_starts_at => {
                // The fan is counted in their own bucket: the share of the rest ahead of them.
                let mut own = self.own.clone();
                own.remove(record.place.bucket(), 1);
                Some(1 + own.estimated_ahead(&record.place) + others.estimated_ahead(&record.place))
            }
            _ => None,
        };
        Some(ShardView {
            status: record.status,
            position,
            queue_length,
            estimated_wait_seconds: position
                .and_then(|p| estimated_wait_seconds(p, self.admission_rate)),
        })
    }
}
