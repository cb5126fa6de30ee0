//! What the Worker and the event's hub say to a `QueueShard` object, and what it answers: the
//! fan-facing calls (join, session, leave) and the hub's admission messages
//! (`domain::admission::protocol`) in one `op`-tagged request, like the hub's own protocol.
//! Plain data, so the host tests read and write it.

use serde::{Deserialize, Serialize};

use super::protocol::{HubFailure, SessionView};
use crate::domain::admission::place::{ArrivalStamp, ShardIndex};
use crate::domain::admission::protocol::ToShard;
use crate::domain::admission::shard::{FanRecord, ShardRejection, ShardSettings, ShardView};
use crate::domain::waitroom::{format_rfc3339_millis, SessionStatus};

/// The object name of shard `shard` of `event_id` (`QUEUE_SHARD.idFromName`).
pub fn shard_object_name(event_id: &str, shard: ShardIndex) -> String {
    format!("{event_id}:{}", shard.0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ShardRequest {
    /// A fan joins (idempotent per user). `settings` are the sale settings as the Worker saw
    /// them: used only by a shard that has none yet (its first join can come before the hub's
    /// first `Configure`); afterwards the hub's settings are the shard's truth.
    Join {
        user_id: String,
        session_id: String,
        stamp: ArrivalStamp,
        settings: ShardSettings,
    },
    /// The fan's session (counts as a sighting).
    Session { user_id: String },
    /// The fan gives up their place.
    Leave { user_id: String },
    /// What the Worker answers queued fans' polls from for a second (`ShardSnapshot`).
    Snapshot,
    /// A message of the admission protocol from the event's hub.
    Admission { message: ToShard },
}

impl ShardRequest {
    pub fn op(&self) -> &'static str {
        match self {
            ShardRequest::Join { .. } => "join",
            ShardRequest::Session { .. } => "session",
            ShardRequest::Leave { .. } => "leave",
            ShardRequest::Snapshot => "snapshot",
            ShardRequest::Admission { message } => match message {
                ToShard::Configure { .. } => "configure",
                ToShard::Heads { .. } => "heads",
                ToShard::Admit { .. } => "admit",
                ToShard::CheckoutEnded { .. } => "checkoutEnded",
                ToShard::CheckoutsEnded { .. } => "checkoutsEnded",
                ToShard::HandOver { .. } => "handOver",
                ToShard::Adopt { .. } => "adopt",
            },
        }
    }
}

/// A join's or a poll's answer: the API's session, and the fan's record for the Worker to
/// answer the next polls from the shard's snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSessionReply {
    pub waitroom_session: Option<SessionView>,
    #[serde(default)]
    pub record: Option<FanRecord>,
}

/// What a leave did at the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeaveOutcome {
    Left,
    /// The fan is in checkout: the slot is the hub's, the Worker asks the hub.
    HeldByHub,
    NotQueued,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveReply {
    pub outcome: LeaveOutcome,
}

impl ShardSessionReply {
    pub fn none() -> Self {
        ShardSessionReply {
            waitroom_session: None,
            record: None,
        }
    }
}

impl From<ShardRejection> for HubFailure {
    fn from(rejection: ShardRejection) -> Self {
        match rejection {
            ShardRejection::SaleNotOpen => HubFailure::new("SALE_NOT_OPEN", rejection.to_string()),
            ShardRejection::WrongShard | ShardRejection::Mismatch => {
                HubFailure::new("CONFLICT", rejection.to_string())
            }
        }
    }
}

/// The API's `waitroomSession` for a fan's stay in a shard. `checkout_token` is minted by the
/// caller for an admitted fan (the shard holds the secret, like the hub).
pub fn session_view(
    event_id: &str,
    record: &FanRecord,
    view: &ShardView,
    checkout_token: Option<String>,
) -> SessionView {
    let (status, end_reason) = view.session_status();
    let admitted = status == SessionStatus::Admitted;
    let checkout_expires_at = match view.status {
        crate::domain::admission::shard::FanStatus::Admitted {
            checkout_expires_at,
            ..
        } => Some(format_rfc3339_millis(checkout_expires_at)),
        _ => None,
    };
    SessionView {
        session_id: record.session_id.clone(),
        event_id: event_id.to_owned(),
        status,
        position: view.position,
        queue_length: view.queue_length,
        estimated_wait_seconds: view.estimated_wait_seconds,
        checkout_token: checkout_token.filter(|_| admitted),
        checkout_expires_at: checkout_expires_at.filter(|_| admitted),
        end_reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::admission::place::ShardCount;

    fn settings() -> ShardSettings {
        ShardSettings {
            event_id: "ev".into(),
            shard: ShardIndex(2),
            shards: ShardCount::new(4).expect("in range"),
            shuffle_seed: 7,
            sale_starts_at: 0,
            sale_ends_at: 10,
            cancelled: false,
            idle_timeout_seconds: 60,
        }
    }

    #[test]
    fn requests_are_op_tagged_json_and_read_back_the_same() {
        let join = ShardRequest::Join {
            user_id: "u".into(),
            session_id: "s".into(),
            stamp: ArrivalStamp {
                at_ms: 5,
                tie_break: 9,
            },
            settings: settings(),
        };
        let text = serde_json::to_string(&join).expect("encodes");
        assert!(text.starts_with(r#"{"op":"join","userId":"u""#), "{text}");
        assert_eq!(
            serde_json::from_str::<ShardRequest>(&text).expect("decodes"),
            join
        );
        let configure = ShardRequest::Admission {
            message: ToShard::Configure {
                settings: settings(),
            },
        };
        let text = serde_json::to_string(&configure).expect("encodes");
        assert_eq!(configure.op(), "configure");
        assert_eq!(
            serde_json::from_str::<ShardRequest>(&text).expect("decodes"),
            configure
        );
        assert!(serde_json::from_str::<ShardRequest>(r#"{"op":"drop"}"#).is_err());
    }

    #[test]
    fn a_misrouted_or_forged_message_is_a_conflict_and_a_closed_sale_is_not_open() {
        let wrong: HubFailure = ShardRejection::WrongShard.into();
        assert_eq!((wrong.code, wrong.status()), ("CONFLICT", 409));
        let closed: HubFailure = ShardRejection::SaleNotOpen.into();
        assert_eq!((closed.code, closed.status()), ("SALE_NOT_OPEN", 409));
    }

    #[test]
    fn object_names_put_the_shard_after_the_event() {
        assert_eq!(shard_object_name("ev-1", ShardIndex(3)), "ev-1:3");
    }
}
