//! The event lifecycle: which status each command leads to (DRAFT → CONFIGURED → APPROVED →
//! PUBLISHED, any → CANCELLED), and what may still change once tickets are on sale.
//!
//! # Status transitions
//!
//! | from \ action | edit details, ticket classes | configure  | approve   | publish   | cancel    |
//! |---------------|------------------------------|------------|-----------|-----------|-----------|
//! | DRAFT         | DRAFT                        | CONFIGURED | 409       | 409       | CANCELLED |
//! | CONFIGURED    | CONFIGURED                   | CONFIGURED | APPROVED  | 409       | CANCELLED |
//! | APPROVED      | APPROVED                     | CONFIGURED | 409       | PUBLISHED | CANCELLED |
//! | PUBLISHED     | PUBLISHED                    | PUBLISHED  | 409       | 409       | CANCELLED |
//! | CANCELLED     | 409                          | 409        | 409       | 409       | 409       |
//!
//! 409 is `INVALID_STATUS_TRANSITION`. Decisions behind the table:
//! - **Configuring an APPROVED event sends it back to CONFIGURED.** The platform admin approved
//!   a sale window, capacity and waitroom settings; new ones need a new approval. Details
//!   (name, description, images) and ticket classes are not what approval vouches for, so
//!   editing them keeps the status.
//! - **A material edit of an APPROVED event sends it back to CONFIGURED; of a PUBLISHED event
//!   it is refused** (409 `REAPPROVAL_REQUIRED`, [`review_edit`]). Approval vouches for what
//!   buyers read and pay: name, description, location, picture, the ticket classes and their
//!   prices; without this, an organizer could have a harmless listing approved and then turn
//!   it into another (a rename to a famous act, a price tripled). Material: a change of name,
//!   description, location or thumbnail, a new ticket class, a raised price. Not material:
//!   categories, dates (held to their own rules below), totals, pauses, lower prices.
//! - **Configuring a PUBLISHED event keeps it PUBLISHED**, but only within
//!   [`check_published_update`]: buyers are already relying on the published terms.
//! - **Approve and publish are not idempotent**: repeating one answers 409; a client retrying
//!   after a lost response reads the event and sees the status it wanted.
//! - **CANCELLED is final**: cancelling again is a 409 like every other command, so a duplicate
//!   cancel cannot start a second round of refunds, and a cancelled event cannot be edited.
//!
//! Authorization comes first ([`decide`]): an actor who may not publish gets 403/404, never a
//! 409 that would tell them the event's status.
//!
//! # What may change once PUBLISHED
//!
//! | field                                          | rule                                        | why |
//! |------------------------------------------------|---------------------------------------------|-----|
//! | categories                                     | free                                        | presentation |
//! | name, description, location, thumbnailUrl      | refused (`REAPPROVAL_REQUIRED`)             | what the approval vouched for |
//! | organizerId                                    | frozen                                      | buyers bought from that organizer; payouts follow it |
//! | startDate                                      | only later, and not once the event started  | postponing happens; moving earlier breaks buyers' plans |
//! | endDate                                        | only later                                  | same |
//! | config (as a whole)                            | cannot be removed                           | a published event is always on sale terms |
//! | ticketSaleStartDate                            | free until the sale starts, then frozen     | people planned to be there at that minute |
//! | ticketSaleEndDate                              | only later                                  | to stop early, pause the ticket classes (`status: PAUSED`) |
//! | isFree                                         | frozen                                      | orders already went through (or skipped) payment |
//! | maxAttendees                                   | only up (or unlimited)                      | lowering could fall below tickets sold |
//! | requiresApproval                               | frozen                                      | buyers so far were admitted under the other rule |
//! | allowWaitRoom                                  | frozen while the sale is open               | queued buyers would be stranded, or buyers mid-checkout would suddenly need a checkout token |
//! | isPublic, isNewTrending                        | free                                        | listing and promotion only |
//! | maxTicketsPerUser                              | free                                        | applies to new orders; existing ones stand |
//! | waitroom (concurrency, TTL, batch)             | free                                        | operational tuning during the rush is the point |
//! | waitroom.shards                                | only up, and only until the sale starts; in every status ([`check_config_update`]) | fans sit on the shard their user id hashes to: fewer shards would strand the removed shards' fans, and a raise hands pre-queued fans over to the new shards, which must not race admission |
//!
//! Ticket classes ([`check_ticket_class_update`]): the currency never changes once a class
//! exists (prices and orders are in it); once the event is published, a class's own sale
//! start is frozen when reached and its sale end only moves later. Name, a lower price (orders
//! keep the price they were placed at), status and total are free here (a raised price or a new
//! class is a material edit, [`review_edit`]); a total below what is reserved
//! and sold is the ledger's `TOTAL_BELOW_COMMITTED`.
//!
//! [`check_schedule`] is the consistency of dates in any status (end after start, sale inside
//! the event); run it on every update, and [`check_published_update`] too when PUBLISHED.
//! [`check_config_update`] holds in any status as well: run it on every configure.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::{authorize, Action, Actor, DenyReason, EventOp, EventRole};
use super::admission::place::ShardCount;
use super::ids::{CategoryId, OrganizerId};
use super::validation::{CurrencyCode, FieldError};
use super::waitroom::WaitroomConfig;

