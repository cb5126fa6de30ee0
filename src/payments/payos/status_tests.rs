use super::*;
use serde_json::Value;

const REFUNDS_JSON: &str = include_str!("../../../tests/fixtures/refunds.json");

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
    let expired =
        r#"{"code":"00","desc":"success","data":{"status":"EXPIRED","orderCode":1,"amount":1}}"#;
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
