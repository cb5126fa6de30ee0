//! Event roles: who is admin, editor, viewer or door staff of an event, and the rule that an
//! event always keeps an admin.

use serde::Serialize;
use utoipa::ToSchema;
use worker::Response;

use crate::domain::access::{check_role_change, EventOp, EventRole, LastAdmin};
use crate::domain::catalogue::{parse_role, PutRoleRequest};
use crate::domain::ids::UserId;
use crate::error::ApiError;
use crate::error::Problem;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::d1;
use crate::store::events::{self as store, RoleRow};
use crate::store::users as user_store;

use super::events::load_event;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub user_id: String,
    /// `admin`, `editor` or `viewer`.
    #[schema(example = "editor")]
    pub role: String,
    pub email: String,
}

impl From<&RoleRow> for RoleAssignment {
    fn from(row: &RoleRow) -> Self {
        RoleAssignment {
            user_id: row.user_id.clone(),
            role: row.role.clone(),
            email: row.email.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<RoleAssignment>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleEnvelope {
    pub role: RoleAssignment,
}

fn last_admin() -> ApiError {
    ApiError::rule(409, LastAdmin.code(), LastAdmin.to_string())
}

fn stored_role(row: &RoleRow) -> Result<EventRole, ApiError> {
    EventRole::parse(&row.role).map_err(|_| ApiError::internal("stored event role is invalid"))
}

/// The `{userId}` of the path: a malformed id names nobody (404).
fn target_user(rc: &RequestContext) -> Result<UserId, ApiError> {
    UserId::parse(rc.param("userId")?).map_err(|_| ApiError::NotFound)
}

#[utoipa::path(get, operation_id = "list_event_roles", path = "/api/events/{id}/roles", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "Admins first, then editors, then viewers", body = RoleList),
        (status = 401, body = Problem), (status = 403, description = "Role holders and platform admins only", body = Problem),
        (status = 404, body = Problem)))]
pub async fn list(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let access = load_event(rc, &db, EventOp::ReadRoles).await?;
    let rows = store::list_roles(&db, access.event.id.as_str()).await?;
    json_response(
        200,
        &RoleList {
            items: rows.iter().map(RoleAssignment::from).collect(),
        },
    )
}

#[utoipa::path(put, operation_id = "put_event_role", path = "/api/events/{id}/roles/{userId}", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ("userId" = String, Path, description = "The user to grant the role to")),
    request_body = PutRoleRequest,
    responses(
        (status = 200, description = "The user's role on the event", body = RoleEnvelope),
        (status = 400, description = "VALIDATION_FAILED", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "Event admins only", body = Problem),
        (status = 404, description = "Unknown event or user", body = Problem),
        (status = 409, description = "LAST_ADMIN: the event's only admin cannot be demoted", body = Problem)))]
pub async fn put(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let access = load_event(rc, &db, EventOp::ManageRoles).await?;
    let event_id = access.event.id.as_str();
    let user_id = target_user(rc)?;
    let body: PutRoleRequest = rc.json().await?;
    let role = parse_role(&body)?;
    match user_store::find_by_id(&db, user_id.as_str()).await? {
        Some(user) if user.deleted_at.is_none() => {}
        _ => return Err(ApiError::NotFound),
    }
    let current = store::find_role(&db, event_id, user_id.as_str())
        .await?
        .map(|row| stored_role(&row))
        .transpose()?;
    let admins = store::count_admins(&db, event_id).await?;
    check_role_change(admins, current, Some(role)).map_err(|_| last_admin())?;
    // The statement repeats the rule, so a concurrent demotion of the other admin loses.
    if !store::put_role(&db, event_id, user_id.as_str(), role, rc.now_ms).await? {
        return Err(last_admin());
    }
    let row = store::find_role(&db, event_id, user_id.as_str())
        .await?
        .ok_or_else(|| ApiError::internal("role vanished after it was written"))?;
    json_response(
        200,
        &RoleEnvelope {
            role: RoleAssignment::from(&row),
        },
    )
}

#[utoipa::path(delete, operation_id = "delete_event_role", path = "/api/events/{id}/roles/{userId}", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ("userId" = String, Path, description = "The user whose role to remove")),
    responses(
        (status = 204, description = "The user no longer holds a role on the event"),
        (status = 401, body = Problem), (status = 403, description = "Event admins only", body = Problem),
        (status = 404, description = "Unknown event, or the user holds no role on it", body = Problem),
        (status = 409, description = "LAST_ADMIN: the event's only admin cannot be removed", body = Problem)))]
pub async fn delete(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let access = load_event(rc, &db, EventOp::ManageRoles).await?;
    let event_id = access.event.id.as_str();
    let user_id = target_user(rc)?;
    let current = match store::find_role(&db, event_id, user_id.as_str()).await? {
        Some(row) => stored_role(&row)?,
        None => return Err(ApiError::NotFound),
    };
    let admins = store::count_admins(&db, event_id).await?;
    check_role_change(admins, Some(current), None).map_err(|_| last_admin())?;
    if !store::delete_role(&db, event_id, user_id.as_str()).await? {
        // Either another request removed it first, or it became the last admin meanwhile.
        return match store::find_role(&db, event_id, user_id.as_str()).await? {
            Some(_) => Err(last_admin()),
            None => Err(ApiError::NotFound),
        };
    }
    Ok(Response::empty()?.with_status(204))
}
