//! Ticket classes: their definitions (D1) joined with their live counters (the event's object,
//! through `inventory_link`).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::access::EventOp;
use crate::domain::catalogue::{
    check_ticket_class_terms, parse_new_ticket_class, parse_ticket_class_changes,
    CreateTicketClassRequest, UpdateTicketClassRequest,
};
use crate::domain::event_workflow::{
    check_ticket_class_update, material_class_edits, transition, EventStatus, LifecycleAction,
    MaterialEdit, TicketClassTerms,
};
use crate::domain::ids::{EventId, TicketClassId};
use crate::domain::validation::{format_rfc3339, Validator};
use crate::error::ApiError;
use crate::error::Problem;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::d1;
use crate::store::ticket_classes::{self as store, ClassRecord};

use super::events::{invalid_transition, load_event, lost_race, send_back_for_review, EventAccess};
use super::inventory_link::{self, Counters};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketClass {
    pub id: String,
    pub event_id: String,
    #[schema(example = "VIP")]
    pub name: String,
    #[schema(example = 1500000)]
    pub price_cents: i64,
    #[schema(example = "VND")]
    pub currency: String,
    pub total: u32,
    pub reserved: u32,
    pub sold: u32,
    /// `total - reserved - sold`, live.
    pub available: u32,
    /// `null`: when the event's ticket sale opens.
    pub sale_start_at: Option<String>,
    /// `null`: when the event's ticket sale closes.
    pub sale_end_at: Option<String>,
    /// `ACTIVE` or `PAUSED`.
    #[schema(example = "ACTIVE")]
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl TicketClass {
    fn new(class: &ClassRecord, counters: Counters) -> Self {
        let t = &class.terms;
        TicketClass {
            id: class.id.clone(),
            event_id: class.event_id.clone(),
            name: t.name.clone(),
            price_cents: t.price_cents,
            currency: t.currency.as_str().to_string(),
            total: counters.total,
            reserved: counters.reserved,
            sold: counters.sold,
            available: counters.available,
            sale_start_at: t.sale_start_ms.map(format_rfc3339),
            sale_end_at: t.sale_end_ms.map(format_rfc3339),
            status: if t.paused { "PAUSED" } else { "ACTIVE" }.to_string(),
            created_at: format_rfc3339(class.created_at),
            updated_at: format_rfc3339(class.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketClassEnvelope {
    pub ticket_class: TicketClass,
}

#[derive(Serialize, ToSchema)]
pub struct TicketClassList {
    pub items: Vec<TicketClass>,
}

/// Counters for a class the object does not report (not registered yet, or lost): what D1
/// defines, with nothing reserved or sold, rather than failing the whole list.
fn fallback(class: &ClassRecord) -> Counters {
    Counters {
        total: class.terms.total,
        reserved: 0,
        sold: 0,
        available: class.terms.total,
    }
}

#[utoipa::path(get, operation_id = "list_ticket_classes", path = "/api/events/{id}/ticket-classes", tag = "ticket classes",
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "In creation order, with live counters", body = TicketClassList),
        (status = 404, description = "Unknown, or not visible to the caller (same rule as the event)", body = Problem)))]
pub async fn list(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, EventOp::ReadTicketClasses).await?;
    let classes = store::list(&db, event.id.as_str()).await?;
    let counters = inventory_link::live_counters(rc, &event.id, &classes).await?;
    let items = classes
        .iter()
        .map(|c| {
            let live = counters.get(&c.id).copied().unwrap_or_else(|| fallback(c));
            TicketClass::new(c, live)
        })
        .collect();
    json_response(200, &TicketClassList { items })
}

#[utoipa::path(post, operation_id = "create_ticket_class", path = "/api/events/{id}/ticket-classes", tag = "ticket classes", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    request_body = CreateTicketClassRequest,
    responses(
        (status = 201, body = TicketClassEnvelope),
        (status = 400, description = "VALIDATION_FAILED: negative price, unknown currency or not the event's currency, total below 1, a sale window outside the event's, a price on a free event", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "Event admins and editors only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATUS_TRANSITION (cancelled), EDIT_CONFLICT, or REAPPROVAL_REQUIRED (a new class on a published event; an APPROVED event goes back to CONFIGURED instead)", body = Problem),
        (status = 422, description = "CURRENCY_NOT_SUPPORTED: no enabled payment method takes the class's currency (free events excepted)", body = Problem)))]
