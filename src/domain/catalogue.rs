//! The catalogue's request shapes (categories, organizers, events, sale terms, ticket classes,
//! roles, the event search) and their parsing into validated domain values, plus the catalogue
//! rules `event_workflow` leaves open: where a ticket class may sell, and in which currency.
//!
//! Parsers take a [`Validator`] so a handler can add the errors only it can find (an unknown
//! category id) to the same list: the client sees every bad field of a request at once.
//!
//! Integer fields are read as JSON values ([`json_integer`]) so that `"5"` or `1.5` is reported
//! against its field instead of rejecting the whole body.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::access::{Actor, EventRole};
use super::admission::place::ShardCount;
use super::event_workflow::{check_schedule, ConfigTerms, EventTerms, TicketClassTerms};
use super::ids::{CategoryId, OrganizerId, UserId};
use super::validation::{
    json_integer, parse_rfc3339, parse_shard_count, parse_waitroom_settings, CategoryName,
    CurrencyCode, Description, EventName, FieldError, Location, MaxTicketsPerUser, OrganizerName,
    Pagination, PriceCents, Slug, TicketClassName, TicketTotal, Url, ValidationFailed, Validator,
};
use super::waitroom::WaitroomConfig;

const REQUIRED: &str = "is required";

/// Tells "absent" (`None`) from "null" (`Some(None)`) for fields a PATCH may clear.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn required<'a>(v: &mut Validator, field: &str, value: &'a Option<String>) -> Option<&'a str> {
    if value.is_none() {
        v.push(FieldError::new(field, REQUIRED));
    }
    value.as_deref()
}

fn required_time(v: &mut Validator, field: &str, value: &Option<String>) -> Option<i64> {
    required(v, field, value).and_then(|raw| v.field(field, parse_rfc3339(raw)))
}

fn optional_time(v: &mut Validator, field: &str, value: Option<&str>) -> Option<Option<i64>> {
    v.optional(field, value.map(parse_rfc3339))
}

/// An integer field: `Some(None)` when absent or null, `None` when invalid (error recorded).
fn integer(v: &mut Validator, field: &str, value: &Option<Value>) -> Option<Option<i64>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(raw) => v.field(field, json_integer(raw)).map(Some),
    }
}

