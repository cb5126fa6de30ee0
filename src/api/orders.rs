//! Orders: `POST /api/orders` runs the checkout saga (validate → verify checkout token →
//! price → reserve in the event object, bound to the checkout slot in the same step → write
//! order → create the payment), compensating in reverse on any failure; plus order queries and
//! owner cancel.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use worker::{Date, Fetch, Headers, Method, Request, RequestInit};

use crate::domain::access::{Action, Actor, EventOp, EventRole};
use crate::domain::event_workflow::check_sale_open;
use crate::domain::ids::{OrderCode, UserId};
use crate::domain::ledger::{RequestedItem, ReserveRequest};
use crate::domain::saga::{compensations, CheckoutFailure, CheckoutStep, OrderStatus, SagaInput};
use crate::domain::validation::{format_rfc3339, FieldError, Pagination, Validator};
use crate::durable::client::{EventHubClient, HubCallError};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::payments::{CreateStep, Gateway, HttpMethod, IntentItem, PaymentIntent, Provider};
use crate::queue::saga::{compensate, continue_saga, Applied};
use crate::store::checkout::{self as co, Claim, NewOrder};
use crate::store::orders::{self as store, OrderRow};
use crate::store::{d1, outbox};
use crate::webcrypto::random_bytes;

use super::events::{load_event, load_event_as};
use super::payments::gateway;

