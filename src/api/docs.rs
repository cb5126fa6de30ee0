//! The OpenAPI document, generated from the handlers' annotations and the Rust types, and the
//! Swagger UI page that renders it from the Worker's own static assets (no CDN).

use std::cell::OnceCell;

use utoipa::OpenApi;
use worker::Response;

use crate::http::{ApiResult, RequestContext};

/// The document's `ApiDoc`, with one path per handler of `endpoints!`'s `openapi` block, which
/// invokes this with that list (so `ApiDoc` is defined in `api`, where those paths resolve).
macro_rules! openapi_document {
    ($($module:ident::$handler:ident),*) => {
        // `modifiers(...)` takes bare names only.
        use docs::{BearerAuth, ProblemMediaType, RefusedToken};

        #[derive(utoipa::OpenApi)]
        #[openapi(
            info(
                title = "TicketBottle Edge API",
                description = "Fair, never-oversold ticket on-sales on Cloudflare's edge.",
                license(name = "MIT")
            ),
            paths($($module::$handler),*),
            components(schemas(crate::error::Problem, crate::error::FieldProblem)),
            modifiers(&BearerAuth, &RefusedToken, &ProblemMediaType),
            tags(
                (name = "health", description = "Liveness and dependency checks"),
                (name = "auth", description = "Registration, login, email verification"),
                (name = "users", description = "Profiles and platform-admin lookup"),
                (name = "waitroom", description = "The fair queue in front of an on-sale"),
                (name = "orders", description = "The checkout saga and order queries"),
                (name = "payments", description = "Provider webhooks, returns and the sandbox provider"),
                (name = "catalogue", description = "Categories and organizers"),
                (name = "events", description = "Events, their sale terms, roles and status workflow"),
                (name = "ticket classes", description = "Ticket class definitions with live counters"),
                (name = "operations", description = "Operator views for platform admins during an on-sale"),
                (name = "refunds", description = "Money back: refund requests, their provider steps, manual completion"),
                (name = "development", description = "Only when ENVIRONMENT=development (or enabled for staging)"),
            )
        )]
        pub struct ApiDoc;
    };
}

/// Declares the `bearer` scheme the secured endpoints refer to.
pub(super) struct BearerAuth;

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

/// Every operation of the document, for the modifiers below that adjust them all.
fn operations(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// A bearer token that is sent is checked, also where none is needed: a forged, expired or
/// revoked one (logout everywhere, a password change, a deleted account) is 401
/// `UNAUTHENTICATED` on every operation, so the document says so wherever an annotation names
/// no 401 of its own. (The pages drop such a token and ask again without it.)
pub(super) struct RefusedToken;

impl utoipa::Modify for RefusedToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let refused = ResponseBuilder::new()
            .description(
                "UNAUTHENTICATED: the request carried a bearer token that is forged, expired or \
                 revoked (send none for a public read)",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for operation in operations(openapi) {
            operation
                .responses
                .responses
                .entry("401".to_string())
                .or_insert_with(|| refused.clone().into());
        }
    }
}

/// Problem details are served as `application/problem+json` (RFC 9457), while `body = Problem`
/// in an annotation documents `application/json`: every such response is re-labelled here, so
/// the document says what the wire carries.
pub(super) struct ProblemMediaType;

impl utoipa::Modify for ProblemMediaType {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        const JSON: &str = "application/json";
        const PROBLEM: &str = "application/problem+json";
        for operation in operations(openapi) {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let is_problem = response.content.get(JSON).is_some_and(|c| {
                    matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
                });
                if is_problem {
                    if let Some(content) = response.content.shift_remove(JSON) {
                        response.content.insert(PROBLEM.to_string(), content);
                    }
                }
            }
        }
    }
}

thread_local! {
    // The document only depends on the code, so it is rendered once per isolate.
    static DOCUMENT: OnceCell<String> = const { OnceCell::new() };
}

pub async fn openapi_json(_rc: &mut RequestContext) -> ApiResult {
    let body = DOCUMENT.with(|cell| {
        cell.get_or_init(|| {
            super::ApiDoc::openapi()
                .to_json()
                .unwrap_or_else(|_| "{}".into())
        })
        .clone()
    });
    let mut response = Response::ok(body)?;
    response
        .headers_mut()
        .set("Content-Type", "application/json; charset=utf-8")?;
    Ok(response)
}

pub async fn swagger_ui(rc: &mut RequestContext) -> ApiResult {
    super::pages::page(rc, "/docs/index.html").await
}
