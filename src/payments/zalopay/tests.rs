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
