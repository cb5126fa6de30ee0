//! Events: create, search, read, edit, configure, and the status workflow (approve, publish,
//! cancel). Who may act comes from `domain::access`, when from `domain::event_workflow`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::access::{Action, Actor, EventOp};
use crate::domain::catalogue::{
    check_config_fits, may_file_under_organizer, parse_event_changes, parse_event_config,
    parse_event_search, parse_new_event, unwrap_event_config, CategoryRef, CreateEventRequest,
    EventConfigRequest, EventListQuery, ListScope, UpdateEventRequest,
};
use crate::domain::event_workflow::{
    check_config_update, check_published_update, is_publicly_visible, material_detail_edits,
    review_edit, transition, ConfigTerms, EventStatus, InvalidStatusTransition, LifecycleAction,
    MaterialEdit, ReapprovalRequired,
};
use crate::domain::ids::{CategoryId, EventId, OrganizerId, UserId};
use crate::domain::validation::{format_rfc3339, FieldError, Validator};
use crate::error::Problem;
use crate::error::{ApiError, FieldProblem};
use crate::http::{json_response, ApiResult, RequestContext};
use crate::payments::Provider;
use crate::store::catalogue as catalogue_store;
use crate::store::d1;
use crate::store::events::{self as store, EventRecord, Revision};
use crate::store::ticket_classes as class_store;

use super::catalogue::Category;
use super::inventory_link;

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

// `eventConfig.waitroom` as the API shows it: the organiser's knobs of the one waitroom type,
// `domain::waitroom::WaitroomConfig` (its window and idle timeout the event owns elsewhere),
// and the event's queue shard count. Named `WaitroomConfig` in the OpenAPI document, as
// before; a plain comment, because a doc comment would become the schema's description there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WaitroomConfig)]
pub struct WaitroomView {
    pub max_concurrent_checkouts: u32,
    pub checkout_ttl_seconds: u32,
    pub admission_batch: u32,
    /// Queue shards the event's queue is spread over, 1–64.
    #[schema(example = 1)]
    pub shards: u16,
}

impl From<&ConfigTerms> for WaitroomView {
    fn from(c: &ConfigTerms) -> Self {
        WaitroomView {
            max_concurrent_checkouts: c.waitroom.max_concurrent_checkouts,
            checkout_ttl_seconds: c.waitroom.checkout_ttl_seconds,
            admission_batch: c.waitroom.admission_batch,
            shards: c.waitroom_shards.get(),
        }
    }
}

/// The event's sale terms.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventConfig {
    pub ticket_sale_start_date: String,
    pub ticket_sale_end_date: String,
    pub is_free: bool,
    /// `null`: no cap beyond the ticket classes.
    pub max_attendees: Option<u32>,
    pub is_public: bool,
    pub requires_approval: bool,
    pub allow_wait_room: bool,
    pub is_new_trending: bool,
    /// `null`: no per-buyer cap.
    pub max_tickets_per_user: Option<u32>,
    pub waitroom: WaitroomView,
    /// Until when buyers may refund their own orders; absent: never (admins always may).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refundable_until: Option<String>,
}

