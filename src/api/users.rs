//! Users: profile read/update/soft delete, admin lookup, and the user JSON shape.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::access::{Action, Actor};
use crate::domain::ids::UserId;
use crate::domain::password::KdfParams;
use crate::domain::validation::{format_rfc3339, Email, Password, PersonName, Url, Validator};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::{d1, users as store};
use crate::webcrypto::{hash_password, password_matches};

/// A password change that does not prove the current password.
fn invalid_credentials_on_change() -> ApiError {
    ApiError::rule(
        403,
        "INVALID_CREDENTIALS",
        "The current password is missing or incorrect.",
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub avatar: Option<String>,
    pub email_verified: bool,
    /// `admin` for platform admins (the `ADMIN_EMAILS` list), else `user`.
    #[schema(example = "user")]
    pub role: String,
    pub created_at: String,
    pub updated_at: String,
    /// Only shown to platform admins, for soft-deleted accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: User,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<User>,
}

pub fn user_view(rc: &RequestContext, row: &store::UserRow) -> User {
    User {
        id: row.id.clone(),
        email: row.email.clone(),
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        avatar: row.avatar.clone(),
        email_verified: row.email_verified != 0,
        role: if rc
            .settings
            .is_platform_admin(&row.email, row.email_verified != 0)
        {
            "admin"
        } else {
            "user"
        }
        .into(),
        created_at: format_rfc3339(row.created_at),
        updated_at: format_rfc3339(row.updated_at),
        deleted_at: row.deleted_at.map(format_rfc3339),
    }
}

/// The caller's own live account; a token that outlived its account is no longer valid.
async fn load_self(rc: &RequestContext) -> Result<store::UserRow, ApiError> {
    let (id, _) = rc.require_user()?;
    let db = d1::db(&rc.env)?;
    match store::find_by_id(&db, id.as_str()).await? {
        Some(row) if row.deleted_at.is_none() => Ok(row),
        _ => Err(ApiError::Unauthenticated),
    }
}

#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserEnvelope), (status = 401, body = crate::error::Problem)))]
pub async fn get_me(rc: &mut RequestContext) -> ApiResult {
    let row = load_self(rc).await?;
    json_response(
        200,
        &UserEnvelope {
            user: user_view(rc, &row),
        },
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProfileRequest {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// An http(s) URL, or `null` to remove the avatar.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub avatar: Option<Option<String>>,
    /// A new password (8–128 characters); needs `currentPassword`, and ends every access token
    /// issued before (log in again with the new password).
    pub password: Option<String>,
    /// The password being replaced; required with `password` (403 `INVALID_CREDENTIALS`).
    pub current_password: Option<String>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses((status = 200, body = UserEnvelope), (status = 400, body = crate::error::Problem),
              (status = 401, body = crate::error::Problem),
              (status = 403, description = "INVALID_CREDENTIALS: `password` without the right `currentPassword`", body = crate::error::Problem)))]
pub async fn patch_me(rc: &mut RequestContext) -> ApiResult {
    let row = load_self(rc).await?;
    let body: UpdateProfileRequest = rc.json().await?;
    let mut v = Validator::new();
    let first_name = v.optional(
        "firstName",
        body.first_name.as_deref().map(PersonName::parse),
    );
    let last_name = v.optional("lastName", body.last_name.as_deref().map(PersonName::parse));
    let avatar = match &body.avatar {
        None => Some(None),
        Some(None) => Some(Some(None)),
        Some(Some(url)) => v.field("avatar", Url::parse(url)).map(|u| Some(Some(u))),
    };
    let password = v.optional("password", body.password.as_deref().map(Password::parse));
    let (first_name, last_name, avatar, password) =
        v.finish(|| Some((first_name?, last_name?, avatar?, password?)))?;

    // A stolen token must not be enough to take the account over: prove the old password.
    if password.is_some() {
        let current = body.current_password.as_deref().unwrap_or("");
        if current.is_empty() || !password_matches(&row.password_hash, current).await? {
            return Err(invalid_credentials_on_change());
        }
    }
    let password_hash = match &password {
        Some(p) => Some(hash_password(p, &KdfParams::current()).await?),
        None => None,
    };
    let avatar_ref = avatar.as_ref().map(|a| a.as_ref().map(|u| u.as_str()));
    let change = store::ProfileChange {
        first_name: first_name.as_ref().map(|n| n.as_str()),
        last_name: last_name.as_ref().map(|n| n.as_str()),
        avatar: avatar_ref,
        password_hash: password_hash.as_deref(),
        end_sessions: password_hash.is_some(),
    };
    let db = d1::db(&rc.env)?;
    if !store::update_profile(&db, &row.id, &change, rc.now_ms).await? {
        return Err(ApiError::Unauthenticated);
    }
    if change.end_sessions {
        crate::http::auth::forget_standing(&row.id);
    }
    let updated = store::find_by_id(&db, &row.id)
        .await?
        .ok_or_else(|| ApiError::internal("updated user vanished"))?;
    json_response(
        200,
        &UserEnvelope {
            user: user_view(rc, &updated),
        },
    )
}

#[utoipa::path(delete, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "Account soft-deleted; it can no longer log in"),
              (status = 401, body = crate::error::Problem)))]
pub async fn delete_me(rc: &mut RequestContext) -> ApiResult {
    let row = load_self(rc).await?;
    let db = d1::db(&rc.env)?;
    store::soft_delete(&db, &row.id, rc.now_ms).await?;
    crate::http::auth::forget_standing(&row.id);
    Ok(worker::Response::empty()?.with_status(204))
}

#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserEnvelope), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn get_by_id(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    let target = UserId::new(rc.param("id")?.to_ascii_lowercase());
    rc.permit(
        &actor,
        None,
        &Action::ReadUser {
            target: target.clone(),
        },
    )?;
    let admin = matches!(
        actor,
        Actor::User {
            platform_admin: true,
            ..
        }
    );
    let db = d1::db(&rc.env)?;
    match store::find_by_id(&db, target.as_str()).await? {
        Some(row) if admin || row.deleted_at.is_none() => json_response(
            200,
            &UserEnvelope {
                user: user_view(rc, &row),
            },
        ),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// Comma-separated user ids (at most 100).
    pub ids: Option<String>,
    /// An email address (case-insensitive).
    pub email: Option<String>,
}

const MAX_BATCH_IDS: usize = 100;

#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])),
    params(LookupQuery),
    responses((status = 200, body = UserList), (status = 400, body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn lookup(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::LookupUsers)?;
    let query: LookupQuery = rc.req.query().map_err(|e| {
        ApiError::from(crate::domain::validation::FieldError::new(
            "query",
            e.to_string(),
        ))
    })?;
    let db = d1::db(&rc.env)?;
    let rows = match (&query.ids, &query.email) {
        (Some(ids), None) => {
            let ids: Vec<String> = ids
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            if ids.is_empty() || ids.len() > MAX_BATCH_IDS {
                return Err(crate::domain::validation::FieldError::new(
                    "ids",
                    format!("give between 1 and {MAX_BATCH_IDS} comma-separated ids"),
                )
                .into());
            }
            store::find_by_ids(&db, &ids).await?
        }
        (None, Some(email)) => {
            let email = Email::parse(email).map_err(|e| ApiError::from(e.at("email")))?;
            store::find_all_by_email(&db, email.as_str()).await?
        }
        _ => {
            return Err(crate::domain::validation::FieldError::new(
                "query",
                "give exactly one of `ids` or `email`",
            )
            .into())
        }
    };
    let items = rows.iter().map(|r| user_view(rc, r)).collect();
    json_response(200, &UserList { items })
}
