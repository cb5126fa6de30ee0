//! Users, their email verifications and the mail outbox in D1.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1Database;

use super::d1::{all, first, int, is_unique_violation, opt_text, run, stmt, text};
use crate::domain::sessions::AccountStanding;
use crate::error::ApiError;

const USER_COLUMNS: &str = "id, email, password_hash, first_name, last_name, avatar, \
     email_verified, token_version, created_at, updated_at, deleted_at";

#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub avatar: Option<String>,
    pub email_verified: i64,
    /// Signed into access tokens; raising it ends every earlier token (`domain::sessions`).
    pub token_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub now_ms: i64,
}

pub struct VerificationMail<'a> {
    pub mail_id: &'a str,
    pub token_hash: &'a str,
    pub expires_at_ms: i64,
    pub subject: &'a str,
    pub body: &'a str,
    pub link: &'a str,
}

pub async fn find_live_by_email(db: &D1Database, email: &str) -> Result<Option<UserRow>, ApiError> {
    first(
        db,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 AND deleted_at IS NULL"),
        &[text(email)],
    )
    .await
}

pub async fn find_by_id(db: &D1Database, id: &str) -> Result<Option<UserRow>, ApiError> {
    first(
        db,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        &[text(id)],
    )
    .await
}

/// Every account, live or deleted, for the given ids (order of `ids` is not kept).
pub async fn find_by_ids(db: &D1Database, ids: &[String]) -> Result<Vec<UserRow>, ApiError> {
    let list = serde_json::to_string(ids).map_err(ApiError::internal)?;
    all(
        db,
        &format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id IN (SELECT value FROM json_each(?1)) \
             ORDER BY created_at, id"
        ),
        &[text(&list)],
    )
    .await
}

/// Every account ever registered with this email, newest first (admins see deleted ones).
pub async fn find_all_by_email(db: &D1Database, email: &str) -> Result<Vec<UserRow>, ApiError> {
    all(
        db,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 ORDER BY created_at DESC"),
        &[text(email)],
    )
    .await
}

pub enum InsertOutcome {
    Created,
    EmailTaken,
}

