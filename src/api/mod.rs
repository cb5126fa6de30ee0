//! The HTTP API, one module per resource. This file is the route table and the dispatcher.

mod auth;
mod catalogue;
mod dev;
mod docs;
mod event_log;
mod event_roles;
mod events;
mod health;
mod inventory_link;
mod ops;
mod orders;
mod pages;
mod payments;
mod refunds;
mod ticket_classes;
mod users;
mod waitroom;

use crate::http::{ApiResult, RequestContext, Routed};

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
    CreateOrder,
    ListMyOrders,
    GetOrder,
    CancelOrder,
    ListEventOrders,
    EventLog,
    PayosWebhook,
    VnpayIpn,
    ZalopayCallback,
    SandboxWebhook,
    PaymentReturn,
    SandboxPage,
    SandboxPay,
    SandboxDecline,
    WaitroomPage,
    WaitroomJoin,
    WaitroomSession,
    WaitroomLeave,
    WaitroomSocket,
    CheckoutPage,
    OrderPage,
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
    OpsEventStatus,
    RefundOrder,
    ListRefunds,
    ListEventRefunds,
    CompleteRefund,
    Reconcile,
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
    ("POST", "/api/orders", Endpoint::CreateOrder),
    ("GET", "/api/orders", Endpoint::ListMyOrders),
    ("GET", "/api/orders/{idOrCode}", Endpoint::GetOrder),
    ("POST", "/api/orders/{id}/cancel", Endpoint::CancelOrder),
    ("GET", "/api/events/{id}/orders", Endpoint::ListEventOrders),
    ("GET", "/api/events/{id}/log", Endpoint::EventLog),
    (
        "POST",
        "/api/payments/webhooks/payos",
        Endpoint::PayosWebhook,
    ),
    ("GET", "/api/payments/webhooks/vnpay", Endpoint::VnpayIpn),
    (
        "POST",
        "/api/payments/webhooks/zalopay",
        Endpoint::ZalopayCallback,
    ),
    (
        "POST",
        "/api/payments/webhooks/sandbox",
        Endpoint::SandboxWebhook,
    ),
    (
        "GET",
        "/api/payments/return/{provider}",
        Endpoint::PaymentReturn,
    ),
    (
        "GET",
        "/sandbox/checkout/{paymentId}",
        Endpoint::SandboxPage,
    ),
    (
        "POST",
        "/sandbox/checkout/{paymentId}/pay",
        Endpoint::SandboxPay,
    ),
    (
        "POST",
        "/sandbox/checkout/{paymentId}/decline",
        Endpoint::SandboxDecline,
    ),
    ("GET", "/events/{id}/waitroom", Endpoint::WaitroomPage),
    (
        "POST",
        "/api/events/{id}/waitroom/join",
        Endpoint::WaitroomJoin,
    ),
    (
        "GET",
        "/api/events/{id}/waitroom/session",
        Endpoint::WaitroomSession,
    ),
    (
        "DELETE",
        "/api/events/{id}/waitroom/session",
        Endpoint::WaitroomLeave,
    ),
    (
        "GET",
        "/api/events/{id}/waitroom/ws",
        Endpoint::WaitroomSocket,
    ),
    ("GET", "/events/{id}/checkout", Endpoint::CheckoutPage),
    ("GET", "/orders/{code}", Endpoint::OrderPage),
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
    (
        "GET",
        "/api/ops/events/{id}/status",
        Endpoint::OpsEventStatus,
    ),
    // Refunds and reconciliation.
    ("POST", "/api/orders/{id}/refund", Endpoint::RefundOrder),
    ("GET", "/api/refunds", Endpoint::ListRefunds),
    (
        "GET",
        "/api/events/{id}/refunds",
        Endpoint::ListEventRefunds,
    ),
    (
        "POST",
        "/api/refunds/{id}/complete",
        Endpoint::CompleteRefund,
    ),
    ("POST", "/api/ops/reconcile", Endpoint::Reconcile),
];

impl Routed for Endpoint {
    fn routes() -> &'static [(&'static str, &'static str, Self)] {
        ROUTES
    }

    fn label(self) -> &'static str {
        Endpoint::label(self)
    }

    fn answers_when_misconfigured(self) -> bool {
        self == Endpoint::Health
    }

    async fn dispatch(self, rc: &mut RequestContext) -> ApiResult {
        dispatch(self, rc).await
    }
}

async fn dispatch(endpoint: Endpoint, rc: &mut RequestContext) -> ApiResult {
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
        Endpoint::CreateOrder => orders::create(rc).await,
        Endpoint::ListMyOrders => orders::list_mine(rc).await,
        Endpoint::GetOrder => orders::get(rc).await,
        Endpoint::CancelOrder => orders::cancel(rc).await,
        Endpoint::ListEventOrders => orders::list_for_event(rc).await,
        Endpoint::EventLog => event_log::list(rc).await,
        Endpoint::PayosWebhook => payments::payos_webhook(rc).await,
        Endpoint::VnpayIpn => payments::vnpay_ipn(rc).await,
        Endpoint::ZalopayCallback => payments::zalopay_callback(rc).await,
        Endpoint::SandboxWebhook => payments::sandbox_webhook(rc).await,
        Endpoint::PaymentReturn => payments::provider_return(rc).await,
        Endpoint::SandboxPage => payments::sandbox_page(rc).await,
        Endpoint::SandboxPay => payments::sandbox_pay(rc).await,
        Endpoint::SandboxDecline => payments::sandbox_decline(rc).await,
        Endpoint::WaitroomJoin => waitroom::join(rc).await,
        Endpoint::WaitroomSession => waitroom::session(rc).await,
        Endpoint::WaitroomLeave => waitroom::leave(rc).await,
        Endpoint::WaitroomSocket => waitroom::socket(rc).await,
        Endpoint::WaitroomPage => pages::page(rc, "/waitroom.html").await,
        Endpoint::CheckoutPage => pages::page(rc, "/checkout.html").await,
        Endpoint::OrderPage => pages::page(rc, "/order.html").await,
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
        Endpoint::OpsEventStatus => ops::event_status(rc).await,
        Endpoint::RefundOrder => refunds::request(rc).await,
        Endpoint::ListRefunds => refunds::list_all(rc).await,
        Endpoint::ListEventRefunds => refunds::list_for_event(rc).await,
        Endpoint::CompleteRefund => refunds::complete(rc).await,
        Endpoint::Reconcile => refunds::reconcile(rc).await,
    }
}
