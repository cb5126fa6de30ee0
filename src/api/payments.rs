//! Payment notifications from PayOS, VNPay, ZaloPay and the sandbox, the buyer's return from a
//! provider, and the sandbox checkout page. Every notification takes the same path: verify in
//! constant time → one D1 batch (payment + outbox) → answer the provider in its own format →
//! relay the outbox row to the payments queue.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use worker::Response;

use crate::config::secret;
use crate::domain::ids::OrderCode;
use crate::error::ApiError;
use crate::http::{ApiResult, RequestContext};
use crate::payments::sandbox::{sign_sandbox_webhook, SandboxConfig, SandboxEvent, SandboxOutcome};
use crate::payments::{Acknowledgement, Disposition, Gateway, Inbound, Provider};
use crate::store::payments as store;
use crate::store::{d1, outbox};

/// The configured gateway of a provider; 404 where the provider is not enabled (the sandbox
/// outside development unless `SANDBOX_PAYMENTS=enabled`, real ones not in `PAYMENT_PROVIDERS`).
pub fn gateway(rc: &RequestContext, provider: Provider) -> Result<Gateway, ApiError> {
    if !rc.settings.provider_enabled(provider) {
        return Err(ApiError::NotFound);
    }
    match provider {
        Provider::Sandbox => Ok(Gateway::Sandbox(SandboxConfig {
            secret: secret(&rc.env, "SANDBOX_WEBHOOK_SECRET").ok_or_else(|| {
                ApiError::Misconfigured("SANDBOX_WEBHOOK_SECRET is missing".into())
            })?,
            base_url: rc.origin()?,
        })),
        other => Gateway::from_secrets(other, |name| secret(&rc.env, name))
            .map_err(|e| ApiError::Misconfigured(e.to_string())),
    }
}

fn answer(ack: Acknowledgement) -> ApiResult {
    let mut response = Response::ok(ack.body)?.with_status(ack.status);
    response
        .headers_mut()
        .set("Content-Type", "application/json")?;
    Ok(response)
}

/// One line per notification: `provider`, `orderRef` (the provider's reference), `orderId`
/// when the payment is known, and the outcome as a stable `code` (`WEBHOOK_*`); the request
/// line carries the same `orderId` and `provider`.
fn log(
    rc: &RequestContext,
    provider: Provider,
    disposition: Disposition,
    order_ref: &str,
    order_id: Option<&str>,
    detail: Option<&str>,
) {
    rc.annotate("provider", provider.as_str());
    rc.annotate("webhook", disposition.code());
    if let Some(order_id) = order_id {
        rc.annotate("orderId", order_id);
    }
    let level = if disposition.is_ok() {
        crate::log::Level::Info
    } else {
        crate::log::Level::Warn
    };
    crate::log::emit(
        level,
        "payment notification",
        Some(&rc.trace),
        json!({
            "route": rc.route,
            "provider": provider.as_str(),
            "code": disposition.code(),
            "orderRef": (!order_ref.is_empty()).then_some(order_ref),
            "orderId": order_id,
            "detail": detail,
        }),
    );
}

/// The one path every provider notification takes. Never acts on an unverified body.
pub async fn handle_notification(
    rc: &RequestContext,
    gateway: &Gateway,
    inbound: Inbound<'_>,
) -> Result<Disposition, ApiError> {
    let provider = gateway.provider();
    let verdict = match gateway.verify(inbound) {
        Ok(v) => v,
        Err(e) => {
            let disposition = Disposition::from(&e);
            log(rc, provider, disposition, "", None, Some(&e.to_string()));
            return Ok(disposition);
        }
    };
    let db = d1::db(&rc.env)?;
    let settlement = store::settle(&db, &verdict, rc.now_ms).await;
    if let Some(outbox_id) = settlement.outbox_id {
        // Durable now; publish right away, the cron relay retries if this fails.
        let env = rc.env.clone();
        let now = rc.now_ms;
        rc.ctx.wait_until(async move {
            if let Ok(db) = d1::db(&env) {
                let _ = outbox::relay(&env, &db, now, 1, Some(&[outbox_id])).await;
            }
        });
    }
    log(
        rc,
        provider,
        settlement.disposition,
        &verdict.order_ref,
        settlement.order_id.as_deref(),
        settlement.error.as_deref(),
    );
    Ok(settlement.disposition)
}