fn required_integer(v: &mut Validator, field: &str, value: &Option<Value>) -> Option<i64> {
    match integer(v, field, value)? {
        Some(n) => Some(n),
        None => {
            v.push(FieldError::new(field, REQUIRED));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Categories and organizers
// ---------------------------------------------------------------------------------------------

/// `POST /api/categories`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCategoryRequest {
    /// 1–60 characters; the slug is derived from it ("Âm nhạc" → "am-nhac").
    #[schema(example = "Âm nhạc")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCategory {
    pub name: CategoryName,
    pub slug: Slug,
}

pub fn parse_new_category(body: &CreateCategoryRequest) -> Result<NewCategory, ValidationFailed> {
    let mut v = Validator::new();
    let name = required(&mut v, "name", &body.name).and_then(|raw| {
        let name = v.field("name", CategoryName::parse(raw))?;
        let slug = v.field("name", Slug::from_name(name.as_str()))?;
        Some(NewCategory { name, slug })
    });
    v.finish(|| name)
}

/// A category as a request names it: its id or its slug (`?category=am-nhac`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CategoryRef(String);

impl CategoryRef {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if let Ok(id) = CategoryId::parse(raw) {
            return Ok(Self(id.into_inner()));
        }
        Slug::parse(raw)
            .map(|slug| Self(slug.as_str().to_string()))
            .map_err(|_| FieldError::new("category", "must be a category id or slug"))
    }

    /// Matched against both the id and the slug column.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/organizers`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrganizerRequest {
    #[schema(example = "Saigon Live Nation")]
    pub name: Option<String>,
    pub description: Option<String>,
    /// An http(s) URL.
    pub logo_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganizer {
    pub name: OrganizerName,
    pub description: Description,
    pub logo_url: Option<Url>,
}

pub fn parse_new_organizer(
    body: &CreateOrganizerRequest,
) -> Result<NewOrganizer, ValidationFailed> {
    let mut v = Validator::new();
    let name = required(&mut v, "name", &body.name)
        .and_then(|raw| v.field("name", OrganizerName::parse(raw)));
    let description = v.field(
        "description",
        Description::parse(body.description.as_deref().unwrap_or("")),
    );
    let logo_url = v.optional("logoUrl", body.logo_url.as_deref().map(Url::parse));
    v.finish(|| {
        Some(NewOrganizer {
            name: name?,
            description: description?,
            logo_url: logo_url?,
        })
    })
}

/// Whether `actor` may file an event under an organizer owned by `owner`: only the owner (a
/// platform admin too, to fix up listings); anyone else could borrow a famous organizer's name.
pub fn may_file_under_organizer(actor: &Actor, owner: &UserId) -> bool {
    actor.user_id() == Some(owner) || actor.is_platform_admin()
}

// ---------------------------------------------------------------------------------------------
// Event details
// ---------------------------------------------------------------------------------------------

/// `POST /api/events`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventRequest {
    #[schema(example = "Mỹ Tâm Live Concert 2026")]
    pub name: Option<String>,
    /// May be empty; up to 5000 characters, line breaks allowed.
    pub description: Option<String>,
    /// RFC 3339.
    #[schema(example = "2026-12-31T12:00:00Z")]
    pub start_date: Option<String>,
    /// RFC 3339, after `startDate`.
    #[schema(example = "2026-12-31T16:00:00Z")]
    pub end_date: Option<String>,
    #[schema(example = "Phú Thọ Stadium, Ho Chi Minh City")]
    pub location: Option<String>,
    pub thumbnail_url: Option<String>,
    /// An organizer the caller owns.
    pub organizer_id: Option<String>,
    /// Category ids or slugs.
    pub category_ids: Option<Vec<String>>,
}

/// The validated details of a new event; category references still need resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub name: EventName,
    pub description: Description,
    pub location: Location,
    pub thumbnail_url: Option<Url>,
    pub organizer_id: Option<OrganizerId>,
    pub categories: Vec<CategoryRef>,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl NewEvent {
    pub fn terms(&self, category_ids: Vec<CategoryId>) -> EventTerms {
        EventTerms {
            name: self.name.as_str().to_string(),
            description: self.description.as_str().to_string(),
            location: self.location.as_str().to_string(),
            thumbnail_url: self.thumbnail_url.as_ref().map(|u| u.as_str().to_string()),
            organizer_id: self.organizer_id.clone(),
            category_ids,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            config: None,
        }
    }
}

/// At most this many categories per event: a listing filter, not a tag cloud.
pub const MAX_CATEGORIES_PER_EVENT: usize = 10;

fn category_refs(v: &mut Validator, raw: &[String]) -> Option<Vec<CategoryRef>> {
    if raw.len() > MAX_CATEGORIES_PER_EVENT {
        v.push(FieldError::new(
            "categoryIds",
            format!("must list at most {MAX_CATEGORIES_PER_EVENT} categories"),
        ));
        return None;
    }
    let mut refs: Vec<CategoryRef> = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, item) in raw.iter().enumerate() {
        match v.field(&format!("categoryIds[{i}]"), CategoryRef::parse(item)) {
            // The same category twice is harmless: keep it once.
            Some(r) if !refs.contains(&r) => refs.push(r),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(refs)
}

fn organizer_id(v: &mut Validator, raw: Option<&str>) -> Option<Option<OrganizerId>> {
    v.optional("organizerId", raw.map(OrganizerId::parse))
}

pub fn parse_new_event(v: &mut Validator, body: &CreateEventRequest) -> Option<NewEvent> {
    let name =
        required(v, "name", &body.name).and_then(|raw| v.field("name", EventName::parse(raw)));
    let description = required(v, "description", &body.description)
        .and_then(|raw| v.field("description", Description::parse(raw)));
    let start_ms = required_time(v, "startDate", &body.start_date);
    let end_ms = required_time(v, "endDate", &body.end_date);
    let location = required(v, "location", &body.location)
        .and_then(|raw| v.field("location", Location::parse(raw)));
    let thumbnail_url = v.optional(
        "thumbnailUrl",
        body.thumbnail_url.as_deref().map(Url::parse),
    );
    let organizer_id = organizer_id(v, body.organizer_id.as_deref());
    let categories = category_refs(v, body.category_ids.as_deref().unwrap_or_default());
    if let (Some(start_ms), Some(end_ms)) = (start_ms, end_ms) {
        if end_ms <= start_ms {
            v.push(FieldError::new("endDate", "must be after startDate"));
        }
    }
    Some(NewEvent {
        name: name?,
        description: description?,
        location: location?,
        thumbnail_url: thumbnail_url?,
        organizer_id: organizer_id?,
        categories: categories?,
        start_ms: start_ms?,
        end_ms: end_ms?,
    })
}

/// `PATCH /api/events/{id}`: only the fields present change; `null` clears an optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateEventRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub location: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub thumbnail_url: Option<Option<String>>,
    /// Frozen once the event is published.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub organizer_id: Option<Option<String>>,
    /// Replaces the event's categories (ids or slugs).
    pub category_ids: Option<Vec<String>>,
}

/// The validated changes of a PATCH; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventChanges {
    pub name: Option<EventName>,
    pub description: Option<Description>,
    pub location: Option<Location>,
    pub thumbnail_url: Option<Option<Url>>,
    pub organizer_id: Option<Option<OrganizerId>>,
    pub categories: Option<Vec<CategoryRef>>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

impl EventChanges {
    /// The event as it would be after the changes; `category_ids` are the resolved
    /// `categories` (ignored when the request did not touch them).
    pub fn apply(&self, old: &EventTerms, category_ids: Option<Vec<CategoryId>>) -> EventTerms {
        EventTerms {
            name: self
                .name
                .as_ref()
                .map_or_else(|| old.name.clone(), |n| n.as_str().to_string()),
            description: self
                .description
                .as_ref()
                .map_or_else(|| old.description.clone(), |d| d.as_str().to_string()),
            location: self
                .location
                .as_ref()
                .map_or_else(|| old.location.clone(), |l| l.as_str().to_string()),
            thumbnail_url: match &self.thumbnail_url {
                None => old.thumbnail_url.clone(),
                Some(url) => url.as_ref().map(|u| u.as_str().to_string()),
            },
            organizer_id: self
                .organizer_id
                .clone()
                .unwrap_or_else(|| old.organizer_id.clone()),
            category_ids: match (&self.categories, category_ids) {
                (Some(_), Some(ids)) => ids,
                _ => old.category_ids.clone(),
            },
            start_ms: self.start_ms.unwrap_or(old.start_ms),
            end_ms: self.end_ms.unwrap_or(old.end_ms),
            config: old.config.clone(),
        }
    }
}

/// The valid changes of a PATCH. A bad field is recorded in `v` and left out of the result, so
/// the caller can still check the rest against the stored event and report every problem.
pub fn parse_event_changes(v: &mut Validator, body: &UpdateEventRequest) -> EventChanges {
    let name = v.optional("name", body.name.as_deref().map(EventName::parse));
    let description = v.optional(
        "description",
        body.description.as_deref().map(Description::parse),
    );
    let location = v.optional("location", body.location.as_deref().map(Location::parse));
    let start_ms = optional_time(v, "startDate", body.start_date.as_deref());
    let end_ms = optional_time(v, "endDate", body.end_date.as_deref());
    let thumbnail_url = match &body.thumbnail_url {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => v.field("thumbnailUrl", Url::parse(raw)).map(Some),
    };
    let organizer_id = match &body.organizer_id {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => organizer_id(v, Some(raw)).flatten().map(Some),
    };
    let categories = body
        .category_ids
        .as_ref()
        .and_then(|raw| category_refs(v, raw));
    EventChanges {
        name: name.flatten(),
        description: description.flatten(),
        location: location.flatten(),
        thumbnail_url,
        organizer_id,
        categories,
        start_ms: start_ms.flatten(),
        end_ms: end_ms.flatten(),
    }
}

// ---------------------------------------------------------------------------------------------
// Sale terms (eventConfig)
// ---------------------------------------------------------------------------------------------

/// `waitroom` inside `eventConfig`; a missing value takes its default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitroomRequest {
    /// 1–10000, default 100.
    #[schema(value_type = Option<i64>, example = 100)]
    pub max_concurrent_checkouts: Option<Value>,
    /// 60–3600, default 900.
    #[schema(value_type = Option<i64>, example = 900)]
    pub checkout_ttl_seconds: Option<Value>,
    /// 1–10000, default 100.
    #[schema(value_type = Option<i64>, example = 100)]
    pub admission_batch: Option<Value>,
    /// Queue shards the event's queue is spread over: 1–64, default 1. May be raised until
    /// the sale starts, never lowered.
    #[schema(value_type = Option<i64>, example = 1)]
    pub shards: Option<Value>,
}

