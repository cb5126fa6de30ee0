//! The mail outbox as its sender sees it: due mails, their claims, and each send's outcome.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, text};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct DueMail {
    pub id: String,
    pub to_email: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
}

/// Unsent mails whose next attempt is due and that nobody holds a live claim on, oldest first.
pub async fn due(db: &D1Database, now_ms: i64, limit: u32) -> Result<Vec<DueMail>, ApiError> {
    all(
        db,
        "SELECT id, to_email, subject, body, attempts FROM mail_outbox \
         WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1 \
           AND (claimed_until IS NULL OR claimed_until <= ?1) \
         ORDER BY created_at, id LIMIT ?2",
        &[int(now_ms), int(i64::from(limit))],
    )
    .await
}

/// Claims a mail until `until_ms`; `false` when another run holds it or it was settled since.
pub async fn claim(
    db: &D1Database,
    id: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool, ApiError> {
    let claimed: Option<serde_json::Value> = first(
        db,
        "UPDATE mail_outbox SET claimed_until = ?3 \
         WHERE id = ?1 AND sent_at IS NULL AND failed_at IS NULL \
           AND (claimed_until IS NULL OR claimed_until <= ?2) RETURNING id",
        &[text(id), int(now_ms), int(until_ms)],
    )
    .await?;
    Ok(claimed.is_some())
}

pub async fn mark_sent(db: &D1Database, id: &str, now_ms: i64) -> Result<(), ApiError> {
    super::d1::run(
        db,
        "UPDATE mail_outbox SET sent_at = ?2, attempts = attempts + 1, claimed_until = NULL, \
         last_error = NULL WHERE id = ?1",
        &[text(id), int(now_ms)],
    )
    .await?;
    Ok(())
}

/// A failed send: tried again at `retry_at_ms`, or given up (`None`).
pub async fn mark_failed(
    db: &D1Database,
    id: &str,
    now_ms: i64,
    retry_at_ms: Option<i64>,
    error: &str,
) -> Result<(), ApiError> {
    match retry_at_ms {
        Some(at) => {
            super::d1::run(
                db,
                "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ?2, \
             claimed_until = NULL, last_error = ?3 WHERE id = ?1",
                &[text(id), int(at), text(error)],
            )
            .await?
        }
        None => {
            super::d1::run(
                db,
                "UPDATE mail_outbox SET attempts = attempts + 1, failed_at = ?2, \
             claimed_until = NULL, last_error = ?3 WHERE id = ?1",
                &[text(id), int(now_ms), text(error)],
            )
            .await?
        }
    };
    Ok(())
}
