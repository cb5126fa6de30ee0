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
mod refund_tests;

#[cfg(test)]
mod tests;
