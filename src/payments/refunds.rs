//! Money back and lost notifications: what to send each provider to refund a paid payment or
//! to ask where a payment stands, and how each answer reads in the domain's terms.
//!
//! Pure like the rest of `payments`: the shell sends the requests and hands the answers back.

use super::{vnpay, zalopay, Gateway, OutboundRequest, PaymentError, Provider, VietnamTime};
use crate::domain::refunds::{
    provider_key, vnpay_request_id, PaymentQueryAnswer, ProviderAnswer, RefundRoute,
};

/// Who signs VNPay refunds (`vnp_CreateBy`).
pub const REFUND_CREATED_BY: &str = "ticketbottle";
/// The IP VNPay's merchant API is told the request comes from: the Worker has no fixed one,
/// and VNPay only records it.
pub const SERVER_IP: &str = "127.0.0.1";

impl Provider {
    /// How this provider gives money back.
    pub fn refund_route(self) -> RefundRoute {
        match self {
            Provider::Sandbox => RefundRoute::Immediate,
            // PayOS has no refund API.
            Provider::Payos => RefundRoute::Manual,
            Provider::Vnpay | Provider::Zalopay => RefundRoute::ProviderApi,
        }
    }
}

/// A stored payment, as refunds and status queries need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayment {
    /// What the provider's notifications carry (VNPay `vnp_TxnRef`, ZaloPay `app_trans_id`,
    /// PayOS `orderCode`).
    pub provider_ref: String,
    /// The provider's transaction (VNPay `vnp_TransactionNo`, ZaloPay `zp_trans_id`), once paid.
    pub provider_txn_id: Option<String>,
    /// In VND.
    pub amount: i64,
    pub created_at_ms: i64,
}

/// One refund attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundCall {
    pub refund_id: String,
    pub refund_created_at_ms: i64,
    /// 1 for the first call; VNPay request ids differ per call.
    pub attempt: u32,
    /// Whether an earlier call was answered "processing": ZaloPay is then asked about the
    /// refund instead of being sent it again.
    pub submitted: bool,
    pub description: String,
    pub payment: StoredPayment,
    pub now_ms: i64,
}

impl Gateway {
    /// The request that refunds (or checks on the refund of) a payment. Only for providers
    /// with a refund API ([`RefundRoute::ProviderApi`]).
    pub fn plan_refund(&self, call: &RefundCall) -> Result<OutboundRequest, PaymentError> {
        let txn = call
            .payment
            .provider_txn_id
            .clone()
            .filter(|t| !t.is_empty());
        match self {
            Gateway::Vnpay(cfg) => vnpay::build_refund_request(
                cfg,
                &vnpay::RefundRequest {
                    request_id: vnpay_request_id(&call.refund_id, call.attempt),
                    transaction_type: "02".into(),
                    txn_ref: call.payment.provider_ref.clone(),
                    amount: call.payment.amount,
                    transaction_no: txn,
                    transaction_date: VietnamTime::from_unix_ms(call.payment.created_at_ms)
                        .compact(),
                    create_by: REFUND_CREATED_BY.into(),
                    create_date: VietnamTime::from_unix_ms(call.now_ms).compact(),
                    ip_addr: SERVER_IP.into(),
                    order_info: call.description.clone(),
                },
            ),
            Gateway::Zalopay(cfg) => {
                let m_refund_id = zalopay::m_refund_id(
                    cfg,
                    &provider_key(&call.refund_id),
                    call.refund_created_at_ms,
                );
                if call.submitted {
                    return zalopay::build_query_refund_request(cfg, &m_refund_id, call.now_ms);
                }
                let zp_trans_id = txn.ok_or_else(|| {
                    PaymentError::InvalidIntent("the ZaloPay payment has no zp_trans_id".into())
                })?;
                zalopay::build_refund_request(
                    cfg,
                    &zalopay::RefundRequest {
                        m_refund_id,
                        zp_trans_id,
                        amount: call.payment.amount,
                        timestamp: call.now_ms,
                        description: call.description.clone(),
                    },
                )
            }
            Gateway::Payos(_) | Gateway::Sandbox(_) => Err(PaymentError::Unsupported(format!(
                "{} has no refund API",
                self.provider()
            ))),
        }
    }

