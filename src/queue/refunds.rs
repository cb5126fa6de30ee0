//! Running refunds and reconciling lost notifications: the queue step that moves one refund
//! (claim → provider call → record → schedule the next step with back-off), the cron's
//! catch-up for refunds whose message was lost, and the status queries for payments whose
//! webhook never came, applied through the same path as a webhook.

use serde_json::{json, Value};
use worker::{Date, Env, QueueContentType, RawMessageBuilder};

use crate::config::{secret, Settings};
use crate::domain::refunds::{
    after_answer, begin, reconcile as decide_reconciliation, reconcile_window, FollowUp,
    ProviderAnswer, Reconciliation, RefundRoute, Step,
};
use crate::error::ApiError;
use crate::log::{self, Trace};
use crate::payments::refunds::{RefundCall, StoredPayment};
use crate::payments::{
    Disposition, Gateway, OutboundRequest, PaymentOutcome, Provider, VerifiedNotification,
};
use crate::store::refunds::{self as store, PaidPaymentRow, RefundRow, REFUND_STEP};
use crate::store::{d1, outbox, payments as payment_store};

/// A provider that has not answered in this long counts as unavailable (retried).
const PROVIDER_TIMEOUT_MS: u32 = 8_000;
/// Payments queried per run: the cron runs every minute, so a backlog drains steadily.
const RECONCILE_BATCH: i64 = 25;

/// Whether a payment-events message is a refund step (the rest go to the saga).
pub fn handles(body: &Value) -> bool {
    body.get("type").and_then(Value::as_str) == Some(REFUND_STEP)
}

/// One refund step from the queue. Errors are infrastructure failures (D1 down): the queue
/// retries the message and finally dead-letters it; the cron picks the refund up again.
pub async fn handle(env: &Env, body: &Value, trace: &Trace) -> Result<(), ApiError> {
    let Some(refund_id) = body.get("refundId").and_then(Value::as_str) else {
        return Err(ApiError::internal("refund step without refundId"));
    };
    let db = d1::db(env)?;
    let now = Date::now().as_millis() as i64;
    run_step(env, &db, refund_id, now, trace).await
}

/// Moves one refund as far as it goes now. Safe to run twice at once: the claim is a guarded
/// write, and the provider keys make a repeated call the same refund.
pub async fn run_step(
    env: &Env,
    db: &worker::D1Database,
    refund_id: &str,
    now: i64,
    trace: &Trace,
) -> Result<(), ApiError> {
    let Some(row) = store::find_by_id(db, refund_id).await? else {
        return Ok(());
    };
    let current = row.machine()?;
    let (claimed, route) = match begin(&current, now) {
        Step::Nothing | Step::NotYet { .. } => return Ok(()),
        Step::Act { refund, route } => (refund, route),
    };
    let (won, _) = store::save(db, &row, &current, &claimed, None).await?;
    if !won {
        return Ok(());
    }
    let answer = match route {
        RefundRoute::Immediate => ProviderAnswer::Refunded {
            provider_refund_id: None,
        },
        RefundRoute::Manual => ProviderAnswer::ManualOnly,
        RefundRoute::ProviderApi => call_provider(env, db, &row, &claimed, now).await,
    };
    let finished_at = (Date::now().as_millis() as i64).max(claimed.updated_at + 1);
    let (next, follow) = after_answer(&claimed, answer.clone(), finished_at);
    let (saved, announced) = store::save(db, &row, &claimed, &next, None).await?;
    log::emit(
        if next.status == crate::domain::refunds::RefundStatus::Failed {
            log::Level::Warn
        } else {
            log::Level::Info
        },
        "refund step",
        Some(trace),
        json!({
            "refundId": row.id,
            "orderId": row.order_id,
            "eventId": row.event_id,
            "provider": row.provider,
            "from": current.status.as_str(),
            "to": next.status.as_str(),
            "answer": format!("{answer:?}"),
            "attempts": next.attempts,
            "saved": saved,
        }),
    );
    if !announced.is_empty() {
        outbox::relay(env, db, finished_at, announced.len(), Some(&announced)).await?;
    }
    if let (true, FollowUp::RunAgainIn { seconds }) = (saved, follow) {
        schedule(env, &row, seconds, finished_at).await;
    }
    Ok(())
}

/// Sends the message for the refund's next step, delayed. A failed send is only logged: the
/// refund is due in D1, and the cron runs overdue refunds.
async fn schedule(env: &Env, row: &RefundRow, seconds: u32, now: i64) {
    let body = store::step_message(&row.id, &row.event_id, now).to_string();
    let sent = async {
        let body = js_sys::JSON::parse(&body)
            .map_err(|e| ApiError::internal(format!("refund step message: {e:?}")))?;
        env.queue("PAYMENT_EVENTS")
            .map_err(ApiError::from)?
            .send_raw(
                RawMessageBuilder::new(body)
                    .delay_seconds(seconds)
                    .build_with_content_type(QueueContentType::Json),
            )
            .await
            .map_err(ApiError::from)
    }
    .await;
    if let Err(e) = sent {
        log::warn(
            "refund step not scheduled",
            None,
            json!({"refundId": row.id, "code": e.code(), "error": e.to_string()}),
        );
    }
}

