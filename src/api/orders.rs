//! Orders: `POST /api/orders` hands the checkout to the checkout service
//! (`crate::checkout`), with the Worker's ports; plus order queries and owner cancel.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::checkout::ports::{CheckoutLog, OrderRow, PaymentLinks};
use crate::checkout::wire::{order_views, CreateOrderRequest, CreatedOrder, Order};
use crate::checkout::{Checkout, FreshIds, IdempotencyKey, OrderAnswer, OrderRequest, Saga};
use crate::checkout_edge::{send_create, D1Checkout, HubStubs};
use crate::domain::access::{Action, Actor, EventOp, EventRole};
use crate::domain::ids::{OrderCode, UserId};
use crate::domain::validation::{FieldError, Pagination};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::log;
use crate::payments::{Gateway, OutboundRequest, Provider};
use crate::store::checkout as co;
use crate::store::d1;
use crate::store::orders as store;
use crate::webcrypto::random_bytes;

use super::events::load_event;
use super::payments::gateway;

#[derive(Serialize, ToSchema)]
pub struct OrderEnvelope {
    pub order: Order,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub page: u32,
    pub page_size: u32,
    pub total: i64,
}

async fn views(db: &worker::D1Database, rows: &[OrderRow]) -> Result<Vec<Order>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let items = if ids.is_empty() {
        Vec::new()
    } else {
        store::items_of(db, &ids).await?
    };
    let completed: Vec<String> = rows
        .iter()
        .filter(|r| r.status == "COMPLETED")
        .map(|r| r.id.clone())
        .collect();
    let mut tickets = super::tickets::of_orders(db, &completed).await?;
    let mut refunds_of: HashMap<String, Vec<super::refunds::Refund>> = HashMap::new();
    if !ids.is_empty() {
        for refund in crate::store::refunds::list_for_orders(db, &ids).await? {
            refunds_of
                .entry(refund.order_id.clone())
                .or_default()
                .push(super::refunds::view(&refund));
        }
    }
    let mut views = order_views(rows, items);
    for view in &mut views {
        view.refunds = refunds_of.remove(&view.id).unwrap_or_default();
        if completed.contains(&view.id) {
            view.tickets = Some(tickets.remove(&view.id).unwrap_or_default());
        }
    }
    Ok(views)
}

/// The checkout's log lines, on this request's trace; a failure line names the route too.
struct RequestLog<'a>(&'a RequestContext);

impl CheckoutLog for RequestLog<'_> {
    fn info(&self, msg: &str, fields: Value) {
        log::info(msg, Some(&self.0.trace), fields)
    }

    fn warn(&self, msg: &str, fields: Value) {
        log::warn(msg, Some(&self.0.trace), fields)
    }

    fn error(&self, msg: &str, mut fields: Value) {
        fields["route"] = self.0.route.into();
        log::error(msg, Some(&self.0.trace), fields)
    }

    fn annotate(&self, key: &str, value: &str) {
        self.0.annotate(key, value)
    }
}

/// The payment providers as this deployment's settings and secrets configure them.
struct Providers<'a>(&'a RequestContext);

impl PaymentLinks for Providers<'_> {
    fn enabled(&self, provider: Provider) -> bool {
        self.0.settings.provider_enabled(provider)
    }

    fn gateway(&self, provider: Provider) -> Result<Gateway, ApiError> {
        gateway(self.0, provider)
    }

    async fn create_link(
        &self,
        gateway: &Gateway,
        request: OutboundRequest,
    ) -> Result<String, String> {
        send_create(gateway, request).await
    }
}

/// PayOS wants a positive integer order code below 2^53, unique per payment link.
fn payos_order_code() -> Result<i64, ApiError> {
    let bytes = random_bytes::<8>()?;
    Ok((u64::from_be_bytes(bytes) >> 12) as i64 % 9_000_000_000_000_000 + 1)
}

#[utoipa::path(post, operation_id = "create_order", path = "/api/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first response for 24 h. A key left in flight by a request that died is taken over by a retry with the same body after one minute")),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "Order PENDING, tickets held 15 minutes; for an isFree event (paymentMethod free or omitted) COMPLETED at once with its tickets and paymentUrl null", body = CreatedOrder),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED, VALIDATION_FAILED, MALFORMED_JSON", body = crate::error::Problem),
        (status = 401, body = crate::error::Problem),
        (status = 403, description = "CHECKOUT_TOKEN_REQUIRED, CHECKOUT_TOKEN_INVALID, EMAIL_NOT_VERIFIED (where the deployment requires a verified email)", body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, description = "INSUFFICIENT_INVENTORY (nothing held), SALE_NOT_OPEN, IDEMPOTENCY_KEY_IN_FLIGHT", body = crate::error::Problem),
        (status = 422, description = "PURCHASE_LIMIT_EXCEEDED, IDEMPOTENCY_KEY_REUSED, PAYMENT_METHOD_UNAVAILABLE (not enabled in this deployment; free on a priced order; a provider on a free event)", body = crate::error::Problem),
        (status = 502, description = "PAYMENT_PROVIDER_UNAVAILABLE (hold released, order FAILED; a waitroom checkout stays usable: order again with the same checkout token)", body = crate::error::Problem)))]
pub async fn create(rc: &mut RequestContext) -> ApiResult {
    let (user_id, _) = rc.require_user()?;
    rc.require_verified_buyer()?;
    let key = IdempotencyKey::parse(rc.header("Idempotency-Key").as_deref())?;
    let body = rc.raw_body().await?;
    let rc = &*rc;
    let fresh = FreshIds {
        order_id: uuid::Uuid::now_v7().to_string(),
        code: OrderCode::from_random(random_bytes::<8>()?),
        payment_id: uuid::Uuid::new_v4().simple().to_string(),
        payos_order_code: payos_order_code()?,
    };
    let origin = rc.origin()?;
    let client_ip = rc.client_ip();
    let store = D1Checkout::new(&rc.env)?.serving(&rc.ctx);
    let hub = HubStubs::new(&rc.env, &rc.trace);
    let token_key = rc.token_key().ok();
    let checkout = Checkout {
        store: &store,
        hub: &hub,
        payments: &Providers(rc),
        log: &RequestLog(rc),
        token_key: token_key.as_ref(),
        hold_for_ms: rc.settings.hold_for_ms,
    };
    let answer = checkout
        .place_order(OrderRequest {
            user_id: &user_id,
            key: &key,
            body: &body,
            fresh,
            origin: &origin,
            client_ip: &client_ip,
            now: rc.now_ms,
        })
        .await?;
    match answer {
        OrderAnswer::Created(created) => json_response(201, &created),
        OrderAnswer::Replayed { status, body } => {
            let mut response = worker::Response::ok(body)?.with_status(status);
            let ct = if status >= 400 {
                "application/problem+json"
            } else {
                "application/json"
            };
            response.headers_mut().set("Content-Type", ct)?;
            response.headers_mut().set("Idempotent-Replayed", "true")?;
            Ok(response)
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
    let store = D1Checkout::new(&rc.env)?;
    let hub = HubStubs::new(&rc.env, &rc.trace);
    let saga = Saga {
        store: &store,
        hub: &hub,
        log: &RequestLog(rc),
    };
    let cancelled = saga.cancel_by_owner(&order, rc.now_ms).await?;
    let order = views(store.db(), &[cancelled])
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    json_response(200, &OrderEnvelope { order })
}