    /// Reads the answer to [`Gateway::plan_refund`]'s request.
    pub fn read_refund_answer(&self, status: u16, body: &str) -> ProviderAnswer {
        match self {
            Gateway::Vnpay(cfg) => vnpay::parse_refund_response(cfg, status, body),
            Gateway::Zalopay(_) => zalopay::parse_refund_response(status, body),
            Gateway::Payos(_) | Gateway::Sandbox(_) => ProviderAnswer::ManualOnly,
        }
    }

    /// The request that asks where a payment stands; `None` for the sandbox, which has nobody
    /// to ask (its notifications cannot be lost on the way).
    pub fn plan_status_query(
        &self,
        payment: &StoredPayment,
        now_ms: i64,
    ) -> Result<Option<OutboundRequest>, PaymentError> {
        match self {
            Gateway::Payos(cfg) => Ok(Some(super::payos::build_status_request(
                cfg,
                &payment.provider_ref,
            ))),
            Gateway::Vnpay(cfg) => vnpay::build_querydr_request(
                cfg,
                &vnpay::QueryDrRequest {
                    // Unique per query: the payment's reference and the second it is asked.
                    request_id: query_request_id(&payment.provider_ref, now_ms),
                    txn_ref: payment.provider_ref.clone(),
                    transaction_date: VietnamTime::from_unix_ms(payment.created_at_ms).compact(),
                    create_date: VietnamTime::from_unix_ms(now_ms).compact(),
                    ip_addr: SERVER_IP.into(),
                    order_info: format!("Query {}", payment.provider_ref),
                },
            )
            .map(Some),
            Gateway::Zalopay(cfg) => {
                zalopay::build_query_request(cfg, &payment.provider_ref).map(Some)
            }
            Gateway::Sandbox(_) => Ok(None),
        }
    }

    /// Reads the answer to [`Gateway::plan_status_query`]'s request.
    pub fn read_status_answer(
        &self,
        status: u16,
        body: &str,
    ) -> Result<PaymentQueryAnswer, PaymentError> {
        match self {
            Gateway::Payos(cfg) => super::payos::parse_status_response(cfg, status, body),
            Gateway::Vnpay(cfg) => vnpay::parse_querydr_response(cfg, status, body),
            Gateway::Zalopay(_) => zalopay::parse_query_response(status, body).map(Into::into),
            Gateway::Sandbox(_) => Err(PaymentError::Unsupported(
                "the sandbox has no status API".into(),
            )),
        }
    }
}