impl From<&ConfigTerms> for EventConfig {
    fn from(c: &ConfigTerms) -> Self {
        EventConfig {
            ticket_sale_start_date: format_rfc3339(c.ticket_sale_start_ms),
            ticket_sale_end_date: format_rfc3339(c.ticket_sale_end_ms),
            is_free: c.is_free,
            max_attendees: c.max_attendees,
            is_public: c.is_public,
            requires_approval: c.requires_approval,
            allow_wait_room: c.allow_wait_room,
            is_new_trending: c.is_new_trending,
            max_tickets_per_user: c.max_tickets_per_user,
            waitroom: WaitroomView::from(c),
            refundable_until: c.refundable_until_ms.map(format_rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    pub name: String,
    pub description: String,
    pub start_date: String,
    pub end_date: String,
    pub location: String,
    pub thumbnail_url: Option<String>,
    /// DRAFT, CONFIGURED, APPROVED, PUBLISHED or CANCELLED.
    #[schema(example = "DRAFT")]
    pub status: String,
    pub organizer_id: Option<String>,
    pub categories: Vec<Category>,
    /// `null` until the event is configured.
    pub config: Option<EventConfig>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&EventRecord> for Event {
    fn from(e: &EventRecord) -> Self {
        Event {
            id: e.id.as_str().to_string(),
            name: e.terms.name.clone(),
            description: e.terms.description.clone(),
            start_date: format_rfc3339(e.terms.start_ms),
            end_date: format_rfc3339(e.terms.end_ms),
            location: e.terms.location.clone(),
            thumbnail_url: e.terms.thumbnail_url.clone(),
            status: e.status.as_str().to_string(),
            organizer_id: e
                .terms
                .organizer_id
                .as_ref()
                .map(|o| o.as_str().to_string()),
            categories: e.categories.iter().map(Category::from).collect(),
            config: e.terms.config.as_ref().map(EventConfig::from),
            created_at: format_rfc3339(e.created_at),
            updated_at: format_rfc3339(e.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub event: Event,
    /// `GET /api/events/{id}` only: the payment methods a buyer may choose on this deployment
    /// (`sandbox` where the sandbox is on, then `PAYMENT_PROVIDERS`; `["free"]` alone for an
    /// `isFree` event), so checkout pages offer exactly what `POST /api/orders` accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["sandbox", "payos", "vnpay", "zalopay"]))]
    pub payment_methods: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub items: Vec<Event>,
    pub page: u32,
    pub page_size: u32,
    /// Matches over all pages.
    pub total: u64,
}

fn event_response(status: u16, event: &EventRecord) -> ApiResult {
    json_response(
        status,
        &EventEnvelope {
            event: Event::from(event),
            payment_methods: None,
        },
    )
}

/// `GET /api/events?status=`: a platform admin's view of every event in one status (the
/// approval queue is `status=CONFIGURED`). Anyone else is refused rather than silently shown
/// the public list.
fn status_filter(rc: &RequestContext, actor: &Actor) -> Result<Option<EventStatus>, ApiError> {
    let Some(raw) = rc.req.url()?.query_pairs().find_map(|(k, v)| {
        (k == "status")
            .then(|| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }) else {
        return Ok(None);
    };
    match actor {
        Actor::Anonymous => return Err(ApiError::Unauthenticated),
        a if !a.is_platform_admin() => return Err(ApiError::Forbidden),
        _ => {}
    }
    Ok(Some(EventStatus::parse(&raw)?))
}

// ---------------------------------------------------------------------------------------------
// Shared steps
// ---------------------------------------------------------------------------------------------

/// An event loaded for one operation, and who asked.
pub(super) struct EventAccess {
    pub actor: Actor,
    pub event: EventRecord,
}

/// Loads the event of the `{id}` path parameter and asks the access policy about `op`.
///
/// An anonymous caller of an operation that needs a user is answered 401 before the event is
/// read, so that answer is the same for ids that exist and ids that do not; a malformed id is
/// simply unknown (404).
pub(super) async fn load_event(
    rc: &RequestContext,
    db: &worker::D1Database,
    op: EventOp,
) -> Result<EventAccess, ApiError> {
    load_event_as(rc, db, rc.param("id")?, op, rc.actor()?).await
}

/// [`load_event`] for an event id taken from elsewhere (an order's body) or an actor
/// authenticated some other way (the waitroom socket's `?token=`).
pub(super) async fn load_event_as(
    rc: &RequestContext,
    db: &worker::D1Database,
    event_id: &str,
    op: EventOp,
    actor: Actor,
) -> Result<EventAccess, ApiError> {
    let unseen = Action::OnEvent {
        op,
        published: false,
    };
    if actor == Actor::Anonymous && unseen.requires_user() {
        rc.permit(&actor, None, &unseen)?;
    }
    let id = EventId::parse(event_id).map_err(|_| ApiError::NotFound)?;
    let (event, role) = store::find_with_role(db, id.as_str(), actor.user_id().map(UserId::as_str))
        .await?
        .ok_or(ApiError::NotFound)?;
    let published = is_publicly_visible(event.status, event.ever_published);
    rc.permit(&actor, role, &Action::OnEvent { op, published })?;
    Ok(EventAccess { actor, event })
}

pub(super) fn invalid_transition(e: InvalidStatusTransition) -> ApiError {
    ApiError::rule(409, e.code(), e.to_string())
}

/// A conditional write lost a race. If the event moved to a status where the command no longer
/// applies, say that; otherwise the client should read the event again and retry.
pub(super) async fn lost_race(
    db: &worker::D1Database,
    event_id: &EventId,
    action: LifecycleAction,
) -> ApiError {
    if let Ok(Some((now, _))) = store::find_with_role(db, event_id.as_str(), None).await {
        if let Err(e) = transition(now.status, action) {
            return invalid_transition(e);
        }
    }
    ApiError::rule(
        409,
        "EDIT_CONFLICT",
        "The event changed while this request was processed; read it again and retry.",
    )
}

/// Applies [`review_edit`] before a material edit is written: refuses it on a PUBLISHED event
/// (409 `REAPPROVAL_REQUIRED`), or moves an APPROVED event back to CONFIGURED first. Returns
/// the revision the edit's own conditional write must then expect. Status first, edit second:
/// if the edit then loses a race, the event waits for a review it did not need, never the
/// other way round.
pub(super) async fn send_back_for_review(
    db: &worker::D1Database,
    event: &EventRecord,
    edits: &[MaterialEdit],
    now_ms: i64,
) -> Result<String, ApiError> {
    let next = review_edit(event.status, edits)
        .map_err(|e| ApiError::rule(409, ReapprovalRequired::CODE, e.to_string()))?;
    if next == event.status {
        return Ok(event.revision.clone());
    }
    let revision = new_revision();
    let rev = Revision {
        event_id: event.id.as_str(),
        old: &event.revision,
        new: &revision,
        now_ms,
    };
    if !store::set_status(db, &rev, next).await? {
        return Err(lost_race(db, &event.id, LifecycleAction::EditDetails).await);
    }
    Ok(revision)
}

pub(super) fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(super) async fn reload(db: &worker::D1Database, id: &EventId) -> Result<EventRecord, ApiError> {
    store::find_with_role(db, id.as_str(), None)
        .await?
        .map(|(event, _)| event)
        .ok_or_else(|| ApiError::internal("event vanished after a write"))
}

pub(super) fn body_error(e: serde_json::Error) -> ApiError {
    ApiError::Validation(vec![FieldProblem {
        field: "body".into(),
        message: e.to_string(),
    }])
}

/// Resolves category ids or slugs; an unknown one is a field error, not a 404 (it is part of
/// the request body, not the resource asked for).
async fn resolve_categories(
    db: &worker::D1Database,
    v: &mut Validator,
    refs: &[CategoryRef],
) -> Result<Option<Vec<CategoryId>>, ApiError> {
    let wanted: Vec<String> = refs.iter().map(|r| r.as_str().to_string()).collect();
    let rows = catalogue_store::find_categories(db, &wanted).await?;
    let mut ids: Vec<CategoryId> = Vec::new();
    let mut ok = true;
    for (i, wanted) in refs.iter().enumerate() {
        match rows
            .iter()
            .find(|row| row.id == wanted.as_str() || row.slug == wanted.as_str())
        {
            Some(row) => {
                let id = CategoryId::new(row.id.clone());
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            None => {
                v.push(FieldError::new(
                    format!("categoryIds[{i}]"),
                    "is not a known category",
                ));
                ok = false;
            }
        }
    }
    Ok(ok.then_some(ids))
}

/// The organizer must exist and be one the actor may file events under.
async fn check_organizer(
    db: &worker::D1Database,
    v: &mut Validator,
    actor: &Actor,
    id: &OrganizerId,
) -> Result<(), ApiError> {
    match catalogue_store::find_organizer(db, id.as_str()).await? {
        None => v.push(FieldError::new("organizerId", "is not a known organizer")),
        Some(o) if !may_file_under_organizer(actor, &UserId::new(o.owner_id.clone())) => v.push(
            FieldError::new("organizerId", "must be an organizer you own"),
        ),
        Some(_) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

#[utoipa::path(post, operation_id = "create_event", path = "/api/events", tag = "events", security(("bearer" = [])),
    request_body = CreateEventRequest,
    responses(
        (status = 201, description = "The event in DRAFT; the caller is its admin", body = EventEnvelope),
        (status = 400, description = "VALIDATION_FAILED (every bad field; unknown categories or an organizer the caller does not own included)", body = Problem),
        (status = 401, body = Problem)))]
pub async fn create(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::CreateEvent)?;
    let (creator, _) = rc.require_user()?;
    let body: CreateEventRequest = rc.json().await?;
    let db = d1::db(&rc.env)?;

    let mut v = Validator::new();
    let event = parse_new_event(&mut v, &body);
    let mut category_ids = None;
    if let Some(event) = &event {
        category_ids = resolve_categories(&db, &mut v, &event.categories).await?;
        if let Some(organizer) = &event.organizer_id {
            check_organizer(&db, &mut v, &actor, organizer).await?;
        }
    }
    let (event, category_ids) = v.finish(|| Some((event?, category_ids?)))?;

    let id = EventId::new(uuid::Uuid::now_v7().to_string());
    let terms = event.terms(category_ids);
    store::insert(
        &db,
        &store::NewEventRow {
            id: id.as_str(),
            terms: &terms,
            created_by: creator.as_str(),
            revision: &new_revision(),
            now_ms: rc.now_ms,
        },
    )
    .await?;
    event_response(201, &reload(&db, &id).await?)
}

#[utoipa::path(get, operation_id = "list_events", path = "/api/events", tag = "events",
    params(EventListQuery,
        ("status" = Option<String>, Query, description = "Platform admins: every event in this status (DRAFT, CONFIGURED, APPROVED, PUBLISHED, CANCELLED), public or not; `CONFIGURED` is the approval queue")),
    responses(
        (status = 200, description = "Published public events (or, with `mine=true`, the caller's events in any status; with `status`, every event in that status), by start date then id", body = EventPage),
        (status = 400, description = "VALIDATION_FAILED", body = Problem),
        (status = 401, description = "`mine=true` or `status` without a valid token", body = Problem),
        (status = 403, description = "`status` by someone who is not a platform admin", body = Problem)))]
pub async fn list(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    let query: EventListQuery = rc
        .req
        .query()
        .map_err(|e| ApiError::from(FieldError::new("query", e.to_string())))?;
    let search = parse_event_search(&query)?;
    let status = status_filter(rc, &actor)?;
    let action = match search.scope {
        ListScope::Public => Action::ListPublishedEvents,
        ListScope::Mine => Action::ListMine,
    };
    rc.permit(&actor, None, &action)?;
    let db = d1::db(&rc.env)?;
    let (events, total) =
        store::search(&db, &search, status, actor.user_id().map(UserId::as_str)).await?;
    json_response(
        200,
        &EventPage {
            items: events.iter().map(Event::from).collect(),
            page: search.pagination.page,
            page_size: search.pagination.page_size,
            total,
        },
    )
}

#[utoipa::path(get, operation_id = "get_event", path = "/api/events/{id}", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, body = EventEnvelope),
        (status = 404, description = "Unknown, or not published and the caller holds no role on it", body = Problem)))]
pub async fn get(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let access = load_event(rc, &db, EventOp::Read).await?;
    let free_event = access
        .event
        .terms
        .config
        .as_ref()
        .is_some_and(|c| c.is_free);
    // A free event's orders pay nothing: `free` is the one method its checkout takes.
    let payment_methods = if free_event {
        vec![crate::checkout::place::FREE_METHOD.to_string()]
    } else {
        let sandbox = rc
            .settings
            .provider_enabled(Provider::Sandbox)
            .then_some(Provider::Sandbox);
        sandbox
            .into_iter()
            .chain(rc.settings.payment_providers.iter().copied())
            .map(|p| p.as_str().to_string())
            .collect()
    };
    json_response(
        200,
        &EventEnvelope {
            event: Event::from(&access.event),
            payment_methods: Some(payment_methods),
        },
    )
}

#[utoipa::path(patch, operation_id = "update_event", path = "/api/events/{id}", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    request_body = UpdateEventRequest,
    responses(
        (status = 200, body = EventEnvelope),
        (status = 400, description = "VALIDATION_FAILED, including what a published event may no longer change (an earlier start or end, another organizer)", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "Event admins and editors only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATUS_TRANSITION (cancelled), EDIT_CONFLICT, or REAPPROVAL_REQUIRED (a published event's name, description, location or thumbnail; an APPROVED event so edited goes back to CONFIGURED instead)", body = Problem)))]
pub async fn update(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { actor, event, .. } = load_event(rc, &db, EventOp::Update).await?;
    transition(event.status, LifecycleAction::EditDetails).map_err(invalid_transition)?;
    let body: UpdateEventRequest = rc.json().await?;

    let mut v = Validator::new();
    // Bad fields are left out of `changes`, so the rest is still checked against the event.
    let changes = parse_event_changes(&mut v, &body);
    let category_ids = match &changes.categories {
        Some(refs) => resolve_categories(&db, &mut v, refs).await?,
        None => None,
    };
    if let Some(Some(organizer)) = &changes.organizer_id {
        if event.terms.organizer_id.as_ref() != Some(organizer) {
            check_organizer(&db, &mut v, &actor, organizer).await?;
        }
    }
    let new_terms = changes.apply(&event.terms, category_ids);
    let classes = class_pairs(&db, &event.id).await?;
    v.fields(check_config_fits(&new_terms, &classes));
    if event.status == EventStatus::Published {
        v.fields(check_published_update(&event.terms, &new_terms, rc.now_ms));
    }
    v.finish(|| Some(()))?;
    let edits = material_detail_edits(&event.terms, &new_terms);
    let revision = send_back_for_review(&db, &event, &edits, rc.now_ms).await?;

    let rev = Revision {
        event_id: event.id.as_str(),
        old: &revision,
        new: &new_revision(),
        now_ms: rc.now_ms,
    };
    if !store::update_details(&db, &rev, &new_terms, changes.categories.is_some()).await? {
        return Err(lost_race(&db, &event.id, LifecycleAction::EditDetails).await);
    }
    let updated = reload(&db, &event.id).await?;
    inventory_link::sync_event(rc, &updated).await?;
    event_response(200, &updated)
}

/// The event's ticket classes as `(id, terms)`, for the rules that check them together.
async fn class_pairs(
    db: &worker::D1Database,
    event_id: &EventId,
) -> Result<Vec<(String, crate::domain::event_workflow::TicketClassTerms)>, ApiError> {
    Ok(class_store::list(db, event_id.as_str())
        .await?
        .into_iter()
        .map(|c| (c.id, c.terms))
        .collect())
}

#[utoipa::path(put, operation_id = "configure_event", path = "/api/events/{id}/config", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    request_body(content = EventConfigRequest, description = "`{\"eventConfig\": {...}}` or the config object itself"),
    responses(
        (status = 200, description = "DRAFT and APPROVED become CONFIGURED (new terms need a new approval); PUBLISHED stays PUBLISHED", body = EventEnvelope),
        (status = 400, description = "VALIDATION_FAILED, including what a published event may no longer change (a sale end moved earlier, isFree, ...) and, in any status, a lower `waitroom.shards` or a higher one once the stored sale start has passed", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "Event admins and editors only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATUS_TRANSITION (cancelled) or EDIT_CONFLICT", body = Problem)))]
