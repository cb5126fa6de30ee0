//! `GET /api/events/{id}/log`: what happened to an event's sale (queue, checkout, order and
//! payment events), for its role holders.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::EventOp;
use crate::domain::validation::{format_rfc3339, FieldError, Pagination, ValidationFailed};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::{d1, event_log as store};

use super::events::load_event;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// Only this type, e.g. `ORDER_COMPLETED` or `QUEUE_JOINED`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: String,
    /// The event's message as published (`orderId`, `userId`, …).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    pub items: Vec<LogEntry>,
    pub page: u32,
    pub page_size: u32,
    pub total: i64,
}

#[utoipa::path(get, operation_id = "list_event_log", path = "/api/events/{id}/log", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path), LogQuery),
    responses((status = 200, description = "Newest first", body = LogPage),
              (status = 400, description = "Bad `page`, `pageSize` or `type`", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub async fn list(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let event = load_event(rc, &db, EventOp::ReadLog).await?.event;
    let q: LogQuery = rc
        .req
        .query()
        .map_err(|e| ApiError::from(FieldError::new("query", e.to_string())))?;
    let page = Pagination::parse(q.page.as_deref(), q.page_size.as_deref())
        .map_err(|errors| ApiError::from(ValidationFailed { errors }))?;
    let kind = q.kind.as_deref().filter(|k| !k.is_empty());
    let rows = store::page(
        &db,
        event.id.as_str(),
        kind,
        i64::from(page.limit()),
        page.offset() as i64,
    )
    .await?;
    let total = store::count(&db, event.id.as_str(), kind).await?;
    let items = rows
        .into_iter()
        .map(|r| LogEntry {
            id: r.message_id,
            kind: r.r#type,
            occurred_at: format_rfc3339(r.occurred_at),
            data: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    json_response(
        200,
        &LogPage {
            items,
            page: page.page,
            page_size: page.page_size,
            total,
        },
    )
}
