//! The waitroom endpoints: join, read or give up one's place, and the live WebSocket. The
//! event's object owns the queue; these handlers authenticate and authorize, then forward.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::access::{Actor, EventOp};
use crate::domain::event_workflow::EventStatus;
use crate::durable::client::EventHubClient;
use crate::durable::protocol::SessionView;
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::d1;

use super::events::load_event_as;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSessionEnvelope {
    /// `{sessionId, eventId, status, position, queueLength, estimatedWaitSeconds, checkoutToken?, checkoutExpiresAt?}`
    #[schema(value_type = Object)]
    pub waitroom_session: SessionView,
}

/// `POST .../waitroom/join`'s optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinWaitroomRequest {
    /// The Turnstile widget's token, where the bot check is on (or header `CF-Turnstile-Response`).
    pub turnstile_token: Option<String>,
}

/// The caller, checked against the event through the shared loader: it exists, is visible to
/// them, and sells through its waitroom. Returns the user id and the event's object.
async fn enter(
    rc: &RequestContext,
    actor: Actor,
    op: EventOp,
) -> Result<(String, EventHubClient), ApiError> {
    let db = d1::db(&rc.env)?;
    let access = load_event_as(rc, &db, rc.param("id")?, op, actor).await?;
    let user = access
        .actor
        .user_id()
        .ok_or(ApiError::Unauthenticated)?
        .as_str()
        .to_string();
    let config = access.event.terms.config.as_ref();
    if !config.is_some_and(|c| c.allow_wait_room) {
        return Err(ApiError::rule(
            409,
            "WAITROOM_NOT_ENABLED",
            "This event sells without a waitroom: order directly.",
        ));
    }
    // Fans may queue before the sale opens (the pre-queue), never after it ends.
    let closed = access.event.status != EventStatus::Published
        || config.is_some_and(|c| rc.now_ms >= c.ticket_sale_end_ms);
    if op == EventOp::JoinWaitroom && closed {
        return Err(ApiError::rule(
            409,
            "SALE_NOT_OPEN",
            "Tickets for this event are not on sale.",
        ));
    }
    Ok((
        user,
        EventHubClient::new(&rc.env, access.event.id.as_str())?.traced(&rc.trace),
    ))
}

#[utoipa::path(post, operation_id = "join_waitroom", path = "/api/events/{id}/waitroom/join", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body(content = Option<JoinWaitroomRequest>, description = "Optional: `turnstileToken` where the bot check is on"),
    responses((status = 200, description = "The caller's session; joining again returns the same place", body = WaitroomSessionEnvelope),
              (status = 400, description = "MALFORMED_JSON", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem),
              (status = 403, description = "EMAIL_NOT_VERIFIED (where the deployment requires a verified email), BOT_CHECK_FAILED (where TURNSTILE_SECRET is set; with `siteKey` where TURNSTILE_SITE_KEY is set)", body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "SALE_NOT_OPEN, WAITROOM_NOT_ENABLED", body = crate::error::Problem),
              (status = 503, description = "BOT_CHECK_UNAVAILABLE (siteverify gave no answer)", body = crate::error::Problem)))]
pub async fn join(rc: &mut RequestContext) -> ApiResult {
    // The body is optional: without the bot check a client may post nothing.
    let raw = rc.raw_body().await?;
    let body: JoinWaitroomRequest = if raw.trim().is_empty() {
        JoinWaitroomRequest::default()
    } else {
        crate::http::parse_json(raw.as_bytes())?
    };
    rc.require_user()?;
    rc.require_verified_buyer()?;
    rc.check_bot(body.turnstile_token.as_deref()).await?;
    let (user, hub) = enter(rc, rc.actor()?, EventOp::JoinWaitroom).await?;
    let session = hub.join(&user).await?;
    json_response(
        200,
        &WaitroomSessionEnvelope {
            waitroom_session: session,
        },
    )
}

#[utoipa::path(get, operation_id = "get_waitroom_session", path = "/api/events/{id}/waitroom/session", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WaitroomSessionEnvelope), (status = 401, body = crate::error::Problem),
              (status = 404, description = "No session for the caller", body = crate::error::Problem)))]
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

#[utoipa::path(delete, operation_id = "leave_waitroom", path = "/api/events/{id}/waitroom/session", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "The place is given up"), (status = 401, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "CHECKOUT_IN_PROGRESS: an order holds the slot", body = crate::error::Problem)))]
pub async fn leave(rc: &mut RequestContext) -> ApiResult {
    let (user, hub) = enter(rc, rc.actor()?, EventOp::UseWaitroomSession).await?;
    hub.leave(&user).await?;
    Ok(worker::Response::empty()?.with_status(204))
}

#[utoipa::path(get, operation_id = "waitroom_socket", path = "/api/events/{id}/waitroom/ws", tag = "waitroom",
    params(("id" = String, Path), ("token" = String, Query, description = "The caller's access token")),
    responses((status = 101, description = "WebSocket: position, admitted and expired messages; the fan may send {\"type\":\"ping\"} (answered with pong) in a burst of 5, then 1 a second, anything else is dropped unanswered; a fan keeps at most 4 sockets, a fifth closes the oldest with close code 4409"),
              (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
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
