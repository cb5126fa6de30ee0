//! PayOS: payment-link creation, its response, a link's status, and webhook verification, bit-exact with @payos/node 2.0.5.
//!
//! PayOS signs webhooks over a canonical string that the SDK builds with JavaScript semantics
//! (key order, `String()` of numbers, `JSON.stringify` of arrays). A verifier that differs from
//! the SDK in any corner rejects genuine webhooks or, worse, accepts what the SDK would not, so
//! `JsValue` models exactly the part of JavaScript the SDK touches.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{
    hmac_sha256_hex, tag_matches, Acknowledgement, CreatePlan, CreateStep, CreatedPayment,
    Disposition, HttpMethod, OutboundRequest, PaymentError, PaymentIntent, PaymentOutcome,
    Provider, VerifiedNotification,
};
use crate::domain::refunds::PaymentQueryAnswer;

pub const DEFAULT_API_BASE: &str = "https://api-merchant.payos.vn";

/// PayOS rejects longer descriptions for bank accounts not linked through PayOS.
pub const MAX_DESCRIPTION_CHARS: usize = 25;

/// PayOS order codes are JavaScript numbers: integers beyond 2^53 - 1 lose digits.
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Credentials from `PAYOS_CLIENT_ID`, `PAYOS_API_KEY`, `PAYOS_CHECKSUM_KEY`, `PAYOS_API_BASE`.
#[derive(Clone, PartialEq, Eq)]
pub struct PayosConfig {
    pub client_id: String,
    pub api_key: String,
    pub checksum_key: String,
    /// `https://api-merchant.payos.vn` unless overridden.
    pub api_base: String,
}

