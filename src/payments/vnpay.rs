//! VNPay 2.1.0: the signed payment URL, IPN verification and the IPN answer, and the merchant API's `refund` and `querydr`, as the `vnpay` 2.5.0 SDK does them.
//!
//! VNPay signs the *decoded* parameter values re-encoded as `application/x-www-form-urlencoded`
//! (space as `+`), so an IPN is decoded and re-encoded before hashing: hashing the raw query text
//! would reject a genuine IPN whose spaces arrive as `%20`.

use std::collections::HashSet;

use serde::Serialize;

use super::{
    check_order, cmp_utf16, hmac_sha512_hex, tag_matches, Acknowledgement, CreatePlan, CreateStep,
    Disposition, HttpMethod, OrderStanding, OutboundRequest, PaymentError, PaymentIntent,
    PaymentOutcome, Provider, VerifiedNotification, VietnamTime,
};
use crate::domain::refunds::{PaymentQueryAnswer, ProviderAnswer};

pub const SANDBOX_PAY_URL: &str = "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html";
/// The merchant API (`refund`, `querydr`), as the SDK defaults it.
pub const SANDBOX_API_URL: &str = "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction";
pub const PRODUCTION_API_URL: &str = "https://merchant.vnpay.vn/merchant_webapi/api/transaction";
pub const VERSION: &str = "2.1.0";
pub const DEFAULT_ORDER_TYPE: &str = "other";
pub const DEFAULT_LOCALE: &str = "vn";

/// JavaScript numbers (the SDK's `Number(vnp_Amount)`) are exact up to 2^53.
const MAX_EXACT_AMOUNT: u64 = 1 << 53;

/// Credentials from `VNPAY_TMN_CODE`, `VNPAY_HASH_SECRET`, `VNPAY_PAY_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct VnpayConfig {
    pub tmn_code: String,
    pub hash_secret: String,
    /// Full payment page URL, e.g. [`SANDBOX_PAY_URL`].
    pub pay_url: String,
    /// The merchant API for `refund` and `querydr` (`VNPAY_API_URL`), e.g. [`SANDBOX_API_URL`].
    pub api_url: String,
}

impl std::fmt::Debug for VnpayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VnpayConfig")
            .field("tmn_code", &self.tmn_code)
            .field("pay_url", &self.pay_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl VnpayConfig {
    fn key(&self) -> Result<&[u8], PaymentError> {
        if self.hash_secret.is_empty() {
            return Err(PaymentError::Misconfigured(
                "VNPAY_HASH_SECRET is empty".into(),
            ));
        }
        Ok(self.hash_secret.as_bytes())
    }
}

/// The merchant-chosen fields of a payment URL; `vnp_Command`, `vnp_CurrCode`, `vnp_TmnCode` and
/// `vnp_Version` come from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUrlRequest {
    /// In VND; sent ×100 as `vnp_Amount`.
    pub amount: i64,
    pub ip_addr: String,
    pub txn_ref: String,
    pub order_info: String,
    pub order_type: String,
    pub return_url: String,
    pub locale: String,
    pub bank_code: Option<String>,
    /// `yyyyMMddHHmmss` in GMT+7.
    pub create_date: String,
    pub expire_date: Option<String>,
}

