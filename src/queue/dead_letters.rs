//! The dead-letter consumers: every message a queue gave up on is recorded in `dead_letters`
//! (once per message id) and acknowledged, so the table is the DLQ's queryable contents.

use serde_json::Value;
use worker::{Date, Env};

use super::QueueKind;
use crate::error::ApiError;
use crate::store::d1;
use crate::store::dead_letters::{self as store, DeadLetter};

pub async fn record(
    env: &Env,
    kind: QueueKind,
    queue: &str,
    message_id: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let db = d1::db(env)?;
    store::record(
        &db,
        &DeadLetter {
            message_id,
            queue,
            source: kind.binding(),
            body_id: field("id"),
            event_type: field("type"),
            event_id: field("eventId"),
            order_id: field("orderId"),
            body: &body.to_string(),
            recorded_at: Date::now().as_millis() as i64,
        },
    )
    .await
}