impl std::fmt::Debug for PayosConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayosConfig")
            .field("client_id", &self.client_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl PayosConfig {
    fn key(&self) -> Result<&[u8], PaymentError> {
        if self.checksum_key.is_empty() {
            return Err(PaymentError::Misconfigured(
                "PAYOS_CHECKSUM_KEY is empty".into(),
            ));
        }
        Ok(self.checksum_key.as_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayosItem {
    pub name: String,
    pub quantity: i64,
    pub price: i64,
}

/// The body of `POST /v2/payment-requests` before signing, fields in the order PayOS documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentLinkRequest {
    pub order_code: i64,
    pub amount: i64,
    pub description: String,
    pub cancel_url: String,
    pub return_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<PayosItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_email: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<i64>,
}

#[derive(Serialize)]
struct SignedPaymentLinkRequest<'a> {
    #[serde(flatten)]
    request: &'a PaymentLinkRequest,
    signature: &'a str,
}

impl PaymentLinkRequest {
    /// Only these five fields are signed, concatenated raw: no URL-encoding, no escaping.
    pub fn canonical_string(&self) -> String {
        format!(
            "amount={}&cancelUrl={}&description={}&orderCode={}&returnUrl={}",
            self.amount, self.cancel_url, self.description, self.order_code, self.return_url
        )
    }

    pub fn signature(&self, checksum_key: &[u8]) -> String {
        hmac_sha256_hex(checksum_key, self.canonical_string().as_bytes())
    }
}

/// Builds the signed create request.
pub fn build_create_request(
    cfg: &PayosConfig,
    request: &PaymentLinkRequest,
) -> Result<OutboundRequest, PaymentError> {
    let signature = request.signature(cfg.key()?);
    let body = serde_json::to_string(&SignedPaymentLinkRequest {
        request,
        signature: &signature,
    })
    .map_err(|e| PaymentError::InvalidIntent(format!("cannot encode PayOS request: {e}")))?;
    Ok(OutboundRequest {
        method: HttpMethod::Post,
        url: format!("{}/v2/payment-requests", cfg.api_base.trim_end_matches('/')),
        headers: vec![
            ("x-client-id".into(), cfg.client_id.clone()),
            ("x-api-key".into(), cfg.api_key.clone()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body,
    })
}

/// Maps our intent onto a PayOS payment link.
pub fn payment_link_request(intent: &PaymentIntent) -> Result<PaymentLinkRequest, PaymentError> {
    intent.require_vnd()?;
    if !(1..=MAX_SAFE_INTEGER).contains(&intent.order_code) {
        return Err(PaymentError::InvalidIntent(format!(
            "PayOS order code must be in 1..=2^53-1, got {}",
            intent.order_code
        )));
    }
    Ok(PaymentLinkRequest {
        order_code: intent.order_code,
        amount: intent.amount,
        description: intent
            .description
            .chars()
            .take(MAX_DESCRIPTION_CHARS)
            .collect(),
        cancel_url: intent.cancel_url.clone(),
        return_url: intent.return_url.clone(),
        items: intent
            .items
            .iter()
            .map(|item| PayosItem {
                name: item.name.clone(),
                quantity: item.quantity,
                price: item.unit_price,
            })
            .collect(),
        buyer_name: intent.buyer_name.clone(),
        buyer_email: intent.buyer_email.clone(),
        expired_at: Some(intent.expires_at_ms.div_euclid(1000)),
    })
}

pub fn plan_create(cfg: &PayosConfig, intent: &PaymentIntent) -> Result<CreatePlan, PaymentError> {
    let request = payment_link_request(intent)?;
    Ok(CreatePlan {
        order_ref: request.order_code.to_string(),
        step: CreateStep::Http(build_create_request(cfg, &request)?),
    })
}

/// A response's `data` the way the SDK accepts it: HTTP 2xx, `code == "00"`, data present, and,
/// when the body carries a signature, that signature over `data`.
fn verified_data(cfg: &PayosConfig, status: u16, body: &str) -> Result<JsObject, PaymentError> {
    let parsed: Option<JsObject> = serde_json::from_str::<JsValue>(body)
        .ok()
        .and_then(JsValue::into_object);
    let Some(mut envelope) = parsed else {
        return Err(PaymentError::UnexpectedResponse {
            status,
            detail: snippet(body),
        });
    };
    let code = envelope.get("code").and_then(JsValue::as_str).unwrap_or("");
    let desc = envelope.get("desc").and_then(JsValue::as_str).unwrap_or("");
    if !(200..300).contains(&status) && code.is_empty() {
        return Err(PaymentError::UnexpectedResponse {
            status,
            detail: snippet(body),
        });
    }
    if !matches!(envelope.get("data"), Some(JsValue::Object(_)))
        || !(200..300).contains(&status)
        || code != "00"
    {
        return Err(PaymentError::ProviderRejected {
            code: code.to_owned(),
            message: desc.to_owned(),
        });
    }
    let data = match envelope.take("data") {
        Some(JsValue::Object(data)) => data,
        _ => return Err(PaymentError::Malformed("PayOS response has no data".into())),
    };
    if let Some(signature) = envelope.get("signature").filter(|s| s.is_truthy()) {
        let expected = hmac_sha256_hex(cfg.key()?, canonical_data(&data)?.as_bytes());
        if !signature
            .as_str()
            .is_some_and(|s| tag_matches(&expected, s))
        {
            return Err(PaymentError::BadSignature);
        }
    }
    Ok(data)
}

/// Reads the create response the way the SDK does ([`verified_data`]).
pub fn parse_create_response(
    cfg: &PayosConfig,
    status: u16,
    body: &str,
) -> Result<CreatedPayment, PaymentError> {
    let data = verified_data(cfg, status, body)?;
    let payment_url = data
        .get("checkoutUrl")
        .and_then(JsValue::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PaymentError::Malformed("PayOS response has no checkoutUrl".into()))?;
    Ok(CreatedPayment {
        payment_url: payment_url.to_owned(),
        provider_ref: data
            .get("paymentLinkId")
            .and_then(JsValue::as_str)
            .map(str::to_owned),
    })
}

/// `GET {api_base}/v2/payment-requests/{orderCode}`: where a payment link stands (reconciliation).
pub fn build_status_request(cfg: &PayosConfig, order_code: &str) -> OutboundRequest {
    OutboundRequest {
        method: HttpMethod::Get,
        url: format!(
            "{}/v2/payment-requests/{order_code}",
            cfg.api_base.trim_end_matches('/')
        ),
        headers: vec![
            ("x-client-id".into(), cfg.client_id.clone()),
            ("x-api-key".into(), cfg.api_key.clone()),
        ],
        body: String::new(),
    }
}

/// Reads a payment link's status, checksum-verified as the SDK's `paymentRequests.get` does.
/// `PAID` carries the transfer's bank reference, the id PayOS's webhook names it by (else the
/// link id, as there); `CANCELLED`/`EXPIRED` closed it without money; anything else is open.
pub fn parse_status_response(
    cfg: &PayosConfig,
    status: u16,
    body: &str,
) -> Result<PaymentQueryAnswer, PaymentError> {
    let data = verified_data(cfg, status, body)?;
    let text = |key: &str| data.get(key).and_then(JsValue::as_str).unwrap_or("");
    Ok(match text("status") {
        "PAID" => {
            let amount = data
                .get("amountPaid")
                .or_else(|| data.get("amount"))
                .and_then(JsValue::as_safe_integer)
                .ok_or_else(|| {
                    PaymentError::Malformed("data.amountPaid is not an integer".into())
                })?;
            let reference = match data.get("transactions") {
                Some(JsValue::Array(transactions)) => transactions.iter().find_map(|t| match t {
                    JsValue::Object(t) => t
                        .get("reference")
                        .and_then(JsValue::as_str)
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned),
                    _ => None,
                }),
                _ => None,
            };
            let provider_txn_id = reference
                .or_else(|| Some(text("id").to_owned()).filter(|id| !id.is_empty()))
                .ok_or_else(|| PaymentError::Malformed("a PAID link without any id".into()))?;
            PaymentQueryAnswer::Paid {
                amount,
                provider_txn_id,
            }
        }
        closed @ ("CANCELLED" | "EXPIRED" | "FAILED") => PaymentQueryAnswer::Failed {
            code: closed.to_owned(),
            reason: text("cancellationReason").to_owned(),
        },
        _ => PaymentQueryAnswer::Pending,
    })
}

/// The string PayOS signs for a webhook's (or a response's) `data` object.
pub fn webhook_canonical_string(raw_body: &str) -> Result<String, PaymentError> {
    let envelope = parse_envelope(raw_body)?;
    match envelope.get("data") {
        Some(JsValue::Object(data)) => canonical_data(data),
        _ => Err(PaymentError::Malformed(
            "PayOS webhook has no data object".into(),
        )),
    }
}

/// Verifies a webhook from its raw body. Only `data` is signed: the top-level `code`, `desc` and
/// `success` can be forged and are ignored; the result is decided on `data.code`.
pub fn verify_webhook(
    cfg: &PayosConfig,
    raw_body: &str,
) -> Result<VerifiedNotification, PaymentError> {
    let key = cfg.key()?;
    let envelope = parse_envelope(raw_body)?;
    let data = match envelope.get("data") {
        Some(JsValue::Object(data)) => data,
        _ => {
            return Err(PaymentError::Malformed(
                "PayOS webhook has no data object".into(),
            ))
        }
    };
    let signature = match envelope.get("signature") {
        Some(JsValue::String(s)) if !s.is_empty() => s,
        _ => return Err(PaymentError::BadSignature),
    };
    let expected = hmac_sha256_hex(key, canonical_data(data)?.as_bytes());
    if !tag_matches(&expected, signature) {
        return Err(PaymentError::BadSignature);
    }

    let order_code = data
        .get("orderCode")
        .and_then(JsValue::as_safe_integer)
        .ok_or_else(|| PaymentError::Malformed("data.orderCode is not an integer".into()))?;
    let amount = data
        .get("amount")
        .and_then(JsValue::as_safe_integer)
        .ok_or_else(|| PaymentError::Malformed("data.amount is not an integer".into()))?;
    let text = |key: &str| data.get(key).and_then(JsValue::as_str).unwrap_or("");
    let code = text("code");
    let outcome = if code == "00" {
        PaymentOutcome::Succeeded
    } else {
        PaymentOutcome::Failed {
            code: code.to_owned(),
            reason: text("desc").to_owned(),
        }
    };
    // The bank reference names the transfer; a link is paid once, so its id is the fallback.
    let provider_txn_id = [text("reference"), text("paymentLinkId")]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("order-{order_code}"));
    let raw = serde_json::from_str::<serde_json::Value>(raw_body)
        .ok()
        .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
        .unwrap_or(serde_json::Value::Null);

    Ok(VerifiedNotification {
        provider: Provider::Payos,
        order_ref: order_code.to_string(),
        provider_txn_id,
        amount,
        outcome,
        raw,
    })
}

/// PayOS wants any 2xx for a delivered webhook, and nothing from us decides its retries except
/// the status, so known-but-unmatched orders (its own test webhook, orderCode 123) get 200 too.
pub fn acknowledge(disposition: Disposition) -> Acknowledgement {
    let (status, success) = match disposition {
        Disposition::Accepted
        | Disposition::AlreadySettled
        | Disposition::OrderNotFound
        | Disposition::AmountMismatch => (200, true),
        Disposition::BadSignature | Disposition::Malformed => (400, false),
        Disposition::RetryLater => (500, false),
    };
    Acknowledgement {
        status,
        body: format!("{{\"success\":{success}}}"),
    }
}

fn parse_envelope(raw_body: &str) -> Result<JsObject, PaymentError> {
    serde_json::from_str::<JsValue>(raw_body)
        .map_err(|e| PaymentError::Malformed(format!("PayOS body is not JSON: {e}")))?
        .into_object()
        .ok_or_else(|| PaymentError::Malformed("PayOS body is not a JSON object".into()))
}

fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

// ---------------------------------------------------------------------------------------------
// The SDK's canonicalisation (`sortObjDataByKey` + `convertObjToQueryStr`), in JavaScript terms.

/// `convertObjToQueryStr(sortObjDataByKey(data))`.
fn canonical_data(data: &JsObject) -> Result<String, PaymentError> {
    let sorted = data.with_sorted_keys();
    let mut out = String::new();
    for (i, (key, value)) in sorted.own_entries().into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        match value {
            JsValue::Array(items) => {
                let resorted = items
                    .iter()
                    .map(sort_obj_data_by_key)
                    .collect::<Result<Vec<_>, _>>()?;
                stringify_into(&JsValue::Array(resorted), &mut out);
            }
            JsValue::Null => {}
            JsValue::String(s) if s == "null" || s == "undefined" => {}
            JsValue::String(s) => out.push_str(s),
            JsValue::CodeUnit(u) => out.push_str(&String::from_utf16_lossy(&[*u])),
            JsValue::Number(n) => out.push_str(&js_number_to_string(*n)),
            JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsValue::Object(_) => out.push_str("[object Object]"),
        }
    }
    Ok(out)
}

/// `sortObjDataByKey(value)` for an array element: `Object.keys` of a primitive wraps it first.
fn sort_obj_data_by_key(value: &JsValue) -> Result<JsValue, PaymentError> {
    let indexed = |values: Vec<JsValue>| {
        JsValue::Object(JsObject::from_entries(
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v)),
        ))
    };
    match value {
        // `Object.keys(null)` throws, so the SDK cannot verify such a webhook at all.
        JsValue::Null => Err(PaymentError::Malformed(
            "PayOS data holds an array with null, which PayOS cannot sign".into(),
        )),
        JsValue::Bool(_) | JsValue::Number(_) => Ok(JsValue::Object(JsObject::default())),
        JsValue::String(s) => Ok(indexed(s.encode_utf16().map(JsValue::CodeUnit).collect())),
        JsValue::CodeUnit(u) => Ok(indexed(vec![JsValue::CodeUnit(*u)])),
        JsValue::Array(items) => Ok(indexed(items.clone())),
        JsValue::Object(o) => Ok(JsValue::Object(o.with_sorted_keys())),
    }
}

