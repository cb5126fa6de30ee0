//! Development-only helpers: the mailbox that shows the mail the app "sent", and a way to make
//! this isolate forget what it remembers of waitroom fans (as another isolate would).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::validation::{format_rfc3339, Email};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::{d1, users as store};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailboxQuery {
    pub email: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub id: String,
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Mailbox {
    pub items: Vec<Mail>,
}

#[utoipa::path(get, path = "/api/dev/mailbox", tag = "development", params(MailboxQuery),
    responses((status = 200, description = "Mail sent to this address, newest first", body = Mailbox),
              (status = 400, description = "`email` missing or invalid", body = crate::error::Problem),
              (status = 404, description = "Not in development (nor enabled by DEV_MAILBOX in staging), or, outside development, an ADMIN_EMAILS address", body = crate::error::Problem)))]
pub async fn mailbox(rc: &mut RequestContext) -> ApiResult {
    if !rc.settings.dev_mailbox_enabled {
        return Err(ApiError::NotFound);
    }
    let query: MailboxQuery = rc.req.query().map_err(|_| {
        ApiError::from(crate::domain::validation::FieldError::new(
            "email",
            "is required",
        ))
    })?;
    let email = Email::parse(&query.email).map_err(|e| ApiError::from(e.at("email")))?;
    // Staging shows its mailbox to anyone: the verification link of an `ADMIN_EMAILS`
    // address would let whoever registered it first become platform admin.
    if !rc.settings.environment.is_development()
        && rc
            .settings
            .admin_emails
            .iter()
            .any(|a| a.eq_ignore_ascii_case(email.as_str()))
    {
        return Err(ApiError::NotFound);
    }
    let db = d1::db(&rc.env)?;
    let items = store::mailbox(&db, email.as_str())
        .await?
        .into_iter()
        .map(|m| Mail {
            id: m.id,
            to: m.to_email,
            kind: m.kind,
            subject: m.subject,
            body: m.body,
            link: m.link,
            created_at: format_rfc3339(m.created_at),
        })
        .collect();
    json_response(200, &Mailbox { items })
}

#[utoipa::path(delete, path = "/api/dev/isolate-memory", tag = "development",
    responses((status = 204, description = "The isolate that took this request forgot the waitroom fans it remembered, as an isolate that never saw them would be: tests of the waitroom pass"),
              (status = 404, description = "Not in development", body = crate::error::Problem)))]
pub async fn forget_isolate_memory(rc: &mut RequestContext) -> ApiResult {
    if !rc.settings.environment.is_development() {
        return Err(ApiError::NotFound);
    }
    super::waitroom::forget_fans();
    Ok(worker::Response::empty()?.with_status(204))
}
