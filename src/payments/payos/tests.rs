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
