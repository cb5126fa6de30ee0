//! Refunds in D1: one live refund per order (created with the message that starts it, in one
//! batch), guarded saves of each state-machine step, the lists, and the order marked REFUNDED
//! with its announcement in the same batch as the refund that finished it.

use serde::Deserialize;
use serde_json::Map;
use worker::D1Database;

use super::d1::{all, first, int, opt_int, opt_text, stmt, text};
use super::outbox::{OutboxMessage, Queue};
use crate::domain::refunds::{Refund, RefundStatus};
use crate::error::ApiError;
use crate::payments::Provider;

const COLUMNS: &str = "id, order_id, event_id, payment_id, provider, amount_cents, currency, \
     status, reason, requested_by, attempts, status_checks, next_attempt_at, provider_refund_id, \
     last_error, note, created_at, updated_at";

/// The message type that runs a refund's next step (on the payment-events queue).
pub const REFUND_STEP: &str = "REFUND_STEP";

#[derive(Debug, Clone, Deserialize)]
pub struct RefundRow {
    pub id: String,
    pub order_id: String,
    pub event_id: String,
    pub payment_id: String,
    pub provider: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub reason: String,
    pub requested_by: Option<String>,
    pub attempts: i64,
    pub status_checks: i64,
    pub next_attempt_at: Option<i64>,
    pub provider_refund_id: Option<String>,
    pub last_error: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RefundRow {
    pub fn provider(&self) -> Result<Provider, ApiError> {
        self.provider.parse().map_err(ApiError::internal)
    }

    /// The row as the state machine sees it.
    pub fn machine(&self) -> Result<Refund, ApiError> {
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Ok(Refund {
            id: self.id.clone(),
            status: RefundStatus::parse(&self.status).ok_or_else(|| {
                ApiError::internal(format!("refund {} has status {}", self.id, self.status))
            })?,
            route: self.provider()?.refund_route(),
            attempts: count(self.attempts),
            status_checks: count(self.status_checks),
            next_attempt_at: self.next_attempt_at,
            provider_refund_id: self.provider_refund_id.clone(),
            last_error: self.last_error.clone(),
            updated_at: self.updated_at,
        })
    }
}

/// The body of a [`REFUND_STEP`] message; `seq` makes each scheduled step a distinct message.
pub fn step_message(refund_id: &str, event_id: &str, seq: i64) -> serde_json::Value {
    serde_json::json!({
        "type": REFUND_STEP,
        "id": format!("refund-{refund_id}-{seq}"),
        "refundId": refund_id,
        "eventId": event_id,
    })
}

pub async fn find_by_id(db: &D1Database, id: &str) -> Result<Option<RefundRow>, ApiError> {
    first(
        db,
        &format!("SELECT {COLUMNS} FROM refunds WHERE id = ?1"),
        &[text(id)],
    )
    .await
}

/// The order's refund that is not FAILED (at most one, by the unique index).
pub async fn find_live_for_order(
    db: &D1Database,
    order_id: &str,
) -> Result<Option<RefundRow>, ApiError> {
    first(
        db,
        &format!("SELECT {COLUMNS} FROM refunds WHERE order_id = ?1 AND status <> 'FAILED'"),
        &[text(order_id)],
    )
    .await
}

pub async fn list_for_orders(
    db: &D1Database,
    order_ids: &[String],
) -> Result<Vec<RefundRow>, ApiError> {
    let list = serde_json::to_string(order_ids).map_err(ApiError::internal)?;
    all(
        db,
        &format!(
            "SELECT {COLUMNS} FROM refunds WHERE order_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY created_at, id"
        ),
        &[text(&list)],
    )
    .await
}

/// Newest first; `status` filters when given.
pub async fn list(
    db: &D1Database,
    status: Option<&str>,
    event_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RefundRow>, i64), ApiError> {
    let filter = "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR event_id = ?2)";
    let rows = all(
        db,
        &format!(
            "SELECT {COLUMNS} FROM refunds WHERE {filter} \
             ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
        ),
        &[
            opt_text(status),
            opt_text(event_id),
            int(limit),
            int(offset),
        ],
    )
    .await?;
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let total = first::<N>(
        db,
        &format!("SELECT COUNT(*) AS n FROM refunds WHERE {filter}"),
        &[opt_text(status), opt_text(event_id)],
    )
    .await?
    .map(|r| r.n)
    .unwrap_or(0);
    Ok((rows, total))
}

/// What a new refund is made of.
pub struct NewRefund<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub event_id: &'a str,
    pub payment_id: &'a str,
    pub provider: Provider,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub reason: &'a str,
    pub requested_by: Option<&'a str>,
}