/// The notifications' own limit (per provider and sending client; `WEBHOOK_RATE_LIMITER`),
/// generous because providers retry in bursts after an outage. Over it, the provider is asked
/// to retry in its own format, never with a problem document it cannot read.
async fn over_webhook_limit(rc: &RequestContext, provider: Provider) -> bool {
    let Ok(limiter) = rc.env.rate_limiter("WEBHOOK_RATE_LIMITER") else {
        return false;
    };
    let key = format!("webhook:{}:{}", provider.as_str(), rc.client_subject());
    // A limiter outage must not drop money on the floor.
    matches!(limiter.limit(key).await, Ok(outcome) if !outcome.success)
}

async fn webhook(rc: &mut RequestContext, provider: Provider) -> ApiResult {
    let gateway = gateway(rc, provider)?;
    if over_webhook_limit(rc, provider).await {
        log(
            rc,
            provider,
            Disposition::RetryLater,
            "",
            None,
            Some("webhook rate limit"),
        );
        return answer(gateway.acknowledge(Disposition::RetryLater));
    }
    let disposition = match provider {
        Provider::Vnpay => {
            let url = rc.req.url()?;
            let query = url.query().unwrap_or("").to_string();
            handle_notification(rc, &gateway, Inbound::Query(&query)).await?
        }
        _ => {
            let body = rc.raw_body().await?;
            handle_notification(rc, &gateway, Inbound::Body(&body)).await?
        }
    };
    answer(gateway.acknowledge(disposition))
}

#[utoipa::path(post, path = "/api/payments/webhooks/payos", tag = "payments",
    request_body(content = String, description = "PayOS webhook: {code, desc, success, data, signature}", content_type = "application/json"),
    responses((status = 200, description = "`{\"success\": true}`"), (status = 400, description = "Bad signature or body")))]
pub async fn payos_webhook(rc: &mut RequestContext) -> ApiResult {
    webhook(rc, Provider::Payos).await
}

#[utoipa::path(get, path = "/api/payments/webhooks/vnpay", tag = "payments",
    params(("vnp_SecureHash" = String, Query, description = "HMAC-SHA512 over the sorted vnp_* parameters")),
    responses((status = 200, description = "`{\"RspCode\": \"00\"|\"01\"|\"02\"|\"04\"|\"97\"|\"99\", \"Message\"}`")))]
pub async fn vnpay_ipn(rc: &mut RequestContext) -> ApiResult {
    webhook(rc, Provider::Vnpay).await
}

#[utoipa::path(post, path = "/api/payments/webhooks/zalopay", tag = "payments",
    request_body(content = String, description = "ZaloPay callback: {data, mac, type}", content_type = "application/json"),
    responses((status = 200, description = "`{\"return_code\": 1|-1|0, \"return_message\"}`"),
              (status = 400, description = "The body is not UTF-8 text", body = crate::error::Problem)))]
pub async fn zalopay_callback(rc: &mut RequestContext) -> ApiResult {
    webhook(rc, Provider::Zalopay).await
}

#[utoipa::path(post, path = "/api/payments/webhooks/sandbox", tag = "payments",
    request_body(content = String, description = "Sandbox webhook: {data, signature}", content_type = "application/json"),
    responses((status = 200, description = "Recorded"), (status = 400, description = "Bad signature"),
              (status = 404, description = "Sandbox disabled")))]
pub async fn sandbox_webhook(rc: &mut RequestContext) -> ApiResult {
    webhook(rc, Provider::Sandbox).await
}

#[utoipa::path(get, path = "/api/payments/return/{provider}", tag = "payments",
    params(("provider" = String, Path), ("order" = String, Query, description = "Our order code")),
    responses((status = 302, description = "To the order page /orders/{code}"),
              (status = 404, description = "Unknown provider or no valid `order` code", body = crate::error::Problem)))]
pub async fn provider_return(rc: &mut RequestContext) -> ApiResult {
    let _provider: Provider = rc
        .param("provider")?
        .parse()
        .map_err(|_| ApiError::NotFound)?;
    let url = rc.req.url()?;
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "order")
        .and_then(|(_, v)| OrderCode::parse(&v).ok())
        .ok_or(ApiError::NotFound)?;
    let target = url
        .join(&format!("/orders/{}", code.as_str()))
        .map_err(ApiError::internal)?;
    Ok(Response::redirect_with_status(target, 302)?)
}

#[derive(Serialize, ToSchema)]
pub struct SandboxResult {
    /// `PAID`, `DECLINED`, or `ALREADY_SETTLED` when this payment already has a result.
    pub status: String,
}