pub async fn create(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, EventOp::CreateTicketClass).await?;
    transition(event.status, LifecycleAction::AddTicketClass).map_err(invalid_transition)?;
    let body: CreateTicketClassRequest = rc.json().await?;

    let mut v = Validator::new();
    let terms = parse_new_ticket_class(&mut v, &body);
    if let Some(terms) = &terms {
        let siblings = store::list(&db, event.id.as_str()).await?;
        let currency = siblings.first().map(|c| c.terms.currency);
        v.fields(check_ticket_class_terms(terms, &event.terms, currency));
    }
    let terms = v.finish(|| terms)?;
    payable_here(rc, &event, terms.currency)?;
    let revision =
        send_back_for_review(&db, &event, &[MaterialEdit::NewTicketClass], rc.now_ms).await?;

    let id = uuid::Uuid::now_v7().to_string();
    let counters = inventory_link::register_class(rc, &event.id, &id, &terms).await?;
    if !store::insert(&db, &id, event.id.as_str(), &revision, &terms, rc.now_ms).await? {
        return Err(lost_race(&db, &event.id, LifecycleAction::AddTicketClass).await);
    }
    let class = find_class(&db, &event.id, &id).await?;
    json_response(
        201,
        &TicketClassEnvelope {
            ticket_class: TicketClass::new(&class, counters),
        },
    )
}

/// 422 `CURRENCY_NOT_SUPPORTED` for a class no enabled payment method could take: refused now,
/// not after fans queued for it.
fn payable_here(
    rc: &RequestContext,
    event: &crate::store::events::EventRecord,
    currency: crate::domain::validation::CurrencyCode,
) -> Result<(), ApiError> {
    let free_event = event.terms.config.as_ref().is_some_and(|c| c.is_free);
    rc.settings
        .currency_support()
        .check_class(currency, free_event)
        .map_err(|e| ApiError::rule(422, e.code(), e.to_string()))
}

async fn find_class(
    db: &worker::D1Database,
    event_id: &EventId,
    class_id: &str,
) -> Result<ClassRecord, ApiError> {
    store::find(db, event_id.as_str(), class_id)
        .await?
        .ok_or(ApiError::NotFound)
}

fn counters_changed(old: &TicketClassTerms, new: &TicketClassTerms) -> bool {
    old.total != new.total
        || old.paused != new.paused
        || old.sale_start_ms != new.sale_start_ms
        || old.sale_end_ms != new.sale_end_ms
}

#[utoipa::path(patch, operation_id = "update_ticket_class", path = "/api/events/{id}/ticket-classes/{ticketClassId}", tag = "ticket classes", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ("ticketClassId" = String, Path, description = "Ticket class id")),
    request_body = UpdateTicketClassRequest,
    responses(
        (status = 200, body = TicketClassEnvelope),
        (status = 400, description = "VALIDATION_FAILED, including a currency change, or (once published) a started sale's start or an earlier sale end", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "Event admins and editors only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "TOTAL_BELOW_COMMITTED, INVALID_STATUS_TRANSITION (cancelled), EDIT_CONFLICT, or REAPPROVAL_REQUIRED (a raised price on a published event; an APPROVED event goes back to CONFIGURED instead)", body = Problem),
        (status = 422, description = "CURRENCY_NOT_SUPPORTED: no enabled payment method takes the class's currency (free events excepted)", body = Problem)))]
pub async fn update(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, EventOp::UpdateTicketClass).await?;
    let class_id =
        TicketClassId::parse(rc.param("ticketClassId")?).map_err(|_| ApiError::NotFound)?;
    let class = find_class(&db, &event.id, class_id.as_str()).await?;
    transition(event.status, LifecycleAction::EditTicketClass).map_err(invalid_transition)?;
    let body: UpdateTicketClassRequest = rc.json().await?;

    let mut v = Validator::new();
    // Bad fields are left out of the changes, so the rest is still checked against the class.
    let new = parse_ticket_class_changes(&mut v, &body).apply(&class.terms);
    let published = event.status == EventStatus::Published;
    v.fields(check_ticket_class_update(
        &class.terms,
        &new,
        published,
        rc.now_ms,
    ));
    // The currency rule is check_ticket_class_update's; here only window and price.
    v.fields(check_ticket_class_terms(&new, &event.terms, None));
    v.finish(|| Some(()))?;
    payable_here(rc, &event, new.currency)?;
    let edits = material_class_edits(&class.terms, &new);
    let revision = send_back_for_review(&db, &event, &edits, rc.now_ms).await?;

    let counters = if counters_changed(&class.terms, &new) {
        inventory_link::update_class_counters(rc, &event.id, &class.id, &class.terms, &new).await?
    } else {
        let live =
            inventory_link::live_counters(rc, &event.id, std::slice::from_ref(&class)).await?;
        live.get(&class.id)
            .copied()
            .unwrap_or_else(|| fallback(&class))
    };
    if !store::update(&db, &class, &revision, &new, rc.now_ms).await? {
        return Err(lost_race(&db, &event.id, LifecycleAction::EditTicketClass).await);
    }
    let updated = find_class(&db, &event.id, &class.id).await?;
    json_response(
        200,
        &TicketClassEnvelope {
            ticket_class: TicketClass::new(&updated, counters),
        },
    )
}