fn gateway(env: &Env, provider: Provider) -> Result<Gateway, ApiError> {
    Gateway::from_secrets(provider, |name| secret(env, name))
        .map_err(|e| ApiError::Misconfigured(e.to_string()))
}

async fn call_provider(
    env: &Env,
    db: &worker::D1Database,
    row: &RefundRow,
    claimed: &crate::domain::refunds::Refund,
    now: i64,
) -> ProviderAnswer {
    let unavailable = |detail: String| ProviderAnswer::Unavailable { detail };
    let gateway = match row.provider().and_then(|p| gateway(env, p)) {
        Ok(g) => g,
        Err(e) => return unavailable(e.to_string()),
    };
    let payment = match store::payment_by_id(db, &row.payment_id).await {
        Ok(Some(p)) => p,
        Ok(None) => return unavailable(format!("payment {} not found", row.payment_id)),
        Err(e) => return unavailable(e.to_string()),
    };
    let call = RefundCall {
        refund_id: row.id.clone(),
        refund_created_at_ms: row.created_at,
        attempt: claimed.attempts + claimed.status_checks + 1,
        submitted: claimed.status_checks > 0,
        description: format!("TicketBottle refund {}", row.order_id),
        payment: stored(&payment),
        now_ms: now,
    };
    let request = match gateway.plan_refund(&call) {
        Ok(r) => r,
        Err(e) => {
            return ProviderAnswer::Rejected {
                code: "NOT_REFUNDABLE".into(),
                message: e.to_string(),
            }
        }
    };
    match send(request).await {
        Ok((status, body)) => gateway.read_refund_answer(status, &body),
        Err(detail) => unavailable(detail),
    }
}

fn stored(p: &PaidPaymentRow) -> StoredPayment {
    StoredPayment {
        provider_ref: p.provider_ref.clone(),
        provider_txn_id: p.provider_txn_id.clone(),
        amount: p.amount,
        created_at_ms: p.created_at,
    }
}

/// Sends a provider request with a deadline; the status and body, or why there is none.
async fn send(request: OutboundRequest) -> Result<(u16, String), String> {
    crate::outbound::send(&request, PROVIDER_TIMEOUT_MS, "the payment provider").await
}

/// The cron's catch-up: refunds whose step message was lost, and steps that never finished.
pub async fn run_overdue(env: &Env, now: i64, trace: &Trace) -> Result<usize, ApiError> {
    let db = d1::db(env)?;
    let mut ran = 0;
    for row in store::overdue(&db, now).await? {
        if row.next_attempt_at.is_none() && !store::release_stale_claim(&db, &row, now).await? {
            continue;
        }
        run_step(env, &db, &row.id, now, trace).await?;
        ran += 1;
    }
    Ok(ran)
}

/// What one reconciliation run did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Reconciled {
    /// Payments asked about.
    pub checked: usize,
    /// Answers that moved a payment (recorded as a webhook would have).
    pub applied: usize,
}

/// Asks the providers about payments still PENDING `after_ms` after creation (and not asked
/// about in the last `requery_after_ms`) and applies each answer through the webhook's path
/// ([`payment_store::settle`]).
pub async fn reconcile(
    env: &Env,
    now: i64,
    after_ms: i64,
    requery_after_ms: i64,
    trace: &Trace,
) -> Result<Reconciled, ApiError> {
    let db = d1::db(env)?;
    let settings = Settings::from_env(env);
    let (from, to) = reconcile_window(now, after_ms);
    let mut done = Reconciled::default();
    let asked_before = now - requery_after_ms.max(0);
    for payment in
        store::payments_to_reconcile(&db, from, to, asked_before, RECONCILE_BATCH).await?
    {
        let Ok(provider) = payment.provider.parse::<Provider>() else {
            continue;
        };
        if !settings.provider_enabled(provider) {
            continue;
        }
        done.checked += 1;
        store::mark_reconciled(&db, &payment.id, now).await?;
        let outcome = reconcile_one(env, &db, provider, &payment, now).await;
        let (applied, detail) = match &outcome {
            Ok(Some(disposition)) => (*disposition == Disposition::Accepted, None),
            Ok(None) => (false, None),
            Err(e) => (false, Some(e.clone())),
        };
        if applied {
            done.applied += 1;
        }
        log::emit(
            if detail.is_some() {
                log::Level::Warn
            } else {
                log::Level::Info
            },
            "payment reconciled",
            Some(trace),
            json!({
                "paymentId": payment.id,
                "provider": payment.provider,
                "orderRef": payment.provider_ref,
                "disposition": outcome.as_ref().ok().and_then(|d| d.map(|d| d.code())),
                "applied": applied,
                "detail": detail,
            }),
        );
    }
    Ok(done)
}

