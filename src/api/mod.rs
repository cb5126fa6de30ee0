//! The HTTP API, one module per resource. This file is the route table and the dispatcher.

mod docs;
mod health;

use crate::http::{ApiResult, RequestContext};

/// Every endpoint the Worker serves. `ROUTES` maps method and path pattern to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    OpenApi,
    Docs,
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

/// Method, path pattern (`{name}` captures one segment) and endpoint.
pub const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/api/health", Endpoint::Health),
    ("GET", "/api/openapi.json", Endpoint::OpenApi),
    ("GET", "/api/docs", Endpoint::Docs),
];

pub async fn dispatch(endpoint: Endpoint, rc: &mut RequestContext) -> ApiResult {
    match endpoint {
        Endpoint::Health => health::get(rc).await,
        Endpoint::OpenApi => docs::openapi_json(rc),
        Endpoint::Docs => docs::swagger_ui(rc).await,
    }
}