/// `PUT /api/events/{id}/config`: the whole of the event's sale terms (a replacement, not a
/// patch). Flags default to `false` except `isPublic` (`true`); `null` caps mean "no cap".
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventConfigRequest {
    /// RFC 3339; required.
    #[schema(example = "2026-12-01T03:00:00Z")]
    pub ticket_sale_start_date: Option<String>,
    /// RFC 3339, after the start and not after the event's end; required.
    #[schema(example = "2026-12-31T10:00:00Z")]
    pub ticket_sale_end_date: Option<String>,
    pub is_free: Option<bool>,
    /// 1–10,000,000 or null (no cap beyond the ticket classes).
    #[schema(value_type = Option<i64>)]
    pub max_attendees: Option<Value>,
    pub is_public: Option<bool>,
    pub requires_approval: Option<bool>,
    pub allow_wait_room: Option<bool>,
    pub is_new_trending: Option<bool>,
    /// 1–1000 or null (no per-buyer cap).
    #[schema(value_type = Option<i64>)]
    pub max_tickets_per_user: Option<Value>,
    pub waitroom: Option<WaitroomRequest>,
    /// RFC 3339 or null: buyers may refund their own orders until then; null = never.
    #[schema(example = "2026-12-20T00:00:00Z")]
    pub refundable_until: Option<String>,
}