pub async fn configure(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, EventOp::Configure).await?;
    let next = transition(event.status, LifecycleAction::Configure).map_err(invalid_transition)?;
    let raw: serde_json::Value = rc.json().await?;
    let body: EventConfigRequest =
        serde_json::from_value(unwrap_event_config(raw)).map_err(body_error)?;

    let mut v = Validator::new();
    let config = parse_event_config(&mut v, &body);
    if let Some(config) = &config {
        let mut new = event.terms.clone();
        new.config = Some(config.clone());
        let classes = class_pairs(&db, &event.id).await?;
        v.fields(check_config_fits(&new, &classes));
        v.fields(check_config_update(&event.terms, &new, rc.now_ms));
        if event.status == EventStatus::Published {
            v.fields(check_published_update(&event.terms, &new, rc.now_ms));
        }
    }
    let config = v.finish(|| config)?;

    let rev = Revision {
        event_id: event.id.as_str(),
        old: &event.revision,
        new: &new_revision(),
        now_ms: rc.now_ms,
    };
    if !store::configure(&db, &rev, next, &config).await? {
        return Err(lost_race(&db, &event.id, LifecycleAction::Configure).await);
    }
    super::waitroom::forget_gate(event.id.as_str());
    let updated = reload(&db, &event.id).await?;
    inventory_link::sync_event(rc, &updated).await?;
    event_response(200, &updated)
}

