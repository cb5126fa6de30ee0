//! The per-event log of domain events, as recorded by the domain-events consumer.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, text};
use crate::error::ApiError;

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
        &[
            text(event_id),
            super::d1::opt_text(kind),
            int(limit),
            int(offset),
        ],
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
        &[text(event_id), super::d1::opt_text(kind)],
    )
    .await?
    .map(|r| r.n)
    .unwrap_or(0))
}
