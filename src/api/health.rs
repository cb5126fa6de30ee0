//! `GET /api/health`: liveness plus a real round trip to D1.

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::{json_response, ApiResult, RequestContext};

#[derive(Serialize, ToSchema)]
pub struct HealthChecks {
    /// `ok` when a query against D1 succeeded, `error` otherwise.
    pub d1: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a dependency failed.
    pub status: String,
    pub version: String,
    pub checks: HealthChecks,
}

#[utoipa::path(operation_id = "get_health", 
    get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "The Worker and D1 answer", body = Health),
        (status = 503, description = "D1 did not answer", body = Health),
    )
)]
pub async fn get(rc: &mut RequestContext) -> ApiResult {
    let d1_ok = match rc.env.d1("DB") {
        Ok(db) => db
            .prepare("SELECT 1 AS ok")
            .first::<serde_json::Value>(Some("ok"))
            .await
            .map(|v| v.is_some())
            .unwrap_or(false),
        Err(_) => false,
    };
    let body = Health {
        status: if d1_ok { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        checks: HealthChecks {
            d1: if d1_ok { "ok" } else { "error" }.into(),
        },
    };
    json_response(if d1_ok { 200 } else { 503 }, &body)
}
