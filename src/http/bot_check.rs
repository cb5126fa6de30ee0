//! The bot check at the edge: asks Turnstile's siteverify about the request's token when
//! `TURNSTILE_SECRET` is set (the rules are `domain::bot_check`'s).

use crate::domain::bot_check::{judge, BotCheckError, SiteverifyRequest, TurnstileToken};
use crate::error::ApiError;
use crate::payments::{HttpMethod, OutboundRequest};

use super::RequestContext;

/// Siteverify answers in well under a second; a fan should not wait on it longer than this.
const SITEVERIFY_TIMEOUT_MS: u32 = 5_000;

impl RequestContext {
    /// Passes when the bot check is off, or the request's Turnstile token (`body_token`, else
    /// the `CF-Turnstile-Response` header) is confirmed by siteverify; else 403
    /// `BOT_CHECK_FAILED` (503 `BOT_CHECK_UNAVAILABLE` when siteverify cannot answer).
    pub async fn check_bot(&self, body_token: Option<&str>) -> Result<(), ApiError> {
        let Some(turnstile) = &self.settings.turnstile else {
            return Ok(());
        };
        let header = self.header("CF-Turnstile-Response");
        let token = TurnstileToken::from_request(body_token, header.as_deref())
            .map_err(|e| with_site_key(e.into(), turnstile.site_key.as_deref()))?;
        let ip = self.header("CF-Connecting-IP");
        let body = SiteverifyRequest::new(&turnstile.secret, &token, ip.as_deref()).to_json();
        let (status, text) = siteverify(&turnstile.verify_url, body)
            .await
            .map_err(BotCheckError::Unavailable)?;
        judge(status, &text).map_err(|e| {
            self.annotate("botCheck", e.to_string());
            with_site_key(e.into(), turnstile.site_key.as_deref())
        })
    }
}

/// A 403 `BOT_CHECK_FAILED` names the widget's site key (`siteKey`) where one is configured, so
/// the page that sent no token, or a stale one, can show the widget and send the request again.
fn with_site_key(error: ApiError, site_key: Option<&str>) -> ApiError {
    match (error, site_key) {
        (
            ApiError::Rule {
                status,
                code: code @ "BOT_CHECK_FAILED",
                detail,
            },
            Some(key),
        ) => {
            let mut facts = serde_json::Map::new();
            facts.insert("siteKey".into(), key.into());
            ApiError::RuleWithFacts {
                status,
                code,
                detail,
                facts,
            }
        }
        (error, _) => error,
    }
}

async fn siteverify(url: &str, body: String) -> Result<(u16, String), String> {
    let request = OutboundRequest {
        method: HttpMethod::Post,
        url: url.to_string(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    };
    crate::outbound::send(&request, SITEVERIFY_TIMEOUT_MS, "siteverify").await
}