/// The body of `PUT /config` is `{"eventConfig": {...}}`; the bare config object is accepted
/// too, since both readings of the contract are natural for a client.
pub fn unwrap_event_config(body: Value) -> Value {
    match body {
        Value::Object(mut map) if map.len() == 1 && map.contains_key("eventConfig") => {
            map.remove("eventConfig").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Largest `maxAttendees`: ten stadiums; beyond that it is a typo.
pub const MAX_ATTENDEES: u32 = 10_000_000;

pub fn parse_event_config(v: &mut Validator, body: &EventConfigRequest) -> Option<ConfigTerms> {
    let start = required_time(v, "ticketSaleStartDate", &body.ticket_sale_start_date);
    let end = required_time(v, "ticketSaleEndDate", &body.ticket_sale_end_date);
    let max_attendees = integer(v, "maxAttendees", &body.max_attendees).and_then(|raw| match raw {
        None => Some(None),
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=MAX_ATTENDEES).contains(&n) => Some(Some(n)),
            _ => {
                v.push(FieldError::new(
                    "maxAttendees",
                    format!("must be between 1 and {MAX_ATTENDEES}, or null"),
                ));
                None
            }
        },
    });
    let max_tickets_per_user = integer(v, "maxTicketsPerUser", &body.max_tickets_per_user)
        .and_then(|raw| {
            v.optional("maxTicketsPerUser", raw.map(MaxTicketsPerUser::parse))
                .map(|cap| cap.map(MaxTicketsPerUser::get))
        });
    let refundable_until = optional_time(v, "refundableUntil", body.refundable_until.as_deref());
    let (waitroom, waitroom_shards) = match &body.waitroom {
        None => (Some(WaitroomConfig::default()), Some(ShardCount::ONE)),
        Some(w) => {
            let concurrency = integer(
                v,
                "waitroom.maxConcurrentCheckouts",
                &w.max_concurrent_checkouts,
            );
            let ttl = integer(v, "waitroom.checkoutTtlSeconds", &w.checkout_ttl_seconds);
            let batch = integer(v, "waitroom.admissionBatch", &w.admission_batch);
            let shards = integer(v, "waitroom.shards", &w.shards)
                .and_then(|raw| v.field("waitroom.shards", parse_shard_count(raw)));
            // Range-check the well-typed values even when another one is mistyped, so every
            // bad field is reported in one answer.
            let settings = v.fields(parse_waitroom_settings(
                concurrency.flatten(),
                ttl.flatten(),
                batch.flatten(),
            ));
            match (concurrency, ttl, batch) {
                (Some(_), Some(_), Some(_)) => (settings, shards),
                _ => (None, shards),
            }
        }
    };
    Some(ConfigTerms {
        ticket_sale_start_ms: start?,
        ticket_sale_end_ms: end?,
        is_free: body.is_free.unwrap_or(false),
        max_attendees: max_attendees?,
        is_public: body.is_public.unwrap_or(true),
        requires_approval: body.requires_approval.unwrap_or(false),
        allow_wait_room: body.allow_wait_room.unwrap_or(false),
        is_new_trending: body.is_new_trending.unwrap_or(false),
        max_tickets_per_user: max_tickets_per_user?,
        waitroom: waitroom?,
        waitroom_shards: waitroom_shards?,
        refundable_until_ms: refundable_until?,
    })
}

// ---------------------------------------------------------------------------------------------
// Ticket classes
// ---------------------------------------------------------------------------------------------

/// `POST /api/events/{id}/ticket-classes`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTicketClassRequest {
    #[schema(example = "VIP")]
    pub name: Option<String>,
    /// Minor units of `currency`, 0 or more (150000 VND is `150000`).
    #[schema(value_type = i64, example = 1500000)]
    pub price_cents: Option<Value>,
    /// ISO 4217; every class of an event sells in the same currency.
    #[schema(example = "VND")]
    pub currency: Option<String>,
    /// 1–1,000,000 tickets.
    #[schema(value_type = i64, example = 500)]
    pub total: Option<Value>,
    /// RFC 3339, inside the event's ticket-sale window; default: when the event's sale opens.
    pub sale_start_at: Option<String>,
    /// RFC 3339, inside the event's ticket-sale window; default: when the event's sale closes.
    pub sale_end_at: Option<String>,
}

