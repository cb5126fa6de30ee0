//! The order saga after checkout: payment results, hold expiries and owner cancels move an
//! order to its end state, with the event object confirming or releasing the hold and freeing
//! the checkout slot; compensations undo a checkout that cannot finish; the sweeps finish what
//! a crash left behind. Every step is idempotent: delivery is at least once.

use serde_json::{json, Map, Value};

use super::ports::{CheckoutLog, CheckoutStore, EventObject, OrderRow, Transition};
use crate::domain::ledger::{ConfirmOutcome, ReleaseOutcome};
use crate::domain::saga::{
    after_confirm, checkout_after_close, checkout_event_type, decide, sweep_decision,
    CheckoutAfterClose, CheckoutOutcome, CheckoutStep, Compensation, ConfirmAnswer, OrderStatus,
    SagaInput, SagaStep, STUCK_CHECKOUT_AFTER_MS,
};
use crate::error::ApiError;

/// What a saga input did, for callers that answer a request (owner cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Moved,
    Unchanged,
    Refused,
}

/// The saga over its store, the event objects and a log.
pub struct Saga<'a, S, E, L> {
    pub store: &'a S,
    pub hub: &'a E,
    pub log: &'a L,
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

/// The payload of an order's domain events.
fn order_payload(
    order: &OrderRow,
    to: OrderStatus,
    refund_reason: Option<&str>,
) -> Map<String, Value> {
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
    payload
}