/// `vnp_RequestId` of a status query: at most 32 characters, alphanumeric.
fn query_request_id(provider_ref: &str, now_ms: i64) -> String {
    let reference: String = provider_ref
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(18)
        .collect();
    format!("q{reference}{}", now_ms.rem_euclid(10_000_000_000_000))
        .chars()
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::{PayosConfig, SandboxConfig, VnpayConfig, ZalopayConfig};

    const RID: &str = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    // 2024-01-16 09:00:00 in Hanoi.
    const NOW: i64 = 1_705_370_400_000;

    fn vnpay() -> Gateway {
        Gateway::Vnpay(VnpayConfig {
            tmn_code: "PAYCHK01".into(),
            hash_secret: "PAYCHECKVNPAYHASHSECRET0123456789".into(),
            pay_url: vnpay::SANDBOX_PAY_URL.into(),
            api_url: vnpay::SANDBOX_API_URL.into(),
        })
    }

    fn zalopay() -> Gateway {
        Gateway::Zalopay(ZalopayConfig {
            app_id: 12345,
            key1: "paycheck_zlp_key1_0123456789abcdef".into(),
            key2: "k2".into(),
            api_base: zalopay::SANDBOX_API_BASE.into(),
        })
    }

    fn call(provider_ref: &str, txn: &str) -> RefundCall {
        RefundCall {
            refund_id: RID.into(),
            refund_created_at_ms: NOW,
            attempt: 1,
            submitted: false,
            description: "Hoan tien don hang TB-7K3M9Q2X".into(),
            payment: StoredPayment {
                provider_ref: provider_ref.into(),
                provider_txn_id: Some(txn.into()),
                amount: 150_000,
                // 2024-01-15 10:30:00 in Hanoi.
                created_at_ms: 1_705_289_400_000,
            },
            now_ms: NOW,
        }
    }

    #[test]
    fn each_provider_refunds_its_own_way() {
        assert_eq!(Provider::Sandbox.refund_route(), RefundRoute::Immediate);
        assert_eq!(Provider::Payos.refund_route(), RefundRoute::Manual);
        assert_eq!(Provider::Vnpay.refund_route(), RefundRoute::ProviderApi);
        assert_eq!(Provider::Zalopay.refund_route(), RefundRoute::ProviderApi);
    }

    #[test]
    fn a_vnpay_refund_names_the_payment_by_its_reference_number_and_date() {
        let http = vnpay()
            .plan_refund(&call("TB7K3M9Q2X", "14226112"))
            .expect("request");
        let body: serde_json::Value = serde_json::from_str(&http.body).expect("json");
        assert_eq!(body["vnp_TxnRef"], "TB7K3M9Q2X");
        assert_eq!(body["vnp_TransactionNo"], "14226112");
        assert_eq!(body["vnp_TransactionDate"], 20240115103000u64);
        assert_eq!(body["vnp_CreateDate"], 20240116090000u64);
        assert_eq!(body["vnp_Amount"], 15_000_000);
        assert_eq!(body["vnp_RequestId"], "0f8e7d6c5b4a439281706f5e4d3c0001");
        assert_eq!(http.url, vnpay::SANDBOX_API_URL);
    }

    #[test]
    fn a_zalopay_refund_is_sent_once_then_asked_about_under_the_same_id() {
        let first = zalopay()
            .plan_refund(&call("240115_TB7K3M9Q2X", "240115000000389"))
            .expect("refund");
        assert!(first.url.ends_with("/v2/refund"));
        assert!(first
            .body
            .contains("m_refund_id=240116_12345_0f8e7d6c5b4a439281706f5e4d3c2b1a&"));
        let mut later = call("240115_TB7K3M9Q2X", "240115000000389");
        later.submitted = true;
        later.attempt = 3;
        let check = zalopay().plan_refund(&later).expect("query");
        assert!(check.url.ends_with("/v2/query_refund"));
        assert!(check
            .body
            .contains("m_refund_id=240116_12345_0f8e7d6c5b4a439281706f5e4d3c2b1a&"));
        let mut no_txn = call("240115_TB7K3M9Q2X", "");
        no_txn.payment.provider_txn_id = None;
        assert!(zalopay().plan_refund(&no_txn).is_err());
    }

    #[test]
    fn providers_without_a_refund_api_are_never_called() {
        let payos = Gateway::Payos(PayosConfig {
            client_id: "c".into(),
            api_key: "k".into(),
            checksum_key: "s".into(),
            api_base: "https://api-merchant.payos.vn".into(),
        });
        assert!(payos.plan_refund(&call("1", "x")).is_err());
        assert_eq!(
            payos.read_refund_answer(200, "{}"),
            ProviderAnswer::ManualOnly
        );
        let sandbox = Gateway::Sandbox(SandboxConfig {
            secret: "s".into(),
            base_url: "http://localhost".into(),
        });
        assert_eq!(
            sandbox.plan_status_query(&call("x", "y").payment, NOW),
            Ok(None)
        );
    }

    #[test]
    fn status_queries_go_to_each_providers_endpoint() {
        let payment = call("TB7K3M9Q2X", "").payment;
        let vn = vnpay()
            .plan_status_query(&payment, NOW)
            .expect("vnpay")
            .expect("a request");
        let body: serde_json::Value = serde_json::from_str(&vn.body).expect("json");
        assert_eq!(body["vnp_Command"], "querydr");
        assert_eq!(body["vnp_TransactionDate"], 20240115103000u64);
        let id = body["vnp_RequestId"].as_str().expect("id");
        assert!(
            id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}"
        );
        let zp = zalopay()
            .plan_status_query(&payment, NOW)
            .expect("zalopay")
            .expect("a request");
        assert!(zp.url.ends_with("/v2/query"));
    }
}