impl PaymentUrlRequest {
    /// All parameters that are sent and signed, sorted as VNPay wants them.
    pub fn params(&self, cfg: &VnpayConfig) -> Result<Vec<(String, String)>, PaymentError> {
        let vnp_amount = self
            .amount
            .checked_mul(100)
            .filter(|a| *a > 0)
            .ok_or_else(|| {
                PaymentError::InvalidIntent(format!("amount {} out of range", self.amount))
            })?;
        let mut params: Vec<(String, String)> = [
            ("vnp_Amount", vnp_amount.to_string()),
            ("vnp_Command", "pay".to_owned()),
            ("vnp_CreateDate", self.create_date.clone()),
            ("vnp_CurrCode", "VND".to_owned()),
            ("vnp_IpAddr", self.ip_addr.clone()),
            ("vnp_Locale", self.locale.clone()),
            ("vnp_OrderInfo", self.order_info.clone()),
            ("vnp_OrderType", self.order_type.clone()),
            ("vnp_ReturnUrl", self.return_url.clone()),
            ("vnp_TmnCode", cfg.tmn_code.clone()),
            ("vnp_TxnRef", self.txn_ref.clone()),
            ("vnp_Version", VERSION.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            self.bank_code
                .iter()
                .map(|v| ("vnp_BankCode".to_owned(), v.clone())),
        )
        .chain(
            self.expire_date
                .iter()
                .map(|v| ("vnp_ExpireDate".to_owned(), v.clone())),
        )
        // The SDK leaves empty values out of both the URL and the hash.
        .filter(|(_, v)| !v.is_empty())
        .collect();
        params.sort_by(|a, b| cmp_utf16(&a.0, &b.0));
        Ok(params)
    }
}

/// `key=value` pairs form-encoded (WHATWG `URLSearchParams`: space as `+`, `*-._` kept), joined
/// with `&`. The pairs must already be sorted and filtered.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The full redirect URL with `vnp_SecureHash` (HMAC-SHA512, lowercase hex) last.
pub fn build_payment_url(
    cfg: &VnpayConfig,
    request: &PaymentUrlRequest,
) -> Result<String, PaymentError> {
    let key = cfg.key()?;
    let canonical = canonical_query(&request.params(cfg)?);
    let hash = hmac_sha512_hex(key, canonical.as_bytes());
    Ok(format!("{}?{canonical}&vnp_SecureHash={hash}", cfg.pay_url))
}

pub fn payment_url_request(intent: &PaymentIntent) -> Result<PaymentUrlRequest, PaymentError> {
    intent.require_vnd()?;
    if intent.order_ref.is_empty() || intent.client_ip.is_empty() {
        return Err(PaymentError::InvalidIntent(
            "VNPay needs an order reference and the buyer's IP address".into(),
        ));
    }
    Ok(PaymentUrlRequest {
        amount: intent.amount,
        ip_addr: intent.client_ip.clone(),
        txn_ref: intent.order_ref.clone(),
        order_info: intent.description.clone(),
        order_type: DEFAULT_ORDER_TYPE.into(),
        return_url: intent.return_url.clone(),
        locale: DEFAULT_LOCALE.into(),
        bank_code: None,
        create_date: VietnamTime::from_unix_ms(intent.now_ms).compact(),
        expire_date: Some(VietnamTime::from_unix_ms(intent.expires_at_ms).compact()),
    })
}

/// VNPay needs no server call: the signed URL is the payment page. The IPN URL is registered
/// with VNPay per merchant, so `notify_url` is not sent.
pub fn plan_create(cfg: &VnpayConfig, intent: &PaymentIntent) -> Result<CreatePlan, PaymentError> {
    let request = payment_url_request(intent)?;
    Ok(CreatePlan {
        order_ref: request.txn_ref.clone(),
        step: CreateStep::Redirect {
            payment_url: build_payment_url(cfg, &request)?,
        },
    })
}

/// The decoded `vnp_*` parameters of an IPN (or return URL) query, in arrival order.
/// A repeated `vnp_*` name is refused: the SDK would hash `a,b` for it, VNPay never sends one.
pub fn parse_ipn_params(raw_query: &str) -> Result<Vec<(String, String)>, PaymentError> {
    let query = raw_query.strip_prefix('?').unwrap_or(raw_query);
    let mut params: Vec<(String, String)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if !k.starts_with("vnp_") {
            continue;
        }
        if !seen.insert(k.clone().into_owned()) {
            return Err(PaymentError::Malformed(format!(
                "VNPay parameter {k} appears twice"
            )));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    Ok(params)
}

/// The string VNPay signed: every `vnp_*` parameter except the hash fields, empty values left
/// out (SDK), the amount as the SDK's `String(Number(vnp_Amount))`, sorted and re-encoded.
pub fn ipn_canonical_string(params: &[(String, String)]) -> Result<String, PaymentError> {
    let mut signed: Vec<(String, String)> = Vec::with_capacity(params.len());
    for (k, v) in params {
        if k == "vnp_SecureHash" || k == "vnp_SecureHashType" || v.is_empty() {
            continue;
        }
        let value = if k == "vnp_Amount" {
            vnp_amount(v)?.to_string()
        } else {
            v.clone()
        };
        signed.push((k.clone(), value));
    }
    signed.sort_by(|a, b| cmp_utf16(&a.0, &b.0));
    Ok(canonical_query(&signed))
}

/// `vnp_Amount` as the SDK accepts it: digits only (it throws otherwise), exact as a JS number.
fn vnp_amount(raw: &str) -> Result<u64, PaymentError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PaymentError::Malformed(format!(
            "vnp_Amount {raw:?} is not a number"
        )));
    }
    raw.parse::<u64>()
        .ok()
        .filter(|a| *a <= MAX_EXACT_AMOUNT)
        .ok_or_else(|| PaymentError::Malformed(format!("vnp_Amount {raw:?} out of range")))
}