/// Creates the order's refund with the outbox message that runs its first step, unless a live
/// one exists (then nothing is written). Returns the order's live refund either way.
pub async fn create(
    db: &D1Database,
    new: &NewRefund<'_>,
    now_ms: i64,
) -> Result<RefundRow, ApiError> {
    let insert = stmt(
        db,
        "INSERT INTO refunds (id, order_id, event_id, payment_id, provider, amount_cents, currency, \
         status, reason, requested_by, attempts, status_checks, next_attempt_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'REQUESTED', ?8, ?9, 0, 0, ?10, ?10, ?10) \
         ON CONFLICT DO NOTHING",
        &[
            text(new.id),
            text(new.order_id),
            text(new.event_id),
            text(new.payment_id),
            text(new.provider.as_str()),
            int(new.amount_cents),
            text(new.currency),
            text(new.reason),
            opt_text(new.requested_by),
            int(now_ms),
        ],
    )?;
    let mut payload = Map::new();
    payload.insert("refundId".into(), new.id.into());
    payload.insert("orderId".into(), new.order_id.into());
    payload.insert("provider".into(), new.provider.as_str().into());
    payload.insert("amountCents".into(), new.amount_cents.into());
    let message = OutboxMessage::new(
        format!("refund-{}-0", new.id),
        Queue::PaymentEvents,
        REFUND_STEP,
        ("refund", new.id),
        new.event_id,
        now_ms,
        payload,
    );
    db.batch(vec![
        insert,
        message.insert_when(db, now_ms, Some(("changes() = 1", &[])))?,
    ])
    .await
    .map_err(ApiError::from)?;
    find_live_for_order(db, new.order_id)
        .await?
        .ok_or_else(|| ApiError::internal("the refund just written is not there"))
}

/// Saves the state machine's next version of a refund, only if nobody moved it since `before`
/// was read (same status and `updated_at`). When the refund becomes REFUNDED, the order is
/// marked refunded and `ORDER_REFUNDED` announced in the same batch. Returns whether it saved
/// and the outbox ids to relay.
pub async fn save(
    db: &D1Database,
    row: &RefundRow,
    before: &Refund,
    after: &Refund,
    note: Option<&str>,
) -> Result<(bool, Vec<String>), ApiError> {
    let now = after.updated_at;
    let mut statements = vec![stmt(
        db,
        "UPDATE refunds SET status = ?3, attempts = ?4, status_checks = ?5, next_attempt_at = ?6, \
         provider_refund_id = ?7, last_error = ?8, note = COALESCE(?9, note), updated_at = ?10 \
         WHERE id = ?1 AND status = ?2 AND updated_at = ?11",
        &[
            text(&after.id),
            text(before.status.as_str()),
            text(after.status.as_str()),
            int(i64::from(after.attempts)),
            int(i64::from(after.status_checks)),
            opt_int(after.next_attempt_at),
            opt_text(after.provider_refund_id.as_deref()),
            opt_text(after.last_error.as_deref()),
            opt_text(note),
            int(now),
            int(before.updated_at),
        ],
    )?];
    let mut announced = Vec::new();
    if after.status == RefundStatus::Refunded {
        statements.push(stmt(
            db,
            "UPDATE orders SET refund_status = 'REFUNDED', updated_at = ?2 \
             WHERE id = ?1 AND COALESCE(refund_status, '') <> 'REFUNDED' \
             AND EXISTS (SELECT 1 FROM refunds WHERE id = ?3 AND status = 'REFUNDED')",
            &[text(&row.order_id), int(now), text(&after.id)],
        )?);
        let mut payload = Map::new();
        payload.insert("orderId".into(), row.order_id.clone().into());
        payload.insert("refundId".into(), after.id.clone().into());
        payload.insert("amountCents".into(), row.amount_cents.into());
        payload.insert("currency".into(), row.currency.clone().into());
        payload.insert("provider".into(), row.provider.clone().into());
        let id = format!("order-{}-refunded", row.order_id);
        let message = OutboxMessage::new(
            id.clone(),
            Queue::DomainEvents,
            "ORDER_REFUNDED",
            ("order", &row.order_id),
            &row.event_id,
            now,
            payload,
        );
        statements.push(message.insert_when(db, now, Some(("changes() = 1", &[])))?);
        announced.push(id);
    }
    let results = db.batch(statements).await.map_err(ApiError::from)?;
    let changed = results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    Ok((
        changed == 1,
        if changed == 1 { announced } else { Vec::new() },
    ))
}

/// Refunds whose next step is overdue (their queue message was lost or dead-lettered), and
/// those a step claimed but never finished (the Worker stopped mid-call): the cron runs them.
pub async fn overdue(db: &D1Database, now_ms: i64) -> Result<Vec<RefundRow>, ApiError> {
    all(
        db,
        &format!(
            "SELECT {COLUMNS} FROM refunds WHERE status IN ('REQUESTED', 'PROCESSING') \
             AND ((next_attempt_at IS NOT NULL AND next_attempt_at <= ?1) \
               OR (next_attempt_at IS NULL AND updated_at <= ?2)) \
             ORDER BY updated_at LIMIT 25"
        ),
        &[int(now_ms - 60_000), int(now_ms - 300_000)],
    )
    .await
}

