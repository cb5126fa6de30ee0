//! The one error type of the crate (handlers, stores, the queue consumers) and its single
//! mapping to a status, a stable code and an RFC 9457 problem body. `http` renders it.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid request field, as listed in a `VALIDATION_FAILED` problem.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// Everything a handler can fail with. Each variant has one status and one stable `code`;
/// `to_problem` is the only place that turns them into a status and body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON")]
    MalformedJson(String),
    #[error("request failed validation")]
    Validation(Vec<FieldProblem>),
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("authentication required")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u32 },
    /// A domain rule refused the request; `code` is the API's stable identifier.
    #[error("{detail}")]
    Rule {
        status: u16,
        code: &'static str,
        detail: String,
    },
    /// A rule refusal whose problem body carries more than the code: `facts` are added as
    /// top-level members (409 `ALREADY_CHECKED_IN` names `checkedInAt` and `gate`).
    #[error("{detail}")]
    RuleWithFacts {
        status: u16,
        code: &'static str,
        detail: String,
        facts: serde_json::Map<String, serde_json::Value>,
    },
    /// Something broke on our side. The message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// The deployment lacks a required secret or has a development-only feature on.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
}

/// The status of each stable code a rule refusal carries across the Worker and the event's
/// object: the one place such a code gets its status. The object answers with codes from this
/// table, and the Worker turns a code it reads back into the same code and status.
const RULE_STATUSES: &[(&str, u16)] = &[
    ("VALIDATION_FAILED", 400),
    ("UNAUTHENTICATED", 401),
    ("CHECKOUT_TOKEN_INVALID", 403),
    ("NOT_FOUND", 404),
    ("UNKNOWN_TICKET_CLASS", 404),
    ("HOLD_NOT_FOUND", 404),
    ("CONFLICT", 409),
    ("SALE_NOT_OPEN", 409),
    ("CLASS_NOT_ON_SALE", 409),
    ("INSUFFICIENT_INVENTORY", 409),
    ("TOTAL_BELOW_COMMITTED", 409),
    ("ORDER_ID_CONFLICT", 409),
    ("INVALID_STATUS_TRANSITION", 409),
    ("CHECKOUT_IN_PROGRESS", 409),
    ("PURCHASE_LIMIT_EXCEEDED", 422),
    ("UPGRADE_REQUIRED", 426),
    ("INTERNAL_ERROR", 500),
    ("SERVICE_UNAVAILABLE", 503),
];

/// A known rule code's `'static` spelling and its status; `None` for a code this build does
/// not know (a newer object talking to an older Worker).
pub fn rule_code(code: &str) -> Option<(&'static str, u16)> {
    RULE_STATUSES
        .iter()
        .find(|(known, _)| *known == code)
        .copied()
}

/// The problem+json body, also the OpenAPI schema of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable UPPER_SNAKE identifier clients switch on.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

impl ApiError {
    pub fn rule(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Rule {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// A refusal by `code`, with the status [`rule_code`] gives it; a code this build does not
    /// know becomes `CONFLICT`, so the client still gets a stable, documented code.
    pub fn rule_by_code(code: &str, detail: impl Into<String>) -> Self {
        let (code, status) = rule_code(code).unwrap_or(("CONFLICT", 409));
        ApiError::rule(status, code, detail)
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        ApiError::Internal(context.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_) | ApiError::Validation(_) => 400,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Unauthenticated => 401,
            ApiError::Forbidden => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::RateLimited { .. } => 429,
            ApiError::Rule { status, .. } | ApiError::RuleWithFacts { status, .. } => *status,
            ApiError::Internal(_) | ApiError::Misconfigured(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "MALFORMED_JSON",
            ApiError::Validation(_) => "VALIDATION_FAILED",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::NotFound => "NOT_FOUND",
            ApiError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Rule { code, .. } | ApiError::RuleWithFacts { code, .. } => code,
            ApiError::Internal(_) => "INTERNAL_ERROR",
            ApiError::Misconfigured(_) => "SERVICE_MISCONFIGURED",
        }
    }

    pub fn title(&self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            422 => "Unprocessable Content",
            429 => "Too Many Requests",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        }
    }

    /// What the client may read. Internal details stay in the log line.
    fn public_detail(&self) -> String {
        match self {
            ApiError::MalformedJson(why) => format!("The request body is not valid JSON: {why}"),
            ApiError::Validation(errors) => {
                format!("{} field(s) failed validation.", errors.len())
            }
            ApiError::PayloadTooLarge { limit } => {
                format!("The request body exceeds the limit of {limit} bytes.")
            }
            ApiError::UnsupportedMediaType => "Send the body as application/json.".into(),
            ApiError::Unauthenticated => "A valid bearer access token is required.".into(),
            ApiError::Forbidden => "You are not allowed to do this.".into(),
            ApiError::NotFound => "No such resource.".into(),
            ApiError::MethodNotAllowed { allow } => {
                format!("Allowed methods: {}.", allow.join(", "))
            }
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                format!("Too many requests; retry after {retry_after_seconds} s.")
            }
            ApiError::Rule { detail, .. } | ApiError::RuleWithFacts { detail, .. } => {
                detail.clone()
            }
            ApiError::Internal(_) => "An unexpected error occurred.".into(),
            ApiError::Misconfigured(_) => {
                "The service is not configured to serve requests safely.".into()
            }
        }
    }

