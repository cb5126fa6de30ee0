//! Payment providers as pure data transformations: outbound requests, inbound verification, acknowledgements.
//!
//! Nothing here performs I/O, reads a clock or draws randomness. The Worker shell executes the
//! [`OutboundRequest`]s, hands inbound webhook bodies / IPN query strings in exactly as received,
//! looks the order up, and sends back the body a provider's own [`Gateway::acknowledge`] renders.
//!
//! The flow for one inbound notification:
//! 1. `gateway.verify(Inbound::Body(raw))` (VNPay: `Inbound::Query`): `Err` →
//!    `gateway.acknowledge(Disposition::from(&err))`.
//! 2. `check_order(&notification, &standing)` against the stored order: anything but
//!    [`Disposition::Accepted`] is answered at once; `Accepted` is applied by the saga, and a store
//!    failure becomes [`Disposition::RetryLater`].
//!
//! Notifications come back under the reference the provider echoes ([`CreatePlan::order_ref`]):
//! the shell stores it with the payment and finds the payment by `(provider, order_ref)`.

pub mod payos;
pub mod refunds;
pub mod sandbox;
pub mod vnpay;
pub mod zalopay;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Offset, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

pub use payos::PayosConfig;
pub use sandbox::SandboxConfig;
pub use vnpay::VnpayConfig;
pub use zalopay::ZalopayConfig;

/// A payment method a buyer can choose (`paymentMethod` in the orders API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Payos,
    Vnpay,
    Zalopay,
    Sandbox,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Payos,
        Provider::Vnpay,
        Provider::Zalopay,
        Provider::Sandbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Payos => "payos",
            Provider::Vnpay => "vnpay",
            Provider::Zalopay => "zalopay",
            Provider::Sandbox => "sandbox",
        }
    }

    /// The secrets (`wrangler secret put`) without which this provider cannot work; endpoint
    /// URLs are optional and have defaults. The sandbox's secret is the shell's, not a
    /// contract's, but it is just as required where the sandbox is enabled.
    pub fn required_secrets(self) -> &'static [&'static str] {
        match self {
            Provider::Payos => &["PAYOS_CLIENT_ID", "PAYOS_API_KEY", "PAYOS_CHECKSUM_KEY"],
            Provider::Vnpay => &["VNPAY_TMN_CODE", "VNPAY_HASH_SECRET"],
            Provider::Zalopay => &["ZALOPAY_APP_ID", "ZALOPAY_KEY1", "ZALOPAY_KEY2"],
            Provider::Sandbox => &["SANDBOX_WEBHOOK_SECRET"],
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = PaymentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| PaymentError::UnknownProvider(s.to_owned()))
    }
}

/// Everything that can go wrong between us and a provider. Internals stay in the message; the
/// HTTP layer maps variants to fixed public answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Signature/MAC/checksum missing or not the one the shared secret gives.
    #[error("signature missing or invalid")]
    BadSignature,
    /// Input that cannot be read (not JSON, required field missing, wrong type).
    #[error("malformed provider message: {0}")]
    Malformed(String),
    /// The provider answered, and said no.
    #[error("provider rejected the request: {code} {message}")]
    ProviderRejected { code: String, message: String },
    /// The provider's answer was neither a success nor a readable refusal (5xx, HTML, ...).
    #[error("unexpected provider response (HTTP {status}): {detail}")]
    UnexpectedResponse { status: u16, detail: String },
    /// Our own intent cannot be expressed to this provider (wrong currency, id too long, ...).
    #[error("payment intent not acceptable: {0}")]
    InvalidIntent(String),
    /// Credentials missing or unusable (an empty key would make every signature forgeable).
    #[error("provider misconfigured: {0}")]
    Misconfigured(String),
    /// A verified message of a kind we do not act on (ZaloPay agreement callbacks).
    #[error("unsupported provider message: {0}")]
    Unsupported(String),
    #[error("unknown payment provider {0:?}")]
    UnknownProvider(String),
}

/// One line of an order, as providers that show items want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentItem {
    /// Our id for the line (ticket class id); ZaloPay's `itemid`.
    pub id: String,
    pub name: String,
    pub quantity: i64,
    /// Price of one unit in VND.
    pub unit_price: i64,
}

