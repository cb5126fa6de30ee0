//! The messages between the event's hub and its queue shards, as plain data: what each side
//! may say, so both ends (and the simulation) speak one typed protocol.

use serde::{Deserialize, Serialize};

use super::place::{BucketCounts, Place, ShardIndex};
use super::shard::{FanRecord, ShardSettings};
use crate::domain::waitroom::SessionEndReason;

/// One decision of a tick about one fan at the head of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Pick {
    /// The fan takes a checkout slot reserved for it until `checkout_expires_at`.
    Admit {
        place: Place,
        checkout_expires_at: i64,
    },
    /// The fan was idle at the head when reported: expire them if they still are, else keep
    /// them queued (no slot was reserved for them, so they wait for the next tick).
    SkipIfIdle { place: Place },
}

impl Pick {
    pub fn place(&self) -> &Place {
        match self {
            Self::Admit { place, .. } | Self::SkipIfIdle { place } => place,
        }
    }

    pub fn is_admit(&self) -> bool {
        matches!(self, Self::Admit { .. })
    }
}

/// What the hub asks of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ToShard {
    /// The sale settings (first call creates the shard's queue). Idempotent.
    Configure { settings: ShardSettings },
    /// Phase 1 of tick `tick_id`: report your head (up to `want` fans who are not idle) and
    /// promise a frontier. Read-only but for the frontier, so a duplicate or stale request is
    /// harmless. Carries the other shards' summed summary for the fans' positions.
    Heads {
        event_id: String,
        tick_id: u64,
        want: u64,
        /// `None` until the hub has heard from every shard: positions wait for it.
        others: Option<BucketCounts>,
        admission_rate: Option<f64>,
    },
    /// Phase 2 of tick `tick_id`: the fans of this shard the hub picked. Idempotent: the
    /// answer is derived from the fans' own records, so a redelivery answers the same.
    Admit {
        event_id: String,
        tick_id: u64,
        picks: Vec<Pick>,
    },
    /// The count was raised before the sale: report (without removing them) the queued fans
    /// that belong to another shard under `settings`. Read-only, so it may be repeated; the
    /// fans leave this shard only with the `Configure` of those settings, which the hub sends
    /// once every new home has adopted them. Reply: [`Moving`].
    HandOver { settings: ShardSettings },
    /// Fans handed over from another shard (idempotent per user; creates the shard from
    /// `settings` if it has none yet). Reply: an acknowledgement.
    Adopt {
        settings: ShardSettings,
        fans: Vec<FanRecord>,
    },
    /// A checkout the hub held for this fan is over (order done, failed, token expired): the
    /// fan may join again. Idempotent; ignored unless the fan's latest stay is that place.
    CheckoutEnded {
        event_id: String,
        place: Place,
        /// How it ended, for the fan's session (`None` from a hub that did not say).
        #[serde(default)]
        reason: Option<SessionEndReason>,
    },
    /// Many [`ToShard::CheckoutEnded`] in one message (what the hub resends in its rounds).
    CheckoutsEnded {
        event_id: String,
        ends: Vec<EndedCheckout>,
    },
}

/// One checkout end in a [`ToShard::CheckoutsEnded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndedCheckout {
    pub place: Place,
    #[serde(default)]
    pub reason: Option<SessionEndReason>,
}

/// A fan at the head of a shard, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadEntry {
    pub place: Place,
    /// Not seen for `idleTimeoutSeconds` (and, in the shell, no socket open).
    pub idle: bool,
}

/// A shard's answer to [`ToShard::Heads`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadReport {
    pub event_id: String,
    pub tick_id: u64,
    pub shard: ShardIndex,
    /// The shard will never record a place with arrival ms below this again.
    pub frontier: i64,
    /// The shard's first queued fans in place order.
    pub head: Vec<HeadEntry>,
    /// More fans are queued behind the last entry of `head`.
    pub more: bool,
    /// Queued fans per bucket, the whole shard.
    pub summary: BucketCounts,
}

/// A fan the shard handed to the hub's checkout slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedOver {
    pub place: Place,
    /// The session the checkout token names (`sid`): the hub binds orders by it.
    pub session_id: String,
}

/// A shard's answer to [`ToShard::Admit`]: every pick lands in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmitAnswer {
    pub event_id: String,
    pub tick_id: u64,
    pub shard: ShardIndex,
    /// Admitted: the shard handed them to the hub's checkout slots (and pushed `admitted`).
    pub confirmed: Vec<HandedOver>,
    /// No longer queued in that place (left, closed, or a later stay): their slots go back.
    pub withdrawn: Vec<Place>,
    /// Idle-skip picks that were still idle: expired.
    pub skipped: Vec<Place>,
    /// Idle-skip picks seen again meanwhile: still queued at the head.
    pub kept: Vec<Place>,
}

/// A shard's answer to [`ToShard::HandOver`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Moving {
    pub fans: Vec<FanRecord>,
}

/// What a shard tells the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ToHub {
    HeadReport(HeadReport),
    AdmitAnswer(AdmitAnswer),
}
