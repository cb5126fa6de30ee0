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
mod tests;

#[cfg(test)]
mod status_tests;