/// Where an event is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Created; details may be edited; not visible to the public.
    Draft,
    /// Has sale terms (`eventConfig`); waits for a platform admin's approval.
    Configured,
    /// A platform admin approved the terms; the event's admin may publish.
    Approved,
    /// Visible to everyone and on sale within its sale window.
    Published,
    /// Final.
    Cancelled,
}

impl EventStatus {
    pub const ALL: [Self; 5] = [
        Self::Draft,
        Self::Configured,
        Self::Approved,
        Self::Published,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Configured => "CONFIGURED",
            Self::Approved => "APPROVED",
            Self::Published => "PUBLISHED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// From the stored or queried text (`?status=PUBLISHED`).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                FieldError::new(
                    "status",
                    "must be one of DRAFT, CONFIGURED, APPROVED, PUBLISHED, CANCELLED",
                )
            })
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the public may see an event: once published, and still after a cancellation
/// (buyers need to find out), but never a draft that was cancelled before it went out.
pub fn is_publicly_visible(status: EventStatus, ever_published: bool) -> bool {
    match status {
        EventStatus::Published => true,
        EventStatus::Cancelled => ever_published,
        EventStatus::Draft | EventStatus::Configured | EventStatus::Approved => false,
    }
}

/// A command that touches an event's status, or depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleAction {
    /// `PATCH /api/events/{id}`
    EditDetails,
    /// `PUT /api/events/{id}/config`
    Configure,
    /// `POST /api/events/{id}/ticket-classes`
    AddTicketClass,
    /// `PATCH /api/events/{id}/ticket-classes/{ticketClassId}`
    EditTicketClass,
    /// `POST /api/events/{id}/approve`
    Approve,
    /// `POST /api/events/{id}/publish`
    Publish,
    /// `POST /api/events/{id}/cancel`
    Cancel,
}

impl LifecycleAction {
    pub const ALL: [Self; 7] = [
        Self::EditDetails,
        Self::Configure,
        Self::AddTicketClass,
        Self::EditTicketClass,
        Self::Approve,
        Self::Publish,
        Self::Cancel,
    ];

    /// The verb in "cannot <verb> an event in status X".
    pub fn verb(self) -> &'static str {
        match self {
            Self::EditDetails => "edit",
            Self::Configure => "configure",
            Self::AddTicketClass => "add a ticket class to",
            Self::EditTicketClass => "edit a ticket class of",
            Self::Approve => "approve",
            Self::Publish => "publish",
            Self::Cancel => "cancel",
        }
    }

    /// The authorization question this command asks.
    pub fn op(self) -> EventOp {
        match self {
            Self::EditDetails => EventOp::Update,
            Self::Configure => EventOp::Configure,
            Self::AddTicketClass => EventOp::CreateTicketClass,
            Self::EditTicketClass => EventOp::UpdateTicketClass,
            Self::Approve => EventOp::Approve,
            Self::Publish => EventOp::Publish,
            Self::Cancel => EventOp::Cancel,
        }
    }
}

