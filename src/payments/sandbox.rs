//! The sandbox provider: our own checkout page and a signed webhook, for development and tests.
//!
//! Its webhook borrows ZaloPay's envelope, the one design among the real providers with no
//! canonicalisation to get wrong: `{"data": "<event JSON as a string>", "signature": "<hex>"}`,
//! where the signature is HMAC-SHA256(secret, data bytes), lowercase hex.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    hmac_sha256_hex, tag_matches, Acknowledgement, CreatePlan, CreateStep, Disposition,
    PaymentError, PaymentIntent, PaymentOutcome, Provider, VerifiedNotification,
};

pub const CHECKOUT_PATH: &str = "/sandbox/checkout/";

/// The sandbox's secret (a dedicated one: it must not double as another key) and where the app
/// is served, e.g. `https://tickets.example` or `""` for a relative checkout URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub secret: String,
    pub base_url: String,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// `{base_url}/sandbox/checkout/{payment_id}`. Ids are limited to URL-safe characters so they
/// need no encoding in a path.
pub fn checkout_url(base_url: &str, payment_id: &str) -> Result<String, PaymentError> {
    let url_safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if payment_id.is_empty() || !payment_id.chars().all(url_safe) {
        return Err(PaymentError::InvalidIntent(format!(
            "payment id {payment_id:?} is not URL-safe"
        )));
    }
    Ok(format!(
        "{}{CHECKOUT_PATH}{payment_id}",
        base_url.trim_end_matches('/')
    ))
}

pub fn plan_create(
    cfg: &SandboxConfig,
    intent: &PaymentIntent,
) -> Result<CreatePlan, PaymentError> {
    intent.require_vnd()?;
    if intent.order_ref.is_empty() {
        return Err(PaymentError::InvalidIntent(
            "the sandbox needs an order reference".into(),
        ));
    }
    Ok(CreatePlan {
        order_ref: intent.order_ref.clone(),
        step: CreateStep::Redirect {
            payment_url: checkout_url(&cfg.base_url, &intent.payment_id)?,
        },
    })
}

/// The buyer's choice on the sandbox checkout page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxOutcome {
    Paid,
    Declined,
}

/// What the sandbox reports about one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxEvent {
    pub payment_id: String,
    pub order_ref: String,
    /// In VND.
    pub amount: i64,
    pub currency: String,
    pub outcome: SandboxOutcome,
    /// Unique per delivery-worthy event; redeliveries repeat it.
    pub txn_id: String,
    pub issued_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    data: String,
    signature: String,
}

fn key(secret: &str) -> Result<&[u8], PaymentError> {
    if secret.is_empty() {
        return Err(PaymentError::Misconfigured(
            "the sandbox secret is empty".into(),
        ));
    }
    Ok(secret.as_bytes())
}

/// The raw webhook body for an event.
pub fn sign_sandbox_webhook(event: &SandboxEvent, secret: &str) -> Result<String, PaymentError> {
    let key = key(secret)?;
    let data = serde_json::to_string(event)
        .map_err(|e| PaymentError::InvalidIntent(format!("cannot encode sandbox event: {e}")))?;
    let signature = hmac_sha256_hex(key, data.as_bytes());
    serde_json::to_string(&Envelope { data, signature })
        .map_err(|e| PaymentError::InvalidIntent(format!("cannot encode sandbox webhook: {e}")))
}

/// Verifies a sandbox webhook from its raw body: the signature over the `data` string first,
/// then the event inside it.
pub fn verify_sandbox_webhook(
    raw_body: &str,
    secret: &str,
) -> Result<VerifiedNotification, PaymentError> {
    let key = key(secret)?;
    let envelope: Value = serde_json::from_str(raw_body)
        .map_err(|e| PaymentError::Malformed(format!("sandbox webhook is not JSON: {e}")))?;
    let data = envelope
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| PaymentError::Malformed("sandbox webhook has no data string".into()))?;
    let signature = envelope
        .get("signature")
        .and_then(Value::as_str)
        .ok_or(PaymentError::BadSignature)?;
    if !tag_matches(&hmac_sha256_hex(key, data.as_bytes()), signature) {
        return Err(PaymentError::BadSignature);
    }

    let event: SandboxEvent = serde_json::from_str(data)
        .map_err(|e| PaymentError::Malformed(format!("sandbox event: {e}")))?;
    if event.order_ref.is_empty() || event.txn_id.is_empty() {
        return Err(PaymentError::Malformed(
            "sandbox event needs orderRef and txnId".into(),
        ));
    }
    if event.currency != "VND" {
        return Err(PaymentError::Malformed(format!(
            "sandbox event in {}",
            event.currency
        )));
    }
    let outcome = match event.outcome {
        SandboxOutcome::Paid => PaymentOutcome::Succeeded,
        SandboxOutcome::Declined => PaymentOutcome::Failed {
            code: "declined".into(),
            reason: "declined on the sandbox checkout page".into(),
        },
    };
    let raw = serde_json::to_value(&event).unwrap_or(Value::Null);
    Ok(VerifiedNotification {
        provider: Provider::Sandbox,
        order_ref: event.order_ref,
        provider_txn_id: event.txn_id,
        amount: event.amount,
        outcome,
        raw,
    })
}

