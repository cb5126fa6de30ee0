//! Who may do what: [`authorize`] answers "may this actor do this action" for every endpoint of
//! the API, including when to hide that a resource exists (404) instead of refusing (403).
//!
//! Every action is decided by the same four questions, in this order:
//! 1. Is it open to everyone (login, public reads)? Then allow.
//! 2. Does it need a signed-in user and there is none? `401 UNAUTHENTICATED`. A handler can ask
//!    this before loading anything ([`Action::requires_user`]), so an anonymous caller gets the
//!    same answer for ids that exist and ids that do not.
//! 3. Is the resource hidden from this user: an event that was never published and on which
//!    they hold no role, or somebody else's order? `404 NOT_FOUND`, exactly what an unknown id
//!    answers, so ids of drafts and orders cannot be probed.
//! 4. Does their standing (event role, platform admin, ownership) allow it? Allow, else
//!    `403 FORBIDDEN`.
//!
//! Event actions (`published` = the event is visible to the public, see
//! `event_workflow::is_publicly_visible`; "hidden" = 404 for a signed-in user without a role):
//!
//! | action                                    | anonymous          | no role            | staff | viewer | editor | event admin | platform admin |
//! |-------------------------------------------|--------------------|--------------------|-------|--------|--------|-------------|----------------|
//! | read event, read ticket classes           | if published       | if published       | yes   | yes    | yes    | yes         | yes            |
//! | join waitroom, waitroom session, order    | 401                | if published       | yes   | yes    | yes    | yes         | yes            |
//! | read check-in stats                       | 401                | 403 / hidden       | yes   | yes    | yes    | yes         | yes            |
//! | read roles, read orders, read event log   | 401                | 403 / hidden       | 403   | yes    | yes    | yes         | yes            |
//! | check tickets in                          | 401                | 403 / hidden       | yes   | 403    | yes    | yes         | 403 (own role decides) |
//! | update, configure, ticket classes         | 401                | 403 / hidden       | 403   | 403    | yes    | yes         | 403 (own role decides) |
//! | publish, manage roles                     | 401                | 403 / hidden       | 403   | 403    | 403    | yes         | 403 (own role decides) |
//! | cancel                                    | 401                | 403 / hidden       | 403   | 403    | 403    | yes         | yes            |
//! | approve                                   | 401                | 403 / hidden       | 403   | 403    | 403    | 403         | yes            |
//!
//! `staff` is the door team: it reads the event and checks tickets in, nothing else (no
//! orders, no buyers, no roles). It is not on the viewer → editor → admin ladder: a viewer
//! reads more, an editor may do everything staff may.
//!
//! Platform admins read everything and approve and cancel events, but they do not edit an
//! organizer's event or publish it for them: that stays with the event's own team. A platform
//! admin who also holds a role on the event has both sets of rights.
//!
//! Whether an action fits the event's *status* (publishing a draft) is a separate question,
//! answered by `event_workflow` after this one.

use serde::{Deserialize, Serialize};

use super::ids::UserId;
use super::validation::FieldError;

/// Who is asking: nobody, or a signed-in user (platform admins are the `ADMIN_EMAILS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    Anonymous,
    User { id: UserId, platform_admin: bool },
}

impl Actor {
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Self::Anonymous => None,
            Self::User { id, .. } => Some(id),
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        matches!(
            self,
            Self::User {
                platform_admin: true,
                ..
            }
        )
    }
}

/// A user's role on one event. `Viewer`, `Editor`, `Admin` each allow what the one before does
/// and more; `Staff` stands beside them (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventRole {
    /// Reads the event and checks tickets in at the door; nothing else.
    Staff,
    /// Reads everything of the event, orders included, and changes nothing.
    Viewer,
    /// Also edits the event, its config and its ticket classes.
    Editor,
    /// Also publishes, cancels and manages roles.
    Admin,
}

impl EventRole {
    pub const ALL: [Self; 4] = [Self::Staff, Self::Viewer, Self::Editor, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw.trim())
            .ok_or_else(|| FieldError::new("role", "must be one of admin, editor, viewer, staff"))
    }

    /// Reads the event's orders, roles and log (everything but the door's own work).
    pub fn reads_event_records(self) -> bool {
        matches!(self, Self::Viewer | Self::Editor | Self::Admin)
    }

    /// Edits the event, its config and its ticket classes.
    pub fn edits(self) -> bool {
        matches!(self, Self::Editor | Self::Admin)
    }

    /// Checks tickets in at the door.
    pub fn checks_in(self) -> bool {
        matches!(self, Self::Staff | Self::Editor | Self::Admin)
    }
}