const MAX_LINES: usize = 10;
const MAX_QUANTITY_PER_LINE: i64 = 100;
/// A provider that has not answered in this long is treated as down.
const PROVIDER_TIMEOUT_MS: u64 = 8_000;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemView {
    pub ticket_class_id: String,
    pub quantity: i64,
    pub price_cents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub code: String,
    pub event_id: String,
    pub user_id: String,
    /// PENDING, COMPLETED, CANCELLED, FAILED, or REFUNDED once its money went back.
    pub status: String,
    pub items: Vec<OrderItemView>,
    pub total_amount_cents: i64,
    pub currency: String,
    pub payment_method: String,
    pub expires_at: String,
    /// `REFUND_REQUIRED` when money arrived but the tickets could not be delivered.
    pub refund_status: Option<String>,
    pub refund_reason: Option<String>,
    pub failure_code: Option<String>,
    /// Requests to give this order's money back, oldest first.
    pub refunds: Vec<super::refunds::Refund>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrderEnvelope {
    pub order: Order,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrder {
    pub order: Order,
    /// Where to send the buyer to pay.
    pub payment_url: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub page: u32,
    pub page_size: u32,
    pub total: i64,
}

fn view(row: &OrderRow, items: Vec<OrderItemView>, refunds: Vec<super::refunds::Refund>) -> Order {
    Order {
        id: row.id.clone(),
        code: row.code.clone(),
        event_id: row.event_id.clone(),
        user_id: row.user_id.clone(),
        // A refunded order keeps its stored status (the saga's guard) and shows REFUNDED.
        status: if row.refund_status.as_deref() == Some("REFUNDED") {
            "REFUNDED".into()
        } else {
            row.status.clone()
        },
        items,
        total_amount_cents: row.total_amount_cents,
        currency: row.currency.clone(),
        payment_method: row.payment_method.clone(),
        expires_at: format_rfc3339(row.expires_at),
        refund_status: row.refund_status.clone(),
        refund_reason: row.refund_reason.clone(),
        failure_code: row.failure_code.clone(),
        refunds,
        created_at: format_rfc3339(row.created_at),
        updated_at: format_rfc3339(row.updated_at),
    }
}

async fn views(db: &worker::D1Database, rows: &[OrderRow]) -> Result<Vec<Order>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut by_order: HashMap<String, Vec<OrderItemView>> = HashMap::new();
    let mut refunds_of: HashMap<String, Vec<super::refunds::Refund>> = HashMap::new();
    if !ids.is_empty() {
        for refund in crate::store::refunds::list_for_orders(db, &ids).await? {
            refunds_of
                .entry(refund.order_id.clone())
                .or_default()
                .push(super::refunds::view(&refund));
        }
        for item in store::items_of(db, &ids).await? {
            by_order
                .entry(item.order_id.clone())
                .or_default()
                .push(OrderItemView {
                    ticket_class_id: item.ticket_class_id,
                    quantity: item.quantity,
                    price_cents: item.price_cents,
                });
        }
    }
    Ok(rows
        .iter()
        .map(|r| {
            view(
                r,
                by_order.remove(&r.id).unwrap_or_default(),
                refunds_of.remove(&r.id).unwrap_or_default(),
            )
        })
        .collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub ticket_class_id: Option<String>,
    pub quantity: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    pub event_id: Option<String>,
    pub items: Option<Vec<OrderLine>>,
    /// `payos`, `vnpay`, `zalopay` or `sandbox`.
    pub payment_method: Option<String>,
    /// Required for events with a waitroom: the token from admission.
    pub checkout_token: Option<String>,
}

struct CheckoutCommand {
    event_id: String,
    lines: Vec<(String, i64)>,
    provider: Provider,
    checkout_token: Option<String>,
}

fn parse_command(body: CreateOrderRequest) -> Result<CheckoutCommand, ApiError> {
    let mut v = Validator::new();
    let event_id = match body.event_id {
        Some(id) => v.field("eventId", crate::domain::ids::EventId::parse(&id)),
        None => {
            v.push(FieldError::new("eventId", "is required"));
            None
        }
    };
    let provider = match body.payment_method.as_deref() {
        Some(m) => v.field(
            "paymentMethod",
            m.parse::<Provider>().map_err(|_| {
                FieldError::new("paymentMethod", "must be payos, vnpay, zalopay or sandbox")
            }),
        ),
        None => {
            v.push(FieldError::new("paymentMethod", "is required"));
            None
        }
    };
    let mut lines: Vec<(String, i64)> = Vec::new();
    match body.items {
        None => v.push(FieldError::new("items", "is required")),
        Some(items) if items.is_empty() || items.len() > MAX_LINES => v.push(FieldError::new(
            "items",
            format!("give 1 to {MAX_LINES} lines"),
        )),
        Some(items) => {
            for (i, line) in items.into_iter().enumerate() {
                let id = line
                    .ticket_class_id
                    .and_then(|id| crate::domain::ids::TicketClassId::parse(&id).ok());
                let qty = line
                    .quantity
                    .as_ref()
                    .and_then(|q| crate::domain::validation::json_integer(q).ok())
                    .filter(|q| (1..=MAX_QUANTITY_PER_LINE).contains(q));
                match (id, qty) {
                    (Some(id), Some(q)) if !lines.iter().any(|(c, _)| c == id.as_str()) => {
                        lines.push((id.into_inner(), q))
                    }
                    (Some(_), Some(_)) => v.push(FieldError::new(
                        format!("items[{i}].ticketClassId"),
                        "appears twice",
                    )),
                    (None, _) => v.push(FieldError::new(
                        format!("items[{i}].ticketClassId"),
                        "must be a ticket class id",
                    )),
                    (_, None) => v.push(FieldError::new(
                        format!("items[{i}].quantity"),
                        format!("must be a whole number from 1 to {MAX_QUANTITY_PER_LINE}"),
                    )),
                }
            }
        }
    }
    let checkout_token = body.checkout_token.filter(|t| !t.is_empty());
    Ok(v.finish(|| {
        Some(CheckoutCommand {
            event_id: event_id?.into_inner(),
            lines,
            provider: provider?,
            checkout_token,
        })
    })?)
}

fn canonical_hash(body: &[u8]) -> Result<String, ApiError> {
    // serde_json's map is ordered by key, so the same JSON with other spacing or key order
    // hashes the same.
    let value: Value = crate::http::parse_json(body)?;
    Ok(hex::encode(Sha256::digest(value.to_string().as_bytes())))
}

#[utoipa::path(post, operation_id = "create_order", path = "/api/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first response for 24 h. A key left in flight by a request that died is taken over by a retry with the same body after one minute")),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "Order PENDING, tickets held 15 minutes", body = CreatedOrder),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED, VALIDATION_FAILED, MALFORMED_JSON", body = crate::error::Problem),
        (status = 401, body = crate::error::Problem),
        (status = 403, description = "CHECKOUT_TOKEN_REQUIRED, CHECKOUT_TOKEN_INVALID", body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, description = "INSUFFICIENT_INVENTORY (nothing held), SALE_NOT_OPEN, IDEMPOTENCY_KEY_IN_FLIGHT", body = crate::error::Problem),
        (status = 422, description = "PURCHASE_LIMIT_EXCEEDED, IDEMPOTENCY_KEY_REUSED, PAYMENT_METHOD_UNAVAILABLE (not enabled in this deployment)", body = crate::error::Problem),
        (status = 502, description = "PAYMENT_PROVIDER_UNAVAILABLE (hold released, order FAILED; a waitroom checkout stays usable: order again with the same checkout token)", body = crate::error::Problem)))]