/// A JSON value as `JSON.parse` leaves it in JavaScript.
#[derive(Debug, Clone, PartialEq)]
enum JsValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// One UTF-16 code unit (possibly half a surrogate pair): what indexing a string yields.
    CodeUnit(u16),
    Array(Vec<JsValue>),
    Object(JsObject),
}

impl JsValue {
    fn into_object(self) -> Option<JsObject> {
        match self {
            JsValue::Object(o) => Some(o),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            JsValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_safe_integer(&self) -> Option<i64> {
        match *self {
            JsValue::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 => {
                // Exact: |n| <= 2^53 - 1 and integral.
                Some(n as i64)
            }
            _ => None,
        }
    }

    fn is_truthy(&self) -> bool {
        match self {
            JsValue::Null => false,
            JsValue::Bool(b) => *b,
            JsValue::Number(n) => *n != 0.0 && !n.is_nan(),
            JsValue::String(s) => !s.is_empty(),
            JsValue::CodeUnit(_) | JsValue::Array(_) | JsValue::Object(_) => true,
        }
    }
}

/// An ordinary JavaScript object: properties in insertion order, with `JSON.parse`'s handling of
/// duplicate keys (the first occurrence keeps its place, the last value wins).
#[derive(Debug, Clone, PartialEq, Default)]
struct JsObject {
    entries: Vec<(String, JsValue)>,
}

impl JsObject {
    fn from_entries(entries: impl IntoIterator<Item = (String, JsValue)>) -> JsObject {
        let mut object = JsObject::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (key, value) in entries {
            match index.get(&key) {
                Some(&i) => {
                    if let Some(slot) = object.entries.get_mut(i) {
                        slot.1 = value;
                    }
                }
                None => {
                    index.insert(key.clone(), object.entries.len());
                    object.entries.push((key, value));
                }
            }
        }
        object
    }

    fn get(&self, key: &str) -> Option<&JsValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn take(&mut self, key: &str) -> Option<JsValue> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// `Object.keys(o).sort()` then re-inserted: UTF-16 order of the keys.
    fn with_sorted_keys(&self) -> JsObject {
        let mut entries = self.entries.clone();
        entries.sort_by(|a, b| super::cmp_utf16(&a.0, &b.0));
        JsObject { entries }
    }

    /// Property order of `Object.keys`/`JSON.stringify`: array-index keys ascending, then the
    /// rest in insertion order. This is why "10" follows "9" even after a sort.
    fn own_entries(&self) -> Vec<(&str, &JsValue)> {
        let mut indexed: Vec<(u32, &str, &JsValue)> = Vec::new();
        let mut named: Vec<(&str, &JsValue)> = Vec::new();
        for (key, value) in &self.entries {
            match array_index(key) {
                Some(i) => indexed.push((i, key, value)),
                None => named.push((key, value)),
            }
        }
        indexed.sort_by_key(|(i, _, _)| *i);
        indexed
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .chain(named)
            .collect()
    }
}

/// A canonical array index: "0" or digits without a leading zero, below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    let canonical = match bytes {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 10 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&i| i < u64::from(u32::MAX))
        .and_then(|i| u32::try_from(i).ok())
}

impl<'de> Deserialize<'de> for JsValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsValueVisitor)
    }
}