pub fn parse_new_ticket_class(
    v: &mut Validator,
    body: &CreateTicketClassRequest,
) -> Option<TicketClassTerms> {
    let name = required(v, "name", &body.name)
        .and_then(|raw| v.field("name", TicketClassName::parse(raw)));
    let price = required_integer(v, "priceCents", &body.price_cents)
        .and_then(|raw| v.field("priceCents", PriceCents::parse(raw)));
    let currency = required(v, "currency", &body.currency)
        .and_then(|raw| v.field("currency", CurrencyCode::parse(raw)));
    let total = required_integer(v, "total", &body.total)
        .and_then(|raw| v.field("total", TicketTotal::parse(raw)));
    let sale_start_ms = optional_time(v, "saleStartAt", body.sale_start_at.as_deref());
    let sale_end_ms = optional_time(v, "saleEndAt", body.sale_end_at.as_deref());
    Some(TicketClassTerms {
        name: name?.into_inner(),
        price_cents: price?.get(),
        currency: currency?,
        total: total?.get(),
        sale_start_ms: sale_start_ms?,
        sale_end_ms: sale_end_ms?,
        paused: false,
    })
}

/// `PATCH /api/events/{id}/ticket-classes/{ticketClassId}`; `null` sale bounds fall back to
/// the event's window. `currency` is accepted only to refuse a change explicitly.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTicketClassRequest {
    pub name: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub price_cents: Option<Value>,
    /// Never changes; sending another currency is a validation error.
    pub currency: Option<String>,
    /// Not below `reserved + sold` (409 `TOTAL_BELOW_COMMITTED`).
    #[schema(value_type = Option<i64>)]
    pub total: Option<Value>,
    /// `ACTIVE` or `PAUSED`.
    #[schema(example = "PAUSED")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub sale_start_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub sale_end_at: Option<Option<String>>,
}

/// The validated changes of a ticket-class PATCH; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketClassChanges {
    pub name: Option<TicketClassName>,
    pub price_cents: Option<PriceCents>,
    pub currency: Option<CurrencyCode>,
    pub total: Option<TicketTotal>,
    pub paused: Option<bool>,
    pub sale_start_ms: Option<Option<i64>>,
    pub sale_end_ms: Option<Option<i64>>,
}

impl TicketClassChanges {
    pub fn apply(&self, old: &TicketClassTerms) -> TicketClassTerms {
        TicketClassTerms {
            name: self
                .name
                .as_ref()
                .map_or_else(|| old.name.clone(), |n| n.as_str().to_string()),
            price_cents: self.price_cents.map_or(old.price_cents, PriceCents::get),
            currency: self.currency.unwrap_or(old.currency),
            total: self.total.map_or(old.total, TicketTotal::get),
            sale_start_ms: self.sale_start_ms.unwrap_or(old.sale_start_ms),
            sale_end_ms: self.sale_end_ms.unwrap_or(old.sale_end_ms),
            paused: self.paused.unwrap_or(old.paused),
        }
    }
}