pub async fn create(rc: &mut RequestContext) -> ApiResult {
    let (user_id, _) = rc.require_user()?;
    let key = rc
        .header("Idempotency-Key")
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::rule(
                400,
                "IDEMPOTENCY_KEY_REQUIRED",
                "Send an Idempotency-Key header.",
            )
        })?;
    if key.len() > 200 {
        return Err(FieldError::new("Idempotency-Key", "is longer than 200 characters").into());
    }
    let raw = rc.raw_body().await?;
    let hash = canonical_hash(raw.as_bytes())?;
    let db = d1::db(&rc.env)?;
    let order_id = uuid::Uuid::now_v7().to_string();
    let claim = co::claim_key(&db, user_id.as_str(), &key, &hash, &order_id, rc.now_ms).await?;
    let dead_order_id = match claim {
        Claim::Existing(row) if row.request_hash != hash => {
            return Err(ApiError::rule(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used with another request body.",
            ))
        }
        Claim::Existing(row) if row.state == "DONE" => {
            let status = row.response_status.unwrap_or(200) as u16;
            let mut response =
                worker::Response::ok(row.response_body.unwrap_or_default())?.with_status(status);
            let ct = if status >= 400 {
                "application/problem+json"
            } else {
                "application/json"
            };
            response.headers_mut().set("Content-Type", ct)?;
            response.headers_mut().set("Idempotent-Replayed", "true")?;
            return Ok(response);
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
            rc.annotate("takenOverFrom", dead_order_id.as_deref().unwrap_or("-"));
            dead_order_id
        }
    };
    let outcome = match dead_order_id {
        None => checkout(rc, &db, &user_id, &raw, order_id).await,
        Some(dead) => take_over(rc, &db, &user_id, &raw, &dead, order_id).await,
    };
    match &outcome {
        Ok(created) => {
            let body = serde_json::to_string(created).map_err(ApiError::internal)?;
            co::store_response(&db, user_id.as_str(), &key, 201, &body).await?;
        }
        Err(e) if e.status() < 500 => {
            let body = serde_json::to_string(&e.to_problem()).map_err(ApiError::internal)?;
            co::store_response(&db, user_id.as_str(), &key, e.status(), &body).await?;
        }
        Err(_) => co::release_key(&db, user_id.as_str(), &key).await?,
    }
    json_response(201, &outcome?)
}

/// Answers a retry whose key was left IN_FLIGHT by a request that died making `dead`. If that
/// request wrote its order, the buyer gets the answer it would have given (or, if it died
/// before the provider gave a payment link, the answer to a failed payment creation, with the
/// same compensation). Otherwise it may have held tickets or bound the checkout in the event's
/// object: those go back (no-ops for steps it never reached) and the order is made afresh.
async fn take_over(
    rc: &RequestContext,
    db: &worker::D1Database,
    user_id: &UserId,
    raw: &str,
    dead: &str,
    order_id: String,
) -> Result<CreatedOrder, ApiError> {
    if let Some(order) = store::find_by_id(db, dead).await? {
        return answer_written(rc, db, order).await;
    }
    // The body hashed the same as the dead request's, so it names the same event; a body
    // that does not parse never got as far as the object.
    let event_id = crate::http::parse_json::<CreateOrderRequest>(raw.as_bytes())
        .ok()
        .and_then(|body| parse_command(body).ok())
        .map(|cmd| cmd.event_id);
    if let Some(event_id) = event_id {
        let hub = EventHubClient::new(&rc.env, &event_id)?.traced(&rc.trace);
        undo_unwritten(
            &hub,
            dead,
            &[CheckoutStep::Reserved, CheckoutStep::CheckoutBound],
        )
        .await?;
    }
    checkout(rc, db, user_id, raw, order_id).await
}

