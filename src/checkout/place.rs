//! Placing an order (`POST /api/orders`): the Idempotency-Key claim, then validate → check the
//! event and the checkout token → price → hold in the event's object (bound to the checkout
//! slot in the same step) → write the order → create the payment link, compensating in
//! reverse on any failure; and the answer to a retry that takes over a dead request's key.
//! A free order (an `isFree` event) has no payment: once written it completes at once, as a
//! paid order does when its money arrives, and its tickets are issued before the answer.

use serde_json::json;

use super::idempotency::{canonical_hash, claim_key, Claim, IdempotencyKey};
use super::ports::{
    CheckoutLog, CheckoutStore, EventObject, NewOrder, NewPayment, OrderRow, PaymentLinks,
};
use super::saga::Saga;
use super::wire::{order_views, CreateOrderRequest, CreatedOrder};
use crate::domain::access::{authorize, Action, Actor, Decision, EventOp};
use crate::domain::checkout::{
    admit, price, settle, CheckoutPass, MethodAsked, OrderLines, PricedOrder, Settlement,
    SettlementRefusal, TokenRefusal,
};
use crate::domain::event_workflow::{check_sale_open, is_publicly_visible};
use crate::domain::ids::{EventId, OrderCode, UserId};
use crate::domain::ledger::{Hold, RequestedItem, ReserveRequest};
use crate::domain::saga::{compensations, CheckoutFailure, CheckoutStep, OrderStatus, SagaInput};
use crate::domain::tokens::TokenKey;
use crate::domain::validation::{FieldError, Validator};
use crate::error::{parse_json, ApiError};
use crate::payments::{CreateStep, IntentItem, PaymentIntent, Provider};

/// The ids a new order may need, drawn by the shell from the runtime's CSPRNG (tests pass
/// fixed ones). Drawn before the key is claimed: the key names the order its request makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshIds {
    pub order_id: String,
    pub code: OrderCode,
    pub payment_id: String,
    /// PayOS wants a positive integer order code below 2^53, unique per payment link.
    pub payos_order_code: i64,
}

/// One `POST /api/orders` as the service sees it.
pub struct OrderRequest<'a> {
    pub user_id: &'a UserId,
    pub key: &'a IdempotencyKey,
    /// The raw JSON body: hashed for the key, then parsed.
    pub body: &'a str,
    pub fresh: FreshIds,
    /// This deployment's origin, for the provider's return and notification URLs.
    pub origin: &'a str,
    pub client_ip: &'a str,
    pub now: i64,
}

/// `orders.payment_method` of a free order.
pub const FREE_METHOD: &str = "free";

/// The answer to an order request.
pub enum OrderAnswer {
    /// 201 with the order and its payment link (none for a free order, COMPLETED already).
    Created(Box<CreatedOrder>),
    /// The stored first answer of this key, replayed as it was.
    Replayed { status: u16, body: String },
}

/// The checkout: the service the orders handler calls.
pub struct Checkout<'a, S, E, P, L> {
    pub store: &'a S,
    pub hub: &'a E,
    pub payments: &'a P,
    pub log: &'a L,
    /// Verifies checkout tokens; `None` when `JWT_SECRET` is not set.
    pub token_key: Option<&'a TokenKey>,
    /// How long tickets are held, when not the ledger's default.
    pub hold_for_ms: Option<i64>,
}

/// A checkout request, parsed.
struct CheckoutCommand {
    event_id: EventId,
    lines: OrderLines,
    method: MethodAsked<Provider>,
    checkout_token: Option<String>,
}

