//! What leaves the event's object through its outbox: the queue messages (envelope and
//! payload), when a failed send is retried, and when the object's single alarm must fire.
//!
//! Messages are written to the object's `hub_outbox` table in the same transaction as the
//! state change they report, sent after commit, and retried from the alarm until a queue
//! accepts them: at-least-once, so every message carries a unique `id` for consumers to dedupe.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::ledger::ExpiredHold;
use crate::domain::waitroom::{format_rfc3339_millis, WaitroomEvent};

/// Messages one flush sends per queue call (Queues accept up to 100 per batch).
pub const FLUSH_BATCH: usize = 50;
/// A freshly written message is handed to the alarm this long after it was written, in case the
/// send right after commit never happens (the isolate is evicted first).
pub const FRESH_RETRY_MS: i64 = 2_000;
/// Longest wait between two attempts of one message.
pub const MAX_RETRY_MS: i64 = 60_000;

/// The queue a message goes to (the wrangler.toml producer binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// Waitroom lifecycle for the event log.
    DomainEvents,
    /// Saga input: a hold lapsed, cancel its order.
    PaymentEvents,
}

impl Destination {
    pub fn binding(self) -> &'static str {
        match self {
            Destination::DomainEvents => "DOMAIN_EVENTS",
            Destination::PaymentEvents => "PAYMENT_EVENTS",
        }
    }

    pub fn parse(binding: &str) -> Option<Self> {
        [Destination::DomainEvents, Destination::PaymentEvents]
            .into_iter()
            .find(|d| d.binding() == binding)
    }
}

/// One message ready for the outbox table: `{"type", "id", "eventId", "occurredAt", ...payload}`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub id: String,
    pub destination: Destination,
    pub body: Value,
}

fn envelope(
    kind: &str,
    id: &str,
    event_id: &str,
    occurred_at_ms: i64,
    payload: Map<String, Value>,
) -> Value {
    let mut body = Map::new();
    body.insert("type".into(), Value::from(kind));
    body.insert("id".into(), Value::from(id));
    body.insert("eventId".into(), Value::from(event_id));
    body.insert(
        "occurredAt".into(),
        Value::from(format_rfc3339_millis(occurred_at_ms)),
    );
    for (key, value) in payload {
        body.entry(key).or_insert(value);
    }
    Value::Object(body)
}

/// The SCREAMING_SNAKE message type of a waitroom event.
pub fn waitroom_event_type(event: &WaitroomEvent) -> &'static str {
    match event {
        WaitroomEvent::QueueJoined { .. } => "QUEUE_JOINED",
        WaitroomEvent::QueueReady { .. } => "QUEUE_READY",
        WaitroomEvent::QueueLeft { .. } => "QUEUE_LEFT",
        WaitroomEvent::SessionExpired { .. } => "SESSION_EXPIRED",
        WaitroomEvent::CheckoutCompleted { .. } => "CHECKOUT_COMPLETED",
        WaitroomEvent::SaleOpened { .. } => "SALE_OPENED",
        WaitroomEvent::QueueClosed { .. } => "QUEUE_CLOSED",
    }
}

fn occurred_at(event: &WaitroomEvent) -> i64 {
    match event {
        WaitroomEvent::QueueJoined { at, .. }
        | WaitroomEvent::QueueReady { at, .. }
        | WaitroomEvent::QueueLeft { at, .. }
        | WaitroomEvent::SessionExpired { at, .. }
        | WaitroomEvent::CheckoutCompleted { at, .. }
        | WaitroomEvent::SaleOpened { at, .. }
        | WaitroomEvent::QueueClosed { at, .. } => *at,
    }
}