struct JsValueVisitor;

const ARBITRARY_PRECISION_TOKEN: &str = "$serde_json::private::Number";

impl<'de> Visitor<'de> for JsValueVisitor {
    type Value = JsValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsValue, E> {
        Ok(JsValue::Bool(v))
    }

    // Integer literals become doubles in JavaScript; `as` rounds to nearest, ties to even, as
    // JavaScript's number parsing does.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsValue, E> {
        Ok(JsValue::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<JsValue, E> {
        Ok(JsValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            // With serde_json's `arbitrary_precision` feature (if anything in the build enables
            // it), numbers arrive as this one-entry map holding the literal's text.
            if entries.is_empty() && key == ARBITRARY_PRECISION_TOKEN {
                let text: String = map.next_value()?;
                return text
                    .parse::<f64>()
                    .map(JsValue::Number)
                    .map_err(|_| de::Error::custom("invalid number literal"));
            }
            entries.push((key, map.next_value::<JsValue>()?));
        }
        Ok(JsValue::Object(JsObject::from_entries(entries)))
    }
}

/// `JSON.stringify(value)` for values that came from `JSON.parse`.
fn stringify_into(value: &JsValue, out: &mut String) {
    match value {
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) if n.is_finite() => out.push_str(&js_number_to_string(*n)),
        JsValue::Number(_) => out.push_str("null"),
        JsValue::String(s) => quote_utf16(&s.encode_utf16().collect::<Vec<_>>(), out),
        JsValue::CodeUnit(u) => quote_utf16(&[*u], out),
        JsValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                stringify_into(item, out);
            }
            out.push(']');
        }
        JsValue::Object(object) => {
            out.push('{');
            for (i, (key, item)) in object.own_entries().into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote_utf16(&key.encode_utf16().collect::<Vec<_>>(), out);
                out.push(':');
                stringify_into(item, out);
            }
            out.push('}');
        }
    }
}

