//! The HTTP API, one module per resource. This file is the route table and the dispatcher.

mod auth;
mod dev;
mod docs;
mod health;
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
    }
}