/// Verifies an IPN from its raw query string. Paid iff `vnp_ResponseCode` and
/// `vnp_TransactionStatus` are both `00`; any other signed result is a failed payment.
pub fn verify_ipn(
    cfg: &VnpayConfig,
    raw_query: &str,
) -> Result<VerifiedNotification, PaymentError> {
    let key = cfg.key()?;
    let params = parse_ipn_params(raw_query)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let received = get("vnp_SecureHash");
    if received.is_empty() {
        return Err(PaymentError::BadSignature);
    }
    let expected = hmac_sha512_hex(key, ipn_canonical_string(&params)?.as_bytes());
    if !tag_matches(&expected, received) {
        return Err(PaymentError::BadSignature);
    }

    let txn_ref = get("vnp_TxnRef");
    if txn_ref.is_empty() {
        return Err(PaymentError::Malformed("IPN has no vnp_TxnRef".into()));
    }
    let tmn_code = get("vnp_TmnCode");
    if !tmn_code.is_empty() && tmn_code != cfg.tmn_code {
        return Err(PaymentError::Malformed(format!(
            "IPN is for terminal {tmn_code}"
        )));
    }
    let vnp_amount = vnp_amount(get("vnp_Amount"))?;
    if vnp_amount % 100 != 0 {
        return Err(PaymentError::Malformed(format!(
            "vnp_Amount {vnp_amount} is not a whole number of VND"
        )));
    }
    let amount = i64::try_from(vnp_amount / 100)
        .map_err(|_| PaymentError::Malformed("vnp_Amount out of range".into()))?;

    let response_code = get("vnp_ResponseCode");
    let transaction_status = get("vnp_TransactionStatus");
    let outcome = if response_code == "00" && transaction_status == "00" {
        PaymentOutcome::Succeeded
    } else {
        PaymentOutcome::Failed {
            code: response_code.to_owned(),
            reason: format!(
                "vnp_ResponseCode={response_code} vnp_TransactionStatus={transaction_status}"
            ),
        }
    };
    // VNPay numbers real transactions; cancelled ones carry vnp_TransactionNo=0.
    let transaction_no = get("vnp_TransactionNo");
    let provider_txn_id = if !transaction_no.is_empty() && transaction_no != "0" {
        transaction_no.to_owned()
    } else {
        format!("{txn_ref}:{}:{response_code}", get("vnp_PayDate"))
    };
    let raw = serde_json::Value::Object(
        params
            .iter()
            .filter(|(k, _)| k != "vnp_SecureHash")
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );

    Ok(VerifiedNotification {
        provider: Provider::Vnpay,
        order_ref: txn_ref.to_owned(),
        provider_txn_id,
        amount,
        outcome,
        raw,
    })
}

/// The IPN answers VNPay defines (`RspCode`/`Message` exactly as the SDK's constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpnAnswer {
    /// Result recorded, whether the payment succeeded or failed.
    ConfirmSuccess,
    OrderNotFound,
    OrderAlreadyConfirmed,
    InvalidAmount,
    FailChecksum,
    UnknownError,
}

#[derive(Serialize)]
struct IpnBody {
    #[serde(rename = "RspCode")]
    rsp_code: &'static str,
    #[serde(rename = "Message")]
    message: &'static str,
}