/// Something done to one event. The handler supplies whether the event is public and the
/// actor's role on it; see the table in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOp {
    /// `GET /api/events/{id}`
    Read,
    /// `GET /api/events/{id}/ticket-classes`
    ReadTicketClasses,
    /// `PATCH /api/events/{id}`
    Update,
    /// `PUT /api/events/{id}/config`
    Configure,
    /// `POST /api/events/{id}/approve`
    Approve,
    /// `POST /api/events/{id}/publish`
    Publish,
    /// `POST /api/events/{id}/cancel`
    Cancel,
    /// `GET /api/events/{id}/roles`
    ReadRoles,
    /// `PUT` and `DELETE /api/events/{id}/roles/{userId}`
    ManageRoles,
    /// `POST /api/events/{id}/ticket-classes`
    CreateTicketClass,
    /// `PATCH /api/events/{id}/ticket-classes/{ticketClassId}`
    UpdateTicketClass,
    /// `GET /api/events/{id}/orders`
    ReadOrders,
    /// The event's domain-event log (operations view).
    ReadLog,
    /// `POST /api/events/{id}/waitroom/join`
    JoinWaitroom,
    /// `GET`/`DELETE /api/events/{id}/waitroom/session` and the waitroom WebSocket: the caller's
    /// own place in the queue.
    UseWaitroomSession,
    /// `POST /api/orders` for this event.
    PlaceOrder,
    /// `POST /api/events/{id}/check-ins`: let a ticket in at the door.
    CheckIn,
    /// `GET /api/events/{id}/check-ins/stats`
    ReadCheckInStats,
}

impl EventOp {
    pub const ALL: [Self; 18] = [
        Self::Read,
        Self::ReadTicketClasses,
        Self::Update,
        Self::Configure,
        Self::Approve,
        Self::Publish,
        Self::Cancel,
        Self::ReadRoles,
        Self::ManageRoles,
        Self::CreateTicketClass,
        Self::UpdateTicketClass,
        Self::ReadOrders,
        Self::ReadLog,
        Self::JoinWaitroom,
        Self::UseWaitroomSession,
        Self::PlaceOrder,
        Self::CheckIn,
        Self::ReadCheckInStats,
    ];

    /// Reads the public may make once the event is published.
    fn is_public_read(self) -> bool {
        matches!(self, Self::Read | Self::ReadTicketClasses)
    }

    /// What the actor's standing must be, once the event is visible to them.
    fn permitted(self, role: Option<EventRole>, platform_admin: bool) -> bool {
        let role_may = |rule: fn(EventRole) -> bool| role.is_some_and(rule);
        match self {
            // Visibility was the only condition; sale rules (409 SALE_NOT_OPEN) come later.
            Self::Read
            | Self::ReadTicketClasses
            | Self::JoinWaitroom
            | Self::UseWaitroomSession
            | Self::PlaceOrder => true,
            Self::ReadCheckInStats => role.is_some() || platform_admin,
            Self::ReadRoles | Self::ReadOrders | Self::ReadLog => {
                role_may(EventRole::reads_event_records) || platform_admin
            }
            Self::CheckIn => role_may(EventRole::checks_in),
            Self::Update | Self::Configure | Self::CreateTicketClass | Self::UpdateTicketClass => {
                role_may(EventRole::edits)
            }
            Self::Publish | Self::ManageRoles => role == Some(EventRole::Admin),
            Self::Cancel => role == Some(EventRole::Admin) || platform_admin,
            Self::Approve => platform_admin,
        }
    }
}