fn parse_command(body: CreateOrderRequest) -> Result<CheckoutCommand, ApiError> {
    let mut v = Validator::new();
    let event_id = match body.event_id {
        Some(id) => v.field("eventId", EventId::parse(&id)),
        None => {
            v.push(FieldError::new("eventId", "is required"));
            None
        }
    };
    // Whether a method is needed at all depends on the event (free or priced), known later.
    let method = match body.payment_method.as_deref() {
        None => Some(MethodAsked::Unnamed),
        Some(FREE_METHOD) => Some(MethodAsked::Free),
        Some(m) => v.field(
            "paymentMethod",
            m.parse::<Provider>()
                .map(MethodAsked::Provider)
                .map_err(|_| {
                    FieldError::new(
                        "paymentMethod",
                        "must be payos, vnpay, zalopay, sandbox or free",
                    )
                }),
        ),
    };
    let lines = OrderLines::parse(
        body.items
            .map(|items| items.into_iter().map(Into::into).collect()),
        &mut v,
    );
    let checkout_token = body.checkout_token.filter(|t| !t.is_empty());
    Ok(v.finish(|| {
        Some(CheckoutCommand {
            event_id: event_id?,
            lines: lines?,
            method: method?,
            checkout_token,
        })
    })?)
}

fn invalid_token() -> ApiError {
    ApiError::rule(
        403,
        "CHECKOUT_TOKEN_INVALID",
        "The checkout token is invalid, expired, or its checkout slot is no longer held.",
    )
}

fn token_refused(refusal: TokenRefusal) -> ApiError {
    match refusal {
        TokenRefusal::Required => ApiError::rule(
            403,
            refusal.code(),
            "This event sells through its waitroom: join it and use the checkout token you get on admission.",
        ),
        TokenRefusal::Invalid => invalid_token(),
    }
}

fn settlement_refused(refusal: SettlementRefusal) -> ApiError {
    match refusal {
        SettlementRefusal::MethodRequired => crate::domain::validation::ValidationFailed {
            errors: vec![FieldError::new("paymentMethod", "is required")],
        }
        .into(),
        SettlementRefusal::FreeNotAvailable => ApiError::rule(
            422,
            refusal.code(),
            "This order costs something: pick a payment method; free is for free events.",
        ),
        SettlementRefusal::NothingToPay => ApiError::rule(
            422,
            refusal.code(),
            "This event is free: order with paymentMethod free (or none).",
        ),
    }
}

fn provider_unavailable() -> ApiError {
    ApiError::rule(
        502,
        "PAYMENT_PROVIDER_UNAVAILABLE",
        "The payment provider did not answer; nothing is held. Try again or pick another method.",
    )
}

