//! ZaloPay v2: order creation (MAC with key1), order query, refund and refund query, and the payment callback (MAC with key2).
//!
//! The callback's `data` is a JSON *string*; its MAC covers those exact bytes, so it is verified
//! before anything parses it and is never re-serialised.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    hmac_sha256_hex, tag_matches, Acknowledgement, CreatePlan, CreateStep, CreatedPayment,
    Disposition, HttpMethod, OutboundRequest, PaymentError, PaymentIntent, PaymentOutcome,
    Provider, VerifiedNotification, VietnamTime,
};
use crate::domain::refunds::{PaymentQueryAnswer, ProviderAnswer};

pub const SANDBOX_API_BASE: &str = "https://sb-openapi.zalopay.vn";
pub const PRODUCTION_API_BASE: &str = "https://openapi.zalopay.vn";
pub const MAX_APP_TRANS_ID_LEN: usize = 40;
/// ZaloPay's bounds for `expire_duration_seconds`.
const EXPIRE_SECONDS: std::ops::RangeInclusive<i64> = 300..=2_592_000;

/// Credentials from `ZALOPAY_APP_ID`, `ZALOPAY_KEY1`, `ZALOPAY_KEY2`, `ZALOPAY_API_BASE`.
#[derive(Clone, PartialEq, Eq)]
pub struct ZalopayConfig {
    pub app_id: i64,
    /// Signs our requests.
    pub key1: String,
    /// Verifies ZaloPay's callbacks.
    pub key2: String,
    /// [`SANDBOX_API_BASE`] or [`PRODUCTION_API_BASE`].
    pub api_base: String,
}

impl std::fmt::Debug for ZalopayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZalopayConfig")
            .field("app_id", &self.app_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl ZalopayConfig {
    fn key1(&self) -> Result<&[u8], PaymentError> {
        if self.key1.is_empty() {
            return Err(PaymentError::Misconfigured("ZALOPAY_KEY1 is empty".into()));
        }
        Ok(self.key1.as_bytes())
    }

    fn key2(&self) -> Result<&[u8], PaymentError> {
        if self.key2.is_empty() {
            return Err(PaymentError::Misconfigured("ZALOPAY_KEY2 is empty".into()));
        }
        Ok(self.key2.as_bytes())
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.api_base.trim_end_matches('/'))
    }
}

/// A `/v2/create` order before its MAC, fields in the order ZaloPay documents them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZalopayOrder {
    pub app_id: i64,
    pub app_user: String,
    pub app_trans_id: String,
    /// Unix milliseconds.
    pub app_time: i64,
    pub amount: i64,
    /// JSON array as a string (`[]` when empty).
    pub item: String,
    /// JSON object as a string (`{}` when empty).
    pub embed_data: String,
    pub description: String,
    #[serde(default)]
    pub bank_code: String,
    pub callback_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_duration_seconds: Option<i64>,
}

#[derive(Serialize)]
struct MacedOrder<'a> {
    #[serde(flatten)]
    order: &'a ZalopayOrder,
    mac: &'a str,
}

impl ZalopayOrder {
    pub fn mac_input(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.app_id,
            self.app_trans_id,
            self.app_user,
            self.amount,
            self.app_time,
            self.embed_data,
            self.item
        )
    }

    pub fn mac(&self, key1: &[u8]) -> String {
        hmac_sha256_hex(key1, self.mac_input().as_bytes())
    }

    /// `application/x-www-form-urlencoded` body.
    pub fn form_body(&self, mac: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("app_id", &self.app_id.to_string())
            .append_pair("app_user", &self.app_user)
            .append_pair("app_trans_id", &self.app_trans_id)
            .append_pair("app_time", &self.app_time.to_string())
            .append_pair("amount", &self.amount.to_string())
            .append_pair("item", &self.item)
            .append_pair("embed_data", &self.embed_data)
            .append_pair("description", &self.description)
            .append_pair("bank_code", &self.bank_code)
            .append_pair("callback_url", &self.callback_url);
        if let Some(seconds) = self.expire_duration_seconds {
            form.append_pair("expire_duration_seconds", &seconds.to_string());
        }
        form.append_pair("mac", mac).finish()
    }

    /// `application/json` body, which ZaloPay accepts as well.
    pub fn json_body(&self, mac: &str) -> Result<String, PaymentError> {
        serde_json::to_string(&MacedOrder { order: self, mac })
            .map_err(|e| PaymentError::InvalidIntent(format!("cannot encode ZaloPay order: {e}")))
    }
}

