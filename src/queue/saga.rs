//! The order saga after checkout: payment results, hold expiries and owner cancels move an
//! order to its end state, with the event object confirming or releasing the hold and freeing
//! the checkout slot. Every step is idempotent: delivery is at least once.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use worker::{Date, Env};

use crate::domain::ledger::{ConfirmOutcome, ReleaseOutcome};
use crate::domain::saga::{
    after_confirm, checkout_event_type, decide, sweep_decision, CheckoutOutcome, CheckoutStep,
    Compensation, ConfirmAnswer, OrderStatus, SagaInput, SagaStep,
};
use crate::durable::client::EventHubClient;
use crate::error::ApiError;
use crate::log::{self, Trace};
use crate::store::d1::{self, all, first, int, run, text};
use crate::store::orders::{self, OrderRow, Transition};
use crate::store::outbox;

pub async fn handle(env: &Env, body: &Value, trace: &Trace) -> Result<(), ApiError> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let (Some(id), Some(kind)) = (field("id"), field("type")) else {
        return Err(ApiError::internal("saga message without id or type"));
    };
    let db = d1::db(env)?;
    if already_processed(&db, id).await? {
        return Ok(());
    }
    let now = Date::now().as_millis() as i64;
    let input = match kind {
        "PAYMENT_COMPLETED" => Some(SagaInput::PaymentSucceeded),
        "PAYMENT_FAILED" => Some(SagaInput::PaymentFailed),
        "HOLD_EXPIRED" => Some(SagaInput::HoldExpired),
        // Not a saga input (the queue may carry more kinds later): nothing to do.
        _ => None,
    };
    if let (Some(input), Some(order_id)) = (input, field("orderId")) {
        // A hold can expire for an order that was never written (the checkout died between
        // reserve and write): the stock is already back, nothing else to undo.
        if let Some(order) = orders::find_by_id(&db, order_id).await? {
            continue_saga(env, &db, &order, input, now, trace).await?;
            // Every message that leaves the order COMPLETED (the first and any redelivery)
            // issues what is missing; the message is acknowledged only once that is done.
            crate::store::tickets::issue_if_completed(env, &db, order_id, now).await?;
        }
    }
    run(
        &db,
        "INSERT OR IGNORE INTO processed_messages (message_id, processed_at) VALUES (?1, ?2)",
        &[text(id), int(now)],
    )
    .await?;
    Ok(())
}

async fn already_processed(db: &worker::D1Database, id: &str) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        #[allow(dead_code)]
        message_id: String,
    }
    Ok(first::<Row>(
        db,
        "SELECT message_id FROM processed_messages WHERE message_id = ?1",
        &[text(id)],
    )
    .await?
    .is_some())
}

/// What happened, for callers that answer a request (owner cancel).
pub enum Applied {
    Moved,
    Unchanged,
    Refused,
}

/// The fields every saga log line carries.
fn order_fields(order: &OrderRow) -> Value {
    json!({
        "orderId": order.id,
        "eventId": order.event_id,
        "provider": order.payment_method,
    })
}

fn merged(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
        base.extend(extra);
    }
    base
}

