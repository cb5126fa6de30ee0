//! Renders the crate's one error type as an HTTP problem+json response.

use worker::{Headers, Response};

use crate::error::ApiError;

impl ApiError {
    /// The single mapping from error to HTTP response.
    pub fn render(&self) -> Response {
        let headers = Headers::new();
        let _ = headers.set("Content-Type", "application/problem+json");
        match self {
            ApiError::MethodNotAllowed { allow } => {
                let _ = headers.set("Allow", &allow.join(", "));
            }
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                let _ = headers.set("Retry-After", &retry_after_seconds.to_string());
            }
            _ => {}
        }
        let mut problem = serde_json::to_value(self.to_problem()).unwrap_or_default();
        if let (Some(facts), serde_json::Value::Object(members)) = (self.facts(), &mut problem) {
            for (name, value) in facts {
                members.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        Response::from_bytes(body)
            .map(|r| r.with_status(self.status()).with_headers(headers))
            .unwrap_or_else(|_| Response::empty().unwrap_or_else(|_| unreachable_response()))
    }
}

/// `Response::empty()` cannot fail in practice; this keeps the signature infallible without a panic.
fn unreachable_response() -> Response {
    Response::builder().with_status(500).empty()
}