/// The user, their verification token and the mail carrying it, in one D1 batch: either the
/// account exists with a way to verify it, or nothing was written.
pub async fn insert_with_verification(
    db: &D1Database,
    user: &NewUser<'_>,
    mail: &VerificationMail<'_>,
) -> Result<InsertOutcome, ApiError> {
    let statements = vec![
        stmt(
            db,
            "INSERT INTO users (id, email, password_hash, first_name, last_name, avatar, \
             email_verified, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6, ?6)",
            &[
                text(user.id),
                text(user.email),
                text(user.password_hash),
                text(user.first_name),
                text(user.last_name),
                int(user.now_ms),
            ],
        )?,
        stmt(
            db,
            "INSERT INTO email_verifications (token_hash, user_id, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            &[
                text(mail.token_hash),
                text(user.id),
                int(mail.expires_at_ms),
                int(user.now_ms),
            ],
        )?,
        stmt(
            db,
            "INSERT INTO mail_outbox (id, to_email, kind, subject, body, link, created_at) \
             VALUES (?1, ?2, 'EMAIL_VERIFICATION', ?3, ?4, ?5, ?6)",
            &[
                text(mail.mail_id),
                text(user.email),
                text(mail.subject),
                text(mail.body),
                text(mail.link),
                int(user.now_ms),
            ],
        )?,
    ];
    match db.batch(statements).await {
        Ok(_) => Ok(InsertOutcome::Created),
        Err(e) if is_unique_violation(&e) => Ok(InsertOutcome::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Marks an unused, unexpired token used and the user verified. The guarded UPDATE makes the
/// token single-use even under concurrent attempts. Returns the user id.
pub async fn consume_verification(
    db: &D1Database,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        user_id: String,
    }
    let row: Option<Row> = first(
        db,
        "UPDATE email_verifications SET used_at = ?2 \
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 \
         AND user_id IN (SELECT id FROM users WHERE deleted_at IS NULL) RETURNING user_id",
        &[text(token_hash), int(now_ms)],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    run(
        db,
        "UPDATE users SET email_verified = 1, updated_at = ?2 WHERE id = ?1",
        &[text(&row.user_id), int(now_ms)],
    )
    .await?;
    Ok(Some(row.user_id))
}

pub struct ProfileChange<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    /// `Some(None)` clears the avatar.
    pub avatar: Option<Option<&'a str>>,
    pub password_hash: Option<&'a str>,
    /// Raise the token version with this change, ending every access token signed before it.
    pub end_sessions: bool,
}

/// Applies only the fields present; a deleted account is never updated.
pub async fn update_profile(
    db: &D1Database,
    id: &str,
    change: &ProfileChange<'_>,
    now_ms: i64,
) -> Result<bool, ApiError> {
    let mut sets = vec!["updated_at = ?2".to_string()];
    let mut args: Vec<JsValue> = vec![text(id), int(now_ms)];
    let mut push = |column: &str, value: JsValue| {
        args.push(value);
        sets.push(format!("{column} = ?{}", args.len()));
    };
    if let Some(v) = change.first_name {
        push("first_name", text(v));
    }
    if let Some(v) = change.last_name {
        push("last_name", text(v));
    }
    if let Some(v) = change.avatar {
        push("avatar", opt_text(v));
    }
    if let Some(v) = change.password_hash {
        push("password_hash", text(v));
    }
    if change.end_sessions {
        sets.push("token_version = token_version + 1".to_string());
    }
    let sql = format!(
        "UPDATE users SET {} WHERE id = ?1 AND deleted_at IS NULL",
        sets.join(", ")
    );
    Ok(run(db, &sql, &args).await? == 1)
}

/// Ends every access token of the account (`POST /api/auth/logout-all`).
pub async fn end_sessions(db: &D1Database, id: &str, now_ms: i64) -> Result<bool, ApiError> {
    Ok(run(
        db,
        "UPDATE users SET token_version = token_version + 1, updated_at = ?2 \
         WHERE id = ?1 AND deleted_at IS NULL",
        &[text(id), int(now_ms)],
    )
    .await?
        == 1)
}

#[derive(Debug, Deserialize)]
struct StandingRow {
    token_version: i64,
    email: String,
    email_verified: i64,
    deleted_at: Option<i64>,
}

/// What an access token check needs to know about its account (`None`: no such account).
pub async fn standing(db: &D1Database, id: &str) -> Result<Option<AccountStanding>, ApiError> {
    let row: Option<StandingRow> = first(
        db,
        "SELECT token_version, email, email_verified, deleted_at FROM users WHERE id = ?1",
        &[text(id)],
    )
    .await?;
    Ok(row.map(|r| AccountStanding {
        token_version: u32::try_from(r.token_version).unwrap_or(u32::MAX),
        email: r.email,
        email_verified: r.email_verified != 0,
        deleted: r.deleted_at.is_some(),
    }))
}

pub async fn soft_delete(db: &D1Database, id: &str, now_ms: i64) -> Result<bool, ApiError> {
    Ok(run(
        db,
        "UPDATE users SET deleted_at = ?2, updated_at = ?2, token_version = token_version + 1 \
         WHERE id = ?1 AND deleted_at IS NULL",
        &[text(id), int(now_ms)],
    )
    .await?
        == 1)
}

#[derive(Debug, Deserialize)]
pub struct MailRow {
    pub id: String,
    pub to_email: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: i64,
}

pub async fn mailbox(db: &D1Database, email: &str) -> Result<Vec<MailRow>, ApiError> {
    all(
        db,
        "SELECT id, to_email, kind, subject, body, link, created_at FROM mail_outbox \
         WHERE to_email = ?1 ORDER BY created_at DESC, id DESC LIMIT 50",
        &[text(email)],
    )
    .await
}
