//! The Turnstile bot check on registering and joining a waitroom: which token a request
//! carries, what Cloudflare's siteverify is asked, and what its answer means.
//!
//! Pure: the edge (`http/bot_check.rs`) sends the request this module builds and hands the
//! answer back to [`judge`]. Decisions worth knowing:
//! - The token comes from the body's `turnstileToken`, else the `CF-Turnstile-Response` header
//!   (the contract allows both; a page's form posts the body, a script may prefer the header).
//! - A missing, empty or oversized token fails without asking siteverify: a bot sending
//!   nothing costs us no subrequest.
//! - Siteverify down, answering non-JSON or reporting its own `internal-error` is
//!   "unavailable" (503), not "failed" (403): a fan is not told they are a bot because
//!   Cloudflare had a bad minute, and nobody gets through unchecked either.

use serde::{Deserialize, Serialize};

/// Cloudflare's siteverify endpoint, used unless `TURNSTILE_VERIFY_URL` says otherwise.
pub const CLOUDFLARE_SITEVERIFY_URL: &str =
    "https://challenges.cloudflare.com/turnstile/v0/siteverify";

/// Turnstile tokens are at most 2048 characters (Cloudflare's documentation).
pub const MAX_TOKEN_CHARS: usize = 2048;

/// Cloudflare's published test secrets (always passes, always fails, token already spent):
/// for development only, since with the first one every request passes.
pub const TEST_SECRETS: [&str; 3] = [
    "1x0000000000000000000000000000000AA",
    "2x0000000000000000000000000000000AA",
    "3x0000000000000000000000000000000AA",
];

/// Why a request did not pass the bot check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotCheckError {
    /// 403 `BOT_CHECK_FAILED`: no token, or siteverify said no.
    #[error("the bot check failed: {0}")]
    Failed(String),
    /// 503 `BOT_CHECK_UNAVAILABLE`: siteverify could not give an answer.
    #[error("the bot check is unavailable: {0}")]
    Unavailable(String),
}

impl BotCheckError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Failed(_) => "BOT_CHECK_FAILED",
            Self::Unavailable(_) => "BOT_CHECK_UNAVAILABLE",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::Failed(_) => 403,
            Self::Unavailable(_) => 503,
        }
    }
}

/// A token as the client sent it: present, non-empty, not oversized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnstileToken(String);

impl TurnstileToken {
    /// The body's `turnstileToken` first, then the `CF-Turnstile-Response` header.
    pub fn from_request(body: Option<&str>, header: Option<&str>) -> Result<Self, BotCheckError> {
        let raw = [body, header]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|t| !t.is_empty())
            .ok_or_else(|| BotCheckError::Failed("no Turnstile token".into()))?;
        if raw.chars().count() > MAX_TOKEN_CHARS {
            return Err(BotCheckError::Failed(
                "the Turnstile token is too long".into(),
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The JSON body siteverify takes (it accepts JSON as well as a form).
#[derive(Debug, Serialize)]
pub struct SiteverifyRequest<'a> {
    pub secret: &'a str,
    pub response: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remoteip: Option<&'a str>,
}

impl<'a> SiteverifyRequest<'a> {
    pub fn new(secret: &'a str, token: &'a TurnstileToken, remote_ip: Option<&'a str>) -> Self {
        Self {
            secret,
            response: token.as_str(),
            remoteip: remote_ip,
        }
    }

    pub fn to_json(&self) -> String {
        // Three strings: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What siteverify answers (the fields this check reads).
#[derive(Debug, Deserialize)]
struct SiteverifyResponse {
    success: bool,
    #[serde(rename = "error-codes", default)]
    error_codes: Vec<String>,
}

/// Siteverify's answer (HTTP status and body) as a verdict.
pub fn judge(status: u16, body: &str) -> Result<(), BotCheckError> {
    if !(200..300).contains(&status) {
        return Err(BotCheckError::Unavailable(format!(
            "siteverify answered HTTP {status}"
        )));
    }
    let answer: SiteverifyResponse = serde_json::from_str(body).map_err(|_| {
        BotCheckError::Unavailable("siteverify answered something else than its JSON".into())
    })?;
    if answer.success {
        return Ok(());
    }
    if answer.error_codes.iter().any(|c| c == "internal-error") {
        return Err(BotCheckError::Unavailable(
            "siteverify reported an internal error".into(),
        ));
    }
    Err(BotCheckError::Failed(if answer.error_codes.is_empty() {
        "siteverify refused the token".into()
    } else {
        format!(
            "siteverify refused the token ({})",
            answer.error_codes.join(", ")
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(r: Result<impl std::fmt::Debug, BotCheckError>) -> bool {
        matches!(r, Err(BotCheckError::Failed(_)))
    }

    #[test]
    fn the_body_token_wins_over_the_header_and_blank_ones_do_not_count() {
        let t = TurnstileToken::from_request(Some("from-body"), Some("from-header"));
        assert_eq!(t.map(|t| t.0), Ok("from-body".to_string()));
        let t = TurnstileToken::from_request(Some("  "), Some("from-header"));
        assert_eq!(t.map(|t| t.0), Ok("from-header".to_string()));
    }

    #[test]
    fn a_missing_or_oversized_token_fails_without_asking_siteverify() {
        assert!(failed(TurnstileToken::from_request(None, None)));
        assert!(failed(TurnstileToken::from_request(Some(""), Some(" "))));
        let long = "x".repeat(MAX_TOKEN_CHARS + 1);
        assert!(failed(TurnstileToken::from_request(Some(&long), None)));
        let longest = "x".repeat(MAX_TOKEN_CHARS);
        assert!(TurnstileToken::from_request(Some(&longest), None).is_ok());
    }

    #[test]
    fn the_request_carries_secret_token_and_client_address() {
        let token = TurnstileToken("tok".into());
        let json = SiteverifyRequest::new("s3cret", &token, Some("203.0.113.9")).to_json();
        assert_eq!(
            json,
            r#"{"secret":"s3cret","response":"tok","remoteip":"203.0.113.9"}"#
        );
        let json = SiteverifyRequest::new("s3cret", &token, None).to_json();
        assert_eq!(json, r#"{"secret":"s3cret","response":"tok"}"#);
    }

    #[test]
    fn only_a_successful_answer_passes() {
        assert_eq!(judge(200, r#"{"success":true,"error-codes":[]}"#), Ok(()));
        let refused = judge(
            200,
            r#"{"success":false,"error-codes":["invalid-input-response"]}"#,
        );
        assert_eq!(
            refused.as_ref().map_err(BotCheckError::code),
            Err("BOT_CHECK_FAILED")
        );
        assert!(failed(judge(200, r#"{"success":false}"#)));
        assert!(failed(judge(
            200,
            r#"{"success":false,"error-codes":["timeout-or-duplicate"]}"#
        )));
    }

    #[test]
    fn siteverify_trouble_is_unavailable_not_a_bot() {
        for (status, body) in [
            (500, r#"{"success":true}"#),
            (200, "<html>busy</html>"),
            (200, r#"{"success":false,"error-codes":["internal-error"]}"#),
        ] {
            let e = judge(status, body).err();
            assert_eq!(
                e.as_ref().map(|e| (e.http_status(), e.code())),
                Some((503, "BOT_CHECK_UNAVAILABLE")),
                "{status} {body}"
            );
        }
    }
}