/// `yymmdd` of `now` in Vietnam, `_`, our reference: ZaloPay rejects other date prefixes.
pub fn app_trans_id(now_ms: i64, order_ref: &str) -> Result<String, PaymentError> {
    if order_ref.is_empty() {
        return Err(PaymentError::InvalidIntent(
            "ZaloPay needs an order reference".into(),
        ));
    }
    let id = format!("{}_{order_ref}", VietnamTime::from_unix_ms(now_ms).yymmdd());
    if id.len() > MAX_APP_TRANS_ID_LEN {
        return Err(PaymentError::InvalidIntent(format!(
            "app_trans_id {id} is longer than {MAX_APP_TRANS_ID_LEN} characters"
        )));
    }
    Ok(id)
}

#[derive(Serialize)]
struct OrderItem<'a> {
    itemid: &'a str,
    itemname: &'a str,
    itemprice: i64,
    itemquantity: i64,
}

#[derive(Serialize)]
struct EmbedData<'a> {
    /// Where ZaloPay's page sends the buyer afterwards.
    redirecturl: &'a str,
}

pub fn order_from_intent(
    cfg: &ZalopayConfig,
    intent: &PaymentIntent,
) -> Result<ZalopayOrder, PaymentError> {
    intent.require_vnd()?;
    if intent.buyer_ref.is_empty() {
        return Err(PaymentError::InvalidIntent(
            "ZaloPay needs the buyer's id (app_user)".into(),
        ));
    }
    let encode = |e: serde_json::Error| {
        PaymentError::InvalidIntent(format!("cannot encode ZaloPay order: {e}"))
    };
    let items: Vec<OrderItem<'_>> = intent
        .items
        .iter()
        .map(|item| OrderItem {
            itemid: &item.id,
            itemname: &item.name,
            itemprice: item.unit_price,
            itemquantity: item.quantity,
        })
        .collect();
    let lifetime_seconds = intent.expires_at_ms.saturating_sub(intent.now_ms) / 1000;
    Ok(ZalopayOrder {
        app_id: cfg.app_id,
        app_user: intent.buyer_ref.clone(),
        app_trans_id: app_trans_id(intent.now_ms, &intent.order_ref)?,
        app_time: intent.now_ms,
        amount: intent.amount,
        item: serde_json::to_string(&items).map_err(encode)?,
        embed_data: serde_json::to_string(&EmbedData {
            redirecturl: &intent.return_url,
        })
        .map_err(encode)?,
        description: intent.description.clone(),
        bank_code: String::new(),
        callback_url: intent.notify_url.clone(),
        expire_duration_seconds: Some(
            lifetime_seconds.clamp(*EXPIRE_SECONDS.start(), *EXPIRE_SECONDS.end()),
        ),
    })
}

/// `POST {api_base}/v2/create`, form-encoded.
pub fn build_create_request(
    cfg: &ZalopayConfig,
    order: &ZalopayOrder,
) -> Result<OutboundRequest, PaymentError> {
    let mac = order.mac(cfg.key1()?);
    Ok(OutboundRequest {
        method: HttpMethod::Post,
        url: cfg.endpoint("/v2/create"),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: order.form_body(&mac),
    })
}

pub fn plan_create(
    cfg: &ZalopayConfig,
    intent: &PaymentIntent,
) -> Result<CreatePlan, PaymentError> {
    let order = order_from_intent(cfg, intent)?;
    Ok(CreatePlan {
        step: CreateStep::Http(build_create_request(cfg, &order)?),
        order_ref: order.app_trans_id,
    })
}

#[derive(Deserialize)]
struct CreateResponse {
    return_code: i64,
    #[serde(default)]
    return_message: String,
    #[serde(default)]
    sub_return_code: Option<i64>,
    #[serde(default)]
    sub_return_message: String,
    #[serde(default)]
    order_url: String,
    #[serde(default)]
    zp_trans_token: Option<String>,
}

