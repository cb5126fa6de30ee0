//! Payment attempts in D1, and the one batch that records a provider's verdict together with
//! the outbox message that carries it to the saga.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use worker::D1Database;

use super::d1::{first, int, is_unique_violation, stmt, text};
use super::outbox::{OutboxMessage, Queue};
use crate::error::ApiError;
use crate::payments::{
    check_order, Disposition, OrderStanding, PaymentStanding, VerifiedNotification,
};

const PAYMENT_COLUMNS: &str = "p.id, p.order_id, p.provider_ref, p.amount, p.currency, p.status, \
     o.event_id, o.code AS order_code";

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentRow {
    pub id: String,
    pub order_id: String,
    pub provider_ref: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub event_id: String,
    pub order_code: String,
}

pub async fn find_by_ref(
    db: &D1Database,
    provider: &str,
    provider_ref: &str,
) -> Result<Option<PaymentRow>, ApiError> {
    first(
        db,
        &format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p JOIN orders o ON o.id = p.order_id \
             WHERE p.provider = ?1 AND p.provider_ref = ?2"
        ),
        &[text(provider), text(provider_ref)],
    )
    .await
}

pub async fn find_by_id(db: &D1Database, id: &str) -> Result<Option<PaymentRow>, ApiError> {
    first(
        db,
        &format!("SELECT {PAYMENT_COLUMNS} FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = ?1"),
        &[text(id)],
    )
    .await
}

pub enum Recorded {
    /// This delivery settled the payment; the outbox row with this id announces it.
    Settled { outbox_id: String },
    /// Another delivery (a duplicate, or a different verdict that won a race) settled it first.
    AlreadySettled,
}

/// Settles a PENDING payment with the provider's verdict (or records money for one closed
/// without it) and writes the saga message, in one D1 batch: either both happen or neither.
/// The UPDATE only matches a row still open to this verdict and the
/// outbox insert only fires if this very verdict is now stored, so duplicate webhooks (even
/// concurrent ones) produce one effect.
pub async fn record_verdict(
    db: &D1Database,
    payment: &PaymentRow,
    verdict: &VerifiedNotification,
    now_ms: i64,
) -> Result<Recorded, ApiError> {
    let status = if verdict.outcome.is_success() {
        "COMPLETED"
    } else {
        "FAILED"
    };
    let event_type = if verdict.outcome.is_success() {
        "PAYMENT_COMPLETED"
    } else {
        "PAYMENT_FAILED"
    };
    let outbox_id = format!("payment-{}-{}", payment.id, status.to_lowercase());
    let mut payload = Map::new();
    payload.insert("orderId".into(), payment.order_id.clone().into());
    payload.insert("paymentId".into(), payment.id.clone().into());
    payload.insert("provider".into(), verdict.provider.as_str().into());
    payload.insert(
        "providerTxnId".into(),
        verdict.provider_txn_id.clone().into(),
    );
    payload.insert("amount".into(), verdict.amount.into());
    payload.insert(
        "outcome".into(),
        serde_json::to_value(&verdict.outcome).unwrap_or(Value::Null),
    );
    let message = OutboxMessage::new(
        outbox_id.clone(),
        Queue::PaymentEvents,
        event_type,
        ("payment", &payment.id),
        &payment.event_id,
        now_ms,
        payload,
    );
    let raw = json!(verdict.raw).to_string();
    let statements = vec![
        stmt(
            db,
            // A success also settles a payment closed without money (see
            // `PaymentStanding::ClosedUnpaid`): that money goes to the saga's late path.
            "UPDATE payments SET status = ?2, provider_txn_id = ?3, provider_payload = ?4, updated_at = ?5 \
             WHERE id = ?1 AND (status = 'PENDING' \
             OR (?2 = 'COMPLETED' AND status IN ('FAILED', 'CANCELLED')))",
            &[text(&payment.id), text(status), text(&verdict.provider_txn_id), text(&raw), int(now_ms)],
        )?,
        message.insert_when(
            db,
            now_ms,
            Some((
                "EXISTS (SELECT 1 FROM payments WHERE id = ?8 AND status = ?9 AND provider_txn_id = ?10)",
                &[text(&payment.id), text(status), text(&verdict.provider_txn_id)],
            )),
        )?,
    ];
    match db.batch(statements).await {
        Ok(results) => {
            let changed = results
                .first()
                .and_then(|r| r.meta().ok().flatten())
                .and_then(|m| m.changes)
                .unwrap_or(0);
            Ok(if changed == 1 {
                Recorded::Settled { outbox_id }
            } else {
                Recorded::AlreadySettled
            })
        }
        // The provider transaction id already settled another payment row: not ours to apply.
        Err(e) if is_unique_violation(&e) => Ok(Recorded::AlreadySettled),
        Err(e) => Err(e.into()),
    }
}

/// Where applying one verified notification ended.
pub struct Settlement {
    pub disposition: Disposition,
    /// The order the notification's payment belongs to, when the payment is known.
    pub order_id: Option<String>,
    /// The outbox row announcing the result, to relay now (the cron relays it otherwise).
    pub outbox_id: Option<String>,
    /// Why the store could not take it (then `disposition` is `RetryLater`).
    pub error: Option<String>,
}

/// The one idempotent path every verified payment result takes, from a provider's webhook or
/// from a status query (reconciliation): find the payment by the provider's reference, check
/// it against the notification, and record it with its saga message.
pub async fn settle(db: &D1Database, verdict: &VerifiedNotification, now_ms: i64) -> Settlement {
    let retry = |order_id: Option<String>, e: ApiError| Settlement {
        disposition: Disposition::RetryLater,
        order_id,
        outbox_id: None,
        error: Some(e.to_string()),
    };
    let payment = match find_by_ref(db, verdict.provider.as_str(), &verdict.order_ref).await {
        Ok(p) => p,
        Err(e) => return retry(None, e),
    };
    let standing = match &payment {
        Some(p) => OrderStanding::Found {
            amount: p.amount,
            payment: PaymentStanding::from_status(&p.status),
        },
        None => OrderStanding::NotFound,
    };
    let order_id = payment.as_ref().map(|p| p.order_id.clone());
    let mut settlement = Settlement {
        disposition: check_order(verdict, &standing),
        order_id: order_id.clone(),
        outbox_id: None,
        error: None,
    };
    if let (Disposition::Accepted, Some(payment)) = (settlement.disposition, &payment) {
        match record_verdict(db, payment, verdict, now_ms).await {
            Ok(Recorded::Settled { outbox_id }) => settlement.outbox_id = Some(outbox_id),
            Ok(Recorded::AlreadySettled) => settlement.disposition = Disposition::AlreadySettled,
            Err(e) => return retry(order_id, e),
        }
    }
    settlement
}
