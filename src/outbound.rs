//! Calls to other services (payment providers, Turnstile's siteverify, the mail API) under a
//! time limit: a slow peer may cost a request or a queue step a bounded wait, never the
//! runtime's own limit with the fan's request still open.

use crate::payments::{HttpMethod, OutboundRequest};

/// Sends `request` and reads the answer's status and body. `AbortSignal.timeout` cancels the
/// call after `limit_ms`, reading the body included; the error then names `peer`.
pub async fn send(
    request: &OutboundRequest,
    limit_ms: u32,
    peer: &str,
) -> Result<(u16, String), String> {
    let headers = worker::Headers::new();
    for (name, value) in &request.headers {
        headers.set(name, value).map_err(|e| e.to_string())?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(match request.method {
        HttpMethod::Get => worker::Method::Get,
        HttpMethod::Post => worker::Method::Post,
    })
    .with_headers(headers);
    if !request.body.is_empty() {
        init.with_body(Some(wasm_bindgen::JsValue::from_str(&request.body)));
    }
    let req = worker::Request::new_with_init(&request.url, &init).map_err(|e| e.to_string())?;
    let signal =
        worker::AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(limit_ms));
    let outcome = async {
        let mut res = worker::Fetch::Request(req)
            .send_with_signal(&signal)
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status_code();
        let text = res.text().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, text))
    }
    .await;
    outcome.map_err(|e| {
        if signal.aborted() {
            format!("{peer} gave no answer within {limit_ms} ms")
        } else {
            e
        }
    })
}