/// Real providers' habits: 2xx means "delivered, stop"; 400 for a bad signature; 5xx to retry.
pub fn acknowledge(disposition: Disposition) -> Acknowledgement {
    let (status, body) = match disposition {
        Disposition::Accepted | Disposition::AlreadySettled => (200, r#"{"received":true}"#),
        Disposition::OrderNotFound => (200, r#"{"received":true,"note":"order not found"}"#),
        Disposition::AmountMismatch => (200, r#"{"received":true,"note":"amount mismatch"}"#),
        Disposition::BadSignature => (400, r#"{"received":false,"error":"bad signature"}"#),
        Disposition::Malformed => (400, r#"{"received":false,"error":"malformed"}"#),
        Disposition::RetryLater => (503, r#"{"received":false,"error":"retry later"}"#),
    };
    Acknowledgement {
        status,
        body: body.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check_order, Gateway, Inbound, OrderStanding, PaymentStanding};
    use super::*;

    const SECRET: &str = "sandbox-secret-for-tests";

    fn event(outcome: SandboxOutcome) -> SandboxEvent {
        SandboxEvent {
            payment_id: "pay_01HQ".into(),
            order_ref: "ORD-0001".into(),
            amount: 300_000,
            currency: "VND".into(),
            outcome,
            txn_id: "sbx_txn_1".into(),
            issued_at_ms: 1_705_289_400_000,
        }
    }

    #[test]
    fn a_paid_event_round_trips_into_a_succeeded_notification() {
        let raw = sign_sandbox_webhook(&event(SandboxOutcome::Paid), SECRET).expect("signed");
        let n = verify_sandbox_webhook(&raw, SECRET).expect("verified");
        assert_eq!(n.provider, Provider::Sandbox);
        assert_eq!(n.order_ref, "ORD-0001");
        assert_eq!(n.provider_txn_id, "sbx_txn_1");
        assert_eq!(n.amount, 300_000);
        assert_eq!(n.outcome, PaymentOutcome::Succeeded);
        assert_eq!(n.raw["paymentId"], "pay_01HQ");
    }

    #[test]
    fn a_declined_event_round_trips_into_a_failed_notification() {
        let raw = sign_sandbox_webhook(&event(SandboxOutcome::Declined), SECRET).expect("signed");
        let n = verify_sandbox_webhook(&raw, SECRET).expect("verified");
        assert!(matches!(n.outcome, PaymentOutcome::Failed { ref code, .. } if code == "declined"));
    }

    #[test]
    fn the_webhook_body_has_the_documented_shape() {
        let raw = sign_sandbox_webhook(&event(SandboxOutcome::Paid), SECRET).expect("signed");
        let envelope: Value = serde_json::from_str(&raw).expect("json");
        let data = envelope["data"].as_str().expect("data");
        assert_eq!(
            data,
            r#"{"paymentId":"pay_01HQ","orderRef":"ORD-0001","amount":300000,"currency":"VND","outcome":"paid","txnId":"sbx_txn_1","issuedAtMs":1705289400000}"#
        );
        assert_eq!(
            envelope["signature"],
            hmac_sha256_hex(SECRET.as_bytes(), data.as_bytes())
        );
    }

    #[test]
    fn tampering_a_wrong_secret_or_uppercase_hex_is_a_bad_signature() {
        let raw = sign_sandbox_webhook(&event(SandboxOutcome::Paid), SECRET).expect("signed");
        let tampered = raw.replace("300000", "3000");
        assert_eq!(
            verify_sandbox_webhook(&tampered, SECRET),
            Err(PaymentError::BadSignature)
        );
        assert_eq!(
            verify_sandbox_webhook(&raw, "another-secret"),
            Err(PaymentError::BadSignature)
        );
        let envelope: Value = serde_json::from_str(&raw).expect("json");
        let upper = serde_json::json!({
            "data": envelope["data"],
            "signature": envelope["signature"].as_str().expect("sig").to_uppercase(),
        })
        .to_string();
        assert_eq!(
            verify_sandbox_webhook(&upper, SECRET),
            Err(PaymentError::BadSignature)
        );
        let unsigned = serde_json::json!({ "data": envelope["data"] }).to_string();
        assert_eq!(
            verify_sandbox_webhook(&unsigned, SECRET),
            Err(PaymentError::BadSignature)
        );
    }

    #[test]
    fn an_empty_secret_neither_signs_nor_verifies() {
        let raw = sign_sandbox_webhook(&event(SandboxOutcome::Paid), SECRET).expect("signed");
        assert!(matches!(
            sign_sandbox_webhook(&event(SandboxOutcome::Paid), ""),
            Err(PaymentError::Misconfigured(_))
        ));
        assert!(matches!(
            verify_sandbox_webhook(&raw, ""),
            Err(PaymentError::Misconfigured(_))
        ));
    }

    #[test]
    fn signed_garbage_is_malformed() {
        for data in [
            "not json",
            r#"{"paymentId":"p","orderRef":"o","amount":1,"currency":"USD","outcome":"paid","txnId":"t","issuedAtMs":0}"#,
            r#"{"paymentId":"p","orderRef":"","amount":1,"currency":"VND","outcome":"paid","txnId":"t","issuedAtMs":0}"#,
            r#"{"paymentId":"p","orderRef":"o","amount":1,"currency":"VND","outcome":"maybe","txnId":"t","issuedAtMs":0}"#,
        ] {
            let raw = serde_json::json!({
                "data": data,
                "signature": hmac_sha256_hex(SECRET.as_bytes(), data.as_bytes()),
            })
            .to_string();
            assert!(
                matches!(
                    verify_sandbox_webhook(&raw, SECRET),
                    Err(PaymentError::Malformed(_))
                ),
                "{data}"
            );
        }
    }

    fn intent() -> PaymentIntent {
        PaymentIntent {
            payment_id: "pay_01HQ".into(),
            order_code: 1,
            order_ref: "ORD-0001".into(),
            amount: 300_000,
            currency: "VND".into(),
            description: "Order ORD-0001".into(),
            return_url: "/orders/ORD-0001".into(),
            cancel_url: "/orders/ORD-0001".into(),
            notify_url: "/api/payments/webhooks/sandbox".into(),
            buyer_ref: "user-1".into(),
            buyer_name: None,
            buyer_email: None,
            client_ip: "127.0.0.1".into(),
            items: vec![],
            now_ms: 0,
            expires_at_ms: 900_000,
        }
    }

    #[test]
    fn the_checkout_url_is_relative_to_the_configured_base() {
        let cfg = SandboxConfig {
            secret: SECRET.into(),
            base_url: "https://tickets.example/".into(),
        };
        let plan = plan_create(&cfg, &intent()).expect("plan");
        assert_eq!(plan.order_ref, "ORD-0001");
        assert_eq!(
            plan.step,
            CreateStep::Redirect {
                payment_url: "https://tickets.example/sandbox/checkout/pay_01HQ".into()
            }
        );
        assert_eq!(
            checkout_url("", "pay_01HQ").as_deref(),
            Ok("/sandbox/checkout/pay_01HQ")
        );
        assert!(checkout_url("", "../admin").is_err());
        assert!(checkout_url("", "").is_err());
    }

    #[test]
    fn a_full_sandbox_payment_through_the_gateway() {
        let cfg = SandboxConfig {
            secret: SECRET.into(),
            base_url: String::new(),
        };
        let gateway = Gateway::Sandbox(cfg);
        let plan = gateway.plan_create(&intent()).expect("plan");
        assert!(gateway.parse_create_response(200, "{}").is_err());

        let raw = sign_sandbox_webhook(&event(SandboxOutcome::Paid), SECRET).expect("signed");
        let n = gateway.verify(Inbound::Body(&raw)).expect("verified");
        assert_eq!(n.order_ref, plan.order_ref);

        let pending = OrderStanding::Found {
            amount: 300_000,
            payment: PaymentStanding::Awaiting,
        };
        let disposition = check_order(&n, &pending);
        assert_eq!(disposition, Disposition::Accepted);
        assert_eq!(gateway.acknowledge(disposition).status, 200);

        let short = OrderStanding::Found {
            amount: 200_000,
            payment: PaymentStanding::Awaiting,
        };
        assert_eq!(check_order(&n, &short), Disposition::AmountMismatch);
        let err = gateway
            .verify(Inbound::Body(&raw.replace("sbx_txn_1", "sbx_txn_2")))
            .unwrap_err();
        assert_eq!(gateway.acknowledge(Disposition::from(&err)).status, 400);
    }
}