/// A dead request wrote `order`: the payment link it made, or, when it died before the
/// provider gave one (the buyer never saw a payment page), what a failed payment creation
/// answers, after the same compensation.
async fn answer_written(
    rc: &RequestContext,
    db: &worker::D1Database,
    order: OrderRow,
) -> Result<CreatedOrder, ApiError> {
    let payment = co::checkout_payment(db, &order.id).await?;
    if let Some(payment_url) = payment.as_ref().and_then(|p| p.payment_url.clone()) {
        let order = views(db, &[order])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("order view"))?;
        return Ok(CreatedOrder { order, payment_url });
    }
    if order.status()? == OrderStatus::Pending {
        let mut done = vec![CheckoutStep::Reserved];
        if order.waitroom_session_id.is_some() {
            done.push(CheckoutStep::CheckoutBound);
        }
        done.push(CheckoutStep::OrderWritten);
        let payment_id = payment.as_ref().map(|p| p.id.as_str());
        close_before_payment_page(rc, db, &order, payment_id, &done).await?;
    }
    Err(provider_unavailable())
}

/// Closes an order whose buyer never saw a payment page: its payment is cancelled (a late
/// notification cannot settle it) and the checkout compensated. The waitroom checkout is
/// reopened, not ended, so ordering again works with the same checkout token.
async fn close_before_payment_page(
    rc: &RequestContext,
    db: &worker::D1Database,
    order: &OrderRow,
    payment_id: Option<&str>,
    done: &[CheckoutStep],
) -> Result<(), ApiError> {
    if let Some(payment_id) = payment_id {
        co::cancel_payment(db, payment_id, rc.now_ms).await?;
    }
    compensate(
        &rc.env,
        db,
        order,
        &compensations(done, CheckoutFailure::BeforePaymentPage),
        "PAYMENT_PROVIDER_UNAVAILABLE",
        rc.now_ms,
        &rc.trace,
    )
    .await
}

fn provider_unavailable() -> ApiError {
    ApiError::rule(
        502,
        "PAYMENT_PROVIDER_UNAVAILABLE",
        "The payment provider did not answer; nothing is held. Try again or pick another method.",
    )
}