/// Approve, publish or cancel: authorization, then the status table, then a conditional write.
async fn move_status(rc: &mut RequestContext, action: LifecycleAction) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, action.op()).await?;
    let next = transition(event.status, action).map_err(invalid_transition)?;
    if action == LifecycleAction::Cancel {
        // Stop sales in the object first: if the D1 write then fails, the event still reads
        // as not cancelled and the client's retry is valid.
        let mut cancelled = event.clone();
        cancelled.status = next;
        inventory_link::sync_event(rc, &cancelled).await?;
    }
    let rev = Revision {
        event_id: event.id.as_str(),
        old: &event.revision,
        new: &new_revision(),
        now_ms: rc.now_ms,
    };
    if !store::set_status(&db, &rev, next).await? {
        return Err(lost_race(&db, &event.id, action).await);
    }
    super::waitroom::forget_gate(event.id.as_str());
    let updated = reload(&db, &event.id).await?;
    if action == LifecycleAction::Publish {
        inventory_link::sync_event(rc, &updated).await?;
    }
    event_response(200, &updated)
}

#[utoipa::path(post, operation_id = "approve_event", path = "/api/events/{id}/approve", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "CONFIGURED → APPROVED", body = EventEnvelope),
        (status = 401, body = Problem), (status = 403, description = "Platform admins only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATUS_TRANSITION", body = Problem)))]
pub async fn approve(rc: &mut RequestContext) -> ApiResult {
    move_status(rc, LifecycleAction::Approve).await
}

#[utoipa::path(post, operation_id = "publish_event", path = "/api/events/{id}/publish", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "APPROVED → PUBLISHED", body = EventEnvelope),
        (status = 401, body = Problem), (status = 403, description = "Event admins only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATUS_TRANSITION", body = Problem)))]
pub async fn publish(rc: &mut RequestContext) -> ApiResult {
    move_status(rc, LifecycleAction::Publish).await
}

#[utoipa::path(post, operation_id = "cancel_event", path = "/api/events/{id}/cancel", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Any status → CANCELLED (final); sales stop", body = EventEnvelope),
        (status = 401, body = Problem), (status = 403, description = "Event admins and platform admins only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATUS_TRANSITION (already cancelled)", body = Problem)))]
pub async fn cancel(rc: &mut RequestContext) -> ApiResult {
    move_status(rc, LifecycleAction::Cancel).await
}