impl IpnAnswer {
    pub fn rsp_code(self) -> &'static str {
        match self {
            IpnAnswer::ConfirmSuccess => "00",
            IpnAnswer::OrderNotFound => "01",
            IpnAnswer::OrderAlreadyConfirmed => "02",
            IpnAnswer::InvalidAmount => "04",
            IpnAnswer::FailChecksum => "97",
            IpnAnswer::UnknownError => "99",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            IpnAnswer::ConfirmSuccess => "Confirm Success",
            IpnAnswer::OrderNotFound => "Order not found",
            IpnAnswer::OrderAlreadyConfirmed => "Order already confirmed",
            IpnAnswer::InvalidAmount => "Invalid amount",
            IpnAnswer::FailChecksum => "Fail checksum",
            IpnAnswer::UnknownError => "Unknown error",
        }
    }

    /// `{"RspCode":"..","Message":".."}`
    pub fn body(self) -> String {
        let body = IpnBody {
            rsp_code: self.rsp_code(),
            message: self.message(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// VNPay reads the code from the body; the status is always 200.
    pub fn acknowledgement(self) -> Acknowledgement {
        Acknowledgement {
            status: 200,
            body: self.body(),
        }
    }
}

impl From<Disposition> for IpnAnswer {
    fn from(disposition: Disposition) -> Self {
        match disposition {
            Disposition::Accepted => IpnAnswer::ConfirmSuccess,
            Disposition::AlreadySettled => IpnAnswer::OrderAlreadyConfirmed,
            Disposition::OrderNotFound => IpnAnswer::OrderNotFound,
            Disposition::AmountMismatch => IpnAnswer::InvalidAmount,
            Disposition::BadSignature => IpnAnswer::FailChecksum,
            Disposition::Malformed | Disposition::RetryLater => IpnAnswer::UnknownError,
        }
    }
}

/// The answer for a verification result and the stored order. `ConfirmSuccess` means "record
/// it": the shell answers it only after the result is stored, and `UnknownError` if storing
/// fails (`IpnAnswer::from(Disposition::RetryLater)`), so VNPay delivers again.
pub fn decide_ipn_answer(
    verification: &Result<VerifiedNotification, PaymentError>,
    standing: &OrderStanding,
) -> IpnAnswer {
    match verification {
        Ok(notification) => check_order(notification, standing).into(),
        Err(err) => Disposition::from(err).into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The merchant API: `refund` and `querydr`, JSON both ways, each direction with its own hash
// over pipe-joined fields in the order VNPay documents (and the SDK follows).

/// A full refund of one paid transaction (`vnp_TransactionType` 02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Unique per request, at most 32 characters (`domain::refunds::vnpay_request_id`).
    pub request_id: String,
    /// `02` full, `03` partial.
    pub transaction_type: String,
    pub txn_ref: String,
    /// In VND; sent ×100.
    pub amount: i64,
    /// VNPay's number for the payment; the SDK sends `0` when it is unknown.
    pub transaction_no: Option<String>,
    /// The payment's `vnp_CreateDate` (`yyyyMMddHHmmss`, GMT+7).
    pub transaction_date: String,
    pub create_by: String,
    /// Now, `yyyyMMddHHmmss` in GMT+7.
    pub create_date: String,
    pub ip_addr: String,
    pub order_info: String,
}

/// A status query for one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryDrRequest {
    pub request_id: String,
    pub txn_ref: String,
    pub transaction_date: String,
    pub create_date: String,
    pub ip_addr: String,
    pub order_info: String,
}

/// `yyyyMMddHHmmss` as the JSON number the SDK sends (its types make dates numbers).
fn date_number(raw: &str) -> Result<serde_json::Value, PaymentError> {
    if raw.len() != 14 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PaymentError::InvalidIntent(format!(
            "VNPay date {raw:?} is not yyyyMMddHHmmss"
        )));
    }
    raw.parse::<u64>()
        .map(serde_json::Value::from)
        .map_err(|e| PaymentError::InvalidIntent(e.to_string()))
}