/// What we ask a provider to collect: one payment attempt for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// Our payment id (sandbox checkout page path).
    pub payment_id: String,
    /// Numeric order code: PayOS only accepts a positive integer up to 2^53 - 1.
    pub order_code: i64,
    /// Our order reference (VNPay `vnp_TxnRef`, the tail of ZaloPay's `app_trans_id`).
    pub order_ref: String,
    /// In VND, which has no minor unit.
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub return_url: String,
    pub cancel_url: String,
    /// Where the provider posts its webhook (ZaloPay takes it per order).
    pub notify_url: String,
    /// Who pays, as the provider's user id (ZaloPay `app_user`): our user id.
    pub buyer_ref: String,
    pub buyer_name: Option<String>,
    pub buyer_email: Option<String>,
    /// VNPay requires the buyer's IP address.
    pub client_ip: String,
    pub items: Vec<IntentItem>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

impl PaymentIntent {
    fn require_vnd(&self) -> Result<(), PaymentError> {
        if self.currency != "VND" {
            return Err(PaymentError::InvalidIntent(format!(
                "currency {} is not supported, only VND",
                self.currency
            )));
        }
        if self.amount <= 0 {
            return Err(PaymentError::InvalidIntent(format!(
                "amount must be positive, got {}",
                self.amount
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// An HTTP request for the shell to send verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// How a payment is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateStep {
    /// The buyer can be sent straight to this URL (VNPay, sandbox): no call to the provider.
    Redirect { payment_url: String },
    /// Send this, then give the response to [`Gateway::parse_create_response`].
    Http(OutboundRequest),
}

/// The result of planning a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePlan {
    /// The reference this provider's notifications will carry ([`VerifiedNotification::order_ref`]):
    /// PayOS `orderCode`, VNPay `vnp_TxnRef`, ZaloPay `app_trans_id`, sandbox `orderRef`.
    pub order_ref: String,
    pub step: CreateStep,
}

/// A payment link the provider created for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPayment {
    pub payment_url: String,
    /// The provider's own id for the link (PayOS `paymentLinkId`, ZaloPay `zp_trans_token`).
    pub provider_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum PaymentOutcome {
    Succeeded,
    /// `code` is the provider's own result code, `reason` its text (for logs and support).
    Failed {
        code: String,
        reason: String,
    },
}

impl PaymentOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, PaymentOutcome::Succeeded)
    }
}

/// A provider notification whose signature checked out, in provider-neutral terms. Serialisable
/// so the shell can hand it to the payment-events queue as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedNotification {
    pub provider: Provider,
    /// The reference from [`CreatePlan::order_ref`].
    pub order_ref: String,
    /// Stable across redeliveries of the same event: the idempotency key with `provider`.
    pub provider_txn_id: String,
    /// In VND.
    pub amount: i64,
    pub outcome: PaymentOutcome,
    /// The signed payload as the provider sent it, for the payment record.
    pub raw: serde_json::Value,
}

/// Where the stored payment a notification names stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStanding {
    /// No result yet.
    Awaiting,
    /// Paid: the money is recorded.
    Paid,
    /// Closed without money: declined by the provider, or cancelled on our side (its create
    /// call failed or timed out, the order closed). A provider can still take money for it
    /// afterwards (a second attempt on the same payment page, a link created despite our
    /// timeout), and that money must be recorded, never acknowledged and dropped.
    ClosedUnpaid,
}

impl PaymentStanding {
    /// From the stored `payments.status`.
    pub fn from_status(status: &str) -> PaymentStanding {
        match status {
            "PENDING" => PaymentStanding::Awaiting,
            "COMPLETED" => PaymentStanding::Paid,
            _ => PaymentStanding::ClosedUnpaid,
        }
    }
}

/// What the order store knows about the order a notification names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStanding {
    NotFound,
    Found {
        /// The amount this payment was created for, in VND.
        amount: i64,
        payment: PaymentStanding,
    },
}

