//! The OpenAPI document, generated from the handlers' annotations and the Rust types, and the
//! Swagger UI page that renders it from the Worker's own static assets (no CDN).

use std::cell::OnceCell;

use utoipa::OpenApi;
use worker::Response;

use crate::http::{ApiError, ApiResult, RequestContext};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TicketBottle Edge API",
        description = "Fair, never-oversold ticket on-sales on Cloudflare's edge.",
        license(name = "MIT")
    ),
    paths(
        super::health::get,
        super::auth::register,
        super::auth::login,
        super::auth::verify_email,
        super::users::get_me,
        super::users::patch_me,
        super::users::delete_me,
        super::users::get_by_id,
        super::users::lookup,
        super::dev::mailbox,
        super::catalogue::list_categories,
        super::catalogue::create_category,
        super::catalogue::create_organizer,
        super::catalogue::get_organizer,
        super::events::create,
        super::events::list,
        super::events::get,
        super::events::update,
        super::events::configure,
        super::events::approve,
        super::events::publish,
        super::events::cancel,
        super::event_roles::list,
        super::event_roles::put,
        super::event_roles::delete,
        super::ticket_classes::list,
        super::ticket_classes::create,
        super::ticket_classes::update,
    ),
    components(schemas(crate::http::error::Problem, crate::http::error::FieldProblem)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and dependency checks"),
        (name = "auth", description = "Registration, login, email verification"),
        (name = "users", description = "Profiles and platform-admin lookup"),
        (name = "catalogue", description = "Categories and organizers"),
        (name = "events", description = "Events, their sale terms, roles and status workflow"),
        (name = "ticket classes", description = "Ticket class definitions with live counters"),
        (name = "development", description = "Only when ENVIRONMENT=development"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the secured endpoints refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

thread_local! {
    // The document only depends on the code, so it is rendered once per isolate.
    static DOCUMENT: OnceCell<String> = const { OnceCell::new() };
}

pub fn openapi_json(_rc: &mut RequestContext) -> ApiResult {
    let body = DOCUMENT.with(|cell| {
        cell.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
            .clone()
    });
    let mut response = Response::ok(body)?;
    response
        .headers_mut()
        .set("Content-Type", "application/json; charset=utf-8")?;
    Ok(response)
}

/// Serves a page from the static assets under another path (the page reads its ids from
/// `location`), so pages and API share one origin and one set of security headers.
pub async fn static_page(rc: &RequestContext, asset_path: &str) -> ApiResult {
    let assets = rc.env.assets("ASSETS")?;
    let response = assets
        .fetch(format!("https://assets.local{asset_path}"), None)
        .await?;
    if response.status_code() == 404 {
        return Err(ApiError::NotFound);
    }
    Ok(response)
}

pub async fn swagger_ui(rc: &mut RequestContext) -> ApiResult {
    static_page(rc, "/docs/index.html").await
}