impl<S, E, P, L> Checkout<'_, S, E, P, L>
where
    S: CheckoutStore,
    E: EventObject,
    P: PaymentLinks,
    L: CheckoutLog,
{
    fn saga(&self) -> Saga<'_, S, E, L> {
        Saga {
            store: self.store,
            hub: self.hub,
            log: self.log,
        }
    }

    /// Places an order under its Idempotency-Key: the first request with a key makes the
    /// order, later ones get its answer (or 409 while it is in flight, 422 for another body),
    /// and a retry after the first request died takes over what it left. A client error is
    /// stored for replay; a server error frees the key for a retry, except after a free order
    /// was written (see `free_order_written`).
    pub async fn place_order(&self, request: OrderRequest<'_>) -> Result<OrderAnswer, ApiError> {
        let hash = canonical_hash(request.body)?;
        let user_id = request.user_id.as_str();
        let claim = claim_key(
            self.store,
            user_id,
            request.key,
            &hash,
            &request.fresh.order_id,
            request.now,
        )
        .await?;
        let dead_order_id = match claim {
            Claim::Existing(row) if row.request_hash != hash => {
                return Err(ApiError::rule(
                    422,
                    "IDEMPOTENCY_KEY_REUSED",
                    "This Idempotency-Key was used with another request body.",
                ))
            }
            Claim::Existing(row) if row.state == "DONE" => {
                return Ok(OrderAnswer::Replayed {
                    status: u16::try_from(row.response_status.unwrap_or(200)).unwrap_or(200),
                    body: row.response_body.unwrap_or_default(),
                })
            }
            Claim::Existing(_) => {
                return Err(ApiError::rule(
                    409,
                    "IDEMPOTENCY_KEY_IN_FLIGHT",
                    "The first request with this Idempotency-Key is still being processed.",
                ))
            }
            Claim::Fresh => None,
            Claim::TakenOver { dead_order_id } => {
                self.log
                    .annotate("takenOverFrom", dead_order_id.as_deref().unwrap_or("-"));
                dead_order_id
            }
        };
        let key = request.key.as_str();
        let outcome = match dead_order_id.as_deref() {
            None => self.checkout(&request).await,
            Some(dead) => self.take_over(&request, dead).await,
        };
        match &outcome {
            Ok(created) => {
                let body = serde_json::to_string(created).map_err(ApiError::internal)?;
                self.store.store_response(user_id, key, 201, &body).await?;
            }
            Err(e) if e.status() < 500 => {
                let body = serde_json::to_string(&e.to_problem()).map_err(ApiError::internal)?;
                self.store
                    .store_response(user_id, key, e.status(), &body)
                    .await?;
            }
            Err(_) => {
                let orders = [
                    Some(request.fresh.order_id.as_str()),
                    dead_order_id.as_deref(),
                ];
                if !self.free_order_written(orders.into_iter().flatten()).await {
                    self.store.release_key(user_id, key).await?;
                }
            }
        }
        outcome.map(|created| OrderAnswer::Created(Box::new(created)))
    }

    /// Whether one of `ids` is a free order this key wrote that is PENDING or COMPLETED: a
    /// server error after the write (confirming, completing, issuing the tickets) then keeps
    /// the key in flight, and a retry with it takes it over once its lease has run out and
    /// finishes that order (every step is idempotent). Freed, the key would let the retry make
    /// a second order while the first kept its tickets, and its waitroom checkout, until the
    /// hold expired. A paid order needs no such care: a failure after its write compensates.
    async fn free_order_written(&self, ids: impl Iterator<Item = &str>) -> bool {
        for id in ids {
            if let Ok(Some(order)) = self.store.order(id).await {
                if order.payment_method == FREE_METHOD
                    && matches!(
                        order.status(),
                        Ok(OrderStatus::Pending | OrderStatus::Completed)
                    )
                {
                    return true;
                }
            }
        }
        false
    }

    /// Answers a retry whose key was left IN_FLIGHT by a request that died making `dead`. If
    /// that request wrote its order, the buyer gets the answer it would have given (or, if it
    /// died before the provider gave a payment link, the answer to a failed payment creation,
    /// with the same compensation). Otherwise it may have held tickets or bound the checkout in
    /// the event's object: those go back (no-ops for steps it never reached) and the order is
    /// made afresh.
    async fn take_over(
        &self,
        request: &OrderRequest<'_>,
        dead: &str,
    ) -> Result<CreatedOrder, ApiError> {
        if let Some(order) = self.store.order(dead).await? {
            return self.answer_written(order, request.now).await;
        }
        // The body hashed the same as the dead request's, so it names the same event; a body
        // that does not parse never got as far as the object.
        let event_id = parse_json::<CreateOrderRequest>(request.body.as_bytes())
            .ok()
            .and_then(|body| parse_command(body).ok())
            .map(|cmd| cmd.event_id);
        if let Some(event_id) = event_id {
            self.undo_unwritten(
                event_id.as_str(),
                dead,
                &[CheckoutStep::Reserved, CheckoutStep::CheckoutBound],
            )
            .await?;
        }
        self.checkout(request).await
    }

    /// A dead request wrote `order`: the payment link it made, or, when it died before the
    /// provider gave one (the buyer never saw a payment page), what a failed payment creation
    /// answers, after the same compensation.
    async fn answer_written(&self, order: OrderRow, now: i64) -> Result<CreatedOrder, ApiError> {
        if order.payment_method == FREE_METHOD {
            // A free order written by a request that died is finished as that request would
            // have finished it; every step of that is idempotent.
            return self.complete_free(order, now).await;
        }
        let payment = self.store.checkout_payment(&order.id).await?;
        if let Some(payment_url) = payment.as_ref().and_then(|p| p.payment_url.clone()) {
            return Ok(CreatedOrder {
                order: self.view(order).await?,
                payment_url: Some(payment_url),
            });
        }
        if order.status()? == OrderStatus::Pending {
            let mut done = vec![CheckoutStep::Reserved];
            if order.waitroom_session_id.is_some() {
                done.push(CheckoutStep::CheckoutBound);
            }
            done.push(CheckoutStep::OrderWritten);
            let payment_id = payment.as_ref().map(|p| p.id.as_str());
            self.close_before_payment_page(&order, payment_id, &done, now)
                .await?;
        }
        Err(provider_unavailable())
    }

    /// Closes an order whose buyer never saw a payment page: its payment is cancelled (a late
    /// notification cannot settle it) and the checkout compensated. The waitroom checkout is
    /// reopened, not ended, so ordering again works with the same checkout token.
    async fn close_before_payment_page(
        &self,
        order: &OrderRow,
        payment_id: Option<&str>,
        done: &[CheckoutStep],
        now: i64,
    ) -> Result<(), ApiError> {
        if let Some(payment_id) = payment_id {
            self.store.cancel_payment(payment_id, now).await?;
        }
        self.saga()
            .compensate(
                order,
                &compensations(done, CheckoutFailure::BeforePaymentPage),
                "PAYMENT_PROVIDER_UNAVAILABLE",
                now,
            )
            .await
    }

    /// Undoes a hold whose order was never stored (the payment could not be planned, or the
    /// D1 write failed): the checkout goes back to the buyer first, so a retry can bind it at
    /// once, then the tickets.
    async fn undo_unwritten(
        &self,
        event_id: &str,
        order_id: &str,
        done: &[CheckoutStep],
    ) -> Result<(), ApiError> {
        if done.contains(&CheckoutStep::CheckoutBound) {
            self.hub.unbind_order(event_id, order_id).await?;
        }
        self.hub.release(event_id, order_id).await?;
        Ok(())
    }

    async fn view(&self, order: OrderRow) -> Result<super::wire::Order, ApiError> {
        let items = self.store.items_of(std::slice::from_ref(&order.id)).await?;
        order_views(std::slice::from_ref(&order), items)
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("order view"))
    }

    /// The event as this buyer may order from it: visible to them, published, on sale now.
    async fn event_on_sale(
        &self,
        event_id: &EventId,
        user_id: &UserId,
        now: i64,
    ) -> Result<Option<crate::domain::event_workflow::ConfigTerms>, ApiError> {
        let event = self
            .store
            .event_for_sale(event_id.as_str(), user_id.as_str())
            .await?
            .ok_or(ApiError::NotFound)?;
        let actor = Actor::User {
            id: user_id.clone(),
            platform_admin: false,
        };
        let action = Action::OnEvent {
            op: EventOp::PlaceOrder,
            published: is_publicly_visible(event.status, event.ever_published),
        };
        if let Decision::Deny(reason) = authorize(&actor, event.role, &action) {
            return Err(reason.into());
        }
        check_sale_open(event.status, event.config.as_ref(), now).map_err(|e| {
            ApiError::rule(409, e.code(), "Tickets for this event are not on sale now.")
        })?;
        Ok(event.config)
    }

    async fn checkout(&self, request: &OrderRequest<'_>) -> Result<CreatedOrder, ApiError> {
        let body: CreateOrderRequest = parse_json(request.body.as_bytes())?;
        let cmd = parse_command(body)?;
        let now = request.now;
        let user_id = request.user_id;
        let order_id = request.fresh.order_id.as_str();
        let event_id = cmd.event_id.as_str();

        // 1. The event: visible, published, in its sale window.
        let config = self.event_on_sale(&cmd.event_id, user_id, now).await?;

        // 2. The checkout token, when the event sells through its waitroom.
        let sells_through_waitroom = config.as_ref().is_some_and(|c| c.allow_wait_room);
        let pass = if sells_through_waitroom {
            let key = self
                .token_key
                .ok_or_else(|| ApiError::internal("JWT_SECRET is not set"))?;
            admit(
                true,
                cmd.checkout_token.as_deref(),
                key,
                user_id.as_str(),
                event_id,
                now,
            )
            .map_err(token_refused)?
        } else {
            CheckoutPass::Open
        };

        // 3. Prices from the catalogue, never from the client.
        let classes = self
            .store
            .priced_classes(event_id, &cmd.lines.class_ids())
            .await?;
        let priced = price(&cmd.lines, &classes)?;
        let free_event = config.as_ref().is_some_and(|c| c.is_free);
        let provider = match settle(cmd.method, free_event, &priced).map_err(settlement_refused)? {
            Settlement::Free => None,
            Settlement::Pay(provider) if !self.payments.enabled(provider) => {
                return Err(ApiError::rule(
                    422,
                    "PAYMENT_METHOD_UNAVAILABLE",
                    format!("{provider} payments are not available here."),
                ))
            }
            Settlement::Pay(provider) => Some(provider),
        };
        let gateway = provider.map(|p| self.payments.gateway(p)).transpose()?;

        // 4. Hold every item in the event's object, or none. With a checkout token the object
        //    first binds the order to the token's checkout, in the same transaction: a token
        //    whose checkout ended or holds another order is refused before any stock is
        //    touched, so it neither takes tickets from real buyers nor hears "sold out" instead
        //    of "token dead".
        self.log.annotate("orderId", order_id);
        self.log
            .annotate("provider", provider.map_or(FREE_METHOD, Provider::as_str));
        let reserve = ReserveRequest {
            order_id: order_id.to_owned(),
            user_id: user_id.as_str().to_owned(),
            items: cmd
                .lines
                .iter()
                .map(|l| RequestedItem::new(l.ticket_class_id.as_str(), l.quantity))
                .collect(),
            hold_for_ms: self.hold_for_ms,
        };
        let (hold, done) = match pass.session_id() {
            Some(session) => {
                let hold = self
                    .hub
                    .reserve_for_checkout(event_id, session, &reserve)
                    .await
                    .map_err(|e| match e {
                        ApiError::Rule {
                            code: "CHECKOUT_TOKEN_INVALID",
                            ..
                        } => invalid_token(),
                        other => other,
                    })?;
                (
                    hold,
                    vec![CheckoutStep::Reserved, CheckoutStep::CheckoutBound],
                )
            }
            None => (
                self.hub.reserve(event_id, &reserve).await?,
                vec![CheckoutStep::Reserved],
            ),
        };

        let (Some(provider), Some(gateway)) = (provider, gateway) else {
            return self
                .place_free(request, event_id, &pass, &hold, &done, &priced)
                .await;
        };

        // 5. The order, its payment row and ORDER_CREATED in one batch.
        let code = request.fresh.code.as_str();
        let payment_id = request.fresh.payment_id.as_str();
        let provider = provider.as_str();
        let return_url = format!(
            "{}/api/payments/return/{provider}?order={code}",
            request.origin
        );
        let intent = PaymentIntent {
            payment_id: payment_id.to_owned(),
            order_code: request.fresh.payos_order_code,
            order_ref: code.replace('-', ""),
            amount: priced.total_cents,
            currency: priced.currency.clone(),
            description: format!("TicketBottle {code}"),
            return_url: return_url.clone(),
            cancel_url: return_url,
            notify_url: format!("{}/api/payments/webhooks/{provider}", request.origin),
            buyer_ref: user_id.as_str().to_owned(),
            buyer_name: None,
            buyer_email: None,
            client_ip: request.client_ip.to_owned(),
            items: priced
                .lines
                .iter()
                .map(|l| IntentItem {
                    id: l.ticket_class_id.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price_cents,
                })
                .collect(),
            now_ms: now,
            expires_at_ms: hold.expires_at,
        };
        let plan = match gateway.plan_create(&intent) {
            Ok(plan) => plan,
            Err(e) => {
                self.undo_unwritten(event_id, order_id, &done).await?;
                return Err(ApiError::rule(422, "PAYMENT_NOT_POSSIBLE", e.to_string()));
            }
        };
        let new_order = NewOrder {
            id: order_id,
            code,
            event_id,
            user_id: user_id.as_str(),
            total: priced.total_cents,
            currency: &priced.currency,
            payment_method: provider,
            waitroom_session_id: pass.session_id(),
            expires_at: hold.expires_at,
            items: priced
                .lines
                .iter()
                .map(|l| (l.ticket_class_id.clone(), l.quantity, l.unit_price_cents))
                .collect(),
            payment: Some(NewPayment {
                id: payment_id,
                provider_ref: &plan.order_ref,
            }),
        };
        let created_event = match self.store.write_order(&new_order, now).await {
            Ok(id) => id,
            Err(e) => {
                // Nothing was written: give the checkout and the tickets back.
                self.undo_unwritten(event_id, order_id, &done).await?;
                return Err(e);
            }
        };
        let done = new_order.steps_done();
        let order = self
            .store
            .order(order_id)
            .await?
            .ok_or_else(|| ApiError::internal("order vanished"))?;

        // 6. The payment link.
        let link = match plan.step {
            CreateStep::Redirect { payment_url } => Ok(payment_url),
            CreateStep::Http(call) => self.payments.create_link(&gateway, call).await,
        };
        let payment_url = match link {
            Ok(url) => url,
            Err(detail) => {
                self.log.error(
                    "payment provider unavailable",
                    json!({
                        "code": "PAYMENT_PROVIDER_UNAVAILABLE",
                        "provider": provider,
                        "orderId": order_id,
                        "eventId": event_id,
                        "detail": detail,
                    }),
                );
                self.close_before_payment_page(&order, Some(payment_id), &done, now)
                    .await?;
                return Err(provider_unavailable());
            }
        };
        self.store
            .set_payment_url(payment_id, order_id, &payment_url, now)
            .await?;
        self.store.relay_after_response(vec![created_event]);
        Ok(CreatedOrder {
            order: self.view(order).await?,
            payment_url: Some(payment_url),
        })
    }

    /// Step 5 for a free order: written without a payment row (the held tickets and the bound
    /// checkout go back if the write fails), then completed at once.
    async fn place_free(
        &self,
        request: &OrderRequest<'_>,
        event_id: &str,
        pass: &CheckoutPass,
        hold: &Hold,
        done: &[CheckoutStep],
        priced: &PricedOrder,
    ) -> Result<CreatedOrder, ApiError> {
        let order_id = request.fresh.order_id.as_str();
        let new_order = NewOrder {
            id: order_id,
            code: request.fresh.code.as_str(),
            event_id,
            user_id: request.user_id.as_str(),
            total: priced.total_cents,
            currency: &priced.currency,
            payment_method: FREE_METHOD,
            waitroom_session_id: pass.session_id(),
            expires_at: hold.expires_at,
            items: priced
                .lines
                .iter()
                .map(|l| (l.ticket_class_id.clone(), l.quantity, l.unit_price_cents))
                .collect(),
            payment: None,
        };
        let created_event = match self.store.write_order(&new_order, request.now).await {
            Ok(id) => id,
            Err(e) => {
                self.undo_unwritten(event_id, order_id, done).await?;
                return Err(e);
            }
        };
        self.store.relay_after_response(vec![created_event]);
        let order = self
            .store
            .order(order_id)
            .await?
            .ok_or_else(|| ApiError::internal("order vanished"))?;
        self.complete_free(order, request.now).await
    }

    /// Completes a written free order through the saga, as a paid order completes when its
    /// money arrives (the hold confirmed in the event's object, ORDER_COMPLETED, the checkout
    /// slot freed as completed), then issues its tickets with the saga's own issuing. Every
    /// step is idempotent, so a retry that takes over the key finishes what a dead request
    /// started, and a replay of a finished one repeats nothing.
    async fn complete_free(&self, order: OrderRow, now: i64) -> Result<CreatedOrder, ApiError> {
        self.saga()
            .continue_saga(&order, SagaInput::NothingToPay, now)
            .await?;
        let order = self
            .store
            .order(&order.id)
            .await?
            .ok_or_else(|| ApiError::internal("order vanished"))?;
        let completed = order.status()? == OrderStatus::Completed;
        let tickets = if completed {
            Some(self.store.issue_tickets(&order.id, now).await?)
        } else {
            None
        };
        let mut view = self.view(order).await?;
        view.tickets = tickets;
        Ok(CreatedOrder {
            order: view,
            payment_url: None,
        })
    }
}