/// Every endpoint of the API, as the question "may the actor do this?".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /api/auth/register`
    Register,
    /// `POST /api/auth/login`
    Login,
    /// `POST /api/auth/verify-email`: the token is the credential.
    VerifyEmail,
    /// `GET /api/users/me`
    ReadSelf,
    /// `PATCH /api/users/me`
    UpdateSelf,
    /// `DELETE /api/users/me`
    DeleteSelf,
    /// `GET /api/users/{id}`: self or platform admin. Authorize before loading the user, so
    /// the answer is the same whether `target` exists or not.
    ReadUser { target: UserId },
    /// `GET /api/users?ids=` and `?email=`
    LookupUsers,
    /// `GET /api/categories`
    ListCategories,
    /// `POST /api/categories`
    CreateCategory,
    /// `POST /api/organizers`
    CreateOrganizer,
    /// `GET /api/organizers/{id}`
    ReadOrganizer,
    /// `GET /api/events` (published public events)
    ListPublishedEvents,
    /// `GET /api/events?mine=true`
    ListMine,
    /// `POST /api/events`: the caller becomes the event's admin.
    CreateEvent,
    /// Anything done to one existing event.
    OnEvent { op: EventOp, published: bool },
    /// `GET /api/orders` (the caller's own)
    ListOwnOrders,
    /// `GET /api/orders/{idOrCode}`; the role passed is the actor's role on the order's event.
    ReadOrder { owner: UserId },
    /// `POST /api/orders/{id}/cancel`: the buyer only (staff refund through other means).
    CancelOrder { owner: UserId },
    /// The platform's operations view (queues, outbox, Durable Object health).
    ReadOperatorStatus,
    /// `GET /api/health`
    ReadHealth,
    /// `GET /api/openapi.json`, `GET /api/docs`
    ReadApiDocs,
    /// `GET /api/dev/mailbox`: gated by `ENVIRONMENT`, not by who asks.
    ReadDevMailbox,
    /// Payment webhooks, provider returns and sandbox checkout pages: authenticated by the
    /// provider's signature or the environment, never by a user token.
    PaymentCallback,
    /// `GET /api/tickets` (the caller's own)
    ListOwnTickets,
    /// `GET /api/tickets/{id}` and its `qr.svg`; the role passed is the actor's role on the
    /// ticket's event (any role: the door team looks tickets up too).
    ReadTicket { owner: UserId },
    /// `GET /api/tickets/public-key`: door apps verify offline with it.
    ReadTicketPublicKey,
}

impl Action {
    /// Whether the action needs a signed-in user at all; when it does and there is none the
    /// answer is 401 whatever the resource, so a handler may check this before loading it.
    pub fn requires_user(&self) -> bool {
        match self {
            Self::Register
            | Self::Login
            | Self::VerifyEmail
            | Self::ListCategories
            | Self::ReadOrganizer
            | Self::ListPublishedEvents
            | Self::ReadHealth
            | Self::ReadApiDocs
            | Self::ReadDevMailbox
            | Self::PaymentCallback
            | Self::ReadTicketPublicKey => false,
            Self::OnEvent { op, .. } => !op.is_public_read(),
            Self::ReadSelf
            | Self::UpdateSelf
            | Self::DeleteSelf
            | Self::ReadUser { .. }
            | Self::LookupUsers
            | Self::CreateCategory
            | Self::CreateOrganizer
            | Self::ListMine
            | Self::CreateEvent
            | Self::ListOwnOrders
            | Self::ReadOrder { .. }
            | Self::CancelOrder { .. }
            | Self::ReadOperatorStatus
            | Self::ListOwnTickets
            | Self::ReadTicket { .. } => true,
        }
    }
}

/// The answer to "may the actor do this?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }

    /// For handlers: `authorize(..).into_result()?`.
    pub fn into_result(self) -> Result<(), DenyReason> {
        match self {
            Self::Allow => Ok(()),
            Self::Deny(reason) => Err(reason),
        }
    }

    fn allow_if(allowed: bool, otherwise: DenyReason) -> Self {
        if allowed {
            Self::Allow
        } else {
            Self::Deny(otherwise)
        }
    }
}

/// Why an action was refused; each maps to one status and error code of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DenyReason {
    #[error("authentication is required")]
    Unauthenticated,
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("not found")]
    NotFound,
}

impl DenyReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
        }
    }
}