async fn checkout(
    rc: &RequestContext,
    db: &worker::D1Database,
    user_id: &UserId,
    raw: &str,
    order_id: String,
) -> Result<CreatedOrder, ApiError> {
    let body: CreateOrderRequest = crate::http::parse_json(raw.as_bytes())?;
    let cmd = parse_command(body)?;
    let now = rc.now_ms;

    // 1. The event: visible, published, in its sale window.
    let actor = Actor::User {
        id: user_id.clone(),
        platform_admin: false,
    };
    let access = load_event_as(rc, db, &cmd.event_id, EventOp::PlaceOrder, actor).await?;
    let config = access.event.terms.config.as_ref();
    check_sale_open(access.event.status, config, now).map_err(|e| {
        ApiError::rule(409, e.code(), "Tickets for this event are not on sale now.")
    })?;

    // 2. The checkout token, when the event sells through its waitroom.
    let waitroom_session = if config.is_some_and(|c| c.allow_wait_room) {
        let token = cmd.checkout_token.as_deref().ok_or_else(|| {
            ApiError::rule(403, "CHECKOUT_TOKEN_REQUIRED", "This event sells through its waitroom: join it and use the checkout token you get on admission.")
        })?;
        let claims = rc
            .token_key()?
            .verify_checkout(token, now)
            .map_err(|_| invalid_token())?;
        if claims.sub != user_id.as_str() || claims.evt != cmd.event_id {
            return Err(invalid_token());
        }
        Some(claims.sid)
    } else {
        None
    };

    // 3. Prices from the catalogue, never from the client.
    let ids: Vec<String> = cmd.lines.iter().map(|(id, _)| id.clone()).collect();
    let classes = co::priced_classes(db, &cmd.event_id, &ids).await?;
    let mut v = Validator::new();
    let mut items = Vec::new();
    let mut intent_items = Vec::new();
    for (i, (id, qty)) in cmd.lines.iter().enumerate() {
        match classes.iter().find(|c| &c.id == id) {
            Some(c) => {
                items.push((c.id.clone(), *qty, c.price_cents));
                intent_items.push(IntentItem {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    quantity: *qty,
                    unit_price: c.price_cents,
                });
            }
            None => v.push(FieldError::new(
                format!("items[{i}].ticketClassId"),
                "is not a ticket class of this event",
            )),
        }
    }
    let currency = classes
        .first()
        .map(|c| c.currency.clone())
        .unwrap_or_default();
    if classes.iter().any(|c| c.currency != currency) {
        v.push(FieldError::new(
            "items",
            "ticket classes of one order must share a currency",
        ));
    }
    v.finish(|| Some(()))?;
    let total: i64 = items.iter().map(|(_, q, p)| q * p).sum();
    if !rc.settings.provider_enabled(cmd.provider) {
        return Err(ApiError::rule(
            422,
            "PAYMENT_METHOD_UNAVAILABLE",
            format!("{} payments are not available here.", cmd.provider),
        ));
    }
    let gateway = gateway(rc, cmd.provider)?;

    // 4. Hold every item in the event's object, or none. With a checkout token the object
    //    first binds the order to the token's checkout, in the same transaction: a token whose
    //    checkout ended or holds another order is refused before any stock is touched, so it
    //    neither takes tickets from real buyers nor hears "sold out" instead of "token dead".
    let hub = EventHubClient::new(&rc.env, &cmd.event_id)?.traced(&rc.trace);
    rc.annotate("orderId", order_id.as_str());
    rc.annotate("provider", cmd.provider.as_str());
    let reserve = ReserveRequest {
        order_id: order_id.clone(),
        user_id: user_id.as_str().to_string(),
        items: cmd
            .lines
            .iter()
            .map(|(id, q)| RequestedItem::new(id.clone(), *q))
            .collect(),
        hold_for_ms: rc.settings.hold_for_ms,
    };
    let (hold, mut done) = match &waitroom_session {
        Some(session) => {
            let hold = hub
                .reserve_for_checkout(session, &reserve)
                .await
                .map_err(|e| match e {
                    HubCallError::Rule { code, .. } if code == "CHECKOUT_TOKEN_INVALID" => {
                        invalid_token()
                    }
                    other => ApiError::from(other),
                })?;
            (
                hold,
                vec![CheckoutStep::Reserved, CheckoutStep::CheckoutBound],
            )
        }
        None => (hub.reserve(&reserve).await?, vec![CheckoutStep::Reserved]),
    };

    // 5. The order, its payment row and ORDER_CREATED in one batch.
    let code = OrderCode::from_random(random_bytes::<8>()?);
    let payment_id = uuid::Uuid::new_v4().simple().to_string();
    let origin = rc.origin()?;
    let intent = PaymentIntent {
        payment_id: payment_id.clone(),
        order_code: payos_order_code()?,
        order_ref: code.as_str().replace('-', ""),
        amount: total,
        currency: currency.clone(),
        description: format!("TicketBottle {}", code.as_str()),
        return_url: format!(
            "{origin}/api/payments/return/{}?order={}",
            cmd.provider.as_str(),
            code.as_str()
        ),
        cancel_url: format!(
            "{origin}/api/payments/return/{}?order={}",
            cmd.provider.as_str(),
            code.as_str()
        ),
        notify_url: format!("{origin}/api/payments/webhooks/{}", cmd.provider.as_str()),
        buyer_ref: user_id.as_str().to_string(),
        buyer_name: None,
        buyer_email: None,
        client_ip: rc.client_ip(),
        items: intent_items,
        now_ms: now,
        expires_at_ms: hold.expires_at,
    };
    let plan = match gateway.plan_create(&intent) {
        Ok(plan) => plan,
        Err(e) => {
            undo_unwritten(&hub, &order_id, &done).await?;
            return Err(ApiError::rule(422, "PAYMENT_NOT_POSSIBLE", e.to_string()));
        }
    };
    let new_order = NewOrder {
        id: &order_id,
        code: code.as_str(),
        event_id: &cmd.event_id,
        user_id: user_id.as_str(),
        total,
        currency: &currency,
        payment_method: cmd.provider.as_str(),
        waitroom_session_id: waitroom_session.as_deref(),
        expires_at: hold.expires_at,
        items: items.clone(),
        payment_id: &payment_id,
        provider_ref: &plan.order_ref,
    };
    let created_event = match co::write_order(db, &new_order, now).await {
        Ok(id) => id,
        Err(e) => {
            // Nothing was written: give the checkout and the tickets back.
            undo_unwritten(&hub, &order_id, &done).await?;
            return Err(e);
        }
    };
    done.push(CheckoutStep::OrderWritten);
    let order = store::find_by_id(db, &order_id)
        .await?
        .ok_or_else(|| ApiError::internal("order vanished"))?;

    // 6. The payment link.
    let payment_url = match create_payment(&gateway, plan.step).await {
        Ok(url) => url,
        Err(detail) => {
            crate::log::error(
                "payment provider unavailable",
                Some(&rc.trace),
                serde_json::json!({
                    "route": rc.route,
                    "code": "PAYMENT_PROVIDER_UNAVAILABLE",
                    "provider": cmd.provider.as_str(),
                    "orderId": order_id,
                    "eventId": cmd.event_id,
                    "detail": detail,
                }),
            );
            close_before_payment_page(rc, db, &order, Some(&payment_id), &done).await?;
            return Err(provider_unavailable());
        }
    };
    co::set_payment_url(db, &payment_id, &order_id, &payment_url, now).await?;
    let env = rc.env.clone();
    rc.ctx.wait_until(async move {
        if let Ok(db) = d1::db(&env) {
            let _ = outbox::relay(
                &env,
                &db,
                Date::now().as_millis() as i64,
                1,
                Some(&[created_event]),
            )
            .await;
        }
    });
    let order = views(db, &[order])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("order view"))?;
    Ok(CreatedOrder { order, payment_url })
}