fn class_status(raw: &str) -> Result<bool, FieldError> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "ACTIVE" => Ok(false),
        "PAUSED" => Ok(true),
        _ => Err(FieldError::new("status", "must be ACTIVE or PAUSED")),
    }
}

fn nullable_time(
    v: &mut Validator,
    field: &str,
    value: &Option<Option<String>>,
) -> Option<Option<Option<i64>>> {
    match value {
        None => Some(None),
        Some(None) => Some(Some(None)),
        Some(Some(raw)) => v.field(field, parse_rfc3339(raw)).map(|t| Some(Some(t))),
    }
}

/// The valid changes of a ticket-class PATCH; bad fields are recorded in `v` and left out (see
/// [`parse_event_changes`]).
pub fn parse_ticket_class_changes(
    v: &mut Validator,
    body: &UpdateTicketClassRequest,
) -> TicketClassChanges {
    let name = v.optional("name", body.name.as_deref().map(TicketClassName::parse));
    let price_cents = integer(v, "priceCents", &body.price_cents)
        .and_then(|raw| v.optional("priceCents", raw.map(PriceCents::parse)));
    let currency = v.optional(
        "currency",
        body.currency.as_deref().map(CurrencyCode::parse),
    );
    let total = integer(v, "total", &body.total)
        .and_then(|raw| v.optional("total", raw.map(TicketTotal::parse)));
    let paused = v.optional("status", body.status.as_deref().map(class_status));
    let sale_start_ms = nullable_time(v, "saleStartAt", &body.sale_start_at);
    let sale_end_ms = nullable_time(v, "saleEndAt", &body.sale_end_at);
    TicketClassChanges {
        name: name.flatten(),
        price_cents: price_cents.flatten(),
        currency: currency.flatten(),
        total: total.flatten(),
        paused: paused.flatten(),
        sale_start_ms: sale_start_ms.flatten(),
        sale_end_ms: sale_end_ms.flatten(),
    }
}

