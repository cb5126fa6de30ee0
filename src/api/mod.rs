//! The HTTP API, one module per resource. This file declares every endpoint once, in
//! `endpoints!` below: its method, path and handler, and whether it is in the OpenAPI document.
//! The `Endpoint` enum, the route table, the log labels, the dispatch and the document's path
//! list are all generated from that one declaration; tests/runtime/routes.spec.ts checks it
//! against the document and the router the running Worker serves.

mod auth;
mod catalogue;
mod dev;
#[macro_use]
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
mod tickets;
mod users;
mod waitroom;

use crate::http::{ApiResult, RequestContext, Routed};

/// Turns the declaration below into the `Endpoint` enum, `ROUTES`, `Endpoint::label`, the
/// dispatch and the OpenAPI document (`docs::openapi_document!`). Three blocks, in table order:
/// - `openapi`: the API. Each handler carries `#[utoipa::path]` with the same method and path
///   (a handler without one does not compile; a different method or path fails routes.spec.ts).
/// - `not_in_openapi`: handlers deliberately left out of the document (the document itself, its
///   viewer, HTML pages rendered by a handler).
/// - `pages`: static HTML pages served from the Worker's assets, also not in the document.
///
/// The first route that matches a path wins, so within the table a pattern with a literal
/// segment comes before one with a capture in its place (`/api/users/me` before
/// `/api/users/{id}`); routes.spec.ts fails on a route an earlier one shadows.
macro_rules! endpoints {
    (
        openapi {
            $($api:ident: $api_method:ident $api_path:literal => $api_module:ident::$api_handler:ident,)*
        }
        not_in_openapi {
            $($plain:ident: $plain_method:ident $plain_path:literal => $plain_module:ident::$plain_handler:ident,)*
        }
        pages {
            $($page:ident: $page_method:ident $page_path:literal => $asset:literal,)*
        }
    ) => {
        /// Every endpoint the Worker serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Endpoint {
            $($api,)*
            $($plain,)*
            $($page,)*
        }

        /// Method, path pattern (`{name}` captures one segment) and endpoint; the first match wins.
        pub const ROUTES: &[(&str, &str, Endpoint)] = &[
            $((http_method!($api_method), $api_path, Endpoint::$api),)*
            $((http_method!($plain_method), $plain_path, Endpoint::$plain),)*
            $((http_method!($page_method), $page_path, Endpoint::$page),)*
        ];

        impl Endpoint {
            /// The route pattern, used as a low-cardinality label in logs.
            pub fn label(self) -> &'static str {
                match self {
                    $(Endpoint::$api => $api_path,)*
                    $(Endpoint::$plain => $plain_path,)*
                    $(Endpoint::$page => $page_path,)*
                }
            }
        }

        async fn dispatch(endpoint: Endpoint, rc: &mut RequestContext) -> ApiResult {
            match endpoint {
                $(Endpoint::$api => $api_module::$api_handler(rc).await,)*
                $(Endpoint::$plain => $plain_module::$plain_handler(rc).await,)*
                $(Endpoint::$page => pages::page(rc, $asset).await,)*
            }
        }

        openapi_document!($($api_module::$api_handler),*);
    };
}

/// The methods a route may declare; anything else does not compile.
macro_rules! http_method {
    (GET) => {
        "GET"
    };
    (POST) => {
        "POST"
    };
    (PUT) => {
        "PUT"
    };
    (PATCH) => {
        "PATCH"
    };
    (DELETE) => {
        "DELETE"
    };
}