/// A waitroom domain event for the `DOMAIN_EVENTS` queue. The payload is the event's own
/// fields (`session`, `reason`, ...) beside the envelope.
pub fn waitroom_message(
    event: &WaitroomEvent,
    id: String,
) -> Result<OutboxMessage, serde_json::Error> {
    let mut payload = match serde_json::to_value(event)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let event_id = payload
        .remove("eventId")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    payload.remove("type");
    payload.remove("at");
    Ok(OutboxMessage {
        body: envelope(
            waitroom_event_type(event),
            &id,
            &event_id,
            occurred_at(event),
            payload,
        ),
        id,
        destination: Destination::DomainEvents,
    })
}

/// One fan in a queue shard's batched domain event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanEvent {
    pub user_id: String,
    pub session_id: String,
    pub at: i64,
    /// The fan's place as `Place::arrival_key` (joins and admissions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_key: Option<String>,
    /// The admission round that admitted the fan (admissions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_id: Option<u64>,
}

/// A queue shard's batch of one kind of waitroom event (`QUEUE_JOINED`, `QUEUE_READY`,
/// `QUEUE_LEFT`): `{"type", "id", "eventId", "occurredAt" (the last fan's), "shard",
/// "count", "fans": [{userId, sessionId, at}]}`. At 17,000 joins a second one message per fan
/// would cost the queue and the event log a write each; one per shard and flush does not.
pub fn fan_batch_message(
    kind: &str,
    event_id: &str,
    shard: u16,
    fans: &[FanEvent],
    id: String,
) -> Result<OutboxMessage, serde_json::Error> {
    let occurred_at = fans.iter().map(|f| f.at).max().unwrap_or(0);
    let mut payload = Map::new();
    payload.insert("shard".into(), Value::from(shard));
    payload.insert("count".into(), Value::from(fans.len()));
    payload.insert("fans".into(), serde_json::to_value(fans)?);
    Ok(OutboxMessage {
        body: envelope(kind, &id, event_id, occurred_at, payload),
        id,
        destination: Destination::DomainEvents,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HoldExpiredPayload<'a> {
    order_id: &'a str,
    user_id: &'a str,
    expires_at: String,
}

/// `HOLD_EXPIRED` for the `PAYMENT_EVENTS` queue: the saga cancels the order.
pub fn hold_expired_message(
    event_id: &str,
    hold: &ExpiredHold,
    expired_at_ms: i64,
    id: String,
) -> Result<OutboxMessage, serde_json::Error> {
    let payload = match serde_json::to_value(HoldExpiredPayload {
        order_id: &hold.order_id,
        user_id: &hold.user_id,
        expires_at: format_rfc3339_millis(hold.expires_at),
    })? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(OutboxMessage {
        body: envelope("HOLD_EXPIRED", &id, event_id, expired_at_ms, payload),
        id,
        destination: Destination::PaymentEvents,
    })
}

/// How long to wait before attempt `attempts + 1` of a message that failed `attempts` times:
/// 1 s, 2 s, 4 s, ... capped at [`MAX_RETRY_MS`].
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(16);
    (1_000_i64 << exponent).min(MAX_RETRY_MS)
}

/// The one alarm serves three clocks: the earliest ACTIVE hold expiry, the waitroom's next
/// wake-up, and the next outbox retry. `None` when nothing is due at all.
pub fn next_alarm(
    hold_expiry: Option<i64>,
    waitroom_wake: Option<i64>,
    outbox_retry: Option<i64>,
) -> Option<i64> {
    [hold_expiry, waitroom_wake, outbox_retry]
        .into_iter()
        .flatten()
        .min()
}

/// Whether the alarm this instance set (`armed`: `None` when unknown) can stay for a wanted
/// time. Only an alarm that would fire too late, or one we know nothing about, is rewritten:
/// an alarm that fires early finds no hold due and re-arms itself exactly (the alarm handler
/// forgets `armed` first); its admission tick only fills checkout slots that are free. Moving
/// the alarm later whenever a hold is released or a deadline passes would cost a storage
/// write on most ledger calls (a reserve+release pair moves the earliest expiry twice).
pub fn keep_armed(armed: Option<Option<i64>>, wanted: Option<i64>) -> bool {
    match (armed, wanted) {
        (None, _) => false,
        (Some(None), None) => true,
        (Some(None), Some(_)) => false,
        (Some(Some(armed_at)), Some(wanted_at)) => armed_at <= wanted_at,
        (Some(Some(_)), None) => true,
    }
}

/// Whether an operation can leave the alarm as it is without reading what is due: the alarm
/// this instance set is known (`armed`) and no deadline the operation wrote (`earliest_written`,
/// the earliest hold expiry, waitroom wake-up or outbox retry it stored) comes before it.
/// Deadlines it removed only make the alarm early, which [`keep_armed`] allows. This spares
/// the hot path (reserve, release, confirm) the reads behind [`next_alarm`].
pub fn alarm_unaffected(armed: Option<Option<i64>>, earliest_written: Option<i64>) -> bool {
    match (armed, earliest_written) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(Some(armed_at)), Some(written)) => armed_at <= written,
        (Some(None), Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::waitroom::{ClosedReason, SessionEndReason, SessionStatus, WaitroomSession};
    use serde_json::json;

    fn session() -> WaitroomSession {
        WaitroomSession {
            session_id: "s1".into(),
            user_id: "u1".into(),
            join_no: 1,
            seq: Some(1),
            status: SessionStatus::Expired,
            joined_at: 0,
            last_seen_at: 0,
            admitted_at: None,
            checkout_expires_at: None,
            order_id: None,
            ended_at: Some(1_000),
            end_reason: Some(SessionEndReason::IdleAtHead),
        }
    }

    #[test]
    fn a_waitroom_event_is_wrapped_in_the_envelope_with_its_own_fields_beside_it() {
        let event = WaitroomEvent::SessionExpired {
            event_id: "evt-1".into(),
            session: session(),
            reason: SessionEndReason::IdleAtHead,
            at: 1_000,
        };

        let message = waitroom_message(&event, "m-1".into()).unwrap();

        assert_eq!(message.destination, Destination::DomainEvents);
        assert_eq!(message.id, "m-1");
        let body = &message.body;
        assert_eq!(body["type"], "SESSION_EXPIRED");
        assert_eq!(body["id"], "m-1");
        assert_eq!(body["eventId"], "evt-1");
        assert_eq!(body["occurredAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(body["reason"], "IDLE_AT_HEAD");
        assert_eq!(body["session"]["sessionId"], "s1");
        assert!(body.get("at").is_none());
    }

    #[test]
    fn every_waitroom_event_has_a_screaming_snake_type() {
        let closed = WaitroomEvent::QueueClosed {
            event_id: "e".into(),
            reason: ClosedReason::EventCancelled,
            at: 0,
        };
        let message = waitroom_message(&closed, "m".into()).unwrap();
        assert_eq!(message.body["type"], "QUEUE_CLOSED");
        assert_eq!(message.body["reason"], "EVENT_CANCELLED");
        let batch = fan_batch_message(
            "QUEUE_JOINED",
            "evt-1",
            3,
            &[
                FanEvent {
                    user_id: "u1".into(),
                    session_id: "s1".into(),
                    at: 1_000,
                    arrival_key: None,
                    tick_id: None,
                },
                FanEvent {
                    user_id: "u2".into(),
                    session_id: "s2".into(),
                    at: 2_500,
                    arrival_key: Some("q:1".into()),
                    tick_id: Some(4),
                },
            ],
            "m-1".into(),
        )
        .expect("encodes");
        assert_eq!(batch.body["type"], "QUEUE_JOINED");
        assert_eq!(batch.body["eventId"], "evt-1");
        assert_eq!(
            (batch.body["shard"].as_u64(), batch.body["count"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(batch.body["fans"][1]["sessionId"], "s2");
        assert_eq!(batch.body["fans"][1]["arrivalKey"], "q:1");
        assert_eq!(batch.body["fans"][1]["tickId"], 4);
        assert!(batch.body["fans"][0].get("tickId").is_none());
        assert_eq!(batch.body["occurredAt"], "1970-01-01T00:00:02.500Z");
        assert_eq!(batch.destination, Destination::DomainEvents);
        let joined = WaitroomEvent::QueueJoined {
            event_id: "e".into(),
            session: session(),
            at: 0,
        };
        assert_eq!(waitroom_event_type(&joined), "QUEUE_JOINED");
    }

    #[test]
    fn a_lapsed_hold_becomes_hold_expired_for_the_payment_saga() {
        let hold = ExpiredHold {
            order_id: "o1".into(),
            user_id: "u1".into(),
            expires_at: 900_000,
        };

        let message = hold_expired_message("evt-1", &hold, 901_000, "m-2".into()).unwrap();

        assert_eq!(message.destination, Destination::PaymentEvents);
        assert_eq!(
            message.body,
            json!({
                "type": "HOLD_EXPIRED",
                "id": "m-2",
                "eventId": "evt-1",
                "occurredAt": "1970-01-01T00:15:01.000Z",
                "orderId": "o1",
                "userId": "u1",
                "expiresAt": "1970-01-01T00:15:00.000Z"
            })
        );
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_minute() {
        assert_eq!(retry_delay_ms(0), 1_000);
        assert_eq!(retry_delay_ms(1), 1_000);
        assert_eq!(retry_delay_ms(2), 2_000);
        assert_eq!(retry_delay_ms(3), 4_000);
        assert_eq!(retry_delay_ms(7), 60_000);
        assert_eq!(retry_delay_ms(u32::MAX), 60_000);
    }

    #[test]
    fn an_operation_that_wrote_no_earlier_deadline_leaves_the_alarm_unread() {
        // Wrote nothing, or only later deadlines: nothing to read.
        assert!(alarm_unaffected(Some(Some(10)), None));
        assert!(alarm_unaffected(Some(None), None));
        assert!(alarm_unaffected(Some(Some(10)), Some(10)));
        assert!(alarm_unaffected(Some(Some(10)), Some(900_000)));
        // An earlier deadline, a first deadline, or an unknown alarm: read and re-arm.
        assert!(!alarm_unaffected(Some(Some(10)), Some(9)));
        assert!(!alarm_unaffected(Some(None), Some(10)));
        assert!(!alarm_unaffected(None, None));
        assert!(!alarm_unaffected(None, Some(10)));
    }

    #[test]
    fn an_alarm_is_only_rewritten_when_it_would_fire_too_late_or_is_unknown() {
        // Unknown (new instance, or the alarm just fired): always written.
        assert!(!keep_armed(None, Some(10)));
        assert!(!keep_armed(None, None));
        // Same time: nothing to do.
        assert!(keep_armed(Some(Some(10)), Some(10)));
        assert!(keep_armed(Some(None), None));
        // Earlier than needed (a hold was released): left to fire early and re-arm.
        assert!(keep_armed(Some(Some(10)), Some(20)));
        assert!(keep_armed(Some(Some(10)), None));
        // Too late, or none set while something is due: rewritten.
        assert!(!keep_armed(Some(Some(20)), Some(10)));
        assert!(!keep_armed(Some(None), Some(10)));
    }

    #[test]
    fn the_alarm_is_the_earliest_of_its_three_clocks() {
        assert_eq!(next_alarm(None, None, None), None);
        assert_eq!(next_alarm(Some(30), None, None), Some(30));
        assert_eq!(next_alarm(Some(30), Some(20), Some(40)), Some(20));
        assert_eq!(next_alarm(None, Some(50), Some(10)), Some(10));
        assert_eq!(next_alarm(Some(5), None, Some(5)), Some(5));
    }

    #[test]
    fn destinations_name_their_queue_bindings() {
        for destination in [Destination::DomainEvents, Destination::PaymentEvents] {
            assert_eq!(Destination::parse(destination.binding()), Some(destination));
        }
        assert_eq!(Destination::parse("DB"), None);
    }
}
