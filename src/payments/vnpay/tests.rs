use super::super::fixtures::{list, str_at, vectors};
use super::super::{hmac_sha512_hex, Gateway, Inbound, PaymentStanding};
use super::*;
use serde_json::Value;

fn config(v: &Value) -> VnpayConfig {
    VnpayConfig {
        tmn_code: str_at(v, "/vnpay/keys/tmnCode").into(),
        hash_secret: str_at(v, "/vnpay/keys/hashSecret").into(),
        pay_url: SANDBOX_PAY_URL.into(),
        api_url: SANDBOX_API_URL.into(),
    }
}

fn input_text(input: &Value, key: &str) -> Option<String> {
    match &input[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn request_from_vector(input: &Value) -> PaymentUrlRequest {
    let text = |key: &str| input_text(input, key).unwrap_or_else(|| panic!("input {key}"));
    PaymentUrlRequest {
        amount: input["vnp_Amount"].as_i64().expect("vnp_Amount"),
        ip_addr: text("vnp_IpAddr"),
        txn_ref: text("vnp_TxnRef"),
        order_info: text("vnp_OrderInfo"),
        order_type: text("vnp_OrderType"),
        return_url: text("vnp_ReturnUrl"),
        locale: text("vnp_Locale"),
        bank_code: input_text(input, "vnp_BankCode"),
        create_date: text("vnp_CreateDate"),
        expire_date: input_text(input, "vnp_ExpireDate"),
    }
}

fn as_pairs(object: &Value) -> Vec<(String, String)> {
    object
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

#[test]
fn every_payment_url_vector_is_rebuilt_exactly() {
    let v = vectors();
    let cfg = config(&v);
    for case in list(&v, "/vnpay/payment_urls") {
        let name = str_at(case, "/name");
        let request = request_from_vector(&case["input"]);
        let params = request.params(&cfg).expect("params");
        let mut want_params = as_pairs(&case["params_sent"]);
        want_params.sort();
        let mut got_params = params.clone();
        got_params.sort();
        assert_eq!(got_params, want_params, "{name}");

        let canonical = canonical_query(&params);
        assert_eq!(canonical, str_at(case, "/canonical_string"), "{name}");
        assert_eq!(
            hmac_sha512_hex(cfg.hash_secret.as_bytes(), canonical.as_bytes()),
            str_at(case, "/vnp_SecureHash"),
            "{name}"
        );
        assert_eq!(
            build_payment_url(&cfg, &request).expect("url"),
            str_at(case, "/url"),
            "{name}"
        );

        // We follow the SDK; the official demo's encodeURIComponent differs on !'()~.
        let demo = &case["comparison_official_node_demo"];
        let same = demo["same_as_sdk"].as_bool().expect("same_as_sdk");
        assert_eq!(
            canonical == str_at(demo, "/canonical_string"),
            same,
            "{name}"
        );
        assert_eq!(
            build_payment_url(&cfg, &request)
                .expect("url")
                .ends_with(str_at(demo, "/vnp_SecureHash")),
            same,
            "{name}"
        );
    }
}

#[test]
fn every_ipn_vector_verifies_and_is_answered_as_expected() {
    let v = vectors();
    let cfg = config(&v);
    for case in list(&v, "/vnpay/ipn") {
        let name = str_at(case, "/name");
        let query = str_at(case, "/query");

        let params = parse_ipn_params(query).expect("params");
        let mut got = params.clone();
        got.sort();
        let mut want = as_pairs(&case["parsed_params"]);
        want.sort();
        assert_eq!(got, want, "{name}");
        if let Some(canonical) = case["canonical_string"].as_str() {
            assert_eq!(
                ipn_canonical_string(&params).expect("canonical"),
                canonical,
                "{name}"
            );
        }

        let expected_valid = case["expected_valid"].as_bool().expect("expected_valid");
        assert_eq!(
            case["sdk_verifyIpnCall"]["isVerified"].as_bool(),
            Some(expected_valid),
            "{name}: fixture disagrees with itself"
        );
        let result = verify_ipn(&cfg, query);
        assert_eq!(result.is_ok(), expected_valid, "{name}: {result:?}");
        if !expected_valid {
            assert_eq!(result, Err(PaymentError::BadSignature), "{name}");
        }
        let paid = result.as_ref().is_ok_and(|n| n.outcome.is_success());
        assert_eq!(Some(paid), case["payment_succeeded"].as_bool(), "{name}");
        if let Ok(n) = &result {
            assert_eq!(n.order_ref, want_param(&params, "vnp_TxnRef"), "{name}");
            assert_eq!(
                n.amount * 100,
                want_param(&params, "vnp_Amount")
                    .parse::<i64>()
                    .expect("amount"),
                "{name}"
            );
        }

        // The order this IPN names, pending and for the amount the IPN carries.
        let standing = OrderStanding::Found {
            amount: 150_000,
            payment: PaymentStanding::Awaiting,
        };
        let answer = decide_ipn_answer(&result, &standing);
        let expected = &case["expected_ipn_response"];
        assert_eq!(answer.rsp_code(), str_at(expected, "/RspCode"), "{name}");
        assert_eq!(answer.message(), str_at(expected, "/Message"), "{name}");
        let body: Value = serde_json::from_str(&answer.body()).expect("body");
        assert_eq!(&body, expected, "{name}");
    }
}

fn want_param(params: &[(String, String)], name: &str) -> String {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[test]
fn ipn_answers_match_the_sdk_constants() {
    let v = vectors();
    let constants = v["vnpay"]["ipn_response_constants_from_sdk"]
        .as_object()
        .expect("constants");
    assert_eq!(constants.len(), 6);
    for (name, answer) in [
        ("IpnSuccess", IpnAnswer::ConfirmSuccess),
        ("IpnOrderNotFound", IpnAnswer::OrderNotFound),
        ("InpOrderAlreadyConfirmed", IpnAnswer::OrderAlreadyConfirmed),
        ("IpnInvalidAmount", IpnAnswer::InvalidAmount),
        ("IpnFailChecksum", IpnAnswer::FailChecksum),
        ("IpnUnknownError", IpnAnswer::UnknownError),
    ] {
        let constant = &constants[name];
        assert_eq!(answer.rsp_code(), str_at(constant, "/RspCode"), "{name}");
        assert_eq!(answer.message(), str_at(constant, "/Message"), "{name}");
    }
}

fn success_ipn(v: &Value) -> Result<VerifiedNotification, PaymentError> {
    verify_ipn(&config(v), str_at(v, "/vnpay/ipn/0/query"))
}

#[test]
fn a_valid_ipn_for_an_unknown_order_is_answered_01() {
    let v = vectors();
    assert_eq!(
        decide_ipn_answer(&success_ipn(&v), &OrderStanding::NotFound).body(),
        r#"{"RspCode":"01","Message":"Order not found"}"#
    );
}

#[test]
fn a_valid_ipn_for_another_amount_is_answered_04() {
    let v = vectors();
    let standing = OrderStanding::Found {
        amount: 149_999,
        payment: PaymentStanding::Awaiting,
    };
    assert_eq!(
        decide_ipn_answer(&success_ipn(&v), &standing),
        IpnAnswer::InvalidAmount
    );
}

#[test]
fn a_repeated_ipn_for_a_settled_order_is_answered_02() {
    let v = vectors();
    let standing = OrderStanding::Found {
        amount: 150_000,
        payment: PaymentStanding::Paid,
    };
    assert_eq!(
        decide_ipn_answer(&success_ipn(&v), &standing),
        IpnAnswer::OrderAlreadyConfirmed
    );
}

#[test]
fn a_store_failure_is_answered_99_so_vnpay_retries() {
    assert_eq!(
        IpnAnswer::from(Disposition::RetryLater).acknowledgement(),
        Acknowledgement {
            status: 200,
            body: r#"{"RspCode":"99","Message":"Unknown error"}"#.into()
        }
    );
}

fn sign(cfg: &VnpayConfig, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let canonical = ipn_canonical_string(&owned).expect("canonical");
    let hash = hmac_sha512_hex(cfg.hash_secret.as_bytes(), canonical.as_bytes());
    format!("{}&vnp_SecureHash={hash}", canonical_query(&owned))
}

#[test]
fn signed_but_unusable_ipns_are_malformed_and_answered_99() {
    let v = vectors();
    let cfg = config(&v);
    let cases = [
        sign(
            &cfg,
            &[("vnp_Amount", "15000000"), ("vnp_ResponseCode", "00")],
        ),
        sign(
            &cfg,
            &[
                ("vnp_Amount", "15000050"),
                ("vnp_TxnRef", "ORD1"),
                ("vnp_ResponseCode", "00"),
            ],
        ),
        sign(
            &cfg,
            &[
                ("vnp_Amount", "15000000"),
                ("vnp_TmnCode", "OTHER"),
                ("vnp_TxnRef", "ORD1"),
            ],
        ),
    ];
    for query in cases {
        let result = verify_ipn(&cfg, &query);
        assert!(
            matches!(result, Err(PaymentError::Malformed(_))),
            "{query}: {result:?}"
        );
        assert_eq!(
            decide_ipn_answer(&result, &OrderStanding::NotFound),
            IpnAnswer::UnknownError
        );
    }
}

#[test]
fn ipns_without_a_hash_or_with_a_non_numeric_amount_are_refused() {
    let v = vectors();
    let cfg = config(&v);
    assert_eq!(
        verify_ipn(&cfg, "vnp_Amount=100&vnp_TxnRef=1"),
        Err(PaymentError::BadSignature)
    );
    let query = str_at(&v, "/vnpay/ipn/0/query").replace("vnp_Amount=15000000", "vnp_Amount=1.5e7");
    assert!(matches!(
        verify_ipn(&cfg, &query),
        Err(PaymentError::Malformed(_))
    ));
    let duplicated = format!("{}&vnp_TxnRef=OTHER", str_at(&v, "/vnpay/ipn/0/query"));
    assert!(matches!(
        verify_ipn(&cfg, &duplicated),
        Err(PaymentError::Malformed(_))
    ));
}

#[test]
fn a_leading_question_mark_and_foreign_parameters_do_not_matter() {
    let v = vectors();
    let cfg = config(&v);
    let query = format!("?utm=x&{}", str_at(&v, "/vnpay/ipn/0/query"));
    assert!(verify_ipn(&cfg, &query).is_ok());
}

fn intent() -> PaymentIntent {
    PaymentIntent {
        payment_id: "pay_1".into(),
        order_code: 20240115001,
        order_ref: "ORD20240115001".into(),
        amount: 150_000,
        currency: "VND".into(),
        description: "Thanh toan don hang ORD20240115001".into(),
        return_url: "https://merchant.example/vnpay/return?src=web".into(),
        cancel_url: "https://merchant.example/cancel".into(),
        notify_url: "https://merchant.example/api/payments/webhooks/vnpay".into(),
        buyer_ref: "user-1".into(),
        buyer_name: None,
        buyer_email: None,
        client_ip: "127.0.0.1".into(),
        items: vec![],
        // 2024-01-15 10:30:00 and 10:45:00 in Hanoi.
        now_ms: 1_705_289_400_000,
        expires_at_ms: 1_705_290_300_000,
    }
}

#[test]
fn an_intent_plans_the_basic_vector_url_but_for_the_bank_code() {
    let v = vectors();
    let cfg = config(&v);
    let plan = plan_create(&cfg, &intent()).expect("plan");
    assert_eq!(plan.order_ref, "ORD20240115001");
    let CreateStep::Redirect { payment_url } = plan.step else {
        panic!("VNPay redirects")
    };
    // The vector pins vnp_BankCode=NCB (bank preselected); we let the buyer choose.
    let mut request = request_from_vector(&v["vnpay"]["payment_urls"][0]["input"]);
    request.bank_code = None;
    assert_eq!(payment_url, build_payment_url(&cfg, &request).expect("url"));
    assert!(payment_url.contains("vnp_CreateDate=20240115103000&"));
    assert!(payment_url.contains("vnp_ExpireDate=20240115104500&"));
}

#[test]
fn the_gateway_takes_vnpay_ipns_as_queries() {
    let v = vectors();
    let gateway = Gateway::Vnpay(config(&v));
    let query = str_at(&v, "/vnpay/ipn/0/query");
    assert!(gateway.verify(Inbound::Query(query)).is_ok());
    assert!(gateway.verify(Inbound::Body(query)).is_err());
    assert_eq!(
        gateway.acknowledge(Disposition::BadSignature).body,
        r#"{"RspCode":"97","Message":"Fail checksum"}"#
    );
}
