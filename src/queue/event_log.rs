//! The domain-events consumer: records each event once in the per-event log organizers read.

use serde_json::Value;
use worker::{Date, Env};

use crate::domain::validation::parse_rfc3339;
use crate::error::ApiError;
use crate::store::d1;
use crate::store::event_log::{self as store, LogEntry};

pub async fn record(env: &Env, body: &Value) -> Result<(), ApiError> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let (Some(id), Some(kind), Some(event_id)) = (field("id"), field("type"), field("eventId"))
    else {
        return Err(ApiError::internal(
            "domain event without id, type or eventId",
        ));
    };
    let now = Date::now().as_millis() as i64;
    let occurred = field("occurredAt")
        .and_then(|t| parse_rfc3339(t).ok())
        .unwrap_or(now);
    let db = d1::db(env)?;
    store::record(
        &db,
        &LogEntry {
            message_id: id,
            event_id,
            event_type: kind,
            payload: &body.to_string(),
            occurred_at: occurred,
            recorded_at: now,
        },
    )
    .await?;
    // The event's door object announces check-ins and voids; the D1 ticket row follows.
    if matches!(kind, "TICKET_CHECKED_IN" | "TICKET_VOIDED") {
        crate::store::tickets::follow_door(&db, body, now).await?;
    }
    Ok(())
}