/// A command the event's current status does not allow: 409 `INVALID_STATUS_TRANSITION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("cannot {} an event in status {}", .action.verb(), .from.as_str())]
pub struct InvalidStatusTransition {
    pub from: EventStatus,
    pub action: LifecycleAction,
}

impl InvalidStatusTransition {
    pub const CODE: &'static str = "INVALID_STATUS_TRANSITION";

    pub fn code(&self) -> &'static str {
        Self::CODE
    }
}

/// The status after `action`, or why the current status does not allow it (see the table in
/// the module documentation).
pub fn transition(
    from: EventStatus,
    action: LifecycleAction,
) -> Result<EventStatus, InvalidStatusTransition> {
    use EventStatus::{Approved, Cancelled, Configured, Draft, Published};
    use LifecycleAction::{
        AddTicketClass, Approve, Cancel, Configure, EditDetails, EditTicketClass, Publish,
    };

    let invalid = InvalidStatusTransition { from, action };
    match (from, action) {
        (Cancelled, _) => Err(invalid),
        (_, Cancel) => Ok(Cancelled),
        // New terms need a new approval; a published event keeps its status and is held to
        // `check_published_update` instead.
        (Draft | Configured | Approved, Configure) => Ok(Configured),
        (Published, Configure) => Ok(Published),
        (Configured, Approve) => Ok(Approved),
        (Approved, Publish) => Ok(Published),
        (status, EditDetails | AddTicketClass | EditTicketClass) => Ok(status),
        (Draft | Approved | Published, Approve) | (Draft | Configured | Published, Publish) => {
            Err(invalid)
        }
    }
}

/// Why a lifecycle command was refused: who asked (401/403/404), or when (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum LifecycleDenied {
    #[error(transparent)]
    Access(#[from] DenyReason),
    #[error(transparent)]
    Transition(#[from] InvalidStatusTransition),
}

impl LifecycleDenied {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Access(reason) => reason.code(),
            Self::Transition(invalid) => invalid.code(),
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::Access(reason) => reason.http_status(),
            Self::Transition(_) => 409,
        }
    }
}

/// Authorization, then the transition: the new status if `actor` may do `action` now.
pub fn decide(
    actor: &Actor,
    role_on_event: Option<EventRole>,
    status: EventStatus,
    ever_published: bool,
    action: LifecycleAction,
) -> Result<EventStatus, LifecycleDenied> {
    let published = is_publicly_visible(status, ever_published);
    authorize(
        actor,
        role_on_event,
        &Action::OnEvent {
            op: action.op(),
            published,
        },
    )
    .into_result()?;
    Ok(transition(status, action)?)
}

/// An event's sale terms (`eventConfig`), as the rules below need them: instants in unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigTerms {
    pub ticket_sale_start_ms: i64,
    pub ticket_sale_end_ms: i64,
    pub is_free: bool,
    /// `None` = no cap beyond the ticket classes' totals.
    pub max_attendees: Option<u32>,
    pub is_public: bool,
    pub requires_approval: bool,
    pub allow_wait_room: bool,
    pub is_new_trending: bool,
    /// `None` = no per-buyer cap.
    pub max_tickets_per_user: Option<u32>,
    pub waitroom: WaitroomConfig,
    /// `waitroom.shards`: how many queue shards the event's queue is spread over.
    pub waitroom_shards: ShardCount,
    /// Until when buyers may refund their own orders (`refundableUntil`); `None` = never.
    pub refundable_until_ms: Option<i64>,
}