/// Runs one saga input against an order: decide, perform the object call, record the new
/// status with its announcements, free the checkout slot, publish. Logs one `saga step` line.
pub async fn continue_saga(
    env: &Env,
    db: &worker::D1Database,
    order: &OrderRow,
    input: SagaInput,
    now: i64,
    trace: &Trace,
) -> Result<Applied, ApiError> {
    let from = order.status()?;
    let hub = EventHubClient::new(env, &order.event_id)
        .map_err(ApiError::from)?
        .traced(trace);
    let step_line = |outcome: &str, to: OrderStatus, refund: Option<&str>| {
        log::info(
            "saga step",
            Some(trace),
            merged(
                order_fields(order),
                json!({
                    "input": format!("{input:?}"),
                    "outcome": outcome,
                    "from": from.as_str(),
                    "to": to.as_str(),
                    "refundReason": refund,
                }),
            ),
        )
    };
    let (to, refund_reason, checkout) = match decide(from, input) {
        SagaStep::Ignore(_) => {
            step_line("ignored", from, None);
            return Ok(Applied::Unchanged);
        }
        SagaStep::Refuse => {
            step_line("refused", from, None);
            return Ok(Applied::Refused);
        }
        SagaStep::ConfirmHold => {
            let answer = match hub.confirm(&order.id).await? {
                ConfirmOutcome::Confirmed(_) => ConfirmAnswer::Confirmed,
                ConfirmOutcome::PaidButNoStock(_) => ConfirmAnswer::NoStock,
                ConfirmOutcome::PaidButEventCancelled(_) => ConfirmAnswer::EventCancelled,
            };
            let after = after_confirm(answer, from);
            (after.status, after.refund_reason, after.checkout)
        }
        SagaStep::ReleaseAndClose { status, checkout } => {
            hub.release(&order.id).await?;
            (status, None, checkout)
        }
        SagaStep::Close { status, checkout } => (status, None, checkout),
    };
    let published = record(db, order, from, to, refund_reason, checkout, now).await?;
    if order.waitroom_session_id.is_some() {
        hub.checkout_resolved(&order.id, checkout).await?;
    }
    if !published.is_empty() {
        outbox::relay(env, db, now, published.len(), Some(&published)).await?;
    }
    let moved = !(from == to && refund_reason.is_none());
    step_line(if moved { "moved" } else { "unchanged" }, to, refund_reason);
    Ok(if moved {
        Applied::Moved
    } else {
        Applied::Unchanged
    })
}

async fn record(
    db: &worker::D1Database,
    order: &OrderRow,
    from: OrderStatus,
    to: OrderStatus,
    refund_reason: Option<&'static str>,
    checkout: CheckoutOutcome,
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let mut payload = Map::new();
    payload.insert("orderId".into(), order.id.clone().into());
    payload.insert("orderCode".into(), order.code.clone().into());
    payload.insert("userId".into(), order.user_id.clone().into());
    payload.insert("status".into(), to.as_str().into());
    payload.insert("totalAmountCents".into(), order.total_amount_cents.into());
    payload.insert("currency".into(), order.currency.clone().into());
    if let Some(reason) = refund_reason {
        payload.insert("refundReason".into(), reason.into());
    }
    let order_event = match to {
        OrderStatus::Completed => "ORDER_COMPLETED",
        OrderStatus::Cancelled => "ORDER_CANCELLED",
        OrderStatus::Failed => "ORDER_FAILED",
        OrderStatus::Pending => "ORDER_CREATED",
    };
    let mut announce = vec![(order_event, payload.clone())];
    if from != to {
        announce.push((checkout_event_type(checkout), payload.clone()));
    }
    if refund_reason.is_some() {
        announce.push(("ORDER_REFUND_REQUIRED", payload));
    }
    orders::transition(
        db,
        &Transition {
            order,
            from,
            to,
            refund_reason,
            failure_code: None,
            announce,
        },
        now,
    )
    .await
}

/// Checkouts that wrote an order but died before creating its payment (the Worker was
/// stopped mid-request) are compensated once they are old enough to be surely dead.
pub async fn sweep_stuck_checkouts(env: &Env, now: i64, trace: &Trace) -> Result<usize, ApiError> {
    #[derive(Deserialize)]
    struct Stuck {
        order_id: String,
        steps: String,
        created_at: i64,
    }
    let db = d1::db(env)?;
    let stuck: Vec<Stuck> = all(
        &db,
        "SELECT o.id AS order_id, o.created_at, \
         (SELECT group_concat(step) FROM saga_steps s WHERE s.order_id = o.id AND s.status = 'DONE') AS steps \
         FROM orders o WHERE o.status = 'PENDING' AND o.created_at < ?1 \
         AND NOT EXISTS (SELECT 1 FROM saga_steps s WHERE s.order_id = o.id AND s.step = 'PAYMENT_CREATED') \
         ORDER BY o.created_at LIMIT 50",
        &[int(now - crate::domain::saga::STUCK_CHECKOUT_AFTER_MS)],
    )
    .await?;
    let mut swept = 0;
    for s in stuck {
        let done: Vec<CheckoutStep> = s.steps.split(',').filter_map(CheckoutStep::parse).collect();
        let Some(plan) = sweep_decision(&done, s.created_at, now) else {
            continue;
        };
        if let Some(order) = orders::find_by_id(&db, &s.order_id).await? {
            compensate(env, &db, &order, &plan, "CHECKOUT_ABANDONED", now, trace).await?;
            swept += 1;
        }
    }
    Ok(swept)
}

