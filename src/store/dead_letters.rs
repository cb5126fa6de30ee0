//! The `dead_letters` table: what the dead-letter consumers recorded, and its open backlog.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{first, int, opt_text, run, text};
use crate::error::ApiError;

/// One message a queue gave up on, with the envelope fields operators filter by.
pub struct DeadLetter<'a> {
    pub message_id: &'a str,
    pub queue: &'a str,
    /// The producer binding of the queue's kind (`PAYMENT_EVENTS`, `DOMAIN_EVENTS`).
    pub source: &'a str,
    pub body_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub body: &'a str,
    pub recorded_at: i64,
}

/// Records a dead letter; the message id is the key, so a redelivery is recorded once.
pub async fn record(db: &D1Database, letter: &DeadLetter<'_>) -> Result<(), ApiError> {
    run(
        db,
        "INSERT OR IGNORE INTO dead_letters \
         (message_id, queue, source, body_id, type, event_id, order_id, body, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            text(letter.message_id),
            text(letter.queue),
            text(letter.source),
            opt_text(letter.body_id),
            opt_text(letter.event_type),
            opt_text(letter.event_id),
            opt_text(letter.order_id),
            text(letter.body),
            int(letter.recorded_at),
        ],
    )
    .await?;
    Ok(())
}

/// Dead letters nobody has resolved yet: the dead-letter queues' depth.
#[derive(Debug, Deserialize)]
pub struct OpenDeadLetters {
    pub open: i64,
    pub for_event: i64,
    pub payment_events: i64,
    pub domain_events: i64,
    pub newest: Option<i64>,
}

pub async fn open_counts(db: &D1Database, event_id: &str) -> Result<OpenDeadLetters, ApiError> {
    first(
        db,
        "SELECT COUNT(*) AS open, \
           COALESCE(SUM(event_id = ?1), 0) AS for_event, \
           COALESCE(SUM(source = 'PAYMENT_EVENTS'), 0) AS payment_events, \
           COALESCE(SUM(source = 'DOMAIN_EVENTS'), 0) AS domain_events, \
           MAX(recorded_at) AS newest \
         FROM dead_letters WHERE resolved_at IS NULL",
        &[text(event_id)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("dead letter counts"))
}