endpoints! {
    openapi {
        Health:             GET     "/api/health"                                       => health::get,
        Register:           POST    "/api/auth/register"                                => auth::register,
        Login:              POST    "/api/auth/login"                                   => auth::login,
        LogoutAll:          POST    "/api/auth/logout-all"                              => auth::logout_all,
        VerifyEmail:        POST    "/api/auth/verify-email"                            => auth::verify_email,
        GetMe:              GET     "/api/users/me"                                     => users::get_me,
        PatchMe:            PATCH   "/api/users/me"                                     => users::patch_me,
        DeleteMe:           DELETE  "/api/users/me"                                     => users::delete_me,
        GetUser:            GET     "/api/users/{id}"                                   => users::get_by_id,
        LookupUsers:        GET     "/api/users"                                        => users::lookup,
        DevMailbox:         GET     "/api/dev/mailbox"                                  => dev::mailbox,
        DevForgetIsolate:   DELETE  "/api/dev/isolate-memory"                           => dev::forget_isolate_memory,
        CreateOrder:        POST    "/api/orders"                                       => orders::create,
        ListMyOrders:       GET     "/api/orders"                                       => orders::list_mine,
        GetOrder:           GET     "/api/orders/{idOrCode}"                            => orders::get,
        CancelOrder:        POST    "/api/orders/{id}/cancel"                           => orders::cancel,
        ListEventOrders:    GET     "/api/events/{id}/orders"                           => orders::list_for_event,
        EventLog:           GET     "/api/events/{id}/log"                              => event_log::list,
        PayosWebhook:       POST    "/api/payments/webhooks/payos"                      => payments::payos_webhook,
        VnpayIpn:           GET     "/api/payments/webhooks/vnpay"                      => payments::vnpay_ipn,
        ZalopayCallback:    POST    "/api/payments/webhooks/zalopay"                    => payments::zalopay_callback,
        SandboxWebhook:     POST    "/api/payments/webhooks/sandbox"                    => payments::sandbox_webhook,
        PaymentReturn:      GET     "/api/payments/return/{provider}"                   => payments::provider_return,
        SandboxPay:         POST    "/sandbox/checkout/{paymentId}/pay"                 => payments::sandbox_pay,
        SandboxDecline:     POST    "/sandbox/checkout/{paymentId}/decline"             => payments::sandbox_decline,
        WaitroomJoin:       POST    "/api/events/{id}/waitroom/join"                    => waitroom::join,
        WaitroomStatus:     GET     "/api/events/{id}/waitroom/status"                  => waitroom::status,
        WaitroomSession:    GET     "/api/events/{id}/waitroom/session"                 => waitroom::session,
        WaitroomLeave:      DELETE  "/api/events/{id}/waitroom/session"                 => waitroom::leave,
        WaitroomSocket:     GET     "/api/events/{id}/waitroom/ws"                      => waitroom::socket,
        ListCategories:     GET     "/api/categories"                                   => catalogue::list_categories,
        CreateCategory:     POST    "/api/categories"                                   => catalogue::create_category,
        CreateOrganizer:    POST    "/api/organizers"                                   => catalogue::create_organizer,
        GetOrganizer:       GET     "/api/organizers/{id}"                              => catalogue::get_organizer,
        ListEvents:         GET     "/api/events"                                       => events::list,
        CreateEvent:        POST    "/api/events"                                       => events::create,
        GetEvent:           GET     "/api/events/{id}"                                  => events::get,
        UpdateEvent:        PATCH   "/api/events/{id}"                                  => events::update,
        ConfigureEvent:     PUT     "/api/events/{id}/config"                           => events::configure,
        ApproveEvent:       POST    "/api/events/{id}/approve"                          => events::approve,
        PublishEvent:       POST    "/api/events/{id}/publish"                          => events::publish,
        CancelEvent:        POST    "/api/events/{id}/cancel"                           => events::cancel,
        ListEventRoles:     GET     "/api/events/{id}/roles"                            => event_roles::list,
        PutEventRole:       PUT     "/api/events/{id}/roles/{userId}"                   => event_roles::put,
        DeleteEventRole:    DELETE  "/api/events/{id}/roles/{userId}"                   => event_roles::delete,
        ListTicketClasses:  GET     "/api/events/{id}/ticket-classes"                   => ticket_classes::list,
        CreateTicketClass:  POST    "/api/events/{id}/ticket-classes"                   => ticket_classes::create,
        UpdateTicketClass:  PATCH   "/api/events/{id}/ticket-classes/{ticketClassId}"   => ticket_classes::update,
        OpsEventStatus:     GET     "/api/ops/events/{id}/status"                       => ops::event_status,
        ListMyTickets:      GET     "/api/tickets"                                      => tickets::list_mine,
        TicketPublicKey:    GET     "/api/tickets/public-key"                           => tickets::public_key,
        GetTicket:          GET     "/api/tickets/{id}"                                 => tickets::get,
        TicketQrSvg:        GET     "/api/tickets/{id}/qr.svg"                          => tickets::qr_image,
        CheckIn:            POST    "/api/events/{id}/check-ins"                        => tickets::check_in,
        CheckInStats:       GET     "/api/events/{id}/check-ins/stats"                  => tickets::check_in_stats,
        RefundOrder:        POST    "/api/orders/{id}/refund"                           => refunds::request,
        ListRefunds:        GET     "/api/refunds"                                      => refunds::list_all,
        ListEventRefunds:   GET     "/api/events/{id}/refunds"                          => refunds::list_for_event,
        CompleteRefund:     POST    "/api/refunds/{id}/complete"                        => refunds::complete,
        Reconcile:          POST    "/api/ops/reconcile"                                => refunds::reconcile,
    }
    not_in_openapi {
        OpenApi:            GET     "/api/openapi.json"                                 => docs::openapi_json,
        Docs:               GET     "/api/docs"                                         => docs::swagger_ui,
        SandboxPage:        GET     "/sandbox/checkout/{paymentId}"                     => payments::sandbox_page,
    }
    pages {
        WaitroomPage:       GET     "/events/{id}/waitroom"                             => "/waitroom.html",
        CheckoutPage:       GET     "/events/{id}/checkout"                             => "/checkout.html",
        OrderPage:          GET     "/orders/{code}"                                    => "/order.html",
        EventPage:          GET     "/events/{id}"                                      => "/event.html",
        OrganizerEventPage: GET     "/organizer/events/{id}"                            => "/organizer-event.html",
        LiveDashboardPage:  GET     "/organizer/events/{id}/live"                       => "/organizer-live.html",
        DoorPage:           GET     "/organizer/events/{id}/door"                       => "/organizer-door.html",
        TicketPage:         GET     "/tickets/{id}"                                     => "/ticket.html",
    }
}

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

    fn trusts_access_token(self) -> bool {
        matches!(
            self,
            Endpoint::WaitroomJoin | Endpoint::WaitroomSession | Endpoint::WaitroomLeave
        )
    }

    fn is_poll(self) -> bool {
        matches!(self, Endpoint::WaitroomSession | Endpoint::WaitroomStatus)
    }

    async fn dispatch(self, rc: &mut RequestContext) -> ApiResult {
        dispatch(self, rc).await
    }
}