/// Undoes a hold whose order was never stored (the payment could not be planned, or the D1
/// write failed): the checkout goes back to the buyer first, so a retry can bind it at once,
/// then the tickets.
async fn undo_unwritten(
    hub: &EventHubClient,
    order_id: &str,
    done: &[CheckoutStep],
) -> Result<(), ApiError> {
    if done.contains(&CheckoutStep::CheckoutBound) {
        hub.unbind_order(order_id).await?;
    }
    hub.release(order_id).await?;
    Ok(())
}

fn invalid_token() -> ApiError {
    ApiError::rule(
        403,
        "CHECKOUT_TOKEN_INVALID",
        "The checkout token is invalid, expired, or its checkout slot is no longer held.",
    )
}

/// PayOS wants a positive integer order code below 2^53, unique per payment link.
fn payos_order_code() -> Result<i64, ApiError> {
    let bytes = random_bytes::<8>()?;
    Ok((u64::from_be_bytes(bytes) >> 12) as i64 % 9_000_000_000_000_000 + 1)
}

/// Sends the provider's create call (if it has one) with a timeout; a redirect-only provider
/// needs none.
async fn create_payment(gateway: &Gateway, step: CreateStep) -> Result<String, String> {
    let request = match step {
        CreateStep::Redirect { payment_url } => return Ok(payment_url),
        CreateStep::Http(request) => request,
    };
    let headers = Headers::new();
    for (k, v) in &request.headers {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(match request.method {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
    })
    .with_headers(headers);
    if request.method == HttpMethod::Post {
        init.with_body(Some(wasm_bindgen::JsValue::from_str(&request.body)));
    }
    let req = Request::new_with_init(&request.url, &init).map_err(|e| e.to_string())?;
    let send = async {
        let mut res = Fetch::Request(req)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status_code();
        let text = res.text().await.map_err(|e| e.to_string())?;
        gateway
            .parse_create_response(status, &text)
            .map(|c| c.payment_url)
            .map_err(|e| e.to_string())
    };
    let timeout = worker::Delay::from(std::time::Duration::from_millis(PROVIDER_TIMEOUT_MS));
    futures::pin_mut!(send);
    match futures::future::select(send, timeout).await {
        futures::future::Either::Left((result, _)) => result,
        futures::future::Either::Right(_) => {
            Err(format!("no answer within {PROVIDER_TIMEOUT_MS} ms"))
        }
    }
}

/// Loads an order the actor may see: the buyer, anyone with a role on its event, platform admins.
async fn visible_order(
    rc: &RequestContext,
    db: &worker::D1Database,
    id_or_code: &str,
) -> Result<OrderRow, ApiError> {
    let actor = rc.actor()?;
    let Actor::User { id: me, .. } = &actor else {
        return Err(ApiError::Unauthenticated);
    };
    let order = store::find_by_id_or_code(db, id_or_code)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = co::role_of(db, &order.event_id, me.as_str())
        .await?
        .and_then(|r| EventRole::parse(&r).ok());
    rc.permit(
        &actor,
        role,
        &Action::ReadOrder {
            owner: UserId::new(order.user_id.clone()),
        },
    )?;
    Ok(order)
}

#[utoipa::path(get, operation_id = "get_order", path = "/api/orders/{idOrCode}", tag = "orders", security(("bearer" = [])),
    params(("idOrCode" = String, Path, description = "Order id or code (TB-…)")),
    responses((status = 200, body = OrderEnvelope), (status = 401, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub async fn get(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let order = visible_order(rc, &db, rc.param("idOrCode")?).await?;
    let order = views(&db, &[order])
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    json_response(200, &OrderEnvelope { order })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub page: Option<String>,
    pub page_size: Option<String>,
}

fn pagination(rc: &RequestContext) -> Result<Pagination, ApiError> {
    let q: PageQuery = rc
        .req
        .query()
        .map_err(|e| ApiError::from(FieldError::new("query", e.to_string())))?;
    Pagination::parse(q.page.as_deref(), q.page_size.as_deref())
        .map_err(|errors| ApiError::from(crate::domain::validation::ValidationFailed { errors }))
}

#[utoipa::path(get, path = "/api/orders", tag = "orders", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "The caller's orders, newest first", body = OrderPage),
              (status = 400, description = "Bad `page` or `pageSize`", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem)))]
