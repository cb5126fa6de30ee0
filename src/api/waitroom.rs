//! The waitroom endpoints: join, read or give up one's place, and the live WebSocket. The
//! event's object owns the queue; these handlers authenticate and authorize, then forward.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::access::{Action, Actor, EventOp, EventRole};
use crate::durable::client::EventHubClient;
use crate::durable::protocol::SessionView;
use crate::http::{json_response, ApiError, ApiResult, RequestContext};
use crate::store::checkout as catalogue;
use crate::store::d1;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSessionEnvelope {
    /// `{sessionId, eventId, status, position, queueLength, estimatedWaitSeconds, checkoutToken?, checkoutExpiresAt?}`
    #[schema(value_type = Object)]
    pub waitroom_session: SessionView,
}

/// The caller, checked against the event: it exists, is visible to them, and sells through
/// its waitroom. Returns the user id and the event's object.
async fn enter(
    rc: &RequestContext,
    actor: Actor,
    op: EventOp,
) -> Result<(String, EventHubClient), ApiError> {
    let event_id = rc.param("id")?.to_ascii_lowercase();
    let Actor::User { id, .. } = &actor else {
        return Err(ApiError::Unauthenticated);
    };
    let db = d1::db(&rc.env)?;
    let terms = catalogue::sale_terms(&db, &event_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = catalogue::role_of(&db, &event_id, id.as_str())
        .await?
        .and_then(|r| EventRole::parse(&r).ok());
    let published = terms.status == "PUBLISHED" || terms.ever_published == 1;
    rc.permit(&actor, role, &Action::OnEvent { op, published })?;
    if terms.allow_wait_room != Some(1) {
        return Err(ApiError::rule(
            409,
            "WAITROOM_NOT_ENABLED",
            "This event sells without a waitroom: order directly.",
        ));
    }
    let open =
        terms.status == "PUBLISHED" && terms.ticket_sale_end.is_some_and(|end| rc.now_ms < end);
    if op == EventOp::JoinWaitroom && !open {
        return Err(ApiError::rule(
            409,
            "SALE_NOT_OPEN",
            "Tickets for this event are not on sale.",
        ));
    }
    Ok((
        id.as_str().to_string(),
        EventHubClient::new(&rc.env, &event_id)?.traced(&rc.trace),
    ))
}

#[utoipa::path(post, path = "/api/events/{id}/waitroom/join", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The caller's session; joining again returns the same place", body = WaitroomSessionEnvelope),
              (status = 401, body = crate::http::error::Problem), (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "SALE_NOT_OPEN, WAITROOM_NOT_ENABLED", body = crate::http::error::Problem)))]
pub async fn join(rc: &mut RequestContext) -> ApiResult {
    let (user, hub) = enter(rc, rc.actor()?, EventOp::JoinWaitroom).await?;
    let session = hub.join(&user).await?;
    json_response(
        200,
        &WaitroomSessionEnvelope {
            waitroom_session: session,
        },
    )
}

#[utoipa::path(get, path = "/api/events/{id}/waitroom/session", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WaitroomSessionEnvelope), (status = 401, body = crate::http::error::Problem),
              (status = 404, description = "No session for the caller", body = crate::http::error::Problem)))]
pub async fn session(rc: &mut RequestContext) -> ApiResult {
    let (user, hub) = enter(rc, rc.actor()?, EventOp::UseWaitroomSession).await?;
    let session = hub.session(&user).await?.ok_or(ApiError::NotFound)?;
    json_response(
        200,
        &WaitroomSessionEnvelope {
            waitroom_session: session,
        },
    )
}

#[utoipa::path(delete, path = "/api/events/{id}/waitroom/session", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "The place is given up"), (status = 401, body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "CHECKOUT_IN_PROGRESS: an order holds the slot", body = crate::http::error::Problem)))]
pub async fn leave(rc: &mut RequestContext) -> ApiResult {
    let (user, hub) = enter(rc, rc.actor()?, EventOp::UseWaitroomSession).await?;
    hub.leave(&user).await?;
    Ok(worker::Response::empty()?.with_status(204))
}

#[utoipa::path(get, path = "/api/events/{id}/waitroom/ws", tag = "waitroom",
    params(("id" = String, Path), ("token" = String, Query, description = "The caller's access token")),
    responses((status = 101, description = "WebSocket: position, admitted and expired messages"),
              (status = 401, body = crate::http::error::Problem), (status = 404, body = crate::http::error::Problem),
              (status = 426, description = "Not a WebSocket upgrade")))]
pub async fn socket(rc: &mut RequestContext) -> ApiResult {
    // Browsers cannot set headers on a WebSocket, so the access token comes in the query.
    let url = rc.req.url()?;
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .ok_or(ApiError::Unauthenticated)?;
    let claims = rc
        .token_key()?
        .verify_access(&token, rc.now_ms)
        .map_err(|_| ApiError::Unauthenticated)?;
    let actor = Actor::User {
        platform_admin: claims.role == crate::domain::tokens::PlatformRole::Admin,
        id: crate::domain::ids::UserId::new(claims.sub),
    };
    // The object is told only the user this token proves: a socket can never follow
    // someone else's session.
    let (user, hub) = enter(rc, actor, EventOp::UseWaitroomSession).await?;
    Ok(hub.forward_websocket(rc.req.clone()?, &user).await?)
}
