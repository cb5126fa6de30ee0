//! Orders and their items in D1, and the guarded status transition that announces itself
//! through the outbox in the same batch.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, opt_text, stmt, text};
use super::outbox::{OutboxMessage, Queue};
pub use crate::checkout::ports::{ItemRow, OrderRow, Transition};
use crate::error::ApiError;

pub const ORDER_COLUMNS: &str =
    "id, code, event_id, user_id, status, total_amount_cents, currency, \
     payment_method, waitroom_session_id, expires_at, refund_status, refund_reason, failure_code, \
     created_at, updated_at";

pub async fn find_by_id(db: &D1Database, id: &str) -> Result<Option<OrderRow>, ApiError> {
    first(
        db,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"),
        &[text(id)],
    )
    .await
}

pub async fn find_by_id_or_code(
    db: &D1Database,
    id_or_code: &str,
) -> Result<Option<OrderRow>, ApiError> {
    first(
        db,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1 OR code = ?2"),
        &[
            text(&id_or_code.to_ascii_lowercase()),
            text(&id_or_code.to_ascii_uppercase()),
        ],
    )
    .await
}

pub async fn items_of(db: &D1Database, order_ids: &[String]) -> Result<Vec<ItemRow>, ApiError> {
    let list = serde_json::to_string(order_ids).map_err(ApiError::internal)?;
    all(
        db,
        "SELECT order_id, ticket_class_id, quantity, price_cents FROM order_items \
         WHERE order_id IN (SELECT value FROM json_each(?1)) ORDER BY order_id, ticket_class_id",
        &[text(&list)],
    )
    .await
}

pub async fn list_by_user(
    db: &D1Database,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<OrderRow>, ApiError> {
    all(
        db,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"),
        &[text(user_id), int(limit), int(offset)],
    )
    .await
}

pub async fn count_by_user(db: &D1Database, user_id: &str) -> Result<i64, ApiError> {
    count(
        db,
        "SELECT COUNT(*) AS n FROM orders WHERE user_id = ?1",
        user_id,
    )
    .await
}

pub async fn list_by_event(
    db: &D1Database,
    event_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<OrderRow>, ApiError> {
    all(
        db,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE event_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"),
        &[text(event_id), int(limit), int(offset)],
    )
    .await
}

pub async fn count_by_event(db: &D1Database, event_id: &str) -> Result<i64, ApiError> {
    count(
        db,
        "SELECT COUNT(*) AS n FROM orders WHERE event_id = ?1",
        event_id,
    )
    .await
}

async fn count(db: &D1Database, sql: &str, arg: &str) -> Result<i64, ApiError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    Ok(first::<N>(db, sql, &[text(arg)])
        .await?
        .map(|r| r.n)
        .unwrap_or(0))
}

/// Applies a transition guarded by the status it expects, with its outbox rows in the same
/// batch; returns the ids of the outbox rows written (empty if another worker got there first).
/// Outbox ids are derived from the order and the new status, so a retried transition cannot
/// announce twice.
pub async fn transition(
    db: &D1Database,
    t: &Transition<'_>,
    now_ms: i64,
) -> Result<Vec<String>, ApiError> {
    let refund_status = t.refund_reason.map(|_| "REFUND_REQUIRED");
    let same_status = t.from == t.to;
    let mut statements = vec![stmt(
        db,
        "UPDATE orders SET status = ?3, updated_at = ?4, \
         refund_status = COALESCE(?5, refund_status), refund_reason = COALESCE(?6, refund_reason), \
         failure_code = COALESCE(?7, failure_code) \
         WHERE id = ?1 AND status = ?2 AND (?8 = 0 OR refund_status IS NULL)",
        &[
            text(&t.order.id),
            text(t.from.as_str()),
            text(t.to.as_str()),
            int(now_ms),
            opt_text(refund_status),
            opt_text(t.refund_reason),
            opt_text(t.failure_code),
            // A same-status change only records a refund; guard it so it records once.
            int(i64::from(same_status)),
        ],
    )?];
    let mut ids = Vec::new();
    for (event_type, payload) in &t.announce {
        let id = format!(
            "order-{}-{}-{}",
            t.order.id,
            t.to.as_str().to_lowercase(),
            event_type.to_lowercase()
        );
        let message = OutboxMessage::new(
            id.clone(),
            Queue::DomainEvents,
            event_type,
            ("order", &t.order.id),
            &t.order.event_id,
            now_ms,
            payload.clone(),
        );
        statements.push(message.insert_when(db, now_ms, Some(("changes() = 1", &[])))?);
        ids.push(id);
    }
    let results = db.batch(statements).await.map_err(ApiError::from)?;
    let changed = results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    Ok(if changed == 1 { ids } else { Vec::new() })
}

/// One event's orders by status, for the operator status.
#[derive(Debug, Deserialize)]
pub struct OrderCounts {
    pub pending: i64,
    /// PENDING orders whose hold expired before `now_ms`.
    pub pending_past_hold: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub failed: i64,
    pub refund_required: i64,
    pub oldest_expired_hold_at: Option<i64>,
}

pub async fn counts_for_event(
    db: &D1Database,
    event_id: &str,
    now_ms: i64,
) -> Result<OrderCounts, ApiError> {
    first(
        db,
        "SELECT \
           COALESCE(SUM(status = 'PENDING'), 0) AS pending, \
           COALESCE(SUM(status = 'PENDING' AND expires_at < ?2), 0) AS pending_past_hold, \
           COALESCE(SUM(status = 'COMPLETED'), 0) AS completed, \
           COALESCE(SUM(status = 'CANCELLED'), 0) AS cancelled, \
           COALESCE(SUM(status = 'FAILED'), 0) AS failed, \
           COALESCE(SUM(refund_status = 'REFUND_REQUIRED'), 0) AS refund_required, \
           MIN(CASE WHEN status = 'PENDING' AND expires_at < ?2 THEN expires_at END) AS oldest_expired_hold_at \
         FROM orders WHERE event_id = ?1",
        &[text(event_id), int(now_ms)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("order counts"))
}