/// One payment: query, decide, apply. `Ok(None)` when there is nothing to apply yet.
async fn reconcile_one(
    env: &Env,
    db: &worker::D1Database,
    provider: Provider,
    payment: &PaidPaymentRow,
    now: i64,
) -> Result<Option<Disposition>, String> {
    let gateway = gateway(env, provider).map_err(|e| e.to_string())?;
    let stored = stored(payment);
    let Some(request) = gateway
        .plan_status_query(&stored, now)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let (status, body) = send(request).await?;
    let answer = gateway
        .read_status_answer(status, &body)
        .map_err(|e| e.to_string())?;
    let (provider_txn_id, amount, outcome) = match decide_reconciliation(answer, payment.amount) {
        Reconciliation::Leave => return Ok(None),
        Reconciliation::AmountMismatch { paid } => {
            return Err(format!(
                "paid {paid} for a payment of {}: left for an operator",
                payment.amount
            ))
        }
        Reconciliation::ApplyPaid {
            amount,
            provider_txn_id,
        } => (provider_txn_id, amount, PaymentOutcome::Succeeded),
        Reconciliation::ApplyFailed { code, reason } => (
            format!("{}:{code}", payment.provider_ref),
            payment.amount,
            PaymentOutcome::Failed { code, reason },
        ),
    };
    let verdict = VerifiedNotification {
        provider,
        order_ref: payment.provider_ref.clone(),
        provider_txn_id,
        amount,
        outcome,
        raw: json!({ "reconciledAt": now, "statusAnswer": body }),
    };
    let settlement = payment_store::settle(db, &verdict, now).await;
    if let Some(outbox_id) = settlement.outbox_id {
        let _ = outbox::relay(env, db, now, 1, Some(&[outbox_id])).await;
    }
    match settlement.error {
        Some(e) => Err(e),
        None => Ok(Some(settlement.disposition)),
    }
}

/// Orders refunded per cron run for cancelled events; the rest follow in the next runs.
const CANCELLATION_BATCH: i64 = 50;

/// A PUBLISHED event that was cancelled owes every paid order its money: one refund per order,
/// created in batches. Each order gets exactly one (the unique live-refund index), and a crash
/// between batches loses nothing: the next run finds the orders still without a refund.
pub async fn refund_cancelled_events(
    env: &Env,
    now: i64,
    trace: &Trace,
) -> Result<usize, ApiError> {
    let db = d1::db(env)?;
    let mut created = 0;
    for owed in store::owed_by_cancelled_events(&db, CANCELLATION_BATCH).await? {
        let Some(payment) = store::paid_payment_of(&db, &owed.order_id).await? else {
            continue;
        };
        let Ok(provider) = payment.provider.parse::<Provider>() else {
            continue;
        };
        let id = uuid::Uuid::new_v4().to_string();
        let row = store::create(
            &db,
            &store::NewRefund {
                id: &id,
                order_id: &owed.order_id,
                event_id: &owed.event_id,
                payment_id: &payment.id,
                provider,
                amount_cents: payment.amount,
                currency: &payment.currency,
                reason: "EVENT_CANCELLED",
                requested_by: None,
            },
            now,
        )
        .await?;
        if row.id == id {
            created += 1;
            let first_step = vec![format!("refund-{id}-0")];
            outbox::relay(env, &db, now, 1, Some(&first_step)).await?;
            log::info(
                "refund requested",
                Some(trace),
                json!({"refundId": id, "orderId": owed.order_id, "eventId": owed.event_id, "reason": "EVENT_CANCELLED"}),
            );
        }
    }
    Ok(created)
}

/// The cron's part: cancelled events' refunds, overdue refund steps, then reconciliation.
/// Errors are logged by the caller.
pub async fn on_schedule(env: &Env, now: i64, trace: &Trace) -> Result<Value, ApiError> {
    let cancelled = refund_cancelled_events(env, now, trace).await?;
    let refunds = run_overdue(env, now, trace).await?;
    let settings = Settings::from_env(env);
    // The cron asks again about a payment only after the same grace period, not every minute.
    let grace = settings.reconcile_after_ms.max(60_000);
    let reconciled = reconcile(env, now, settings.reconcile_after_ms, grace, trace).await?;
    Ok(json!({
        "cancellationRefunds": cancelled,
        "refundsRun": refunds,
        "reconciled": reconciled,
    }))
}
