//! The cron's mail sender: delivers what `mail_outbox` holds through the mail API, one claim
//! per mail, with the retries `domain::mail` decides.

use serde_json::json;

use crate::config::MailApiSettings;
use crate::domain::mail::{
    classify, mail_api_request, next_attempt_at, Delivery, OutgoingMail, CLAIM_MS,
};
use crate::error::ApiError;
use crate::log::{self, Trace};
use crate::payments::{HttpMethod, OutboundRequest};
use crate::store::mail as store;

/// A mail API answers in well under this; a hung one must not hold the cron run.
const SEND_TIMEOUT_MS: u32 = 10_000;

/// How many mails are sent per run: the cron runs each minute, a burst of sign-ups waits a
/// few runs rather than one run outliving its budget.
pub const PER_RUN: u32 = 50;

#[derive(Debug, Default, serde::Serialize)]
pub struct MailRun {
    pub sent: u32,
    pub retrying: u32,
    pub given_up: u32,
}

pub async fn deliver_due(
    db: &worker::D1Database,
    api: &MailApiSettings,
    now_ms: i64,
    trace: &Trace,
) -> Result<MailRun, ApiError> {
    let mut run = MailRun::default();
    for due in store::due(db, now_ms, PER_RUN).await? {
        if !store::claim(db, &due.id, now_ms, now_ms + CLAIM_MS).await? {
            continue;
        }
        let mail = OutgoingMail {
            id: due.id,
            to: due.to_email,
            subject: due.subject,
            body: due.body,
        };
        let (status, error) = match send(api, &mail).await {
            Ok(status) => (Some(status), format!("mail API answered HTTP {status}")),
            Err(e) => (None, e),
        };
        let attempts = u32::try_from(due.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        match classify(status) {
            Delivery::Sent => {
                store::mark_sent(db, &mail.id, now_ms).await?;
                run.sent += 1;
            }
            outcome => {
                let retry_at = match outcome {
                    Delivery::Retry => next_attempt_at(attempts, now_ms),
                    _ => None,
                };
                store::mark_failed(db, &mail.id, now_ms, retry_at, &error).await?;
                if retry_at.is_some() {
                    run.retrying += 1;
                } else {
                    run.given_up += 1;
                }
                // The address is the fan's: it stays out of the log; the mail id finds it.
                log::warn(
                    "mail not delivered",
                    Some(trace),
                    json!({ "mailId": mail.id, "attempts": attempts, "error": error,
                            "code": if retry_at.is_some() { "MAIL_RETRYING" } else { "MAIL_GIVEN_UP" } }),
                );
            }
        }
    }
    Ok(run)
}

async fn send(api: &MailApiSettings, mail: &OutgoingMail) -> Result<u16, String> {
    let mail_request = mail_api_request(mail, &api.from, &api.api_key);
    let request = OutboundRequest {
        method: HttpMethod::Post,
        url: api.url.clone(),
        headers: mail_request
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
        body: mail_request.body,
    };
    let (status, _) = crate::outbound::send(&request, SEND_TIMEOUT_MS, "the mail API").await?;
    Ok(status)
}
