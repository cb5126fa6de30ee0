//! `GET /api/health`: liveness, a real round trip to D1, and the deployment's configuration.
//!
//! A misconfigured deployment (see `crate::config`) refuses every other request with a 500
//! `SERVICE_MISCONFIGURED` problem. Health answers too, with the same status and code, so
//! uptime checks see the 500; a platform admin's request also gets the list of what is wrong
//! (setting names, never values) so the operator checking `/api/health` after a deploy sees it
//! at once. Anonymous callers do not: the list tells an attacker which defence is down.

use serde::Serialize;
use utoipa::ToSchema;
use worker::Response;

use crate::domain::access::Actor;
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};

#[derive(Serialize, ToSchema)]
pub struct HealthChecks {
    /// `ok` when a query against D1 succeeded, `error` otherwise.
    pub d1: String,
    /// `ok`, or `error` when the deployment is misconfigured.
    pub config: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a dependency failed.
    pub status: String,
    pub version: String,
    /// `development`, `staging` or `production` (`ENVIRONMENT`).
    pub environment: String,
    pub checks: HealthChecks,
}

/// The 500 problem of a misconfigured deployment, with the health fields as extensions.
#[derive(Serialize, ToSchema)]
pub struct MisconfiguredHealth {
    #[serde(flatten)]
    pub problem: crate::error::Problem,
    /// What is wrong, by setting name (`JWT_SECRET is missing`, ...); for platform admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misconfiguration: Option<Vec<String>>,
    pub version: String,
    pub environment: String,
    pub checks: HealthChecks,
}

#[utoipa::path(operation_id = "get_health", 
    get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "The Worker and D1 answer and the configuration is complete", body = Health),
        (status = 500, description = "SERVICE_MISCONFIGURED: a required secret is missing or a development-only feature is on; every other request is refused until it is fixed; `misconfiguration` is listed for platform admins only", body = MisconfiguredHealth, content_type = "application/problem+json"),
        (status = 503, description = "D1 did not answer", body = Health),
    )
)]
pub async fn get(rc: &mut RequestContext) -> ApiResult {
    let d1_ok = match rc.env.d1("DB") {
        Ok(db) => crate::store::d1::answers(&db).await,
        Err(_) => false,
    };
    let settings = &rc.settings;
    let checks = HealthChecks {
        d1: if d1_ok { "ok" } else { "error" }.into(),
        config: if settings.misconfiguration.is_empty() {
            "ok"
        } else {
            "error"
        }
        .into(),
    };
    let version = env!("CARGO_PKG_VERSION").to_string();
    let environment = settings.environment.as_str().to_string();
    if !settings.misconfiguration.is_empty() {
        let error = ApiError::Misconfigured(settings.misconfiguration.join("; "));
        rc.annotate("code", error.code());
        // The token is checked with whatever key is configured, weak or not: the worst a forged
        // admin token gets here is the list of setting names, which the log lines carry anyway.
        let admin = matches!(
            rc.actor(),
            Ok(Actor::User {
                platform_admin: true,
                ..
            })
        );
        let body = MisconfiguredHealth {
            problem: error.to_problem(),
            misconfiguration: admin.then(|| settings.misconfiguration.clone()),
            version,
            environment,
            checks,
        };
        let mut response = Response::from_json(&body)?.with_status(error.status());
        response
            .headers_mut()
            .set("Content-Type", "application/problem+json")?;
        return Ok(response);
    }
    let body = Health {
        status: if d1_ok { "ok" } else { "degraded" }.into(),
        version,
        environment,
        checks,
    };
    json_response(if d1_ok { 200 } else { 503 }, &body)
}
