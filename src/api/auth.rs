//! Registration, login and email verification.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::password::{KdfParams, PasswordHash};
use crate::domain::tokens::PlatformRole;
use crate::domain::validation::{Email, Password, PersonName, Validator};
use crate::error::ApiError;
use crate::http::auth::ACCESS_TOKEN_TTL_SECONDS;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::{d1, users as store};
use crate::webcrypto::{derive_password, hash_password, random_bytes};

use super::users::{user_view, User, UserEnvelope};

/// Verification links stay valid for a day.
const VERIFICATION_TTL_MS: i64 = 24 * 3600 * 1000;

/// Throttles credential endpoints per client and per email from that client with Cloudflare's
/// rate-limiting bindings, so guessing passwords or mass-registering costs real time. The email
/// limit is keyed on the email *and* the client: keyed on the email alone, anyone could lock a
/// fan out of their account minutes before an on-sale by failing to log in as them.
async fn throttle(rc: &RequestContext, what: &str, email: Option<&str>) -> Result<(), ApiError> {
    let client = rc.client_subject();
    let mut keys = vec![("AUTH_IP_RATE_LIMITER", format!("{what}:ip:{client}"))];
    if let Some(email) = email {
        keys.push((
            "AUTH_EMAIL_RATE_LIMITER",
            format!("{what}:email:{email}:{client}"),
        ));
    }
    for (binding, key) in keys {
        let Ok(limiter) = rc.env.rate_limiter(binding) else {
            continue;
        };
        if let Ok(outcome) = limiter.limit(key).await {
            if !outcome.success {
                return Err(ApiError::RateLimited {
                    retry_after_seconds: 60,
                });
            }
        }
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    #[schema(example = "fan@example.com")]
    pub email: Option<String>,
    /// 8 to 128 characters.
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The Turnstile widget's token, where the bot check is on (or header `CF-Turnstile-Response`).
    pub turnstile_token: Option<String>,
}

fn required<'a>(v: &mut Validator, field: &str, value: &'a Option<String>) -> Option<&'a str> {
    match value {
        Some(s) => Some(s.as_str()),
        None => {
            v.push(crate::domain::validation::FieldError::new(
                field,
                "is required",
            ));
            None
        }
    }
}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; a verification mail is queued", body = UserEnvelope),
        (status = 400, description = "VALIDATION_FAILED or MALFORMED_JSON", body = crate::error::Problem),
        (status = 403, description = "BOT_CHECK_FAILED (where TURNSTILE_SECRET is set: no Turnstile token, or siteverify refused it; with `siteKey`, the widget to show, where TURNSTILE_SITE_KEY is set)", body = crate::error::Problem),
        (status = 409, description = "EMAIL_TAKEN", body = crate::error::Problem),
        (status = 429, description = "RATE_LIMITED", body = crate::error::Problem),
        (status = 503, description = "BOT_CHECK_UNAVAILABLE (siteverify gave no answer)", body = crate::error::Problem)))]
pub async fn register(rc: &mut RequestContext) -> ApiResult {
    let body: RegisterRequest = rc.json().await?;
    let mut v = Validator::new();
    let email =
        required(&mut v, "email", &body.email).and_then(|s| v.field("email", Email::parse(s)));
    let password = required(&mut v, "password", &body.password)
        .and_then(|s| v.field("password", Password::parse(s)));
    let first_name = required(&mut v, "firstName", &body.first_name)
        .and_then(|s| v.field("firstName", PersonName::parse(s)));
    let last_name = required(&mut v, "lastName", &body.last_name)
        .and_then(|s| v.field("lastName", PersonName::parse(s)));
    let (email, password, first_name, last_name) =
        v.finish(|| Some((email?, password?, first_name?, last_name?)))?;

    throttle(rc, "register", None).await?;
    rc.check_bot(body.turnstile_token.as_deref()).await?;
    let db = d1::db(&rc.env)?;
    if store::find_live_by_email(&db, email.as_str())
        .await?
        .is_some()
    {
        return Err(email_taken());
    }
    let password_hash = hash_password(&password, &KdfParams::current()).await?;
    let user_id = uuid::Uuid::now_v7().to_string();
    let token = B64URL.encode(random_bytes::<32>()?);
    let link = format!("/verify-email?token={token}");
    // Absolute in the mail's text: a mail client has no page to resolve a relative link against.
    let origin = rc.origin()?;
    let body_text = format!(
        "Hi {},\n\nConfirm your email for TicketBottle: {origin}{link}\nOr send this token to \
         POST /api/auth/verify-email: {token}\n\nThe link expires in 24 hours.",
        first_name.as_str()
    );
    let outcome = store::insert_with_verification(
        &db,
        &store::NewUser {
            id: &user_id,
            email: email.as_str(),
            password_hash: &password_hash,
            first_name: first_name.as_str(),
            last_name: last_name.as_str(),
            now_ms: rc.now_ms,
        },
        &store::VerificationMail {
            mail_id: &uuid::Uuid::now_v7().to_string(),
            token_hash: &token_hash(&token),
            expires_at_ms: rc.now_ms + VERIFICATION_TTL_MS,
            subject: "Confirm your email",
            body: &body_text,
            link: &link,
        },
    )
    .await?;
    if let store::InsertOutcome::EmailTaken = outcome {
        // Lost a race with a concurrent registration of the same email.
        return Err(email_taken());
    }
    let row = store::find_by_id(&db, &user_id)
        .await?
        .ok_or_else(|| ApiError::internal("registered user not found"))?;
    json_response(
        201,
        &UserEnvelope {
            user: user_view(rc, &row),
        },
    )
}