/// The sandbox checkout page, rendered with the payment's amount and order.
pub async fn sandbox_page(rc: &mut RequestContext) -> ApiResult {
    gateway(rc, Provider::Sandbox)?;
    let db = d1::db(&rc.env)?;
    let payment = store::find_by_id(&db, rc.param("paymentId")?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let html = SANDBOX_PAGE
        .replace("{{paymentId}}", &escape(&payment.id))
        .replace("{{orderCode}}", &escape(&payment.order_code))
        .replace("{{amount}}", &escape(&format_vnd(payment.amount)))
        .replace("{{status}}", &escape(&payment.status));
    Ok(Response::from_html(html)?)
}

async fn sandbox_decide(rc: &mut RequestContext, outcome: SandboxOutcome) -> ApiResult {
    let gateway = gateway(rc, Provider::Sandbox)?;
    let Gateway::Sandbox(cfg) = &gateway else {
        return Err(ApiError::NotFound);
    };
    let db = d1::db(&rc.env)?;
    let payment = store::find_by_id(&db, rc.param("paymentId")?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let tag = match outcome {
        SandboxOutcome::Paid => "paid",
        SandboxOutcome::Declined => "declined",
    };
    let event = SandboxEvent {
        payment_id: payment.id.clone(),
        order_ref: payment.provider_ref.clone(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        outcome,
        // Pressing the same button twice is the same transaction, delivered twice.
        txn_id: format!("sbx_{}_{tag}", payment.id),
        issued_at_ms: rc.now_ms,
    };
    let raw = sign_sandbox_webhook(&event, &cfg.secret).map_err(ApiError::internal)?;
    // Delivered through the very function real provider webhooks go through.
    let disposition = handle_notification(rc, &gateway, Inbound::Body(&raw)).await?;
    let status = match (disposition, outcome) {
        (Disposition::Accepted, SandboxOutcome::Paid) => "PAID",
        (Disposition::Accepted, SandboxOutcome::Declined) => "DECLINED",
        (Disposition::AlreadySettled, _) => "ALREADY_SETTLED",
        (Disposition::RetryLater, _) => {
            return Err(ApiError::internal("sandbox webhook could not be recorded"))
        }
        (other, _) => {
            return Err(ApiError::rule(
                409,
                "PAYMENT_NOT_PAYABLE",
                format!("The payment cannot take a result ({other:?})."),
            ))
        }
    };
    crate::http::json_response(
        200,
        &SandboxResult {
            status: status.into(),
        },
    )
}

#[utoipa::path(post, path = "/sandbox/checkout/{paymentId}/pay", tag = "payments",
    params(("paymentId" = String, Path)),
    responses((status = 200, body = SandboxResult),
              (status = 404, description = "Unknown payment or sandbox disabled", body = crate::error::Problem),
              (status = 409, description = "`PAYMENT_NOT_PAYABLE`: the notification was refused (amount mismatch, unknown order)", body = crate::error::Problem)))]
pub async fn sandbox_pay(rc: &mut RequestContext) -> ApiResult {
    sandbox_decide(rc, SandboxOutcome::Paid).await
}

#[utoipa::path(post, path = "/sandbox/checkout/{paymentId}/decline", tag = "payments",
    params(("paymentId" = String, Path)),
    responses((status = 200, body = SandboxResult),
              (status = 404, description = "Unknown payment or sandbox disabled", body = crate::error::Problem),
              (status = 409, description = "`PAYMENT_NOT_PAYABLE`: the notification was refused (amount mismatch, unknown order)", body = crate::error::Problem)))]
pub async fn sandbox_decline(rc: &mut RequestContext) -> ApiResult {
    sandbox_decide(rc, SandboxOutcome::Declined).await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn format_vnd(amount: i64) -> String {
    let digits = amount.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    format!("{}{out} ₫", if amount < 0 { "-" } else { "" })
}

const SANDBOX_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sandbox checkout · TicketBottle</title>
  <link rel="stylesheet" href="/assets/site.css">
</head>
<body>
  <main class="card" id="sandbox" data-payment-id="{{paymentId}}" data-order-code="{{orderCode}}">
    <p class="badge">Sandbox payment provider: no real money moves</p>
    <h1>Pay for order {{orderCode}}</h1>
    <p class="amount">{{amount}}</p>
    <p>Payment status: <strong id="status">{{status}}</strong></p>
    <div class="actions">
      <button id="pay" class="primary">Pay</button>
      <button id="decline">Decline</button>
    </div>
    <p id="result" role="status"></p>
  </main>
  <script src="/assets/sandbox.js"></script>
</body>
</html>
"#;