/// `return_code` 1 carries `order_url`; anything else is a refusal, detailed by `sub_return_*`.
pub fn parse_create_response(status: u16, body: &str) -> Result<CreatedPayment, PaymentError> {
    let unexpected = || PaymentError::UnexpectedResponse {
        status,
        detail: body.chars().take(200).collect(),
    };
    if !(200..300).contains(&status) {
        return Err(unexpected());
    }
    let response: CreateResponse = serde_json::from_str(body).map_err(|_| unexpected())?;
    if response.return_code != 1 {
        let (code, message) = match response.sub_return_code {
            Some(sub) => (sub, response.sub_return_message),
            None => (response.return_code, response.return_message),
        };
        return Err(PaymentError::ProviderRejected {
            code: code.to_string(),
            message,
        });
    }
    if response.order_url.is_empty() {
        return Err(PaymentError::Malformed(
            "ZaloPay response has no order_url".into(),
        ));
    }
    Ok(CreatedPayment {
        payment_url: response.order_url,
        provider_ref: response.zp_trans_token,
    })
}

/// `POST {api_base}/v2/query` for an order whose callback never came.
pub fn build_query_request(
    cfg: &ZalopayConfig,
    app_trans_id: &str,
) -> Result<OutboundRequest, PaymentError> {
    let key1 = cfg.key1()?;
    let mac = hmac_sha256_hex(key1, query_mac_input(cfg, app_trans_id).as_bytes());
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("app_id", &cfg.app_id.to_string())
        .append_pair("app_trans_id", app_trans_id)
        .append_pair("mac", &mac)
        .finish();
    Ok(OutboundRequest {
        method: HttpMethod::Post,
        url: cfg.endpoint("/v2/query"),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body,
    })
}

/// `app_id|app_trans_id|key1`: the key itself is part of the signed string.
pub fn query_mac_input(cfg: &ZalopayConfig, app_trans_id: &str) -> String {
    format!("{}|{app_trans_id}|{}", cfg.app_id, cfg.key1)
}

/// What `/v2/query` says about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    Paid {
        amount: i64,
        zp_trans_id: String,
    },
    /// Still open (not paid yet, or being processed).
    Pending,
    Failed {
        code: String,
        message: String,
    },
}

/// Reads a `/v2/query` answer: `return_code` 1 paid, 2 failed, 3 pending.
pub fn parse_query_response(status: u16, body: &str) -> Result<QueryStatus, PaymentError> {
    let unexpected = || PaymentError::UnexpectedResponse {
        status,
        detail: body.chars().take(200).collect(),
    };
    if !(200..300).contains(&status) {
        return Err(unexpected());
    }
    let v: Value = serde_json::from_str(body).map_err(|_| unexpected())?;
    let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    match v.get("return_code").and_then(Value::as_i64) {
        Some(1) => Ok(QueryStatus::Paid {
            amount: v.get("amount").and_then(Value::as_i64).unwrap_or(0),
            zp_trans_id: v.get("zp_trans_id").map(id_text).unwrap_or_default(),
        }),
        Some(3) => Ok(QueryStatus::Pending),
        Some(code) => Ok(QueryStatus::Failed {
            code: v
                .get("sub_return_code")
                .and_then(Value::as_i64)
                .unwrap_or(code)
                .to_string(),
            message: text("sub_return_message"),
        }),
        None => Err(unexpected()),
    }
}

/// ZaloPay ids are JSON numbers (or strings in some answers); either way as decimal text.
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Verifies a payment callback from its raw body. ZaloPay calls back only for successful
/// payments, so a verified callback is always [`PaymentOutcome::Succeeded`].
pub fn verify_callback(
    cfg: &ZalopayConfig,
    raw_body: &str,
) -> Result<VerifiedNotification, PaymentError> {
    let key2 = cfg.key2()?;
    let envelope: Value = serde_json::from_str(raw_body)
        .map_err(|e| PaymentError::Malformed(format!("ZaloPay callback is not JSON: {e}")))?;
    let data = envelope
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| PaymentError::Malformed("ZaloPay callback has no data string".into()))?;
    let mac = match envelope.get("mac") {
        Some(Value::String(mac)) if !mac.is_empty() => mac,
        _ => return Err(PaymentError::BadSignature),
    };
    if !tag_matches(&hmac_sha256_hex(key2, data.as_bytes()), mac) {
        return Err(PaymentError::BadSignature);
    }

    // type 1 = order payment, 2 = agreement (tokenised binding), which we never create.
    match envelope.get("type").and_then(Value::as_i64) {
        None | Some(1) => {}
        Some(other) => {
            return Err(PaymentError::Unsupported(format!(
                "ZaloPay callback type {other}"
            )))
        }
    }
    let payment: Value = serde_json::from_str(data)
        .map_err(|e| PaymentError::Malformed(format!("ZaloPay data is not JSON: {e}")))?;
    if payment.get("app_id").and_then(Value::as_i64) != Some(cfg.app_id) {
        return Err(PaymentError::Malformed(
            "ZaloPay callback is for another app_id".into(),
        ));
    }
    let app_trans_id = payment
        .get("app_trans_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PaymentError::Malformed("data.app_trans_id missing".into()))?
        .to_owned();
    let amount = payment
        .get("amount")
        .and_then(Value::as_i64)
        .ok_or_else(|| PaymentError::Malformed("data.amount is not an integer".into()))?;
    let zp_trans_id = payment
        .get("zp_trans_id")
        .map(id_text)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PaymentError::Malformed("data.zp_trans_id missing".into()))?;

    Ok(VerifiedNotification {
        provider: Provider::Zalopay,
        order_ref: app_trans_id,
        provider_txn_id: zp_trans_id,
        amount,
        outcome: PaymentOutcome::Succeeded,
        raw: payment,
    })
}