pub async fn list_mine(rc: &mut RequestContext) -> ApiResult {
    let (me, _) = rc.require_user()?;
    let page = pagination(rc)?;
    let db = d1::db(&rc.env)?;
    let rows = store::list_by_user(
        &db,
        me.as_str(),
        i64::from(page.limit()),
        page.offset() as i64,
    )
    .await?;
    let total = store::count_by_user(&db, me.as_str()).await?;
    json_response(
        200,
        &OrderPage {
            items: views(&db, &rows).await?,
            page: page.page,
            page_size: page.page_size,
            total,
        },
    )
}

#[utoipa::path(get, path = "/api/events/{id}/orders", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = OrderPage), (status = 400, description = "Bad `page` or `pageSize`", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn list_for_event(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let event_id = load_event(rc, &db, EventOp::ReadOrders).await?.event.id;
    let event_id = event_id.as_str();
    let page = pagination(rc)?;
    let rows =
        store::list_by_event(&db, event_id, i64::from(page.limit()), page.offset() as i64).await?;
    let total = store::count_by_event(&db, event_id).await?;
    json_response(
        200,
        &OrderPage {
            items: views(&db, &rows).await?,
            page: page.page,
            page_size: page.page_size,
            total,
        },
    )
}

#[utoipa::path(post, operation_id = "cancel_order", path = "/api/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id or code")),
    responses((status = 200, description = "CANCELLED, hold released", body = OrderEnvelope),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "ORDER_NOT_CANCELLABLE (not PENDING)", body = crate::error::Problem)))]
pub async fn cancel(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let order = visible_order(rc, &db, rc.param("id")?).await?;
    let actor = rc.actor()?;
    rc.permit(
        &actor,
        None,
        &Action::CancelOrder {
            owner: UserId::new(order.user_id.clone()),
        },
    )?;
    rc.annotate("orderId", order.id.as_str());
    rc.annotate("provider", order.payment_method.as_str());
    match continue_saga(
        &rc.env,
        &db,
        &order,
        SagaInput::CancelledByOwner,
        rc.now_ms,
        &rc.trace,
    )
    .await?
    {
        Applied::Refused => {
            return Err(ApiError::rule(
                409,
                "ORDER_NOT_CANCELLABLE",
                format!(
                    "Only a PENDING order can be cancelled; this one is {}.",
                    order.status
                ),
            ))
        }
        Applied::Moved | Applied::Unchanged => {}
    }
    let fresh = store::find_by_id(&db, &order.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if fresh.status()? != OrderStatus::Cancelled {
        return Err(ApiError::rule(
            409,
            "ORDER_NOT_CANCELLABLE",
            format!("This order is {}.", fresh.status),
        ));
    }
    let order = views(&db, &[fresh])
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    json_response(200, &OrderEnvelope { order })
}