/// Where handling of one inbound notification ended; each provider answers it in its own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Signature missing or wrong: never act on the content.
    BadSignature,
    /// Signed (or unreadable) but unusable content.
    Malformed,
    OrderNotFound,
    AmountMismatch,
    /// The order has its result already; a redelivery or a late duplicate.
    AlreadySettled,
    /// The result is (to be) recorded.
    Accepted,
    /// Our side failed (store unavailable): the provider should deliver again.
    RetryLater,
}

impl Disposition {
    /// The stable identifier of this outcome in logs (`WEBHOOK_*`).
    pub fn code(self) -> &'static str {
        match self {
            Disposition::BadSignature => "WEBHOOK_BAD_SIGNATURE",
            Disposition::Malformed => "WEBHOOK_MALFORMED",
            Disposition::OrderNotFound => "WEBHOOK_ORDER_NOT_FOUND",
            Disposition::AmountMismatch => "WEBHOOK_AMOUNT_MISMATCH",
            Disposition::AlreadySettled => "WEBHOOK_ALREADY_SETTLED",
            Disposition::Accepted => "WEBHOOK_ACCEPTED",
            Disposition::RetryLater => "WEBHOOK_RETRY_LATER",
        }
    }

    /// Whether the notification was handled as it should be (a duplicate included).
    pub fn is_ok(self) -> bool {
        matches!(self, Disposition::Accepted | Disposition::AlreadySettled)
    }
}

impl From<&PaymentError> for Disposition {
    fn from(err: &PaymentError) -> Self {
        match err {
            PaymentError::BadSignature => Disposition::BadSignature,
            PaymentError::Misconfigured(_) => Disposition::RetryLater,
            _ => Disposition::Malformed,
        }
    }
}

/// Checks a verified notification against the stored order, in the order VNPay's IPN rules
/// prescribe: existence, then amount, then whether a result is still awaited. A payment
/// closed without money still accepts a success: late money goes to the saga, which
/// re-reserves the tickets or marks the order for refund.
pub fn check_order(notification: &VerifiedNotification, standing: &OrderStanding) -> Disposition {
    match *standing {
        OrderStanding::NotFound => Disposition::OrderNotFound,
        OrderStanding::Found { amount, .. } if amount != notification.amount => {
            Disposition::AmountMismatch
        }
        OrderStanding::Found { payment, .. } => match payment {
            PaymentStanding::Awaiting => Disposition::Accepted,
            PaymentStanding::ClosedUnpaid if notification.outcome.is_success() => {
                Disposition::Accepted
            }
            PaymentStanding::ClosedUnpaid | PaymentStanding::Paid => Disposition::AlreadySettled,
        },
    }
}

/// An HTTP answer to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub status: u16,
    /// JSON (`application/json`).
    pub body: String,
}