impl ConfigTerms {
    /// Whether tickets are on sale at `now_ms` by the event's window: `[start, end)`.
    pub fn sale_open_at(&self, now_ms: i64) -> bool {
        (self.ticket_sale_start_ms..self.ticket_sale_end_ms).contains(&now_ms)
    }
}

/// An event as an update sees it: the stored version and the version after the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTerms {
    pub name: String,
    pub description: String,
    pub location: String,
    pub thumbnail_url: Option<String>,
    pub organizer_id: Option<OrganizerId>,
    pub category_ids: Vec<CategoryId>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub config: Option<ConfigTerms>,
}

/// The dates of an event agree with each other: it ends after it starts, and the sale window
/// is non-empty and closes no later than the event ends (a ticket sold after the show is a
/// refund waiting to happen). Holds in every status.
pub fn check_schedule(terms: &EventTerms) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if terms.end_ms <= terms.start_ms {
        errors.push(FieldError::new("endDate", "must be after startDate"));
    }
    if let Some(config) = &terms.config {
        if config.ticket_sale_end_ms <= config.ticket_sale_start_ms {
            errors.push(FieldError::new(
                "ticketSaleEndDate",
                "must be after ticketSaleStartDate",
            ));
        }
        if config.ticket_sale_end_ms > terms.end_ms {
            errors.push(FieldError::new(
                "ticketSaleEndDate",
                "must not be after endDate",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

const FROZEN_ONCE_PUBLISHED: &str = "cannot change once the event is published";
const ONLY_LATER_ONCE_PUBLISHED: &str = "may only move later once the event is published";

/// What an update of a PUBLISHED event may change (the table in the module documentation),
/// judged at `now_ms`. Reports every refused field.
pub fn check_published_update(
    old: &EventTerms,
    new: &EventTerms,
    now_ms: i64,
) -> Result<(), Vec<FieldError>> {
    // Destructured field by field so that a new field cannot slip past without a rule.
    let EventTerms {
        name: _,
        description: _,
        location: _,
        thumbnail_url: _,
        organizer_id,
        category_ids: _,
        start_ms,
        end_ms,
        config,
    } = new;
    let mut errors = Vec::new();

    if *organizer_id != old.organizer_id {
        errors.push(FieldError::new("organizerId", FROZEN_ONCE_PUBLISHED));
    }
    if *start_ms != old.start_ms {
        if now_ms >= old.start_ms {
            errors.push(FieldError::new(
                "startDate",
                "cannot change once the event has started",
            ));
        } else if *start_ms < old.start_ms {
            errors.push(FieldError::new("startDate", ONLY_LATER_ONCE_PUBLISHED));
        }
    }
    if *end_ms < old.end_ms {
        errors.push(FieldError::new("endDate", ONLY_LATER_ONCE_PUBLISHED));
    }

    match (&old.config, config) {
        (Some(old_config), Some(new_config)) => {
            check_published_config(old_config, new_config, now_ms, &mut errors);
        }
        (Some(_), None) => {
            errors.push(FieldError::new(
                "config",
                "cannot be removed once the event is published",
            ));
        }
        // A published event always has a config (CONFIGURED comes first); nothing to compare.
        (None, _) => {}
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_published_config(
    old: &ConfigTerms,
    new: &ConfigTerms,
    now_ms: i64,
    errors: &mut Vec<FieldError>,
) {
    let ConfigTerms {
        ticket_sale_start_ms,
        ticket_sale_end_ms,
        is_free,
        max_attendees,
        is_public: _,
        requires_approval,
        allow_wait_room,
        is_new_trending: _,
        max_tickets_per_user: _,
        waitroom: _,
        // Held in every status, not only once published: `check_config_update`.
        waitroom_shards: _,
        refundable_until_ms: _,
    } = new;

    if *ticket_sale_start_ms != old.ticket_sale_start_ms && now_ms >= old.ticket_sale_start_ms {
        errors.push(FieldError::new(
            "ticketSaleStartDate",
            "cannot change once the ticket sale has started",
        ));
    }
    if *ticket_sale_end_ms < old.ticket_sale_end_ms {
        errors.push(FieldError::new(
            "ticketSaleEndDate",
            "may only move later once the event is published (pause ticket classes to stop selling)",
        ));
    }
    if *is_free != old.is_free {
        errors.push(FieldError::new("isFree", FROZEN_ONCE_PUBLISHED));
    }
    let lowers_capacity = match (old.max_attendees, *max_attendees) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(before), Some(after)) => after < before,
    };
    if lowers_capacity {
        errors.push(FieldError::new(
            "maxAttendees",
            "may only increase once the event is published",
        ));
    }
    if *requires_approval != old.requires_approval {
        errors.push(FieldError::new("requiresApproval", FROZEN_ONCE_PUBLISHED));
    }
    // The window as buyers know it (the old one) decides whether anyone is in flight.
    if *allow_wait_room != old.allow_wait_room && old.sale_open_at(now_ms) {
        errors.push(FieldError::new(
            "allowWaitRoom",
            "cannot change while the ticket sale is open",
        ));
    }
}

/// What new sale terms may change in every status, judged against the stored ones at `now_ms`
/// (nothing to judge before the first configure): `waitroom.shards` only rises, and only until
/// the stored `ticketSaleStartDate`. Not only once published, because the event's object takes
/// the count from every configure and its admission hub holds the same rule
/// (`admission::hub::HubRejection::ShardCountLocked`): what D1 accepts, the object accepts too.
pub fn check_config_update(
    old: &EventTerms,
    new: &EventTerms,
    now_ms: i64,
) -> Result<(), Vec<FieldError>> {
    let (Some(old), Some(new)) = (&old.config, &new.config) else {
        return Ok(());
    };
    let refusal = if new.waitroom_shards < old.waitroom_shards {
        Some("may only be raised, never lowered")
    } else if new.waitroom_shards > old.waitroom_shards && now_ms >= old.ticket_sale_start_ms {
        Some("cannot be raised once the ticket sale has started")
    } else {
        None
    };
    match refusal {
        None => Ok(()),
        Some(message) => Err(vec![FieldError::new("waitroom.shards", message)]),
    }
}

/// A ticket class as an update sees it; `None` sale bounds follow the event's sale window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClassTerms {
    pub name: String,
    pub price_cents: i64,
    pub currency: CurrencyCode,
    pub total: u32,
    pub sale_start_ms: Option<i64>,
    pub sale_end_ms: Option<i64>,
    pub paused: bool,
}

/// What an update of a ticket class may change: the currency never; once the event is
/// published, its own sale start is frozen when reached (an unset start counts as reached) and
/// its sale end only moves later (an unset end counts as the latest).
pub fn check_ticket_class_update(
    old: &TicketClassTerms,
    new: &TicketClassTerms,
    event_published: bool,
    now_ms: i64,
) -> Result<(), Vec<FieldError>> {
    let TicketClassTerms {
        name: _,
        price_cents: _,
        currency,
        total: _,
        sale_start_ms,
        sale_end_ms,
        paused: _,
    } = new;
    let mut errors = Vec::new();

    if *currency != old.currency {
        errors.push(FieldError::new(
            "currency",
            "cannot change once the ticket class exists",
        ));
    }
    if event_published {
        let started = old.sale_start_ms.is_none_or(|start| now_ms >= start);
        if *sale_start_ms != old.sale_start_ms && started {
            errors.push(FieldError::new(
                "saleStartAt",
                "cannot change once the ticket class's sale has started",
            ));
        }
        let moves_earlier = match (old.sale_end_ms, *sale_end_ms) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(after)) => after < before,
        };
        if moves_earlier {
            errors.push(FieldError::new(
                "saleEndAt",
                "may only move later once the event is published (pause the class to stop selling)",
            ));
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// An edit that changes what the platform admin reviewed when approving: what buyers read
/// about the event (name, description, venue, picture) and what they pay (a new ticket
/// class, a higher price). Lower prices, totals, pauses, categories and dates are not
/// material: they do not make the listing something other than what was approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaterialEdit {
    Name,
    Description,
    Location,
    Thumbnail,
    NewTicketClass,
    PriceRaised,
}

impl MaterialEdit {
    /// The request field the edit came through.
    pub fn field(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Description => "description",
            Self::Location => "location",
            Self::Thumbnail => "thumbnailUrl",
            Self::NewTicketClass => "ticketClass",
            Self::PriceRaised => "priceCents",
        }
    }
}

/// The material edits between an event's stored details and the requested ones.
pub fn material_detail_edits(old: &EventTerms, new: &EventTerms) -> Vec<MaterialEdit> {
    [
        (old.name != new.name, MaterialEdit::Name),
        (
            old.description != new.description,
            MaterialEdit::Description,
        ),
        (old.location != new.location, MaterialEdit::Location),
        (
            old.thumbnail_url != new.thumbnail_url,
            MaterialEdit::Thumbnail,
        ),
    ]
    .into_iter()
    .filter_map(|(changed, edit)| changed.then_some(edit))
    .collect()
}

/// The material edits of a ticket class update: only a price increase (renaming a class,
/// lowering its price or changing its total is operational).
pub fn material_class_edits(old: &TicketClassTerms, new: &TicketClassTerms) -> Vec<MaterialEdit> {
    if new.price_cents > old.price_cents {
        vec![MaterialEdit::PriceRaised]
    } else {
        Vec::new()
    }
}

/// A material edit of a PUBLISHED event: 409 `REAPPROVAL_REQUIRED`. Buyers are already
/// relying on the approved listing, and taking a live sale off for review would strand them;
/// the organizer cancels and relists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a published event's {} cannot change without a new approval", self.fields())]
pub struct ReapprovalRequired {
    pub edits: Vec<MaterialEdit>,
}

impl ReapprovalRequired {
    pub const CODE: &'static str = "REAPPROVAL_REQUIRED";

    fn fields(&self) -> String {
        let names: Vec<&str> = self.edits.iter().map(|e| e.field()).collect();
        names.join(", ")
    }
}

/// The status an event has after an edit whose material changes are `edits`. An APPROVED
/// event goes back to CONFIGURED for a new review; a PUBLISHED one refuses the edit; before
/// approval nothing was vouched for yet. CANCELLED is refused earlier by [`transition`].
pub fn review_edit(
    status: EventStatus,
    edits: &[MaterialEdit],
) -> Result<EventStatus, ReapprovalRequired> {
    if edits.is_empty() {
        return Ok(status);
    }
    match status {
        EventStatus::Approved => Ok(EventStatus::Configured),
        EventStatus::Published => Err(ReapprovalRequired {
            edits: edits.to_vec(),
        }),
        EventStatus::Draft | EventStatus::Configured | EventStatus::Cancelled => Ok(status),
    }
}

/// Tickets cannot be bought (or queued for) right now: 409 `SALE_NOT_OPEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("tickets for this event are not on sale")]
pub struct SaleNotOpen;

impl SaleNotOpen {
    pub fn code(self) -> &'static str {
        "SALE_NOT_OPEN"
    }
}

/// Whether buyers may join the waitroom or order at `now_ms`: the event is PUBLISHED and
/// inside its sale window. A ticket class's own window narrows this further (the ledger's rule).
pub fn check_sale_open(
    status: EventStatus,
    config: Option<&ConfigTerms>,
    now_ms: i64,
) -> Result<(), SaleNotOpen> {
    match config {
        Some(config) if status == EventStatus::Published && config.sale_open_at(now_ms) => Ok(()),
        _ => Err(SaleNotOpen),
    }
}

#[cfg(test)]
mod tests;
