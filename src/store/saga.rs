//! The saga's own records in D1: compensations in `saga_steps`, the checkouts and holds the
//! cron sweeps look for, and the payments-queue message ids already applied.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, run, text};
use crate::checkout::ports::StuckCheckout;
use crate::domain::saga::Compensation;
use crate::error::ApiError;

/// Records a compensation as COMPENSATED under its own name, with the failure as its detail.
pub async fn record_compensation(
    db: &D1Database,
    order_id: &str,
    step: Compensation,
    failure_code: &str,
    now: i64,
) -> Result<(), ApiError> {
    run(
        db,
        "INSERT INTO saga_steps (order_id, step, status, detail, at) VALUES (?1, ?2, 'COMPENSATED', ?3, ?4) \
         ON CONFLICT (order_id, step) DO UPDATE SET status = 'COMPENSATED', detail = ?3, at = ?4",
        &[text(order_id), text(step.as_str()), text(failure_code), int(now)],
    )
    .await?;
    Ok(())
}

/// PENDING orders created before `created_before` that never recorded PAYMENT_CREATED, with
/// their DONE steps, oldest first (50 a run).
pub async fn stuck_checkouts(
    db: &D1Database,
    created_before: i64,
) -> Result<Vec<StuckCheckout>, ApiError> {
    all(
        db,
        "SELECT o.id AS order_id, o.created_at, \
         (SELECT group_concat(step) FROM saga_steps s WHERE s.order_id = o.id AND s.status = 'DONE') AS steps \
         FROM orders o WHERE o.status = 'PENDING' AND o.created_at < ?1 \
         AND NOT EXISTS (SELECT 1 FROM saga_steps s WHERE s.order_id = o.id AND s.step = 'PAYMENT_CREATED') \
         ORDER BY o.created_at LIMIT 50",
        &[int(created_before)],
    )
    .await
}

/// Ids of PENDING orders whose hold expired before `expired_before` (50 a run).
pub async fn pending_orders_expired_before(
    db: &D1Database,
    expired_before: i64,
) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Due {
        id: String,
    }
    let due: Vec<Due> = all(
        db,
        "SELECT id FROM orders WHERE status = 'PENDING' AND expires_at < ?1 ORDER BY expires_at LIMIT 50",
        &[int(expired_before)],
    )
    .await?;
    Ok(due.into_iter().map(|d| d.id).collect())
}

pub async fn already_processed(db: &D1Database, message_id: &str) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        #[allow(dead_code)]
        message_id: String,
    }
    Ok(first::<Row>(
        db,
        "SELECT message_id FROM processed_messages WHERE message_id = ?1",
        &[text(message_id)],
    )
    .await?
    .is_some())
}

pub async fn mark_processed(db: &D1Database, message_id: &str, now: i64) -> Result<(), ApiError> {
    run(
        db,
        "INSERT OR IGNORE INTO processed_messages (message_id, processed_at) VALUES (?1, ?2)",
        &[text(message_id), int(now)],
    )
    .await?;
    Ok(())
}