/// May `actor`, holding `role_on_event` on the event concerned (if any), do `action`?
///
/// `role_on_event` is the role on the event the action touches: the event itself, or the event
/// of the order for `ReadOrder`/`CancelOrder`; `None` elsewhere. An anonymous actor holds no
/// role whatever is passed.
pub fn authorize(actor: &Actor, role_on_event: Option<EventRole>, action: &Action) -> Decision {
    use DenyReason::{Forbidden, NotFound, Unauthenticated};

    let (user_id, platform_admin) = match actor {
        Actor::Anonymous if action.requires_user() => return Decision::Deny(Unauthenticated),
        Actor::Anonymous => (None, false),
        Actor::User { id, platform_admin } => (Some(id), *platform_admin),
    };
    let role = user_id.and(role_on_event);
    let is_actor = |user: &UserId| user_id == Some(user);
    let reads_records = role.is_some_and(EventRole::reads_event_records);

    match action {
        Action::Register
        | Action::Login
        | Action::VerifyEmail
        | Action::ListCategories
        | Action::ReadOrganizer
        | Action::ListPublishedEvents
        | Action::ReadHealth
        | Action::ReadApiDocs
        | Action::ReadDevMailbox
        | Action::PaymentCallback
        | Action::ReadTicketPublicKey
        // Any signed-in user; the anonymous case was answered above.
        | Action::ReadSelf
        | Action::UpdateSelf
        | Action::DeleteSelf
        | Action::CreateOrganizer
        | Action::ListMine
        | Action::CreateEvent
        | Action::ListOwnOrders
        | Action::ListOwnTickets => Decision::Allow,

        Action::ReadUser { target } => Decision::allow_if(is_actor(target) || platform_admin, Forbidden),

        Action::LookupUsers | Action::CreateCategory | Action::ReadOperatorStatus => {
            Decision::allow_if(platform_admin, Forbidden)
        }

        Action::OnEvent { op, published } => {
            let visible = *published || role.is_some() || platform_admin;
            if !visible {
                return Decision::Deny(NotFound);
            }
            Decision::allow_if(op.permitted(role, platform_admin), Forbidden)
        }

        // The event's team (not the door staff) sees its orders; anyone else is told it does
        // not exist.
        Action::ReadOrder { owner } => Decision::allow_if(
            is_actor(owner) || reads_records || platform_admin,
            NotFound,
        ),

        // Anyone on the event's team, door staff included, may look a ticket up.
        Action::ReadTicket { owner } => {
            Decision::allow_if(is_actor(owner) || role.is_some() || platform_admin, NotFound)
        }

        Action::CancelOrder { owner } => {
            if is_actor(owner) {
                Decision::Allow
            } else if reads_records || platform_admin {
                // They can see the order, so refusing does not reveal anything new.
                Decision::Deny(Forbidden)
            } else {
                Decision::Deny(NotFound)
            }
        }
    }
}

/// An event must keep at least one admin, or nobody could publish, cancel or manage it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event's last admin cannot be removed or demoted")]
pub struct LastAdmin;

impl LastAdmin {
    pub fn code(self) -> &'static str {
        "LAST_ADMIN"
    }
}