/// `{"return_code": 1 | -1 | 0, "return_message"}`, always HTTP 200. ZaloPay calls back again
/// (up to 3 times) only on 0, so 0 is kept for failures a retry can fix.
pub fn acknowledge(disposition: Disposition) -> Acknowledgement {
    let (code, message) = match disposition {
        Disposition::Accepted | Disposition::AlreadySettled => (1, "success"),
        // Retrying cannot help; the saga records the anomaly for a refund.
        Disposition::OrderNotFound => (1, "order not found"),
        Disposition::AmountMismatch => (1, "amount mismatch"),
        Disposition::BadSignature => (-1, "mac not equal"),
        Disposition::Malformed => (0, "malformed callback"),
        Disposition::RetryLater => (0, "temporarily unavailable"),
    };
    Acknowledgement {
        status: 200,
        body: serde_json::json!({ "return_code": code, "return_message": message }).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Refunds: `/v2/refund` (keyed by our `m_refund_id`, so a repeat is the same refund) and
// `/v2/query_refund`; and `/v2/query` read as a reconciliation answer.

/// `yymmdd_appid_<key>`: ZaloPay's required shape, dated in Vietnam on the day the refund was
/// created (kept across retries, so every attempt names the same refund).
pub fn m_refund_id(cfg: &ZalopayConfig, refund_key: &str, created_at_ms: i64) -> String {
    format!(
        "{}_{}_{refund_key}",
        VietnamTime::from_unix_ms(created_at_ms).yymmdd(),
        cfg.app_id
    )
}

/// A full refund of one paid ZaloPay transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub m_refund_id: String,
    pub zp_trans_id: String,
    /// In VND.
    pub amount: i64,
    /// Unix milliseconds.
    pub timestamp: i64,
    pub description: String,
}

impl RefundRequest {
    /// `app_id|zp_trans_id|amount|description|timestamp`
    pub fn mac_input(&self, cfg: &ZalopayConfig) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            cfg.app_id, self.zp_trans_id, self.amount, self.description, self.timestamp
        )
    }
}

fn form_post(url: String, body: String) -> OutboundRequest {
    OutboundRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body,
    }
}

/// `POST {api_base}/v2/refund`, form-encoded.
pub fn build_refund_request(
    cfg: &ZalopayConfig,
    request: &RefundRequest,
) -> Result<OutboundRequest, PaymentError> {
    let mac = hmac_sha256_hex(cfg.key1()?, request.mac_input(cfg).as_bytes());
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("app_id", &cfg.app_id.to_string())
        .append_pair("m_refund_id", &request.m_refund_id)
        .append_pair("zp_trans_id", &request.zp_trans_id)
        .append_pair("amount", &request.amount.to_string())
        .append_pair("timestamp", &request.timestamp.to_string())
        .append_pair("description", &request.description)
        .append_pair("mac", &mac)
        .finish();
    Ok(form_post(cfg.endpoint("/v2/refund"), body))
}

/// `app_id|m_refund_id|timestamp`
pub fn query_refund_mac_input(cfg: &ZalopayConfig, m_refund_id: &str, timestamp: i64) -> String {
    format!("{}|{m_refund_id}|{timestamp}", cfg.app_id)
}

/// `POST {api_base}/v2/query_refund`, form-encoded.
pub fn build_query_refund_request(
    cfg: &ZalopayConfig,
    m_refund_id: &str,
    timestamp: i64,
) -> Result<OutboundRequest, PaymentError> {
    let input = query_refund_mac_input(cfg, m_refund_id, timestamp);
    let mac = hmac_sha256_hex(cfg.key1()?, input.as_bytes());
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("app_id", &cfg.app_id.to_string())
        .append_pair("m_refund_id", m_refund_id)
        .append_pair("timestamp", &timestamp.to_string())
        .append_pair("mac", &mac)
        .finish();
    Ok(form_post(cfg.endpoint("/v2/query_refund"), body))
}

