//! The HTTP API, one module per resource. This file is the route table and the dispatcher.

mod auth;
mod catalogue;
mod dev;
mod docs;
mod event_roles;
mod events;
mod health;
mod inventory_link;
mod ticket_classes;
mod users;

use crate::http::{ApiResult, RequestContext};

/// Every endpoint the Worker serves. `ROUTES` maps method and path pattern to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    OpenApi,
    Docs,
    Register,
    Login,
    VerifyEmail,
    GetMe,
    PatchMe,
    DeleteMe,
    GetUser,
    LookupUsers,
    DevMailbox,
    ListCategories,
    CreateCategory,
    CreateOrganizer,
    GetOrganizer,
    ListEvents,
    CreateEvent,
    GetEvent,
    UpdateEvent,
    ConfigureEvent,
    ApproveEvent,
    PublishEvent,
    CancelEvent,
    ListEventRoles,
    PutEventRole,
    DeleteEventRole,
    ListTicketClasses,
    CreateTicketClass,
    UpdateTicketClass,
}

impl Endpoint {
    /// The route pattern, used as a low-cardinality label in logs.
    pub fn label(self) -> &'static str {
        ROUTES
            .iter()
            .find(|(_, _, e)| *e == self)
            .map(|(_, p, _)| *p)
            .unwrap_or("unknown")
    }
}

/// Method, path pattern (`{name}` captures one segment) and endpoint. Literal segments win
/// over captures because they are listed first (`/api/users/me` before `/api/users/{id}`).
pub const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/api/health", Endpoint::Health),
    ("GET", "/api/openapi.json", Endpoint::OpenApi),
    ("GET", "/api/docs", Endpoint::Docs),
    ("POST", "/api/auth/register", Endpoint::Register),
    ("POST", "/api/auth/login", Endpoint::Login),
    ("POST", "/api/auth/verify-email", Endpoint::VerifyEmail),
    ("GET", "/api/users/me", Endpoint::GetMe),
    ("PATCH", "/api/users/me", Endpoint::PatchMe),
    ("DELETE", "/api/users/me", Endpoint::DeleteMe),
    ("GET", "/api/users/{id}", Endpoint::GetUser),
    ("GET", "/api/users", Endpoint::LookupUsers),
    ("GET", "/api/dev/mailbox", Endpoint::DevMailbox),
    ("GET", "/api/categories", Endpoint::ListCategories),
    ("POST", "/api/categories", Endpoint::CreateCategory),
    ("POST", "/api/organizers", Endpoint::CreateOrganizer),
    ("GET", "/api/organizers/{id}", Endpoint::GetOrganizer),
    ("GET", "/api/events", Endpoint::ListEvents),
    ("POST", "/api/events", Endpoint::CreateEvent),
    ("GET", "/api/events/{id}", Endpoint::GetEvent),
    ("PATCH", "/api/events/{id}", Endpoint::UpdateEvent),
    ("PUT", "/api/events/{id}/config", Endpoint::ConfigureEvent),
    ("POST", "/api/events/{id}/approve", Endpoint::ApproveEvent),
    ("POST", "/api/events/{id}/publish", Endpoint::PublishEvent),
    ("POST", "/api/events/{id}/cancel", Endpoint::CancelEvent),
    ("GET", "/api/events/{id}/roles", Endpoint::ListEventRoles),
    (
        "PUT",
        "/api/events/{id}/roles/{userId}",
        Endpoint::PutEventRole,
    ),
    (
        "DELETE",
        "/api/events/{id}/roles/{userId}",
        Endpoint::DeleteEventRole,
    ),
    (
        "GET",
        "/api/events/{id}/ticket-classes",
        Endpoint::ListTicketClasses,
    ),
    (
        "POST",
        "/api/events/{id}/ticket-classes",
        Endpoint::CreateTicketClass,
    ),
    (
        "PATCH",
        "/api/events/{id}/ticket-classes/{ticketClassId}",
        Endpoint::UpdateTicketClass,
    ),
];

pub async fn dispatch(endpoint: Endpoint, rc: &mut RequestContext) -> ApiResult {
    match endpoint {
        Endpoint::Health => health::get(rc).await,
        Endpoint::OpenApi => docs::openapi_json(rc),
        Endpoint::Docs => docs::swagger_ui(rc).await,
        Endpoint::Register => auth::register(rc).await,
        Endpoint::Login => auth::login(rc).await,
        Endpoint::VerifyEmail => auth::verify_email(rc).await,
        Endpoint::GetMe => users::get_me(rc).await,
        Endpoint::PatchMe => users::patch_me(rc).await,
        Endpoint::DeleteMe => users::delete_me(rc).await,
        Endpoint::GetUser => users::get_by_id(rc).await,
        Endpoint::LookupUsers => users::lookup(rc).await,
        Endpoint::DevMailbox => dev::mailbox(rc).await,
        Endpoint::ListCategories => catalogue::list_categories(rc).await,
        Endpoint::CreateCategory => catalogue::create_category(rc).await,
        Endpoint::CreateOrganizer => catalogue::create_organizer(rc).await,
        Endpoint::GetOrganizer => catalogue::get_organizer(rc).await,
        Endpoint::ListEvents => events::list(rc).await,
        Endpoint::CreateEvent => events::create(rc).await,
        Endpoint::GetEvent => events::get(rc).await,
        Endpoint::UpdateEvent => events::update(rc).await,
        Endpoint::ConfigureEvent => events::configure(rc).await,
        Endpoint::ApproveEvent => events::approve(rc).await,
        Endpoint::PublishEvent => events::publish(rc).await,
        Endpoint::CancelEvent => events::cancel(rc).await,
        Endpoint::ListEventRoles => event_roles::list(rc).await,
        Endpoint::PutEventRole => event_roles::put(rc).await,
        Endpoint::DeleteEventRole => event_roles::delete(rc).await,
        Endpoint::ListTicketClasses => ticket_classes::list(rc).await,
        Endpoint::CreateTicketClass => ticket_classes::create(rc).await,
        Endpoint::UpdateTicketClass => ticket_classes::update(rc).await,
    }
}