/// `QuoteJSONString` (ES2019 well-formed stringify): lone surrogates become `\udxxx`.
fn quote_utf16(units: &[u16], out: &mut String) {
    out.push('"');
    for decoded in char::decode_utf16(units.iter().copied()) {
        match decoded {
            Ok('"') => out.push_str("\\\""),
            Ok('\\') => out.push_str("\\\\"),
            Ok('\u{8}') => out.push_str("\\b"),
            Ok('\t') => out.push_str("\\t"),
            Ok('\n') => out.push_str("\\n"),
            Ok('\u{c}') => out.push_str("\\f"),
            Ok('\r') => out.push_str("\\r"),
            Ok(c) if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            Ok(c) => out.push(c),
            Err(lone) => {
                let _ = write!(out, "\\u{:04x}", lone.unpaired_surrogate());
            }
        }
    }
    out.push('"');
}

/// `Number.prototype.toString()` (ECMAScript `Number::toString`, radix 10).
fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n == 0.0 {
        return "0".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // ECMAScript wants the fewest digits that round-trip and, among those, the decimal closest
    // to n (ties to even). Rust's `{:e}` gives the fewest digits but not always the closest
    // (1026992539328426.25 → ...426.3, V8 says ...426.2), so round n exactly to that many digits
    // and keep the result if it still round-trips.
    let shortest = format!("{:e}", n.abs());
    let significant = shortest
        .split_once('e')
        .map_or(shortest.as_str(), |(m, _)| m)
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    let closest = format!("{:.*e}", significant.saturating_sub(1), n.abs());
    let sci = if closest.parse::<f64>() == Ok(n.abs()) {
        closest
    } else {
        shortest
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let k = digits.len() as i64;
    // n = decimal point position: value = 0.digits × 10^n.
    let point = exponent.parse::<i64>().unwrap_or(0) + 1;

    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        let (int, frac) = digits.split_at(point as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = point - 1;
        let _ = write!(out, "e{}{}", if e >= 0 { "+" } else { "-" }, e.abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{list, str_at, vectors};
    use super::super::{Inbound, IntentItem};
    use super::*;
    use serde_json::Value;

    fn config(v: &Value) -> PayosConfig {
        PayosConfig {
            client_id: str_at(v, "/payos/keys/clientId").into(),
            api_key: str_at(v, "/payos/keys/apiKey").into(),
            checksum_key: str_at(v, "/payos/keys/checksumKey").into(),
            api_base: DEFAULT_API_BASE.into(),
        }
    }

    #[test]
    fn every_create_vector_gives_the_sdk_canonical_string_signature_and_http_request() {
        let v = vectors();
        let cfg = config(&v);
        for case in list(&v, "/payos/create_payment_link") {
            let name = str_at(case, "/name");
            let request: PaymentLinkRequest =
                serde_json::from_value(case["input"].clone()).expect("input");
            assert_eq!(
                request.canonical_string(),
                str_at(case, "/canonical_string"),
                "{name}"
            );
            assert_eq!(
                request.signature(cfg.checksum_key.as_bytes()),
                str_at(case, "/signature"),
                "{name}"
            );

            let http = build_create_request(&cfg, &request).expect("request");
            let expected = &case["http_request"];
            assert_eq!(http.method.as_str(), str_at(expected, "/method"), "{name}");
            assert_eq!(http.url, str_at(expected, "/url"), "{name}");
            assert_eq!(http.body, str_at(expected, "/body_raw"), "{name}");
            let expected_headers: Vec<(String, String)> = expected["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("header").to_owned()))
                .collect();
            let mut got = http.headers.clone();
            let mut want = expected_headers;
            got.sort();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn every_webhook_vector_verifies_exactly_as_the_sdk_did() {
        let v = vectors();
        for case in list(&v, "/payos/webhooks") {
            let name = str_at(case, "/name");
            let mut cfg = config(&v);
            if let Some(key) = case["checksum_key_override"].as_str() {
                cfg.checksum_key = key.into();
            }
            let raw = str_at(case, "/raw_body");
            assert_eq!(
                webhook_canonical_string(raw).expect("canonical"),
                str_at(case, "/canonical_string"),
                "{name}"
            );

            let expected_valid = case["expected_valid"].as_bool().expect("expected_valid");
            assert_eq!(
                case["sdk_verify"]["ok"].as_bool(),
                Some(expected_valid),
                "{name}: fixture disagrees with itself"
            );
            let result = verify_webhook(&cfg, raw);
            assert_eq!(result.is_ok(), expected_valid, "{name}: {result:?}");

            let expected_response = &case["expected_merchant_response"];
            let disposition = match &result {
                Ok(_) => Disposition::Accepted,
                Err(e) => Disposition::from(e),
            };
            let ack = acknowledge(disposition);
            assert_eq!(
                Some(u64::from(ack.status)),
                expected_response["http_status"].as_u64(),
                "{name}"
            );
            if let Some(body) = expected_response["body"].as_object() {
                let got: Value = serde_json::from_str(&ack.body).expect("ack JSON");
                assert_eq!(got, Value::Object(body.clone()), "{name}");
            }

            if let Ok(n) = result {
                let data = &case["webhook"]["data"];
                assert_eq!(n.provider, Provider::Payos);
                assert_eq!(
                    Some(n.order_ref.as_str()),
                    Some(data["orderCode"].to_string().as_str()),
                    "{name}"
                );
                assert_eq!(Some(n.amount), data["amount"].as_i64(), "{name}");
                assert_eq!(
                    n.outcome.is_success(),
                    data["code"].as_str() == Some("00"),
                    "{name}: the signed data.code decides, never the top level"
                );
                assert_eq!(
                    n.provider_txn_id,
                    data["reference"].as_str().expect("reference"),
                    "{name}"
                );
                let sent: Value = serde_json::from_str(raw).expect("raw body");
                assert_eq!(n.raw, sent["data"], "{name}");
            }
        }
    }

    #[test]
    fn uppercase_and_wrong_key_signatures_are_bad_signatures_not_malformed() {
        let v = vectors();
        let cfg = config(&v);
        for case in list(&v, "/payos/webhooks") {
            let name = str_at(case, "/name");
            if case["expected_valid"] == Value::Bool(false) {
                assert_eq!(
                    verify_webhook(&cfg, str_at(case, "/raw_body")),
                    Err(PaymentError::BadSignature),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn a_webhook_without_data_or_json_is_malformed() {
        let cfg = config(&vectors());
        for raw in [
            "",
            "[]",
            "{\"signature\":\"ab\"}",
            "{\"data\":\"x\",\"signature\":\"ab\"}",
        ] {
            assert!(
                matches!(verify_webhook(&cfg, raw), Err(PaymentError::Malformed(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn an_empty_checksum_key_verifies_nothing() {
        let v = vectors();
        let mut cfg = config(&v);
        cfg.checksum_key.clear();
        let raw = str_at(&v, "/payos/webhooks/0/raw_body");
        assert!(matches!(
            verify_webhook(&cfg, raw),
            Err(PaymentError::Misconfigured(_))
        ));
    }

    /// Expected strings printed by Node 20: `String(x)` and `JSON.stringify(x)`.
    #[test]
    fn numbers_print_like_javascript() {
        let cases: &[(f64, &str)] = &[
            (150000.0, "150000"),
            (20240115001.0, "20240115001"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1.5e300, "1.5e+300"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.2345e-7, "1.2345e-7"),
            (-0.0, "0"),
            (-42.5, "-42.5"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9007199254740993.0, "9007199254740992"),
            (123.456, "123.456"),
            // Two shortest candidates (.2 and .3) are equally close: JavaScript takes the even one.
            (1_026_992_539_328_426.0 + 0.25, "1026992539328426.2"),
        ];
        for (n, want) in cases {
            assert_eq!(js_number_to_string(*n), *want, "{n:e}");
        }
    }

    fn canonical_of(data_json: &str) -> Result<String, PaymentError> {
        webhook_canonical_string(&format!("{{\"data\":{data_json}}}"))
    }

    /// serde_json's default float parser is off by one ulp for about one literal in eight; the
    /// crate must enable serde_json's `float_roundtrip` (or `arbitrary_precision`) feature.
    /// Expected values are Node 20's `String(JSON.parse(literal))`.
    #[test]
    fn number_literals_are_read_exactly_like_json_parse() {
        let cases: &[(&str, &str)] = &[
            ("8e-130", "8e-130"),
            ("-724817845216330.00", "-724817845216330"),
            ("4075490292.8854733", "4075490292.8854733"),
            ("5.0047475625606100192e-117", "5.00474756256061e-117"),
            ("6.765278576914431e+285", "6.765278576914431e+285"),
            ("12345678901234567890123", "1.2345678901234568e+22"),
        ];
        for (literal, want) in cases {
            assert_eq!(
                canonical_of(&format!("{{\"a\":{literal}}}")),
                Ok(format!("a={want}")),
                "{literal}: is serde_json's float_roundtrip feature enabled?"
            );
        }
    }

    /// Expected strings computed with @payos/node 2.0.5 `convertObjToQueryStr(sortObjDataByKey(JSON.parse(data)))`.
    #[test]
    fn canonical_string_follows_javascript_in_the_corners() {
        let cases: &[(&str, &str)] = &[
            // Array-index keys come first in numeric order even after sorting.
            (r#"{"b":1,"10":"x","9":"y","a":2}"#, "9=y&10=x&a=2&b=1"),
            (r#"{" ":1,"0":2}"#, "0=2& =1"),
            // Number literals as JavaScript reads them.
            (
                r#"{"a":1e21,"b":1.0,"c":-0,"d":0.000001,"e":1E-7,"f":9007199254740993}"#,
                "a=1e+21&b=1&c=0&d=0.000001&e=1e-7&f=9007199254740992",
            ),
            // Duplicate keys: the last value wins.
            (r#"{"a":1,"a":2}"#, "a=2"),
            // Booleans, empty arrays, nested objects and the null-likes.
            (
                r#"{"t":true,"f":false,"e":[],"o":{"x":1},"n":null,"s":"null","u":"undefined","z":""}"#,
                "e=[]&f=false&n=&o=[object Object]&s=&t=true&u=&z=",
            ),
            // Array elements: objects sorted one level only; primitives become index objects.
            (
                r#"{"x":[{"b":{"z":1,"a":[2,1]},"a":"é\n\"q\""},7,true,"ab",[3,4]]}"#,
                r#"x=[{"a":"é\n\"q\"","b":{"z":1,"a":[2,1]}},{},{},{"0":"a","1":"b"},{"0":3,"1":4}]"#,
            ),
            // An astral character splits into two lone surrogates when a string is indexed.
            (r#"{"x":["😀"]}"#, r#"x=[{"0":"\ud83d","1":"\ude00"}]"#),
            // Keys sort by UTF-16 code units.
            ("{\"\u{1F600}\":1,\"\u{FF61}\":2}", "\u{1F600}=1&\u{FF61}=2"),
        ];
        for (data, want) in cases {
            assert_eq!(canonical_of(data).as_deref(), Ok(*want), "{data}");
        }
    }

    #[test]
    fn an_array_holding_null_cannot_be_canonicalised() {
        assert!(matches!(
            canonical_of(r#"{"x":[null]}"#),
            Err(PaymentError::Malformed(_))
        ));
    }

    fn intent() -> PaymentIntent {
        PaymentIntent {
            payment_id: "pay_1".into(),
            order_code: 20240115001,
            order_ref: "ORD20240115001".into(),
            amount: 150000,
            currency: "VND".into(),
            description: "Thanh toan DH 0001".into(),
            return_url: "https://merchant.example/payos/return".into(),
            cancel_url: "https://merchant.example/payos/cancel".into(),
            notify_url: "https://merchant.example/api/payments/webhooks/payos".into(),
            buyer_ref: "user-1".into(),
            buyer_name: Some("Nguyen Van A".into()),
            buyer_email: Some("a@example.com".into()),
            client_ip: "127.0.0.1".into(),
            items: vec![IntentItem {
                id: "sku-001".into(),
                name: "Ao thun".into(),
                quantity: 1,
                unit_price: 150000,
            }],
            now_ms: 1_705_289_400_000,
            expires_at_ms: 1_705_290_300_000,
        }
    }

    #[test]
    fn an_intent_plans_the_same_request_as_the_basic_vector() {
        let v = vectors();
        let cfg = config(&v);
        let plan = plan_create(&cfg, &intent()).expect("plan");
        assert_eq!(plan.order_ref, "20240115001");
        let CreateStep::Http(http) = plan.step else {
            panic!("PayOS needs an HTTP call")
        };
        assert_eq!(
            http.body,
            str_at(&v, "/payos/create_payment_link/0/http_request/body_raw")
        );
    }

    #[test]
    fn intents_payos_cannot_take_are_refused() {
        let cfg = config(&vectors());
        let mut big = intent();
        big.order_code = MAX_SAFE_INTEGER + 1;
        let mut usd = intent();
        usd.currency = "USD".into();
        let mut free = intent();
        free.amount = 0;
        for bad in [big, usd, free] {
            assert!(matches!(
                plan_create(&cfg, &bad),
                Err(PaymentError::InvalidIntent(_))
            ));
        }
        let mut long = intent();
        long.description = "Thanh toán đơn hàng ORD20240115001 vé VIP".into();
        let request = payment_link_request(&long).expect("request");
        assert_eq!(request.description.chars().count(), MAX_DESCRIPTION_CHARS);
    }

    /// A create response signed with @payos/node 2.0.5 `createSignatureFromObj(data, checksumKey)`
    /// using the fixture's checksum key.
    const SIGNED_CREATE_RESPONSE: &str = r#"{"code":"00","desc":"success","data":{"bin":"970422","accountNumber":"113366668888","accountName":"QUY VAC XIN PHONG CHONG COVID","amount":150000,"description":"Thanh toan DH 0001","orderCode":20240115001,"currency":"VND","paymentLinkId":"0123456789abcdef0123456789abcdef","status":"PENDING","expiredAt":1705290300,"checkoutUrl":"https://pay.payos.vn/web/0123456789abcdef0123456789abcdef","qrCode":"00020101021238570010A000000727"},"signature":"SIGNATURE"}"#;

    fn signed_create_response(cfg: &PayosConfig) -> String {
        let canonical = webhook_canonical_string(SIGNED_CREATE_RESPONSE).expect("canonical");
        SIGNED_CREATE_RESPONSE.replace(
            "SIGNATURE",
            &hmac_sha256_hex(cfg.checksum_key.as_bytes(), canonical.as_bytes()),
        )
    }

    #[test]
    fn a_signed_create_response_yields_the_checkout_url() {
        let cfg = config(&vectors());
        let body = signed_create_response(&cfg);
        assert_eq!(
            parse_create_response(&cfg, 200, &body),
            Ok(CreatedPayment {
                payment_url: "https://pay.payos.vn/web/0123456789abcdef0123456789abcdef".into(),
                provider_ref: Some("0123456789abcdef0123456789abcdef".into()),
            })
        );
        let tampered = body.replace("\"amount\":150000", "\"amount\":1");
        assert_eq!(
            parse_create_response(&cfg, 200, &tampered),
            Err(PaymentError::BadSignature)
        );
        let unsigned = SIGNED_CREATE_RESPONSE.replace(",\"signature\":\"SIGNATURE\"", "");
        assert!(parse_create_response(&cfg, 200, &unsigned).is_ok());
    }

    #[test]
    fn refusals_and_outages_are_told_apart() {
        let cfg = config(&vectors());
        assert_eq!(
            parse_create_response(
                &cfg,
                200,
                r#"{"code":"231","desc":"Đơn thanh toán đã tồn tại","data":null}"#
            ),
            Err(PaymentError::ProviderRejected {
                code: "231".into(),
                message: "Đơn thanh toán đã tồn tại".into()
            })
        );
        assert!(matches!(
            parse_create_response(&cfg, 401, r#"{"code":"401","desc":"Unauthorized"}"#),
            Err(PaymentError::ProviderRejected { .. })
        ));
        assert!(matches!(
            parse_create_response(&cfg, 502, "<html>Bad gateway</html>"),
            Err(PaymentError::UnexpectedResponse { status: 502, .. })
        ));
    }

    #[test]
    fn the_gateway_routes_payos_webhooks_to_this_module() {
        let v = vectors();
        let gateway = super::super::Gateway::Payos(config(&v));
        let raw = str_at(&v, "/payos/webhooks/0/raw_body");
        assert!(gateway.verify(Inbound::Body(raw)).is_ok());
        assert!(gateway.verify(Inbound::Query(raw)).is_err());
        assert_eq!(
            gateway.acknowledge(Disposition::Accepted).body,
            r#"{"success":true}"#
        );
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;
    use serde_json::Value;

    const REFUNDS_JSON: &str = include_str!("../../tests/fixtures/refunds.json");

    fn setup() -> (PayosConfig, Value) {
        let v: Value = serde_json::from_str(REFUNDS_JSON).expect("refunds.json is valid JSON");
        let keys = &v["payos"]["keys"];
        let cfg = PayosConfig {
            client_id: keys["clientId"].as_str().expect("client").into(),
            api_key: keys["apiKey"].as_str().expect("key").into(),
            checksum_key: keys["checksumKey"].as_str().expect("checksum").into(),
            api_base: DEFAULT_API_BASE.into(),
        };
        (cfg, v["payos"]["get_payment_request"].clone())
    }

    #[test]
    fn the_status_request_is_the_one_the_sdk_sends() {
        let (cfg, case) = setup();
        let http = build_status_request(&cfg, "20240115001");
        assert_eq!(http.method, HttpMethod::Get);
        assert_eq!(
            Some(http.url.as_str()),
            case["http_request"]["url"].as_str()
        );
        for (name, value) in &http.headers {
            assert_eq!(
                case["http_request"]["headers"][name].as_str(),
                Some(value.as_str()),
                "{name}"
            );
        }
    }

    #[test]
    fn answers_the_sdk_accepts_are_read_and_a_forged_one_is_refused_as_there() {
        let (cfg, case) = setup();
        assert_eq!(case["sdk_accepted_paid"], true);
        assert_eq!(
            parse_status_response(&cfg, 200, &case["response_paid"].to_string()),
            Ok(PaymentQueryAnswer::Paid {
                amount: 150_000,
                provider_txn_id: "FT24015123456789".into()
            })
        );
        assert_eq!(case["sdk_accepted_pending"], true);
        assert_eq!(
            parse_status_response(&cfg, 200, &case["response_pending"].to_string()),
            Ok(PaymentQueryAnswer::Pending)
        );
        assert_eq!(case["sdk_rejected_forged"], "InvalidSignatureError");
        assert_eq!(
            parse_status_response(&cfg, 200, &case["response_forged"].to_string()),
            Err(PaymentError::BadSignature)
        );
    }

    #[test]
    fn closed_links_and_refusals_are_told_apart() {
        let (cfg, _) = setup();
        let expired = r#"{"code":"00","desc":"success","data":{"status":"EXPIRED","orderCode":1,"amount":1}}"#;
        assert!(matches!(
            parse_status_response(&cfg, 200, expired),
            Ok(PaymentQueryAnswer::Failed { .. })
        ));
        let unknown = r#"{"code":"101","desc":"Payment link not found","data":null}"#;
        assert!(matches!(
            parse_status_response(&cfg, 200, unknown),
            Err(PaymentError::ProviderRejected { .. })
        ));
        assert!(matches!(
            parse_status_response(&cfg, 502, "bad gateway"),
            Err(PaymentError::UnexpectedResponse { status: 502, .. })
        ));
    }
}