/// Makes a claimed-but-abandoned refund due again (guarded, so a step that is in fact still
/// running and saves first wins).
pub async fn release_stale_claim(
    db: &D1Database,
    row: &RefundRow,
    now_ms: i64,
) -> Result<bool, ApiError> {
    let changed = super::d1::run(
        db,
        "UPDATE refunds SET next_attempt_at = ?2, updated_at = ?2 \
         WHERE id = ?1 AND status = 'PROCESSING' AND next_attempt_at IS NULL AND updated_at = ?3",
        &[text(&row.id), int(now_ms), int(row.updated_at)],
    )
    .await?;
    Ok(changed == 1)
}

/// The payment a refund gives back: its provider reference, transaction and creation time.
#[derive(Debug, Clone, Deserialize)]
pub struct PaidPaymentRow {
    pub id: String,
    pub provider: String,
    pub provider_ref: String,
    pub provider_txn_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub created_at: i64,
}

/// The order's payment that brought money in (late money included).
pub async fn paid_payment_of(
    db: &D1Database,
    order_id: &str,
) -> Result<Option<PaidPaymentRow>, ApiError> {
    first(
        db,
        "SELECT id, provider, provider_ref, provider_txn_id, amount, currency, created_at \
         FROM payments WHERE order_id = ?1 AND status = 'COMPLETED' ORDER BY updated_at LIMIT 1",
        &[text(order_id)],
    )
    .await
}

pub async fn payment_by_id(db: &D1Database, id: &str) -> Result<Option<PaidPaymentRow>, ApiError> {
    first(
        db,
        "SELECT id, provider, provider_ref, provider_txn_id, amount, currency, created_at \
         FROM payments WHERE id = ?1",
        &[text(id)],
    )
    .await
}

/// Payments still PENDING with a real provider, created in `[from, to]` and not asked about
/// since `asked_before`: due for a status query, the least recently asked first.
pub async fn payments_to_reconcile(
    db: &D1Database,
    from_ms: i64,
    to_ms: i64,
    asked_before: i64,
    limit: i64,
) -> Result<Vec<PaidPaymentRow>, ApiError> {
    all(
        db,
        "SELECT id, provider, provider_ref, provider_txn_id, amount, currency, created_at \
         FROM payments WHERE status = 'PENDING' AND provider IN ('payos', 'vnpay', 'zalopay') \
         AND created_at BETWEEN ?1 AND ?2 AND COALESCE(reconciled_at, 0) <= ?3 \
         ORDER BY COALESCE(reconciled_at, 0), created_at LIMIT ?4",
        &[int(from_ms), int(to_ms), int(asked_before), int(limit)],
    )
    .await
}

/// Records that the provider was asked about a payment now.
pub async fn mark_reconciled(
    db: &D1Database,
    payment_id: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    super::d1::run(
        db,
        "UPDATE payments SET reconciled_at = ?2 WHERE id = ?1",
        &[text(payment_id), int(now_ms)],
    )
    .await
    .map(|_| ())
}

/// `eventConfig.refundableUntil` of an event (unix ms), if set.
pub async fn refundable_until(db: &D1Database, event_id: &str) -> Result<Option<i64>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        refundable_until: Option<i64>,
    }
    Ok(first::<Row>(
        db,
        "SELECT refundable_until FROM event_config WHERE event_id = ?1",
        &[text(event_id)],
    )
    .await?
    .and_then(|r| r.refundable_until))
}

/// An order whose event was cancelled after it went on sale, paid (or owed money) and never
/// refunded nor put to a refund: what the cancellation still has to give back.
#[derive(Debug, Clone, Deserialize)]
pub struct OwedOrder {
    pub order_id: String,
    pub event_id: String,
}

/// The next batch of [`OwedOrder`]s. Restartable at any point: an order leaves this list the
/// moment its refund row exists (a FAILED one included, which an operator takes from there).
/// Only orders money came in for: a free order owes nothing, and were it listed it would stay
/// at the head of every batch and starve the paid orders behind it.
pub async fn owed_by_cancelled_events(
    db: &D1Database,
    limit: i64,
) -> Result<Vec<OwedOrder>, ApiError> {
    all(
        db,
        "SELECT o.id AS order_id, o.event_id FROM orders o JOIN events e ON e.id = o.event_id \
         WHERE e.status = 'CANCELLED' AND e.ever_published = 1 \
         AND (o.status = 'COMPLETED' OR o.refund_status = 'REFUND_REQUIRED') \
         AND COALESCE(o.refund_status, '') <> 'REFUNDED' \
         AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id) \
         AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status = 'COMPLETED') \
         ORDER BY o.created_at LIMIT ?1",
        &[int(limit)],
    )
    .await
}
