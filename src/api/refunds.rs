//! Refunds over HTTP: asking for one (`POST /api/orders/{id}/refund`), the lists for platform
//! admins and an event's team, closing a manual refund, and reconciliation on demand.
//! The rules are `domain::refunds`; the steps run on the queue (`queue::refunds`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{Action, EventOp, EventRole};
use crate::domain::ids::UserId;
use crate::domain::refunds::{
    check_refundable, complete_by_admin, may_request, OrderStanding, RefundRefusal, RefundStatus,
};
use crate::domain::validation::{format_rfc3339, FieldError, Pagination, ValidationFailed};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::payments::Provider;
use crate::store::refunds::{self as store, NewRefund, RefundRow};
use crate::store::{checkout, d1, orders, outbox};

use super::events::load_event;

const MAX_TEXT_CHARS: usize = 500;

pub use crate::checkout::wire::Refund;

pub fn view(row: &RefundRow) -> Refund {
    Refund {
        id: row.id.clone(),
        order_id: row.order_id.clone(),
        amount_cents: row.amount_cents,
        currency: row.currency.clone(),
        provider: row.provider.clone(),
        status: row.status.clone(),
        reason: row.reason.clone(),
        requested_by: row.requested_by.clone(),
        attempts: row.attempts,
        provider_refund_id: row.provider_refund_id.clone(),
        last_error: row.last_error.clone(),
        note: row.note.clone(),
        created_at: format_rfc3339(row.created_at),
        updated_at: format_rfc3339(row.updated_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RefundEnvelope {
    pub refund: Refund,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundPage {
    pub items: Vec<Refund>,
    pub page: u32,
    pub page_size: u32,
    pub total: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundRequest {
    /// Why the money goes back (1–500 characters).
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteRefundRequest {
    /// What was done (the transfer's reference, ...), 1–500 characters.
    pub note: Option<String>,
}

/// 1–500 characters of text, trimmed.
fn required_text(raw: Option<String>, field: &str) -> Result<String, ApiError> {
    let text = raw.map(|s| s.trim().to_owned()).unwrap_or_default();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::from(FieldError::new(
            field,
            format!("must be 1 to {MAX_TEXT_CHARS} characters"),
        )));
    }
    Ok(text)
}

fn refused(refusal: RefundRefusal) -> ApiError {
    match refusal {
        RefundRefusal::Forbidden => ApiError::Forbidden,
        other => ApiError::rule(other.http_status(), other.code(), other.to_string()),
    }
}

/// Publishes what a write just put in the outbox (the cron relays it if this fails).
async fn publish(rc: &RequestContext, db: &worker::D1Database, ids: Vec<String>) {
    if !ids.is_empty() {
        let _ = outbox::relay(&rc.env, db, rc.now_ms, ids.len(), Some(&ids)).await;
    }
}

#[utoipa::path(post, operation_id = "refund_order", path = "/api/orders/{id}/refund", tag = "refunds",
    security(("bearer" = [])), params(("id" = String, Path, description = "Order id or code")),
    request_body = RefundRequest,
    responses((status = 202, description = "The order's refund (a repeated request returns the same one)", body = RefundEnvelope),
              (status = 400, description = "VALIDATION_FAILED (reason missing or too long), MALFORMED_JSON", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "INVALID_STATUS_TRANSITION (not COMPLETED, already refunded), REFUND_NOT_ALLOWED (the buyer, after refundableUntil)", body = crate::error::Problem)))]
pub async fn request(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    let Some(me) = actor.user_id().cloned() else {
        return Err(ApiError::Unauthenticated);
    };
    let body: RefundRequest = rc.json().await?;
    let db = d1::db(&rc.env)?;
    let order = orders::find_by_id_or_code(&db, rc.param("id")?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = checkout::role_of(&db, &order.event_id, me.as_str())
        .await?
        .and_then(|r| EventRole::parse(&r).ok());
    let owner = UserId::new(order.user_id.clone());
    rc.permit(
        &actor,
        role,
        &Action::ReadOrder {
            owner: owner.clone(),
        },
    )?;
    rc.annotate("orderId", order.id.as_str());
    let until = store::refundable_until(&db, &order.event_id).await?;
    may_request(&actor, role, &owner, until, rc.now_ms).map_err(refused)?;
    if let Some(live) = store::find_live_for_order(&db, &order.id).await? {
        return json_response(
            202,
            &RefundEnvelope {
                refund: view(&live),
            },
        );
    }
    let reason = required_text(body.reason, "reason")?;
    check_refundable(OrderStanding {
        status: &order.status,
        refund_status: order.refund_status.as_deref(),
    })
    .map_err(refused)?;
    let payment = store::paid_payment_of(&db, &order.id)
        .await?
        .ok_or_else(|| {
            refused(RefundRefusal::InvalidStatus(
                "No payment brought money in for this order.".into(),
            ))
        })?;
    let provider: Provider = payment.provider.parse().map_err(ApiError::internal)?;
    let id = uuid::Uuid::new_v4().to_string();
    let row = store::create(
        &db,
        &NewRefund {
            id: &id,
            order_id: &order.id,
            event_id: &order.event_id,
            payment_id: &payment.id,
            provider,
            amount_cents: payment.amount,
            currency: &payment.currency,
            reason: &reason,
            requested_by: Some(me.as_str()),
        },
        rc.now_ms,
    )
    .await?;
    rc.annotate("refundId", row.id.as_str());
    publish(rc, &db, vec![format!("refund-{}-0", row.id)]).await;
    json_response(202, &RefundEnvelope { refund: view(&row) })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RefundQuery {
    /// REQUESTED, PROCESSING, REFUNDED, FAILED or MANUAL_REQUIRED.
    pub status: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

fn read_query(rc: &RequestContext) -> Result<(Option<RefundStatus>, Pagination), ApiError> {
    let q: RefundQuery = rc
        .req
        .query()
        .map_err(|e| ApiError::from(FieldError::new("query", e.to_string())))?;
    let mut errors = Vec::new();
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match RefundStatus::parse(&raw.to_ascii_uppercase()) {
            Some(s) => Some(s),
            None => {
                errors.push(FieldError::new(
                    "status",
                    "must be one of REQUESTED, PROCESSING, REFUNDED, FAILED, MANUAL_REQUIRED",
                ));
                None
            }
        },
    };
    let page = Pagination::parse(q.page.as_deref(), q.page_size.as_deref()).unwrap_or_else(|e| {
        errors.extend(e);
        Pagination::default()
    });
    if !errors.is_empty() {
        return Err(ApiError::from(ValidationFailed { errors }));
    }
    Ok((status, page))
}

async fn page_of(
    rc: &RequestContext,
    status: Option<RefundStatus>,
    event_id: Option<&str>,
    page: Pagination,
) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let (rows, total) = store::list(
        &db,
        status.map(RefundStatus::as_str),
        event_id,
        i64::from(page.limit()),
        page.offset() as i64,
    )
    .await?;
    json_response(
        200,
        &RefundPage {
            items: rows.iter().map(view).collect(),
            page: page.page,
            page_size: page.page_size,
            total,
        },
    )
}

#[utoipa::path(get, path = "/api/refunds", tag = "refunds", security(("bearer" = [])), params(RefundQuery),
    responses((status = 200, description = "Every refund, newest first", body = RefundPage),
              (status = 400, description = "Bad `status`, `page` or `pageSize`", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn list_all(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::ReadOperatorStatus)?;
    let (status, page) = read_query(rc)?;
    page_of(rc, status, None, page).await
}

#[utoipa::path(get, path = "/api/events/{id}/refunds", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path), RefundQuery),
    responses((status = 200, description = "The event's refunds, newest first", body = RefundPage),
              (status = 400, description = "Bad `status`, `page` or `pageSize`", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub async fn list_for_event(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let event_id = load_event(rc, &db, EventOp::ReadOrders).await?.event.id;
    let (status, page) = read_query(rc)?;
    page_of(rc, status, Some(event_id.as_str()), page).await
}

#[utoipa::path(post, operation_id = "complete_refund", path = "/api/refunds/{id}/complete", tag = "refunds",
    security(("bearer" = [])), params(("id" = String, Path)), request_body = CompleteRefundRequest,
    responses((status = 200, description = "REFUNDED; the order is REFUNDED", body = RefundEnvelope),
              (status = 400, description = "VALIDATION_FAILED (note missing or too long)", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "INVALID_STATUS_TRANSITION (not MANUAL_REQUIRED or FAILED)", body = crate::error::Problem)))]
pub async fn complete(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::ReadOperatorStatus)?;
    let body: CompleteRefundRequest = rc.json().await?;
    let note = required_text(body.note, "note")?;
    let db = d1::db(&rc.env)?;
    let row = store::find_by_id(&db, rc.param("id")?)
        .await?
        .ok_or(ApiError::NotFound)?;
    rc.annotate("refundId", row.id.as_str());
    let before = row.machine()?;
    let mut done =
        complete_by_admin(&before, rc.now_ms.max(before.updated_at + 1)).map_err(refused)?;
    done.last_error = before.last_error.clone();
    let (saved, announced) = store::save(&db, &row, &before, &done, Some(&note)).await?;
    if !saved {
        return Err(ApiError::rule(
            409,
            "INVALID_STATUS_TRANSITION",
            "The refund changed meanwhile; read it again.",
        ));
    }
    publish(rc, &db, announced).await;
    let fresh = store::find_by_id(&db, &row.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    json_response(
        200,
        &RefundEnvelope {
            refund: view(&fresh),
        },
    )
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Query payments pending at least this long (default `RECONCILE_AFTER_SECONDS`).
    pub older_than_seconds: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ReconcileResult {
    /// Payments asked about.
    pub checked: usize,
    /// Answers applied as their webhook would have been.
    pub applied: usize,
}

#[utoipa::path(post, path = "/api/ops/reconcile", tag = "operations", security(("bearer" = [])),
    request_body(content = ReconcileRequest, description = "Optional"),
    responses((status = 200, body = ReconcileResult),
              (status = 400, description = "VALIDATION_FAILED (an unknown field, `olderThanSeconds` not a whole number of seconds), MALFORMED_JSON", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn reconcile(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::ReadOperatorStatus)?;
    let body: ReconcileRequest = match rc.header("Content-Type") {
        Some(_) => rc.json().await?,
        None => ReconcileRequest::default(),
    };
    let after_ms = body
        .older_than_seconds
        .map(|s| i64::from(s) * 1000)
        .unwrap_or(rc.settings.reconcile_after_ms);
    // On demand every due payment is asked about, however recently the cron asked.
    let done = crate::queue::refunds::reconcile(&rc.env, rc.now_ms, after_ms, 0, &rc.trace).await?;
    json_response(
        200,
        &ReconcileResult {
            checked: done.checked,
            applied: done.applied,
        },
    )
}