/// Reads a `/v2/refund` or `/v2/query_refund` answer: `return_code` 1 refunded, 3 processing,
/// 2 refused (detailed by `sub_return_*`); anything unreadable is worth retrying.
pub fn parse_refund_response(status: u16, body: &str) -> ProviderAnswer {
    let unavailable = || ProviderAnswer::Unavailable {
        detail: format!(
            "ZaloPay answered HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ),
    };
    if !(200..300).contains(&status) {
        return unavailable();
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return unavailable();
    };
    let refund_id = v
        .get("refund_id")
        .map(id_text)
        .filter(|id| !id.is_empty() && id != "0");
    match v.get("return_code").and_then(Value::as_i64) {
        Some(1) => ProviderAnswer::Refunded {
            provider_refund_id: refund_id,
        },
        Some(3) => ProviderAnswer::Processing {
            provider_refund_id: refund_id,
        },
        Some(2) => ProviderAnswer::Rejected {
            code: v
                .get("sub_return_code")
                .and_then(Value::as_i64)
                .unwrap_or(2)
                .to_string(),
            message: v
                .get("sub_return_message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        },
        _ => unavailable(),
    }
}

impl From<QueryStatus> for PaymentQueryAnswer {
    fn from(status: QueryStatus) -> Self {
        match status {
            QueryStatus::Paid {
                amount,
                zp_trans_id,
            } => PaymentQueryAnswer::Paid {
                amount,
                provider_txn_id: zp_trans_id,
            },
            QueryStatus::Pending => PaymentQueryAnswer::Pending,
            // -49: ZaloPay has no such order: the buyer never opened the payment page.
            QueryStatus::Failed { code, .. } if code == "-49" => PaymentQueryAnswer::Unknown,
            QueryStatus::Failed { code, message } => PaymentQueryAnswer::Failed {
                code,
                reason: message,
            },
        }
    }
}

#[cfg(test)]
mod refund_tests {
    use super::*;

    const REFUNDS_JSON: &str = include_str!("../../tests/fixtures/refunds.json");

    fn vectors() -> Value {
        serde_json::from_str(REFUNDS_JSON).expect("refunds.json is valid JSON")
    }

    fn config(v: &Value) -> ZalopayConfig {
        ZalopayConfig {
            app_id: v["zalopay"]["keys"]["app_id"].as_i64().expect("app_id"),
            key1: v["zalopay"]["keys"]["key1"].as_str().expect("key1").into(),
            key2: "unused".into(),
            api_base: SANDBOX_API_BASE.into(),
        }
    }

    fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{pointer}"))
    }

    #[test]
    fn the_refund_request_is_signed_as_zalopay_documents() {
        let v = vectors();
        let cfg = config(&v);
        let case = &v["zalopay"]["refund"];
        let request = RefundRequest {
            m_refund_id: text(case, "/request/m_refund_id").into(),
            zp_trans_id: text(case, "/request/zp_trans_id").into(),
            amount: case["request"]["amount"].as_i64().expect("amount"),
            timestamp: case["request"]["timestamp"].as_i64().expect("timestamp"),
            description: text(case, "/request/description").into(),
        };
        assert_eq!(request.mac_input(&cfg), text(case, "/mac_input"));
        let http = build_refund_request(&cfg, &request).expect("request");
        assert_eq!(http.url, "https://sb-openapi.zalopay.vn/v2/refund");
        assert_eq!(http.body, text(case, "/form_body"));
        assert!(http.body.ends_with(&format!("&mac={}", text(case, "/mac"))));
    }

    #[test]
    fn the_refund_id_is_dated_in_vietnam_and_keyed_by_our_refund() {
        let v = vectors();
        let cfg = config(&v);
        // 2024-01-15T17:30:00Z is already the 16th in Hanoi.
        assert_eq!(
            m_refund_id(&cfg, "0f8e7d6c5b4a439281706f5e4d3c2b1a", 1_705_339_800_000),
            text(&v, "/zalopay/refund/request/m_refund_id")
        );
    }

    #[test]
    fn the_query_refund_request_is_signed_as_zalopay_documents() {
        let v = vectors();
        let cfg = config(&v);
        let case = &v["zalopay"]["query_refund"];
        let m_refund_id = text(case, "/request/m_refund_id");
        let timestamp = case["request"]["timestamp"].as_i64().expect("timestamp");
        assert_eq!(
            query_refund_mac_input(&cfg, m_refund_id, timestamp),
            text(case, "/mac_input")
        );
        let http = build_query_refund_request(&cfg, m_refund_id, timestamp).expect("request");
        assert_eq!(http.url, "https://sb-openapi.zalopay.vn/v2/query_refund");
        assert_eq!(http.body, text(case, "/form_body"));
    }

    #[test]
    fn refund_answers_tell_refunded_processing_and_refused_apart() {
        let v = vectors();
        let answers = &v["zalopay"]["refund"]["responses"];
        assert_eq!(
            parse_refund_response(200, &answers["refunded"].to_string()),
            ProviderAnswer::Refunded {
                provider_refund_id: Some("24011600000123".into())
            }
        );
        assert_eq!(
            parse_refund_response(200, &answers["processing"].to_string()),
            ProviderAnswer::Processing {
                provider_refund_id: Some("24011600000123".into())
            }
        );
        assert_eq!(
            parse_refund_response(200, &answers["refused"].to_string()),
            ProviderAnswer::Rejected {
                code: "-101".into(),
                message: "Giao dịch không tồn tại".into()
            }
        );
        for (status, body) in [(502, "{}"), (200, "nope"), (200, r#"{"return_code":-1}"#)] {
            assert!(
                matches!(
                    parse_refund_response(status, body),
                    ProviderAnswer::Unavailable { .. }
                ),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn order_queries_become_reconciliation_answers() {
        let paid = parse_query_response(
            200,
            r#"{"return_code":1,"amount":150000,"zp_trans_id":240115000000389}"#,
        )
        .expect("paid");
        assert_eq!(
            PaymentQueryAnswer::from(paid),
            PaymentQueryAnswer::Paid {
                amount: 150_000,
                provider_txn_id: "240115000000389".into()
            }
        );
        let unknown = parse_query_response(200, r#"{"return_code":2,"sub_return_code":-49}"#)
            .expect("unknown");
        assert_eq!(
            PaymentQueryAnswer::from(unknown),
            PaymentQueryAnswer::Unknown
        );
        let expired = parse_query_response(
            200,
            r#"{"return_code":2,"sub_return_code":-54,"sub_return_message":"expired"}"#,
        )
        .expect("expired");
        assert!(matches!(
            PaymentQueryAnswer::from(expired),
            PaymentQueryAnswer::Failed { .. }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{list, str_at, vectors};
    use super::super::{Gateway, Inbound, IntentItem};
    use super::*;

    fn config(v: &Value) -> ZalopayConfig {
        ZalopayConfig {
            app_id: v["zalopay"]["keys"]["app_id"].as_i64().expect("app_id"),
            key1: str_at(v, "/zalopay/keys/key1").into(),
            key2: str_at(v, "/zalopay/keys/key2").into(),
            api_base: SANDBOX_API_BASE.into(),
        }
    }

    #[test]
    fn the_create_order_vector_is_rebuilt_exactly() {
        let v = vectors();
        let cfg = config(&v);
        let case = &v["zalopay"]["create_order"];
        let order: ZalopayOrder = serde_json::from_value(case["request"].clone()).expect("order");
        assert_eq!(order.mac_input(), str_at(case, "/mac_input"));
        let mac = order.mac(cfg.key1.as_bytes());
        assert_eq!(mac, str_at(case, "/request/mac"));
        assert_eq!(order.form_body(&mac), str_at(case, "/form_body"));
        assert_eq!(
            order.json_body(&mac).expect("json"),
            str_at(case, "/json_body")
        );

        let http = build_create_request(&cfg, &order).expect("request");
        let endpoint = str_at(case, "/endpoint");
        assert!(
            endpoint.starts_with(&format!("POST {} ", http.url)),
            "{endpoint} vs {}",
            http.url
        );
        assert_eq!(http.body, str_at(case, "/form_body"));
    }

    #[test]
    fn app_trans_id_uses_the_vietnamese_date() {
        let v = vectors();
        let case = &v["zalopay"]["create_order"];
        let app_time = case["request"]["app_time"].as_i64().expect("app_time");
        assert_eq!(
            app_trans_id(app_time, "000001").expect("id"),
            str_at(case, "/request/app_trans_id")
        );
        assert!(app_trans_id(app_time, &"x".repeat(33)).is_ok());
        assert!(matches!(
            app_trans_id(app_time, &"x".repeat(34)),
            Err(PaymentError::InvalidIntent(_))
        ));
        assert!(app_trans_id(app_time, "").is_err());
    }

    #[test]
    fn the_query_order_vector_is_rebuilt_exactly() {
        let v = vectors();
        let cfg = config(&v);
        let case = &v["zalopay"]["query_order"];
        let app_trans_id = str_at(case, "/request/app_trans_id");
        assert_eq!(
            query_mac_input(&cfg, app_trans_id),
            str_at(case, "/mac_input")
        );
        let http = build_query_request(&cfg, app_trans_id).expect("request");
        assert!(str_at(case, "/endpoint").ends_with(&http.url));
        let expected = format!(
            "app_id={}&app_trans_id={}&mac={}",
            case["request"]["app_id"],
            app_trans_id,
            str_at(case, "/request/mac")
        );
        assert_eq!(http.body, expected);
    }

    #[test]
    fn every_callback_vector_verifies_and_is_answered_as_expected() {
        let v = vectors();
        for case in list(&v, "/zalopay/callbacks") {
            let name = str_at(case, "/name");
            let mut cfg = config(&v);
            if let Some(key2) = case["key2_override"].as_str() {
                cfg.key2 = key2.into();
                // The official sample belongs to ZaloPay's demo app.
                let data: Value = serde_json::from_str(str_at(case, "/body/data")).expect("data");
                cfg.app_id = data["app_id"].as_i64().expect("app_id");
            }
            let expected_valid = case["expected_valid"].as_bool().expect("expected_valid");
            assert_eq!(case["verified"].as_bool(), Some(expected_valid), "{name}");

            let raw = str_at(case, "/raw_body");
            let result = verify_callback(&cfg, raw);
            assert_eq!(result.is_ok(), expected_valid, "{name}: {result:?}");
            if !expected_valid {
                assert_eq!(result, Err(PaymentError::BadSignature), "{name}");
            }
            let disposition = match &result {
                Ok(_) => Disposition::Accepted,
                Err(e) => Disposition::from(e),
            };
            let ack = acknowledge(disposition);
            assert_eq!(ack.status, 200, "{name}");
            let body: Value = serde_json::from_str(&ack.body).expect("ack");
            assert_eq!(body, case["expected_merchant_response"], "{name}");

            if let Ok(n) = result {
                let data: Value = serde_json::from_str(str_at(case, "/body/data")).expect("data");
                assert_eq!(n.provider, Provider::Zalopay);
                assert_eq!(Some(n.order_ref.as_str()), data["app_trans_id"].as_str());
                assert_eq!(Some(n.amount), data["amount"].as_i64());
                assert_eq!(n.provider_txn_id, data["zp_trans_id"].to_string());
                assert_eq!(n.outcome, PaymentOutcome::Succeeded);
                assert_eq!(n.raw, data);
            }
        }
    }

    fn signed_callback(cfg: &ZalopayConfig, data: &str, kind: i64) -> String {
        serde_json::json!({
            "data": data,
            "mac": hmac_sha256_hex(cfg.key2.as_bytes(), data.as_bytes()),
            "type": kind,
        })
        .to_string()
    }

    #[test]
    fn signed_callbacks_we_cannot_use_are_refused_with_a_retryable_answer() {
        let v = vectors();
        let cfg = config(&v);
        let agreement = signed_callback(&cfg, r#"{"app_id":12345}"#, 2);
        assert!(matches!(
            verify_callback(&cfg, &agreement),
            Err(PaymentError::Unsupported(_))
        ));
        for data in [
            r#"{"app_id":999,"app_trans_id":"240115_1","amount":1,"zp_trans_id":1}"#,
            r#"{"app_id":12345,"amount":1,"zp_trans_id":1}"#,
            r#"{"app_id":12345,"app_trans_id":"240115_1","amount":"1","zp_trans_id":1}"#,
            "not json",
        ] {
            let result = verify_callback(&cfg, &signed_callback(&cfg, data, 1));
            assert!(
                matches!(result, Err(PaymentError::Malformed(_))),
                "{data}: {result:?}"
            );
            let ack = acknowledge(Disposition::from(&result.unwrap_err()));
            assert!(ack.body.starts_with(r#"{"return_code":0,"#), "{}", ack.body);
        }
        assert_eq!(
            verify_callback(&cfg, r#"{"data":"{}"}"#),
            Err(PaymentError::BadSignature)
        );
    }

    fn intent() -> PaymentIntent {
        PaymentIntent {
            payment_id: "pay_1".into(),
            order_code: 1,
            order_ref: "000001".into(),
            amount: 150_000,
            currency: "VND".into(),
            description: "Merchant - Thanh toan don hang #240115_000001".into(),
            return_url: "https://merchant.example/zalopay/return".into(),
            cancel_url: "https://merchant.example/zalopay/cancel".into(),
            notify_url: "https://merchant.example/zalopay/callback".into(),
            buyer_ref: "user123".into(),
            buyer_name: None,
            buyer_email: None,
            client_ip: "127.0.0.1".into(),
            items: vec![IntentItem {
                id: "sku-001".into(),
                name: "Ao thun".into(),
                quantity: 1,
                unit_price: 150_000,
            }],
            now_ms: 1_705_257_000_000,
            expires_at_ms: 1_705_257_900_000,
        }
    }

    #[test]
    fn an_intent_plans_the_vector_order_with_a_lifetime() {
        let v = vectors();
        let cfg = config(&v);
        let mut expected: ZalopayOrder =
            serde_json::from_value(v["zalopay"]["create_order"]["request"].clone()).expect("order");
        expected.expire_duration_seconds = Some(900);
        assert_eq!(order_from_intent(&cfg, &intent()).expect("order"), expected);

        let plan = plan_create(&cfg, &intent()).expect("plan");
        assert_eq!(plan.order_ref, "240115_000001");
        let CreateStep::Http(http) = plan.step else {
            panic!("ZaloPay needs an HTTP call")
        };
        assert!(http.body.ends_with(&format!(
            "&expire_duration_seconds=900&mac={}",
            str_at(&v, "/zalopay/create_order/request/mac")
        )));
    }

    #[test]
    fn create_responses_are_read_as_zalopay_documents_them() {
        let ok = r#"{"return_code":1,"return_message":"Giao dịch thành công","sub_return_code":1,"sub_return_message":"Giao dịch thành công","zp_trans_token":"ACJ0Cvq3LQ","order_url":"https://qcgateway.zalopay.vn/openinapp?order=eyJ6","order_token":"ACJ0Cvq3LQ","qr_code":"000201"}"#;
        assert_eq!(
            parse_create_response(200, ok),
            Ok(CreatedPayment {
                payment_url: "https://qcgateway.zalopay.vn/openinapp?order=eyJ6".into(),
                provider_ref: Some("ACJ0Cvq3LQ".into()),
            })
        );
        let refused = r#"{"return_code":2,"return_message":"Giao dịch thất bại","sub_return_code":-402,"sub_return_message":"Chữ ký không hợp lệ"}"#;
        assert_eq!(
            parse_create_response(200, refused),
            Err(PaymentError::ProviderRejected {
                code: "-402".into(),
                message: "Chữ ký không hợp lệ".into()
            })
        );
        assert!(matches!(
            parse_create_response(503, ok),
            Err(PaymentError::UnexpectedResponse { status: 503, .. })
        ));
    }

    #[test]
    fn query_responses_tell_paid_pending_and_failed_apart() {
        assert_eq!(
            parse_query_response(
                200,
                r#"{"return_code":1,"return_message":"","sub_return_code":1,"is_processing":false,"amount":150000,"zp_trans_id":240115000000389}"#
            ),
            Ok(QueryStatus::Paid {
                amount: 150_000,
                zp_trans_id: "240115000000389".into()
            })
        );
        assert_eq!(
            parse_query_response(200, r#"{"return_code":3,"is_processing":true}"#),
            Ok(QueryStatus::Pending)
        );
        assert_eq!(
            parse_query_response(
                200,
                r#"{"return_code":2,"sub_return_code":-54,"sub_return_message":"Giao dịch hết hạn"}"#
            ),
            Ok(QueryStatus::Failed {
                code: "-54".into(),
                message: "Giao dịch hết hạn".into()
            })
        );
    }

    #[test]
    fn the_gateway_routes_zalopay_callbacks_to_this_module() {
        let v = vectors();
        let gateway = Gateway::Zalopay(config(&v));
        let raw = str_at(&v, "/zalopay/callbacks/0/raw_body");
        assert!(gateway.verify(Inbound::Body(raw)).is_ok());
        assert_eq!(
            gateway.acknowledge(Disposition::BadSignature).body,
            r#"{"return_code":-1,"return_message":"mac not equal"}"#
        );
    }
}
