//! The dead-letter consumers: every message a queue gave up on is recorded in `dead_letters`
//! (once per message id) and acknowledged, so the table is the DLQ's queryable contents.

use serde_json::Value;
use worker::{Date, Env};

use super::QueueKind;
use crate::error::ApiError;
use crate::store::d1::{self, int, opt_text, run, text};

pub async fn record(
    env: &Env,
    kind: QueueKind,
    queue: &str,
    message_id: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let db = d1::db(env)?;
    run(
        &db,
        "INSERT OR IGNORE INTO dead_letters \
         (message_id, queue, source, body_id, type, event_id, order_id, body, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            text(message_id),
            text(queue),
            text(kind.binding()),
            opt_text(field("id")),
            opt_text(field("type")),
            opt_text(field("eventId")),
            opt_text(field("orderId")),
            text(&body.to_string()),
            int(Date::now().as_millis() as i64),
        ],
    )
    .await?;
    Ok(())
}
