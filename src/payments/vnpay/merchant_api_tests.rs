use super::*;
use serde_json::Value;

const REFUNDS_JSON: &str = include_str!("../../../tests/fixtures/refunds.json");

fn vectors() -> Value {
    serde_json::from_str(REFUNDS_JSON).expect("refunds.json is valid JSON")
}

fn config(v: &Value) -> VnpayConfig {
    VnpayConfig {
        tmn_code: v["vnpay"]["keys"]["tmnCode"].as_str().expect("tmn").into(),
        hash_secret: v["vnpay"]["keys"]["hashSecret"]
            .as_str()
            .expect("secret")
            .into(),
        pay_url: SANDBOX_PAY_URL.into(),
        api_url: SANDBOX_API_URL.into(),
    }
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("{key}: {other:?}"),
    }
}

fn refund_request(input: &Value) -> RefundRequest {
    RefundRequest {
        request_id: text(input, "vnp_RequestId"),
        transaction_type: text(input, "vnp_TransactionType"),
        txn_ref: text(input, "vnp_TxnRef"),
        amount: input["vnp_Amount"].as_i64().expect("amount"),
        transaction_no: Some(text(input, "vnp_TransactionNo")),
        transaction_date: text(input, "vnp_TransactionDate"),
        create_by: text(input, "vnp_CreateBy"),
        create_date: text(input, "vnp_CreateDate"),
        ip_addr: text(input, "vnp_IpAddr"),
        order_info: text(input, "vnp_OrderInfo"),
    }
}

#[test]
fn the_refund_request_is_the_one_the_sdk_sends() {
    let v = vectors();
    let cfg = config(&v);
    let case = &v["vnpay"]["refund"];
    let request = refund_request(&case["input"]);
    assert_eq!(
        request.hash_input(&cfg).expect("hash input"),
        text(case, "hash_input")
    );
    let http = build_refund_request(&cfg, &request).expect("request");
    assert_eq!(http.method, HttpMethod::Post);
    assert_eq!(http.url, text(&case["http_request"], "url"));
    let body: Value = serde_json::from_str(&http.body).expect("json");
    assert_eq!(body, case["http_request"]["body"]);
}

#[test]
fn the_querydr_request_is_the_one_the_sdk_sends() {
    let v = vectors();
    let cfg = config(&v);
    let case = &v["vnpay"]["querydr"];
    let input = &case["input"];
    let request = QueryDrRequest {
        request_id: text(input, "vnp_RequestId"),
        txn_ref: text(input, "vnp_TxnRef"),
        transaction_date: text(input, "vnp_TransactionDate"),
        create_date: text(input, "vnp_CreateDate"),
        ip_addr: text(input, "vnp_IpAddr"),
        order_info: text(input, "vnp_OrderInfo"),
    };
    assert_eq!(request.hash_input(&cfg), text(case, "hash_input"));
    let http = build_querydr_request(&cfg, &request).expect("request");
    assert_eq!(http.url, text(&case["http_request"], "url"));
    let body: Value = serde_json::from_str(&http.body).expect("json");
    assert_eq!(body, case["http_request"]["body"]);
}

#[test]
fn a_signed_refund_answer_00_is_a_refund_and_94_a_refund_already_made() {
    let v = vectors();
    let cfg = config(&v);
    let ok = v["vnpay"]["refund"]["response"].to_string();
    assert_eq!(
        parse_refund_response(&cfg, 200, &ok),
        ProviderAnswer::Refunded {
            provider_refund_id: Some("14226190".into())
        }
    );
    // The SDK reports this genuine answer unverified (it hashes vnp_Amount / 100).
    assert_eq!(v["vnpay"]["refund"]["sdk_result"]["isVerified"], false);
    let duplicate = v["vnpay"]["refund_duplicate_response"].to_string();
    assert!(matches!(
        parse_refund_response(&cfg, 200, &duplicate),
        ProviderAnswer::Refunded {
            provider_refund_id: None
        }
    ));
}

#[test]
fn forged_unsigned_and_failed_refund_answers_are_not_refunds() {
    let v = vectors();
    let cfg = config(&v);
    let mut forged = v["vnpay"]["refund"]["response"].clone();
    forged["vnp_Amount"] = "100".into();
    assert!(matches!(
        parse_refund_response(&cfg, 200, &forged.to_string()),
        ProviderAnswer::Unavailable { .. }
    ));
    let mut unsigned = v["vnpay"]["refund"]["response"].clone();
    unsigned
        .as_object_mut()
        .expect("object")
        .remove("vnp_SecureHash");
    assert!(matches!(
        parse_refund_response(&cfg, 200, &unsigned.to_string()),
        ProviderAnswer::Unavailable { .. }
    ));
    let refused = r#"{"vnp_ResponseCode":"91","vnp_Message":"Transaction not found"}"#;
    assert_eq!(
        parse_refund_response(&cfg, 200, refused),
        ProviderAnswer::Rejected {
            code: "91".into(),
            message: "Transaction not found".into()
        }
    );
    for (status, body) in [
        (200, r#"{"vnp_ResponseCode":"99"}"#),
        (503, "down"),
        (200, "<html>"),
    ] {
        assert!(
            matches!(
                parse_refund_response(&cfg, status, body),
                ProviderAnswer::Unavailable { .. }
            ),
            "{status} {body}"
        );
    }
}

#[test]
fn querydr_answers_tell_paid_open_and_forged_apart() {
    let v = vectors();
    let cfg = config(&v);
    let case = &v["vnpay"]["querydr"];
    assert_eq!(case["sdk_result"]["isVerified"], true);
    assert_eq!(
        parse_querydr_response(&cfg, 200, &case["response_paid"].to_string()),
        Ok(PaymentQueryAnswer::Paid {
            amount: 150_000,
            provider_txn_id: "14226112".into()
        })
    );
    assert_eq!(
        parse_querydr_response(&cfg, 200, &case["response_pending"].to_string()),
        Ok(PaymentQueryAnswer::Pending)
    );
    assert_eq!(case["sdk_result_tampered"]["isVerified"], false);
    assert_eq!(
        parse_querydr_response(&cfg, 200, &case["response_tampered"].to_string()),
        Err(PaymentError::BadSignature)
    );
    assert_eq!(
        parse_querydr_response(&cfg, 200, r#"{"vnp_ResponseCode":"91"}"#),
        Ok(PaymentQueryAnswer::Unknown)
    );
    assert_eq!(
        parse_querydr_response(
            &cfg,
            200,
            r#"{"vnp_ResponseCode":"00","vnp_TransactionStatus":"00","vnp_Amount":"15000000"}"#
        ),
        Err(PaymentError::BadSignature),
        "an unsigned 'paid' is never believed"
    );
}