/// Inbound notification as received by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// The raw request body (PayOS, ZaloPay, sandbox).
    Body(&'a str),
    /// The raw query string, with or without the leading `?` (VNPay IPN).
    Query(&'a str),
}

/// One configured provider: the single entry point the shell needs.
#[derive(Debug, Clone)]
pub enum Gateway {
    Payos(PayosConfig),
    Vnpay(VnpayConfig),
    Zalopay(ZalopayConfig),
    Sandbox(SandboxConfig),
}

impl Gateway {
    /// Builds a real provider's gateway from the secrets the API contract names (`PAYOS_*`,
    /// `VNPAY_*`, `ZALOPAY_*`), read through `lookup` (the shell's access to its bindings).
    /// API bases default to PayOS's only API and VNPay's and ZaloPay's sandboxes. The sandbox
    /// provider has no contract secrets: build [`SandboxConfig`] directly.
    pub fn from_secrets(
        provider: Provider,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Gateway, PaymentError> {
        let optional = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &str| {
            optional(name).ok_or_else(|| PaymentError::Misconfigured(format!("{name} is not set")))
        };
        match provider {
            Provider::Payos => Ok(Gateway::Payos(PayosConfig {
                client_id: required("PAYOS_CLIENT_ID")?,
                api_key: required("PAYOS_API_KEY")?,
                checksum_key: required("PAYOS_CHECKSUM_KEY")?,
                api_base: optional("PAYOS_API_BASE")
                    .unwrap_or_else(|| payos::DEFAULT_API_BASE.into()),
            })),
            Provider::Vnpay => Ok(Gateway::Vnpay(VnpayConfig {
                tmn_code: required("VNPAY_TMN_CODE")?,
                hash_secret: required("VNPAY_HASH_SECRET")?,
                pay_url: optional("VNPAY_PAY_URL").unwrap_or_else(|| vnpay::SANDBOX_PAY_URL.into()),
                api_url: optional("VNPAY_API_URL").unwrap_or_else(|| vnpay::SANDBOX_API_URL.into()),
            })),
            Provider::Zalopay => {
                let app_id = required("ZALOPAY_APP_ID")?;
                Ok(Gateway::Zalopay(ZalopayConfig {
                    app_id: app_id.trim().parse().map_err(|_| {
                        PaymentError::Misconfigured(format!(
                            "ZALOPAY_APP_ID {app_id:?} is not a number"
                        ))
                    })?,
                    key1: required("ZALOPAY_KEY1")?,
                    key2: required("ZALOPAY_KEY2")?,
                    api_base: optional("ZALOPAY_API_BASE")
                        .unwrap_or_else(|| zalopay::SANDBOX_API_BASE.into()),
                }))
            }
            Provider::Sandbox => Err(PaymentError::Misconfigured(
                "the sandbox is configured by the shell, not from provider secrets".into(),
            )),
        }
    }

    pub fn provider(&self) -> Provider {
        match self {
            Gateway::Payos(_) => Provider::Payos,
            Gateway::Vnpay(_) => Provider::Vnpay,
            Gateway::Zalopay(_) => Provider::Zalopay,
            Gateway::Sandbox(_) => Provider::Sandbox,
        }
    }

    pub fn plan_create(&self, intent: &PaymentIntent) -> Result<CreatePlan, PaymentError> {
        match self {
            Gateway::Payos(cfg) => payos::plan_create(cfg, intent),
            Gateway::Vnpay(cfg) => vnpay::plan_create(cfg, intent),
            Gateway::Zalopay(cfg) => zalopay::plan_create(cfg, intent),
            Gateway::Sandbox(cfg) => sandbox::plan_create(cfg, intent),
        }
    }

    /// Only meaningful after [`CreateStep::Http`]; redirect-only providers say so with an error.
    pub fn parse_create_response(
        &self,
        status: u16,
        body: &str,
    ) -> Result<CreatedPayment, PaymentError> {
        match self {
            Gateway::Payos(cfg) => payos::parse_create_response(cfg, status, body),
            Gateway::Zalopay(_) => zalopay::parse_create_response(status, body),
            Gateway::Vnpay(_) | Gateway::Sandbox(_) => Err(PaymentError::Unsupported(format!(
                "{} creates payments without an HTTP call",
                self.provider()
            ))),
        }
    }

    /// Verifies a notification; the input kind must match the provider (query for VNPay only).
    pub fn verify(&self, inbound: Inbound<'_>) -> Result<VerifiedNotification, PaymentError> {
        match (self, inbound) {
            (Gateway::Payos(cfg), Inbound::Body(raw)) => payos::verify_webhook(cfg, raw),
            (Gateway::Vnpay(cfg), Inbound::Query(raw)) => vnpay::verify_ipn(cfg, raw),
            (Gateway::Zalopay(cfg), Inbound::Body(raw)) => zalopay::verify_callback(cfg, raw),
            (Gateway::Sandbox(cfg), Inbound::Body(raw)) => {
                sandbox::verify_sandbox_webhook(raw, &cfg.secret)
            }
            _ => Err(PaymentError::Malformed(format!(
                "{} notifications do not arrive this way",
                self.provider()
            ))),
        }
    }

    pub fn acknowledge(&self, disposition: Disposition) -> Acknowledgement {
        match self {
            Gateway::Payos(_) => payos::acknowledge(disposition),
            Gateway::Vnpay(_) => vnpay::IpnAnswer::from(disposition).acknowledgement(),
            Gateway::Zalopay(_) => zalopay::acknowledge(disposition),
            Gateway::Sandbox(_) => sandbox::acknowledge(disposition),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared primitives.

pub(crate) fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this arm is unreachable; an empty tag never verifies.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

pub(crate) fn hmac_sha512_hex(key: &[u8], message: &[u8]) -> String {
    match <Hmac<Sha512> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Compares our lowercase hex tag with the received text in constant time. The providers' own
/// code compares strings with `===`, so uppercase or padded hex must fail, as it does there.
pub(crate) fn tag_matches(expected_hex: &str, received: &str) -> bool {
    !expected_hex.is_empty() && bool::from(expected_hex.as_bytes().ct_eq(received.as_bytes()))
}

/// JavaScript's default `Array.prototype.sort` order: UTF-16 code units, not code points.
pub(crate) fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Wall-clock time in Vietnam (GMT+7, no daylight saving), which VNPay and ZaloPay dates use.
/// Read from a clock, so its year has four digits (chrono writes a sign beyond 9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VietnamTime(DateTime<FixedOffset>);

impl VietnamTime {
    const OFFSET_SECONDS: i32 = 7 * 3600;

    pub fn from_unix_ms(ms: i64) -> VietnamTime {
        // A constant offset well inside a day, so `east_opt` cannot refuse it.
        let offset = FixedOffset::east_opt(Self::OFFSET_SECONDS).unwrap_or(Utc.fix());
        VietnamTime(crate::domain::time::utc(ms).with_timezone(&offset))
    }

    /// `yyyyMMddHHmmss`, VNPay's date format.
    pub fn compact(&self) -> String {
        self.0.format("%Y%m%d%H%M%S").to_string()
    }

    /// `yymmdd`, ZaloPay's `app_trans_id` prefix.
    pub fn yymmdd(&self) -> String {
        self.0.format("%y%m%d").to_string()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The provider vectors, shipped with the repository (tests/fixtures/payments.json).
    use serde_json::Value;

    pub const PAYMENTS_JSON: &str = include_str!("../../tests/fixtures/payments.json");

    pub fn vectors() -> Value {
        serde_json::from_str(PAYMENTS_JSON).expect("payments.json is valid JSON")
    }

    pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("fixture has no string at {pointer}"))
    }

    pub fn list<'a>(v: &'a Value, pointer: &str) -> &'a Vec<Value> {
        let list = v
            .pointer(pointer)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("fixture has no array at {pointer}"));
        assert!(!list.is_empty(), "fixture array {pointer} is empty");
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(amount: i64) -> VerifiedNotification {
        VerifiedNotification {
            provider: Provider::Sandbox,
            order_ref: "ORD-1".into(),
            provider_txn_id: "txn-1".into(),
            amount,
            outcome: PaymentOutcome::Succeeded,
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn provider_names_round_trip_through_from_str_and_serde() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>(), Ok(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert_eq!(
            "PayOS".parse::<Provider>(),
            Err(PaymentError::UnknownProvider("PayOS".into()))
        );
    }

    #[test]
    fn check_order_prefers_not_found_then_amount_then_settled() {
        let n = notification(150_000);
        assert_eq!(
            check_order(&n, &OrderStanding::NotFound),
            Disposition::OrderNotFound
        );
        let wrong_amount_and_settled = OrderStanding::Found {
            amount: 100_000,
            payment: PaymentStanding::Paid,
        };
        assert_eq!(
            check_order(&n, &wrong_amount_and_settled),
            Disposition::AmountMismatch
        );
        let settled = OrderStanding::Found {
            amount: 150_000,
            payment: PaymentStanding::Paid,
        };
        assert_eq!(check_order(&n, &settled), Disposition::AlreadySettled);
        let pending = OrderStanding::Found {
            amount: 150_000,
            payment: PaymentStanding::Awaiting,
        };
        assert_eq!(check_order(&n, &pending), Disposition::Accepted);
    }

    #[test]
    fn money_for_a_payment_closed_without_money_is_accepted_but_a_late_failure_is_not() {
        let closed = OrderStanding::Found {
            amount: 150_000,
            payment: PaymentStanding::from_status("CANCELLED"),
        };
        let paid = notification(150_000);
        assert_eq!(check_order(&paid, &closed), Disposition::Accepted);
        let declined = OrderStanding::Found {
            amount: 150_000,
            payment: PaymentStanding::from_status("FAILED"),
        };
        assert_eq!(check_order(&paid, &declined), Disposition::Accepted);
        let failed_again = VerifiedNotification {
            outcome: PaymentOutcome::Failed {
                code: "24".into(),
                reason: "cancelled".into(),
            },
            ..notification(150_000)
        };
        assert_eq!(
            check_order(&failed_again, &closed),
            Disposition::AlreadySettled
        );
        assert_eq!(
            check_order(&failed_again, &declined),
            Disposition::AlreadySettled
        );
        // Still checked for the amount first.
        assert_eq!(
            check_order(&notification(1), &closed),
            Disposition::AmountMismatch
        );
        assert_eq!(
            PaymentStanding::from_status("PENDING"),
            PaymentStanding::Awaiting
        );
        assert_eq!(
            PaymentStanding::from_status("COMPLETED"),
            PaymentStanding::Paid
        );
    }

    #[test]
    fn vietnam_time_is_seven_hours_ahead_of_utc_across_the_date_line() {
        // 2024-01-14T18:30:00Z is already 2024-01-15 01:30 in Hanoi.
        let t = VietnamTime::from_unix_ms(1_705_257_000_000);
        assert_eq!(t.compact(), "20240115013000");
        assert_eq!(t.yymmdd(), "240115");
        // 2024-02-29T16:59:59.999Z is the last second of a leap day in Hanoi.
        assert_eq!(
            VietnamTime::from_unix_ms(1_709_225_999_999).compact(),
            "20240229235959"
        );
        assert_eq!(VietnamTime::from_unix_ms(0).compact(), "19700101070000");
        assert_eq!(
            VietnamTime::from_unix_ms(-25_200_001).compact(),
            "19691231235959"
        );
        // 2100-03-01T00:00:00+07:00: 2100 is not a leap year.
        assert_eq!(
            VietnamTime::from_unix_ms(4_107_517_200_000).compact(),
            "21000301000000"
        );
    }

    #[test]
    fn a_notification_survives_the_queue_as_json() {
        let mut n = notification(150_000);
        n.outcome = PaymentOutcome::Failed {
            code: "24".into(),
            reason: "cancelled".into(),
        };
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["providerTxnId"], "txn-1");
        assert_eq!(json["outcome"]["status"], "failed");
        assert_eq!(
            serde_json::from_value::<VerifiedNotification>(json).unwrap(),
            n
        );
    }

    #[test]
    fn gateways_are_built_from_the_contract_secrets() {
        let secrets = |name: &str| match name {
            "ZALOPAY_APP_ID" => Some(" 2553 ".to_owned()),
            "ZALOPAY_KEY1" | "ZALOPAY_KEY2" => Some("k".to_owned()),
            "VNPAY_TMN_CODE" => Some("TMN".to_owned()),
            "VNPAY_HASH_SECRET" => Some("".to_owned()),
            _ => None,
        };
        match Gateway::from_secrets(Provider::Zalopay, secrets) {
            Ok(Gateway::Zalopay(cfg)) => {
                assert_eq!(cfg.app_id, 2553);
                assert_eq!(cfg.api_base, zalopay::SANDBOX_API_BASE);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Gateway::from_secrets(Provider::Vnpay, secrets).unwrap_err(),
            PaymentError::Misconfigured("VNPAY_HASH_SECRET is not set".into())
        );
        assert!(Gateway::from_secrets(Provider::Payos, secrets).is_err());
        assert!(Gateway::from_secrets(Provider::Sandbox, secrets).is_err());
    }

    #[test]
    fn tags_compare_exactly() {
        assert!(tag_matches("ab12", "ab12"));
        assert!(!tag_matches("ab12", "AB12"));
        assert!(!tag_matches("ab12", "ab1"));
        assert!(!tag_matches("ab12", "ab12 "));
        assert!(!tag_matches("", ""));
    }

    #[test]
    fn utf16_order_differs_from_byte_order_above_the_bmp() {
        // U+FF61 sorts after U+1F600 in UTF-16 (0xFF61 > 0xD83D) but before it in UTF-8.
        assert_eq!(
            cmp_utf16("\u{FF61}", "\u{1F600}"),
            std::cmp::Ordering::Greater
        );
        assert!("\u{FF61}" < "\u{1F600}");
    }
}