/// Pending orders whose hold deadline passed a while ago without their HOLD_EXPIRED message
/// arriving (dead-lettered after its retries, or lost with a local queue on restart): the
/// object releases the hold if it still holds it, then the saga closes the order as expired
/// and frees its checkout slot. A hold the object already confirmed (paid, D1 not yet told)
/// is left to the payment's own redelivery.
pub async fn sweep_expired_holds(env: &Env, now: i64, trace: &Trace) -> Result<usize, ApiError> {
    #[derive(Deserialize)]
    struct Due {
        id: String,
    }
    let db = d1::db(env)?;
    let due: Vec<Due> = all(
        &db,
        "SELECT id FROM orders WHERE status = 'PENDING' AND expires_at < ?1 ORDER BY expires_at LIMIT 50",
        &[int(now - crate::domain::saga::STUCK_CHECKOUT_AFTER_MS)],
    )
    .await?;
    let mut swept = 0;
    for d in due {
        let Some(order) = orders::find_by_id(&db, &d.id).await? else {
            continue;
        };
        let hub = EventHubClient::new(env, &order.event_id)
            .map_err(ApiError::from)?
            .traced(trace);
        if let ReleaseOutcome::AlreadyConfirmed(_) = hub.release(&order.id).await? {
            continue;
        }
        if let Applied::Moved =
            continue_saga(env, &db, &order, SagaInput::HoldExpired, now, trace).await?
        {
            swept += 1;
        }
    }
    Ok(swept)
}

/// Runs compensations (already in reverse order) for a checkout that cannot finish. Logs one
/// `saga compensation` line with the failure as its `code`.
pub async fn compensate(
    env: &Env,
    db: &worker::D1Database,
    order: &OrderRow,
    plan: &[Compensation],
    failure_code: &str,
    now: i64,
    trace: &Trace,
) -> Result<(), ApiError> {
    log::warn(
        "saga compensation",
        Some(trace),
        merged(
            order_fields(order),
            json!({
                "code": failure_code,
                "steps": plan.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
            }),
        ),
    );
    let hub = EventHubClient::new(env, &order.event_id)
        .map_err(ApiError::from)?
        .traced(trace);
    for step in plan {
        match step {
            Compensation::FreeCheckoutSlot => {
                hub.checkout_resolved(&order.id, CheckoutOutcome::Failed)
                    .await?
            }
            Compensation::ReopenCheckout => hub.unbind_order(&order.id).await?,
            Compensation::FailOrder => {
                let mut payload = Map::new();
                payload.insert("orderId".into(), order.id.clone().into());
                payload.insert("orderCode".into(), order.code.clone().into());
                payload.insert("failureCode".into(), failure_code.into());
                let ids = orders::transition(
                    db,
                    &Transition {
                        order,
                        from: OrderStatus::Pending,
                        to: OrderStatus::Failed,
                        refund_reason: None,
                        failure_code: Some(failure_code),
                        announce: vec![("ORDER_FAILED", payload)],
                    },
                    now,
                )
                .await?;
                if !ids.is_empty() {
                    outbox::relay(env, db, now, ids.len(), Some(&ids)).await?;
                }
            }
            Compensation::ReleaseHold => {
                hub.release(&order.id).await?;
            }
        }
        run(
            db,
            "INSERT INTO saga_steps (order_id, step, status, detail, at) VALUES (?1, ?2, 'COMPENSATED', ?3, ?4) \
             ON CONFLICT (order_id, step) DO UPDATE SET status = 'COMPENSATED', detail = ?3, at = ?4",
            &[text(&order.id), text(&format!("{step:?}")), text(failure_code), int(now)],
        )
        .await?;
    }
    Ok(())
}