fn json_post(url: &str, body: &serde_json::Value) -> OutboundRequest {
    OutboundRequest {
        method: HttpMethod::Post,
        url: url.to_owned(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

impl RefundRequest {
    fn vnp_amount(&self) -> Result<i64, PaymentError> {
        self.amount
            .checked_mul(100)
            .filter(|a| *a > 0)
            .ok_or_else(|| {
                PaymentError::InvalidIntent(format!("amount {} out of range", self.amount))
            })
    }

    fn transaction_no(&self) -> &str {
        self.transaction_no.as_deref().unwrap_or("0")
    }

    /// `vnp_RequestId|vnp_Version|vnp_Command|vnp_TmnCode|vnp_TransactionType|vnp_TxnRef|
    /// vnp_Amount|vnp_TransactionNo|vnp_TransactionDate|vnp_CreateBy|vnp_CreateDate|vnp_IpAddr|vnp_OrderInfo`
    pub fn hash_input(&self, cfg: &VnpayConfig) -> Result<String, PaymentError> {
        Ok([
            self.request_id.as_str(),
            VERSION,
            "refund",
            &cfg.tmn_code,
            &self.transaction_type,
            &self.txn_ref,
            &self.vnp_amount()?.to_string(),
            self.transaction_no(),
            &self.transaction_date,
            &self.create_by,
            &self.create_date,
            &self.ip_addr,
            &self.order_info,
        ]
        .join("|"))
    }
}

/// `POST {VNPAY_API_URL}` with `vnp_Command=refund`.
pub fn build_refund_request(
    cfg: &VnpayConfig,
    request: &RefundRequest,
) -> Result<OutboundRequest, PaymentError> {
    let hash = hmac_sha512_hex(cfg.key()?, request.hash_input(cfg)?.as_bytes());
    let body = serde_json::json!({
        "vnp_RequestId": request.request_id,
        "vnp_TransactionType": request.transaction_type,
        "vnp_TxnRef": request.txn_ref,
        "vnp_Amount": request.vnp_amount()?,
        "vnp_TransactionNo": request.transaction_no(),
        "vnp_TransactionDate": date_number(&request.transaction_date)?,
        "vnp_CreateBy": request.create_by,
        "vnp_CreateDate": date_number(&request.create_date)?,
        "vnp_IpAddr": request.ip_addr,
        "vnp_OrderInfo": request.order_info,
        "vnp_Command": "refund",
        "vnp_Version": VERSION,
        "vnp_TmnCode": cfg.tmn_code,
        "vnp_SecureHash": hash,
    });
    Ok(json_post(&cfg.api_url, &body))
}

impl QueryDrRequest {
    /// `vnp_RequestId|vnp_Version|querydr|vnp_TmnCode|vnp_TxnRef|vnp_TransactionDate|
    /// vnp_CreateDate|vnp_IpAddr|vnp_OrderInfo`
    pub fn hash_input(&self, cfg: &VnpayConfig) -> String {
        [
            self.request_id.as_str(),
            VERSION,
            "querydr",
            &cfg.tmn_code,
            &self.txn_ref,
            &self.transaction_date,
            &self.create_date,
            &self.ip_addr,
            &self.order_info,
        ]
        .join("|")
    }
}

/// `POST {VNPAY_API_URL}` with `vnp_Command=querydr`.
pub fn build_querydr_request(
    cfg: &VnpayConfig,
    request: &QueryDrRequest,
) -> Result<OutboundRequest, PaymentError> {
    let hash = hmac_sha512_hex(cfg.key()?, request.hash_input(cfg).as_bytes());
    let body = serde_json::json!({
        "vnp_Version": VERSION,
        "vnp_RequestId": request.request_id,
        "vnp_TxnRef": request.txn_ref,
        "vnp_OrderInfo": request.order_info,
        "vnp_TransactionDate": date_number(&request.transaction_date)?,
        "vnp_CreateDate": date_number(&request.create_date)?,
        "vnp_IpAddr": request.ip_addr,
        "vnp_Command": "querydr",
        "vnp_TmnCode": cfg.tmn_code,
        "vnp_SecureHash": hash,
    });
    Ok(json_post(&cfg.api_url, &body))
}

const REFUND_RESPONSE_FIELDS: [&str; 13] = [
    "vnp_ResponseId",
    "vnp_Command",
    "vnp_ResponseCode",
    "vnp_Message",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_PayDate",
    "vnp_TransactionNo",
    "vnp_TransactionType",
    "vnp_TransactionStatus",
    "vnp_OrderInfo",
];

const QUERYDR_EXTRA_FIELDS: [&str; 2] = ["vnp_PromotionCode", "vnp_PromotionAmount"];

/// A JSON field as JavaScript's `String()` shows it; missing (or `undefined`) as empty text,
/// as the SDK's `.replace(/undefined/g, '')` leaves it.
fn field_text(v: &serde_json::Value, name: &str) -> String {
    match v.get(name) {
        None => String::new(),
        Some(serde_json::Value::String(s)) => s.replace("undefined", ""),
        Some(serde_json::Value::Null) => "null".into(),
        Some(other) => other.to_string(),
    }
}

/// The answer's JSON once its hash (over `fields`, pipe-joined) checks out. An answer without
/// a hash is returned unverified: VNPay does not sign some refusals, and the callers trust an
/// unsigned answer only to say no.
fn verified_answer(
    cfg: &VnpayConfig,
    status: u16,
    body: &str,
    fields: &[&str],
) -> Result<(serde_json::Value, bool), PaymentError> {
    let unexpected = || PaymentError::UnexpectedResponse {
        status,
        detail: body.chars().take(200).collect(),
    };
    if !(200..300).contains(&status) {
        return Err(unexpected());
    }
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| unexpected())?;
    if !v.is_object() {
        return Err(unexpected());
    }
    let received = field_text(&v, "vnp_SecureHash");
    if received.is_empty() {
        return Ok((v, false));
    }
    let input = fields
        .iter()
        .map(|f| field_text(&v, f))
        .collect::<Vec<_>>()
        .join("|");
    if !tag_matches(&hmac_sha512_hex(cfg.key()?, input.as_bytes()), &received) {
        return Err(PaymentError::BadSignature);
    }
    Ok((v, true))
}

/// Reads a `refund` answer. `00` is a refund VNPay accepted; `94` says a refund of this
/// transaction was already sent (our earlier attempt, whose answer we lost), so it counts as
/// refunded too. Configuration, format and "transaction not refundable" answers are refusals;
/// `99`, HTTP errors, unreadable or wrongly signed answers are worth retrying.
pub fn parse_refund_response(cfg: &VnpayConfig, status: u16, body: &str) -> ProviderAnswer {
    let (v, signed) = match verified_answer(cfg, status, body, &REFUND_RESPONSE_FIELDS) {
        Ok(answer) => answer,
        Err(e) => {
            return ProviderAnswer::Unavailable {
                detail: e.to_string(),
            }
        }
    };
    let code = field_text(&v, "vnp_ResponseCode");
    let message = field_text(&v, "vnp_Message");
    let transaction_no = Some(field_text(&v, "vnp_TransactionNo")).filter(|s| !s.is_empty());
    match code.as_str() {
        "00" | "94" if signed => ProviderAnswer::Refunded {
            provider_refund_id: transaction_no,
        },
        "00" | "94" => ProviderAnswer::Unavailable {
            detail: format!("VNPay answered {code} without vnp_SecureHash"),
        },
        "02" | "03" | "91" | "95" | "97" => ProviderAnswer::Rejected { code, message },
        _ => ProviderAnswer::Unavailable {
            detail: format!("VNPay answered {code}: {message}"),
        },
    }
}

/// Reads a `querydr` answer about a payment: paid iff `vnp_TransactionStatus` is `00` in a
/// signed answer; `01` is still open, `02` failed; `91` means VNPay has no such payment.
pub fn parse_querydr_response(
    cfg: &VnpayConfig,
    status: u16,
    body: &str,
) -> Result<PaymentQueryAnswer, PaymentError> {
    let fields: Vec<&str> = REFUND_RESPONSE_FIELDS
        .iter()
        .chain(QUERYDR_EXTRA_FIELDS.iter())
        .copied()
        .collect();
    let (v, signed) = verified_answer(cfg, status, body, &fields)?;
    let code = field_text(&v, "vnp_ResponseCode");
    match code.as_str() {
        "00" if signed => {}
        "00" => return Err(PaymentError::BadSignature),
        "91" => return Ok(PaymentQueryAnswer::Unknown),
        _ => {
            return Err(PaymentError::ProviderRejected {
                code,
                message: field_text(&v, "vnp_Message"),
            })
        }
    }
    let transaction_status = field_text(&v, "vnp_TransactionStatus");
    Ok(match transaction_status.as_str() {
        "00" => {
            let vnp_amount = vnp_amount(&field_text(&v, "vnp_Amount"))?;
            let amount = i64::try_from(vnp_amount / 100)
                .map_err(|_| PaymentError::Malformed("vnp_Amount out of range".into()))?;
            PaymentQueryAnswer::Paid {
                amount,
                provider_txn_id: field_text(&v, "vnp_TransactionNo"),
            }
        }
        "02" => PaymentQueryAnswer::Failed {
            code: transaction_status,
            reason: field_text(&v, "vnp_Message"),
        },
        // 01 not finished; 04–09 are refund and reversal states an operator reads, not ours.
        _ => PaymentQueryAnswer::Pending,
    })
}

#[cfg(test)]
mod merchant_api_tests;

#[cfg(test)]
mod tests;
