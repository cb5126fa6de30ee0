//! The per-event log of domain events: what the domain-events consumer records, and the pages
//! organizers read.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, opt_text, run, text};
use crate::error::ApiError;

/// One domain event as the consumer received it.
pub struct LogEntry<'a> {
    pub message_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// The whole message, as JSON text.
    pub payload: &'a str,
    pub occurred_at: i64,
    pub recorded_at: i64,
}

/// Records an entry; the message id is the primary key, so a redelivered message is recorded
/// once.
pub async fn record(db: &D1Database, entry: &LogEntry<'_>) -> Result<(), ApiError> {
    run(
        db,
        "INSERT OR IGNORE INTO event_log (message_id, event_id, type, payload, occurred_at, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            text(entry.message_id),
            text(entry.event_id),
            text(entry.event_type),
            text(entry.payload),
            int(entry.occurred_at),
            int(entry.recorded_at),
        ],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct LogRow {
    pub message_id: String,
    pub r#type: String,
    pub payload: String,
    pub occurred_at: i64,
}

pub async fn page(
    db: &D1Database,
    event_id: &str,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<LogRow>, ApiError> {
    all(
        db,
        "SELECT message_id, type, payload, occurred_at FROM event_log WHERE event_id = ?1 \
         AND (?2 IS NULL OR type = ?2) ORDER BY occurred_at DESC, message_id LIMIT ?3 OFFSET ?4",
        &[text(event_id), opt_text(kind), int(limit), int(offset)],
    )
    .await
}

pub async fn count(db: &D1Database, event_id: &str, kind: Option<&str>) -> Result<i64, ApiError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    Ok(first::<N>(
        db,
        "SELECT COUNT(*) AS n FROM event_log WHERE event_id = ?1 AND (?2 IS NULL OR type = ?2)",
        &[text(event_id), opt_text(kind)],
    )
    .await?
    .map(|r| r.n)
    .unwrap_or(0))
}