impl<S: CheckoutStore, E: EventObject, L: CheckoutLog> Saga<'_, S, E, L> {
    /// One payments-queue message (`{"id", "type", "orderId", ...}`): applied once per message
    /// id, however often it is delivered.
    pub async fn handle_message(&self, body: &Value, now: i64) -> Result<(), ApiError> {
        let field = |name: &str| body.get(name).and_then(Value::as_str);
        let (Some(id), Some(kind)) = (field("id"), field("type")) else {
            return Err(ApiError::internal("saga message without id or type"));
        };
        if self.store.already_processed(id).await? {
            return Ok(());
        }
        if let (Some(input), Some(order_id)) =
            (SagaInput::from_message_type(kind), field("orderId"))
        {
            // A hold can expire for an order that was never written (the checkout died between
            // reserve and write): the stock is already back; the waitroom checkout the reserve
            // bound goes back to the buyer (a no-op when none was bound), since they never saw
            // a payment page.
            match self.store.order(order_id).await? {
                Some(order) => {
                    self.continue_saga(&order, input, now).await?;
                }
                None if input == SagaInput::HoldExpired => {
                    if let Some(event_id) = field("eventId") {
                        self.hub.unbind_order(event_id, order_id).await?;
                    }
                }
                None => {}
            }
        }
        self.store.mark_processed(id, now).await
    }

    /// Runs one saga input against an order: decide, perform the object call, record the new
    /// status with its announcements, free the checkout slot, publish. Logs one `saga step` line.
    pub async fn continue_saga(
        &self,
        order: &OrderRow,
        input: SagaInput,
        now: i64,
    ) -> Result<Applied, ApiError> {
        let from = order.status()?;
        let step_line = |outcome: &str, to: OrderStatus, refund: Option<&str>| {
            self.log.info(
                "saga step",
                merged(
                    order_fields(order),
                    json!({
                        "input": input.as_str(),
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
                let answer = match self.hub.confirm(&order.event_id, &order.id).await? {
                    ConfirmOutcome::Confirmed(_) => ConfirmAnswer::Confirmed,
                    ConfirmOutcome::PaidButNoStock(_) => ConfirmAnswer::NoStock,
                    ConfirmOutcome::PaidButEventCancelled(_) => ConfirmAnswer::EventCancelled,
                };
                let after = match input {
                    SagaInput::NothingToPay => after_confirm(answer, from).nothing_paid(),
                    _ => after_confirm(answer, from),
                };
                (after.status, after.refund_reason, after.checkout)
            }
            SagaStep::ReleaseAndClose { status, checkout } => {
                self.hub.release(&order.event_id, &order.id).await?;
                (status, None, checkout)
            }
            SagaStep::Close { status, checkout } => (status, None, checkout),
        };
        let after = match checkout {
            // Only an expiry's fate depends on what the buyer saw (one D1 read, not on every
            // step).
            CheckoutOutcome::Expired if order.waitroom_session_id.is_some() => {
                checkout_after_close(checkout, self.payment_page_shown(order).await?)
            }
            other => CheckoutAfterClose::End(other),
        };
        // The checkout first, then the order's status: a crash between the two leaves the
        // order PENDING, so the redelivered message decides again and repeats the (idempotent)
        // checkout step. The other way round the redelivery would find the order closed,
        // ignore it, and leave the checkout bound to a closed order for good.
        if order.waitroom_session_id.is_some() {
            match after {
                CheckoutAfterClose::End(outcome) => {
                    self.hub
                        .checkout_resolved(&order.event_id, &order.id, outcome)
                        .await?
                }
                CheckoutAfterClose::Reopen => {
                    self.hub.unbind_order(&order.event_id, &order.id).await?
                }
            }
        }
        let published = if to == OrderStatus::Completed {
            self.complete(order, from, now).await?
        } else {
            self.record(order, from, to, refund_reason, after, now)
                .await?
        };
        if !published.is_empty() {
            self.store.relay(&published, now).await?;
        }
        let moved = !(from == to && refund_reason.is_none());
        step_line(if moved { "moved" } else { "unchanged" }, to, refund_reason);
        Ok(if moved {
            Applied::Moved
        } else {
            Applied::Unchanged
        })
    }

    /// The one place an order becomes COMPLETED (its tickets are sold in the event's object):
    /// records the status with ORDER_COMPLETED and CHECKOUT_COMPLETED, once. What a completed
    /// order brings with it (tickets, a receipt) belongs here. Returns the outbox ids written,
    /// empty when the order had already moved on.
    async fn complete(
        &self,
        order: &OrderRow,
        from: OrderStatus,
        now: i64,
    ) -> Result<Vec<String>, ApiError> {
        self.record(
            order,
            from,
            OrderStatus::Completed,
            None,
            CheckoutAfterClose::End(CheckoutOutcome::Completed),
            now,
        )
        .await
    }

    /// Whether the provider gave this order a payment link (so the buyer could have paid).
    async fn payment_page_shown(&self, order: &OrderRow) -> Result<bool, ApiError> {
        Ok(self
            .store
            .checkout_payment(&order.id)
            .await?
            .is_some_and(|p| p.payment_url.is_some()))
    }

    async fn record(
        &self,
        order: &OrderRow,
        from: OrderStatus,
        to: OrderStatus,
        refund_reason: Option<&'static str>,
        checkout: CheckoutAfterClose,
        now: i64,
    ) -> Result<Vec<String>, ApiError> {
        let payload = order_payload(order, to, refund_reason);
        let order_event = match to {
            OrderStatus::Completed => "ORDER_COMPLETED",
            OrderStatus::Cancelled => "ORDER_CANCELLED",
            OrderStatus::Failed => "ORDER_FAILED",
            OrderStatus::Pending => "ORDER_CREATED",
        };
        let mut announce = vec![(order_event, payload.clone())];
        // A reopened checkout did not end: it is announced when it does.
        if let (true, CheckoutAfterClose::End(outcome)) = (from != to, checkout) {
            announce.push((checkout_event_type(outcome), payload.clone()));
        }
        if refund_reason.is_some() {
            announce.push(("ORDER_REFUND_REQUIRED", payload));
        }
        self.store
            .transition(
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

    /// Runs compensations (already in reverse order) for a checkout that cannot finish, each
    /// recorded in `saga_steps` as COMPENSATED. Logs one `saga compensation` line with the
    /// failure as its `code`.
    pub async fn compensate(
        &self,
        order: &OrderRow,
        plan: &[Compensation],
        failure_code: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        self.log.warn(
            "saga compensation",
            merged(
                order_fields(order),
                json!({
                    "code": failure_code,
                    "steps": plan.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                }),
            ),
        );
        for step in plan {
            match step {
                Compensation::FreeCheckoutSlot => {
                    self.hub
                        .checkout_resolved(&order.event_id, &order.id, CheckoutOutcome::Failed)
                        .await?
                }
                Compensation::ReopenCheckout => {
                    self.hub.unbind_order(&order.event_id, &order.id).await?
                }
                Compensation::FailOrder => {
                    let mut payload = Map::new();
                    payload.insert("orderId".into(), order.id.clone().into());
                    payload.insert("orderCode".into(), order.code.clone().into());
                    payload.insert("failureCode".into(), failure_code.into());
                    let ids = self
                        .store
                        .transition(
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
                        self.store.relay(&ids, now).await?;
                    }
                }
                Compensation::ReleaseHold => {
                    self.hub.release(&order.event_id, &order.id).await?;
                }
            }
            self.store
                .record_compensation(&order.id, *step, failure_code, now)
                .await?;
        }
        Ok(())
    }

    /// The owner cancels a PENDING order: its hold is released and its checkout ended. Returns
    /// the order as it is now; 409 `ORDER_NOT_CANCELLABLE` when it is (or became) anything
    /// but CANCELLED.
    pub async fn cancel_by_owner(&self, order: &OrderRow, now: i64) -> Result<OrderRow, ApiError> {
        if self
            .continue_saga(order, SagaInput::CancelledByOwner, now)
            .await?
            == Applied::Refused
        {
            return Err(ApiError::rule(
                409,
                "ORDER_NOT_CANCELLABLE",
                format!(
                    "Only a PENDING order can be cancelled; this one is {}.",
                    order.status
                ),
            ));
        }
        let fresh = self
            .store
            .order(&order.id)
            .await?
            .ok_or(ApiError::NotFound)?;
        if fresh.status()? != OrderStatus::Cancelled {
            return Err(ApiError::rule(
                409,
                "ORDER_NOT_CANCELLABLE",
                format!("This order is {}.", fresh.status),
            ));
        }
        Ok(fresh)
    }

    /// Checkouts that wrote an order but died before creating its payment (the Worker was
    /// stopped mid-request) are compensated once they are old enough to be surely dead.
    pub async fn sweep_stuck_checkouts(&self, now: i64) -> Result<usize, ApiError> {
        let stuck = self
            .store
            .stuck_checkouts(now - STUCK_CHECKOUT_AFTER_MS)
            .await?;
        let mut swept = 0;
        for s in stuck {
            let done: Vec<CheckoutStep> = s
                .steps
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter_map(CheckoutStep::parse)
                .collect();
            let Some(plan) = sweep_decision(&done, s.created_at, now) else {
                continue;
            };
            if let Some(order) = self.store.order(&s.order_id).await? {
                self.compensate(&order, &plan, "CHECKOUT_ABANDONED", now)
                    .await?;
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
    pub async fn sweep_expired_holds(&self, now: i64) -> Result<usize, ApiError> {
        let due = self
            .store
            .pending_orders_expired_before(now - STUCK_CHECKOUT_AFTER_MS)
            .await?;
        let mut swept = 0;
        for id in due {
            let Some(order) = self.store.order(&id).await? else {
                continue;
            };
            if let ReleaseOutcome::AlreadyConfirmed(_) =
                self.hub.release(&order.event_id, &order.id).await?
            {
                continue;
            }
            if self
                .continue_saga(&order, SagaInput::HoldExpired, now)
                .await?
                == Applied::Moved
            {
                swept += 1;
            }
        }
        Ok(swept)
    }
}