/// Where and how a ticket class of `event` may sell, in any status:
/// - its own window is non-empty and lies inside the event's ticket-sale window (or, before the
///   event has sale terms, ends no later than the event);
/// - a free event's classes cost nothing;
/// - all classes of an event share one currency (`event_currency`, from the classes that
///   exist), because an order and its payment are in one currency.
///
/// Field names are the ticket class's own; prefix them with [`FieldError::at`] when checking a
/// class on behalf of another request (a new `eventConfig`).
pub fn check_ticket_class_terms(
    class: &TicketClassTerms,
    event: &EventTerms,
    event_currency: Option<CurrencyCode>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let (Some(start), Some(end)) = (class.sale_start_ms, class.sale_end_ms) {
        if end <= start {
            errors.push(FieldError::new("saleEndAt", "must be after saleStartAt"));
        }
    }
    match &event.config {
        Some(config) => {
            let inside =
                |t: i64| (config.ticket_sale_start_ms..=config.ticket_sale_end_ms).contains(&t);
            const OUTSIDE: &str = "must be inside the event's ticket sale window";
            if class
                .sale_start_ms
                .is_some_and(|t| !inside(t) || t == config.ticket_sale_end_ms)
            {
                errors.push(FieldError::new("saleStartAt", OUTSIDE));
            }
            if class
                .sale_end_ms
                .is_some_and(|t| !inside(t) || t == config.ticket_sale_start_ms)
            {
                errors.push(FieldError::new("saleEndAt", OUTSIDE));
            }
            if config.is_free && class.price_cents != 0 {
                errors.push(FieldError::new("priceCents", "must be 0 for a free event"));
            }
        }
        None => {
            if class.sale_start_ms.is_some_and(|t| t >= event.end_ms) {
                errors.push(FieldError::new(
                    "saleStartAt",
                    "must be before the event's endDate",
                ));
            }
            if class.sale_end_ms.is_some_and(|t| t > event.end_ms) {
                errors.push(FieldError::new(
                    "saleEndAt",
                    "must not be after the event's endDate",
                ));
            }
        }
    }
    if let Some(currency) = event_currency {
        if class.currency != currency {
            errors.push(FieldError::new(
                "currency",
                format!("must be {currency}, the currency of the event's other ticket classes"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// New sale terms must still fit the event's dates and every ticket class that exists
/// (`classes` as `(id, terms)`); a class that no longer fits is reported as
/// `ticketClasses.<id>.<field>`.
pub fn check_config_fits(
    event: &EventTerms,
    classes: &[(String, TicketClassTerms)],
) -> Result<(), Vec<FieldError>> {
    let mut errors = check_schedule(event).err().unwrap_or_default();
    for (id, class) in classes {
        if let Err(class_errors) = check_ticket_class_terms(class, event, None) {
            errors.extend(class_errors.into_iter().map(|e| {
                let field = format!("ticketClasses.{id}.{}", e.field);
                e.at(field)
            }));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

/// `PUT /api/events/{id}/roles/{userId}`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRoleRequest {
    /// `admin`, `editor` or `viewer`.
    #[schema(example = "editor")]
    pub role: Option<String>,
}

pub fn parse_role(body: &PutRoleRequest) -> Result<EventRole, ValidationFailed> {
    let mut v = Validator::new();
    let role =
        required(&mut v, "role", &body.role).and_then(|raw| v.field("role", EventRole::parse(raw)));
    v.finish(|| role)
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

/// Full-text search words, ready to become an FTS5 query in which the user's text can only
/// ever be words to match, never query syntax (`OR`, `NEAR`, column filters, quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<String>,
}

impl SearchText {
    pub const MAX_CHARS: usize = 200;
    /// More words than this only narrows a result the first eight already narrowed.
    pub const MAX_TERMS: usize = 8;

    /// Blank text is no search (`Ok(None)`); text without a letter or digit is an error.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "q",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        let mut terms: Vec<String> = Vec::new();
        for word in raw.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if !word.is_empty() && !terms.contains(&word) && terms.len() < Self::MAX_TERMS {
                terms.push(word);
            }
        }
        if terms.is_empty() {
            return Err(FieldError::new("q", "must contain a letter or a digit"));
        }
        Ok(Some(Self { terms }))
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Every word must match, each as a prefix ("nha" finds "nhạc": the index folds
    /// diacritics). Words hold only letters and digits, so quoting them is enough.
    pub fn fts_query(&self) -> String {
        self.terms
            .iter()
            .map(|term| format!("\"{term}\"*"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `GET /api/events` query parameters, as they arrive.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EventListQuery {
    /// Words to find in the name or description (prefix match, diacritics ignored).
    pub q: Option<String>,
    /// A category id or slug.
    pub category: Option<String>,
    /// RFC 3339: only events still running at or after this instant (`endDate >= from`).
    pub from: Option<String>,
    /// RFC 3339: only events starting at or before this instant (`startDate <= to`).
    pub to: Option<String>,
    /// 1-based, default 1.
    pub page: Option<String>,
    /// 1–100, default 20.
    pub page_size: Option<String>,
    /// `true`: the events on which the caller holds a role, in any status (needs a token).
    pub mine: Option<String>,
}

/// Whose events a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// Published events marked public.
    Public,
    /// Events on which the caller holds a role, any status.
    Mine,
}

/// A validated event search; results are ordered by start date, then id (stable pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSearch {
    pub text: Option<SearchText>,
    pub category: Option<CategoryRef>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub pagination: Pagination,
    pub scope: ListScope,
}

fn present(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn parse_event_search(query: &EventListQuery) -> Result<EventSearch, ValidationFailed> {
    let mut v = Validator::new();
    let text = v.field("q", query.q.as_deref().map_or(Ok(None), SearchText::parse));
    let category = v.optional("category", present(&query.category).map(CategoryRef::parse));
    let from_ms = optional_time(&mut v, "from", present(&query.from));
    let to_ms = optional_time(&mut v, "to", present(&query.to));
    if let (Some(Some(from)), Some(Some(to))) = (from_ms, to_ms) {
        if to < from {
            v.push(FieldError::new("to", "must not be before from"));
        }
    }
    let pagination = v.fields(Pagination::parse(
        query.page.as_deref(),
        query.page_size.as_deref(),
    ));
    let scope = match present(&query.mine).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Some(ListScope::Public),
        Some("true") => Some(ListScope::Mine),
        Some(_) => {
            v.push(FieldError::new("mine", "must be true or false"));
            None
        }
    };
    v.finish(|| {
        Some(EventSearch {
            text: text?,
            category: category?,
            from_ms: from_ms?,
            to_ms: to_ms?,
            pagination: pagination?,
            scope: scope?,
        })
    })
}

#[cfg(test)]
mod tests;