    /// Members added to the problem body beside the standard ones (never overriding them).
    pub fn facts(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        match self {
            ApiError::RuleWithFacts { facts, .. } => Some(facts),
            _ => None,
        }
    }

    pub fn to_problem(&self) -> Problem {
        let code = self.code();
        Problem {
            problem_type: format!(
                "https://ticketbottle.dev/problems/{}",
                code.to_lowercase().replace('_', "-")
            ),
            title: self.title().to_string(),
            status: self.status(),
            detail: self.public_detail(),
            code: code.to_string(),
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::domain::validation::FieldError> for FieldProblem {
    fn from(e: crate::domain::validation::FieldError) -> Self {
        FieldProblem {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<crate::domain::validation::ValidationFailed> for ApiError {
    fn from(v: crate::domain::validation::ValidationFailed) -> Self {
        ApiError::Validation(v.errors.into_iter().map(FieldProblem::from).collect())
    }
}

impl From<crate::domain::validation::FieldError> for ApiError {
    fn from(e: crate::domain::validation::FieldError) -> Self {
        ApiError::Validation(vec![e.into()])
    }
}

impl From<crate::domain::bot_check::BotCheckError> for ApiError {
    fn from(e: crate::domain::bot_check::BotCheckError) -> Self {
        ApiError::rule(e.http_status(), e.code(), e.to_string())
    }
}

impl From<crate::domain::access::DenyReason> for ApiError {
    fn from(reason: crate::domain::access::DenyReason) -> Self {
        use crate::domain::access::DenyReason;
        match reason {
            DenyReason::Unauthenticated => ApiError::Unauthenticated,
            DenyReason::Forbidden => ApiError::Forbidden,
            DenyReason::NotFound => ApiError::NotFound,
        }
    }
}

/// Parses a JSON request body into `T`. Syntax errors are `MALFORMED_JSON`; well-formed JSON
/// of the wrong shape is `VALIDATION_FAILED`.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(format!(
                "{} at line {} column {}",
                match e.classify() {
                    Category::Eof => "unexpected end of input",
                    _ => "syntax error",
                },
                e.line(),
                e.column()
            )),
            Category::Data => ApiError::Validation(vec![FieldProblem {
                field: "body".into(),
                message: e.to_string(),
            }]),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_code_gets_its_status_from_the_one_table() {
        let refused = ApiError::rule_by_code("PURCHASE_LIMIT_EXCEEDED", "over the limit");
        assert_eq!(
            (refused.status(), refused.code()),
            (422, "PURCHASE_LIMIT_EXCEEDED")
        );
        let token = ApiError::rule_by_code("CHECKOUT_TOKEN_INVALID", "dead token");
        assert_eq!(
            (token.status(), token.code()),
            (403, "CHECKOUT_TOKEN_INVALID")
        );
    }

    #[test]
    fn an_unknown_rule_code_becomes_conflict() {
        for code in ["SOMETHING_NEW", ""] {
            let refused = ApiError::rule_by_code(code, "from a newer object");
            assert_eq!((refused.status(), refused.code()), (409, "CONFLICT"));
        }
    }

    #[test]
    fn the_table_agrees_with_the_variants_that_share_its_codes() {
        let variants = [
            ApiError::Validation(Vec::new()),
            ApiError::Unauthenticated,
            ApiError::Forbidden,
            ApiError::NotFound,
            ApiError::Internal(String::new()),
        ];
        let mut shared = 0;
        for error in variants {
            if let Some((_, status)) = rule_code(error.code()) {
                assert_eq!(status, error.status(), "{}", error.code());
                shared += 1;
            }
        }
        assert_eq!(
            shared, 4,
            "VALIDATION_FAILED, UNAUTHENTICATED, NOT_FOUND, INTERNAL_ERROR"
        );
    }

    #[test]
    fn every_code_is_listed_once() {
        let mut codes: Vec<&str> = RULE_STATUSES.iter().map(|(code, _)| *code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RULE_STATUSES.len());
    }
}