/// Whether changing one user's role from `current` to `next` (`None` = no role, i.e. removed)
/// keeps an admin on an event that has `admin_count` admins now.
pub fn check_role_change(
    admin_count: usize,
    current: Option<EventRole>,
    next: Option<EventRole>,
) -> Result<(), LastAdmin> {
    let loses_an_admin = current == Some(EventRole::Admin) && next != Some(EventRole::Admin);
    if loses_an_admin && admin_count <= 1 {
        Err(LastAdmin)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "0190f3a2-7c1e-7b4d-9a3f-000000000001";
    const SOMEONE_ELSE: &str = "0190f3a2-7c1e-7b4d-9a3f-000000000002";

    fn me() -> UserId {
        UserId::new(ME)
    }

    fn someone_else() -> UserId {
        UserId::new(SOMEONE_ELSE)
    }

    /// The columns of the table: actor kind × role on the event.
    fn columns() -> Vec<(Actor, Option<EventRole>)> {
        let roles = [
            None,
            Some(EventRole::Staff),
            Some(EventRole::Viewer),
            Some(EventRole::Editor),
            Some(EventRole::Admin),
        ];
        let actors = [
            Actor::Anonymous,
            Actor::User {
                id: me(),
                platform_admin: false,
            },
            Actor::User {
                id: me(),
                platform_admin: true,
            },
        ];
        actors
            .iter()
            .flat_map(|actor| roles.iter().map(move |role| (actor.clone(), *role)))
            .collect()
    }

    fn on_event(op: EventOp, published: bool) -> Action {
        Action::OnEvent { op, published }
    }

    /// Expected decisions, one letter per column: A allow, U 401, F 403, N 404.
    /// Column groups: anonymous | signed-in user | platform admin; within each: no role,
    /// staff, viewer, editor, admin. (An anonymous caller's role is ignored: the first group repeats.)
    fn table() -> Vec<(&'static str, Action, &'static str)> {
        use EventOp as Op;
        vec![
            // Open to everyone.
            ("register", Action::Register, "AAAAA AAAAA AAAAA"),
            ("login", Action::Login, "AAAAA AAAAA AAAAA"),
            ("verify email", Action::VerifyEmail, "AAAAA AAAAA AAAAA"),
            (
                "list categories",
                Action::ListCategories,
                "AAAAA AAAAA AAAAA",
            ),
            ("read organizer", Action::ReadOrganizer, "AAAAA AAAAA AAAAA"),
            (
                "list published events",
                Action::ListPublishedEvents,
                "AAAAA AAAAA AAAAA",
            ),
            ("health", Action::ReadHealth, "AAAAA AAAAA AAAAA"),
            ("api docs", Action::ReadApiDocs, "AAAAA AAAAA AAAAA"),
            ("dev mailbox", Action::ReadDevMailbox, "AAAAA AAAAA AAAAA"),
            (
                "payment callback",
                Action::PaymentCallback,
                "AAAAA AAAAA AAAAA",
            ),
            // Any signed-in user.
            ("read self", Action::ReadSelf, "UUUUU AAAAA AAAAA"),
            ("update self", Action::UpdateSelf, "UUUUU AAAAA AAAAA"),
            ("delete self", Action::DeleteSelf, "UUUUU AAAAA AAAAA"),
            (
                "create organizer",
                Action::CreateOrganizer,
                "UUUUU AAAAA AAAAA",
            ),
            ("list mine", Action::ListMine, "UUUUU AAAAA AAAAA"),
            ("create event", Action::CreateEvent, "UUUUU AAAAA AAAAA"),
            (
                "list own orders",
                Action::ListOwnOrders,
                "UUUUU AAAAA AAAAA",
            ),
            // Self or platform admin; platform admin only.
            (
                "read user: self",
                Action::ReadUser { target: me() },
                "UUUUU AAAAA AAAAA",
            ),
            (
                "read user: other",
                Action::ReadUser {
                    target: someone_else(),
                },
                "UUUUU FFFFF AAAAA",
            ),
            ("lookup users", Action::LookupUsers, "UUUUU FFFFF AAAAA"),
            (
                "create category",
                Action::CreateCategory,
                "UUUUU FFFFF AAAAA",
            ),
            (
                "operator status",
                Action::ReadOperatorStatus,
                "UUUUU FFFFF AAAAA",
            ),
            // A published event.
            (
                "published: read",
                on_event(Op::Read, true),
                "AAAAA AAAAA AAAAA",
            ),
            (
                "published: read ticket classes",
                on_event(Op::ReadTicketClasses, true),
                "AAAAA AAAAA AAAAA",
            ),
            (
                "published: join waitroom",
                on_event(Op::JoinWaitroom, true),
                "UUUUU AAAAA AAAAA",
            ),
            (
                "published: waitroom session",
                on_event(Op::UseWaitroomSession, true),
                "UUUUU AAAAA AAAAA",
            ),
            (
                "published: place order",
                on_event(Op::PlaceOrder, true),
                "UUUUU AAAAA AAAAA",
            ),
            (
                "published: read roles",
                on_event(Op::ReadRoles, true),
                "UUUUU FFAAA AAAAA",
            ),
            (
                "published: read orders",
                on_event(Op::ReadOrders, true),
                "UUUUU FFAAA AAAAA",
            ),
            (
                "published: read log",
                on_event(Op::ReadLog, true),
                "UUUUU FFAAA AAAAA",
            ),
            (
                "published: update",
                on_event(Op::Update, true),
                "UUUUU FFFAA FFFAA",
            ),
            (
                "published: configure",
                on_event(Op::Configure, true),
                "UUUUU FFFAA FFFAA",
            ),
            (
                "published: create ticket class",
                on_event(Op::CreateTicketClass, true),
                "UUUUU FFFAA FFFAA",
            ),
            (
                "published: update ticket class",
                on_event(Op::UpdateTicketClass, true),
                "UUUUU FFFAA FFFAA",
            ),
            (
                "published: publish",
                on_event(Op::Publish, true),
                "UUUUU FFFFA FFFFA",
            ),
            (
                "published: manage roles",
                on_event(Op::ManageRoles, true),
                "UUUUU FFFFA FFFFA",
            ),
            (
                "published: cancel",
                on_event(Op::Cancel, true),
                "UUUUU FFFFA AAAAA",
            ),
            (
                "published: approve",
                on_event(Op::Approve, true),
                "UUUUU FFFFF AAAAA",
            ),
            // An event not visible to the public: hidden from signed-in users without a role.
            (
                "unpublished: read",
                on_event(Op::Read, false),
                "NNNNN NAAAA AAAAA",
            ),
            (
                "unpublished: read ticket classes",
                on_event(Op::ReadTicketClasses, false),
                "NNNNN NAAAA AAAAA",
            ),
            (
                "unpublished: join waitroom",
                on_event(Op::JoinWaitroom, false),
                "UUUUU NAAAA AAAAA",
            ),
            (
                "unpublished: waitroom session",
                on_event(Op::UseWaitroomSession, false),
                "UUUUU NAAAA AAAAA",
            ),
            (
                "unpublished: place order",
                on_event(Op::PlaceOrder, false),
                "UUUUU NAAAA AAAAA",
            ),
            (
                "unpublished: read roles",
                on_event(Op::ReadRoles, false),
                "UUUUU NFAAA AAAAA",
            ),
            (
                "unpublished: read orders",
                on_event(Op::ReadOrders, false),
                "UUUUU NFAAA AAAAA",
            ),
            (
                "unpublished: read log",
                on_event(Op::ReadLog, false),
                "UUUUU NFAAA AAAAA",
            ),
            (
                "unpublished: update",
                on_event(Op::Update, false),
                "UUUUU NFFAA FFFAA",
            ),
            (
                "unpublished: configure",
                on_event(Op::Configure, false),
                "UUUUU NFFAA FFFAA",
            ),
            (
                "unpublished: create ticket class",
                on_event(Op::CreateTicketClass, false),
                "UUUUU NFFAA FFFAA",
            ),
            (
                "unpublished: update ticket class",
                on_event(Op::UpdateTicketClass, false),
                "UUUUU NFFAA FFFAA",
            ),
            (
                "unpublished: publish",
                on_event(Op::Publish, false),
                "UUUUU NFFFA FFFFA",
            ),
            (
                "unpublished: manage roles",
                on_event(Op::ManageRoles, false),
                "UUUUU NFFFA FFFFA",
            ),
            (
                "unpublished: cancel",
                on_event(Op::Cancel, false),
                "UUUUU NFFFA AAAAA",
            ),
            (
                "unpublished: approve",
                on_event(Op::Approve, false),
                "UUUUU NFFFF AAAAA",
            ),
            // The door.
            (
                "published: check in",
                on_event(Op::CheckIn, true),
                "UUUUU FAFAA FAFAA",
            ),
            (
                "unpublished: check in",
                on_event(Op::CheckIn, false),
                "UUUUU NAFAA FAFAA",
            ),
            (
                "published: read check-in stats",
                on_event(Op::ReadCheckInStats, true),
                "UUUUU FAAAA AAAAA",
            ),
            (
                "unpublished: read check-in stats",
                on_event(Op::ReadCheckInStats, false),
                "UUUUU NAAAA AAAAA",
            ),
            // Tickets: the role is the actor's role on the ticket's event.
            (
                "list own tickets",
                Action::ListOwnTickets,
                "UUUUU AAAAA AAAAA",
            ),
            (
                "ticket public key",
                Action::ReadTicketPublicKey,
                "AAAAA AAAAA AAAAA",
            ),
            (
                "read ticket: own",
                Action::ReadTicket { owner: me() },
                "UUUUU AAAAA AAAAA",
            ),
            (
                "read ticket: other's",
                Action::ReadTicket {
                    owner: someone_else(),
                },
                "UUUUU NAAAA AAAAA",
            ),
            // Orders: the role is the actor's role on the order's event.
            (
                "read order: own",
                Action::ReadOrder { owner: me() },
                "UUUUU AAAAA AAAAA",
            ),
            (
                "read order: other's",
                Action::ReadOrder {
                    owner: someone_else(),
                },
                "UUUUU NNAAA AAAAA",
            ),
            (
                "cancel order: own",
                Action::CancelOrder { owner: me() },
                "UUUUU AAAAA AAAAA",
            ),
            (
                "cancel order: other's",
                Action::CancelOrder {
                    owner: someone_else(),
                },
                "UUUUU NNFFF FFFFF",
            ),
        ]
    }

    fn letter(decision: Decision) -> char {
        match decision {
            Decision::Allow => 'A',
            Decision::Deny(DenyReason::Unauthenticated) => 'U',
            Decision::Deny(DenyReason::Forbidden) => 'F',
            Decision::Deny(DenyReason::NotFound) => 'N',
        }
    }

    /// Adding a variant to `Action` breaks this match, which sends the author to the table.
    fn covered_by_table(action: &Action) -> bool {
        match action {
            Action::Register
            | Action::Login
            | Action::VerifyEmail
            | Action::ReadSelf
            | Action::UpdateSelf
            | Action::DeleteSelf
            | Action::ReadUser { .. }
            | Action::LookupUsers
            | Action::ListCategories
            | Action::CreateCategory
            | Action::CreateOrganizer
            | Action::ReadOrganizer
            | Action::ListPublishedEvents
            | Action::ListMine
            | Action::CreateEvent
            | Action::OnEvent { .. }
            | Action::ListOwnOrders
            | Action::ReadOrder { .. }
            | Action::CancelOrder { .. }
            | Action::ReadOperatorStatus
            | Action::ReadHealth
            | Action::ReadApiDocs
            | Action::ReadDevMailbox
            | Action::PaymentCallback
            | Action::ListOwnTickets
            | Action::ReadTicket { .. }
            | Action::ReadTicketPublicKey => true,
        }
    }

    #[test]
    fn every_actor_role_and_action_gets_the_decision_in_the_table() {
        let columns = columns();
        let mut mismatches = Vec::new();
        for (label, action, expected) in table() {
            assert!(covered_by_table(&action));
            let expected: Vec<char> = expected.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(expected.len(), columns.len(), "row {label}");
            let actual: Vec<char> = columns
                .iter()
                .map(|(actor, role)| letter(authorize(actor, *role, &action)))
                .collect();
            if actual != expected {
                mismatches.push(format!(
                    "{label}: expected {} got {}",
                    expected.iter().collect::<String>(),
                    actual.iter().collect::<String>()
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn the_table_has_every_event_op_both_published_and_not() {
        let rows = table();
        for op in EventOp::ALL {
            for published in [true, false] {
                let action = on_event(op, published);
                assert_eq!(
                    rows.iter().filter(|(_, a, _)| *a == action).count(),
                    1,
                    "{op:?} published={published}"
                );
            }
        }
    }

    #[test]
    fn event_op_all_lists_every_op_once() {
        // A new op breaks this match; its ordinal must then appear in ALL.
        fn ordinal(op: EventOp) -> usize {
            match op {
                EventOp::Read => 0,
                EventOp::ReadTicketClasses => 1,
                EventOp::Update => 2,
                EventOp::Configure => 3,
                EventOp::Approve => 4,
                EventOp::Publish => 5,
                EventOp::Cancel => 6,
                EventOp::ReadRoles => 7,
                EventOp::ManageRoles => 8,
                EventOp::CreateTicketClass => 9,
                EventOp::UpdateTicketClass => 10,
                EventOp::ReadOrders => 11,
                EventOp::ReadLog => 12,
                EventOp::JoinWaitroom => 13,
                EventOp::UseWaitroomSession => 14,
                EventOp::PlaceOrder => 15,
                EventOp::CheckIn => 16,
                EventOp::ReadCheckInStats => 17,
            }
        }
        for (index, op) in EventOp::ALL.into_iter().enumerate() {
            assert_eq!(ordinal(op), index);
        }
    }

    #[test]
    fn table_labels_are_unique() {
        let mut labels: Vec<&str> = table().iter().map(|(label, _, _)| *label).collect();
        let count = labels.len();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), count);
    }

    #[test]
    fn a_higher_role_or_platform_admin_never_loses_a_right() {
        use EventRole::{Admin, Editor, Staff, Viewer};
        // Viewer → editor → admin is a ladder; staff is beside it, below the editor.
        let ladder = [
            (None, Some(Staff)),
            (None, Some(Viewer)),
            (Some(Viewer), Some(Editor)),
            (Some(Staff), Some(Editor)),
            (Some(Editor), Some(Admin)),
        ];
        for (label, action, _) in table() {
            for platform_admin in [false, true] {
                let actor = Actor::User {
                    id: me(),
                    platform_admin,
                };
                for (lower, higher) in ladder {
                    assert!(
                        !authorize(&actor, lower, &action).is_allowed()
                            || authorize(&actor, higher, &action).is_allowed(),
                        "{label}: {higher:?} loses a right of {lower:?}"
                    );
                }
            }
            for role in [None, Some(Staff), Some(Viewer), Some(Admin)] {
                let user = Actor::User {
                    id: me(),
                    platform_admin: false,
                };
                let admin = Actor::User {
                    id: me(),
                    platform_admin: true,
                };
                assert!(
                    !authorize(&user, role, &action).is_allowed()
                        || authorize(&admin, role, &action).is_allowed(),
                    "{label}: platform admin loses a right"
                );
            }
        }
    }

    #[test]
    fn staff_reads_the_event_and_checks_tickets_in_nothing_else() {
        let staff = Actor::User {
            id: me(),
            platform_admin: false,
        };
        for op in EventOp::ALL {
            for published in [true, false] {
                let allowed = authorize(&staff, Some(EventRole::Staff), &on_event(op, published))
                    .is_allowed();
                // What any signed-in fan may do on a published event, plus the door's work.
                let expected = matches!(
                    op,
                    EventOp::Read
                        | EventOp::ReadTicketClasses
                        | EventOp::JoinWaitroom
                        | EventOp::UseWaitroomSession
                        | EventOp::PlaceOrder
                        | EventOp::CheckIn
                        | EventOp::ReadCheckInStats
                );
                assert_eq!(allowed, expected, "{op:?} published={published}");
            }
        }
        let others_order = Action::ReadOrder {
            owner: someone_else(),
        };
        assert_eq!(
            authorize(&staff, Some(EventRole::Staff), &others_order),
            Decision::Deny(DenyReason::NotFound)
        );
        let others_ticket = Action::ReadTicket {
            owner: someone_else(),
        };
        assert!(authorize(&staff, Some(EventRole::Staff), &others_ticket).is_allowed());
    }

    #[test]
    fn only_unpublished_events_and_other_peoples_orders_answer_not_found() {
        for (label, action, _) in table() {
            let may_hide = matches!(
                action,
                Action::OnEvent {
                    published: false,
                    ..
                } | Action::ReadOrder { .. }
                    | Action::CancelOrder { .. }
                    | Action::ReadTicket { .. }
            );
            for (actor, role) in columns() {
                if authorize(&actor, role, &action) == Decision::Deny(DenyReason::NotFound) {
                    assert!(may_hide, "{label}");
                }
            }
        }
    }

    #[test]
    fn a_viewer_changes_nothing() {
        let viewer = Actor::User {
            id: me(),
            platform_admin: false,
        };
        let changes = [
            EventOp::Update,
            EventOp::Configure,
            EventOp::Approve,
            EventOp::Publish,
            EventOp::Cancel,
            EventOp::ManageRoles,
            EventOp::CreateTicketClass,
            EventOp::UpdateTicketClass,
            EventOp::CheckIn,
        ];
        for op in changes {
            for published in [true, false] {
                assert_eq!(
                    authorize(&viewer, Some(EventRole::Viewer), &on_event(op, published)),
                    Decision::Deny(DenyReason::Forbidden),
                    "{op:?}"
                );
            }
        }
    }

    #[test]
    fn requires_user_matches_what_anonymous_callers_get() {
        for (label, action, _) in table() {
            let anonymous = authorize(&Actor::Anonymous, None, &action);
            assert_eq!(
                action.requires_user(),
                anonymous == Decision::Deny(DenyReason::Unauthenticated),
                "{label}"
            );
        }
    }

    #[test]
    fn deny_reasons_map_to_the_api_codes() {
        assert_eq!(DenyReason::Unauthenticated.code(), "UNAUTHENTICATED");
        assert_eq!(DenyReason::Unauthenticated.http_status(), 401);
        assert_eq!(DenyReason::Forbidden.code(), "FORBIDDEN");
        assert_eq!(DenyReason::Forbidden.http_status(), 403);
        assert_eq!(DenyReason::NotFound.code(), "NOT_FOUND");
        assert_eq!(DenyReason::NotFound.http_status(), 404);
        assert_eq!(Decision::Allow.into_result(), Ok(()));
        assert_eq!(
            Decision::Deny(DenyReason::NotFound).into_result(),
            Err(DenyReason::NotFound)
        );
    }

    #[test]
    fn roles_parse_from_the_api_names() {
        assert_eq!(EventRole::parse("admin"), Ok(EventRole::Admin));
        assert_eq!(EventRole::parse("staff"), Ok(EventRole::Staff));
        assert_eq!(EventRole::parse(" viewer "), Ok(EventRole::Viewer));
        assert!(EventRole::parse("Admin").is_err());
        assert!(EventRole::parse("owner").is_err());
        assert_eq!(
            serde_json::to_string(&EventRole::Editor).ok().as_deref(),
            Some("\"editor\"")
        );
    }

    #[test]
    fn the_last_admin_cannot_be_removed_or_demoted() {
        use EventRole::{Admin, Editor, Viewer};
        assert_eq!(check_role_change(1, Some(Admin), None), Err(LastAdmin));
        assert_eq!(
            check_role_change(1, Some(Admin), Some(Viewer)),
            Err(LastAdmin)
        );
        assert_eq!(LastAdmin.code(), "LAST_ADMIN");
        assert_eq!(check_role_change(2, Some(Admin), None), Ok(()));
        assert_eq!(check_role_change(1, Some(Admin), Some(Admin)), Ok(()));
        assert_eq!(check_role_change(1, Some(Editor), None), Ok(()));
        assert_eq!(check_role_change(1, None, Some(Admin)), Ok(()));
        assert_eq!(check_role_change(1, Some(Viewer), Some(Editor)), Ok(()));
    }
}