fn email_taken() -> ApiError {
    ApiError::rule(
        409,
        "EMAIL_TAKEN",
        "An account with this email already exists.",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Every access token of the account issued so far no longer works, this one included"),
              (status = 401, description = "UNAUTHENTICATED", body = crate::error::Problem)))]
pub async fn logout_all(rc: &mut RequestContext) -> ApiResult {
    let (id, _) = rc.require_user()?;
    let db = d1::db(&rc.env)?;
    if !store::end_sessions(&db, id.as_str(), rc.now_ms).await? {
        return Err(ApiError::Unauthenticated);
    }
    crate::http::auth::forget_standing(id.as_str());
    Ok(worker::Response::empty()?.with_status(204))
}

fn invalid_credentials() -> ApiError {
    ApiError::rule(
        401,
        "INVALID_CREDENTIALS",
        "The email or password is incorrect.",
    )
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 400, description = "VALIDATION_FAILED or MALFORMED_JSON", body = crate::error::Problem),
        (status = 401, description = "INVALID_CREDENTIALS (unknown email, wrong password or deleted account alike)", body = crate::error::Problem),
        (status = 429, description = "RATE_LIMITED", body = crate::error::Problem)))]
pub async fn login(rc: &mut RequestContext) -> ApiResult {
    let body: LoginRequest = rc.json().await?;
    let mut v = Validator::new();
    let email = required(&mut v, "email", &body.email);
    let password = required(&mut v, "password", &body.password);
    let (email, password) = v.finish(|| Some((email?, password?)))?;
    // A malformed email or a password of the wrong length cannot match any account; answering
    // like a wrong password keeps the endpoint from teaching what a valid input looks like.
    let email = Email::parse(email).ok();
    throttle(rc, "login", email.as_ref().map(|e| e.as_str())).await?;

    let db = d1::db(&rc.env)?;
    let row = match &email {
        Some(e) => store::find_live_by_email(&db, e.as_str()).await?,
        None => None,
    };
    let stored = match &row {
        Some(r) => PasswordHash::parse(&r.password_hash).map_err(ApiError::internal)?,
        None => PasswordHash::dummy(),
    };
    // Always derive, so an unknown email costs the same time as a wrong password.
    let derived = derive_password(password.as_bytes(), stored.salt(), &stored.params()).await?;
    let matches = stored.verify_derived(&derived);
    let Some(row) = row.filter(|_| matches) else {
        return Err(invalid_credentials());
    };

    let current = KdfParams::current();
    if stored.needs_rehash(&current) {
        if let Ok(password) = Password::parse(password) {
            let fresh = hash_password(&password, &current).await?;
            let change = store::ProfileChange {
                first_name: None,
                last_name: None,
                avatar: None,
                password_hash: Some(&fresh),
                // The same password, stronger hash: the user's sessions stay.
                end_sessions: false,
            };
            store::update_profile(&db, &row.id, &change, rc.now_ms).await?;
        }
    }

    let role = if rc
        .settings
        .is_platform_admin(&row.email, row.email_verified != 0)
    {
        PlatformRole::Admin
    } else {
        PlatformRole::User
    };
    // The login just read the account: later requests through this isolate start from it
    // (an operator's direct change, like verifying an admin's address, shows at the next login).
    crate::http::auth::forget_standing(&row.id);
    let access_token = rc
        .token_key()?
        .issue_access_for(
            &row.id,
            role,
            u32::try_from(row.token_version).unwrap_or(u32::MAX),
            row.email_verified != 0,
            rc.now_ms,
            ACCESS_TOKEN_TTL_SECONDS,
        )
        .map_err(ApiError::internal)?;
    json_response(
        200,
        &LoginResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ACCESS_TOKEN_TTL_SECONDS,
            user: user_view(rc, &row),
        },
    )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    pub token: Option<String>,
}

#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The email is verified", body = UserEnvelope),
        (status = 400, description = "INVALID_TOKEN (unknown, used or expired) or VALIDATION_FAILED", body = crate::error::Problem)))]
pub async fn verify_email(rc: &mut RequestContext) -> ApiResult {
    let body: VerifyEmailRequest = rc.json().await?;
    let mut v = Validator::new();
    let token = required(&mut v, "token", &body.token);
    let token = v.finish(|| token)?;
    let invalid = || {
        ApiError::rule(
            400,
            "INVALID_TOKEN",
            "The verification token is unknown, used or expired.",
        )
    };
    if token.is_empty() || token.len() > 200 {
        return Err(invalid());
    }
    let db = d1::db(&rc.env)?;
    let user_id = store::consume_verification(&db, &token_hash(token), rc.now_ms)
        .await?
        .ok_or_else(invalid)?;
    // The standing cached here still says unverified; a fan verifying and then joining the
    // waitroom through the same isolate must not be refused for a few seconds.
    crate::http::auth::forget_standing(&user_id);
    let row = store::find_by_id(&db, &user_id)
        .await?
        .ok_or_else(invalid)?;
    json_response(
        200,
        &UserEnvelope {
            user: user_view(rc, &row),
        },
    )
}
