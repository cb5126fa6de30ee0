use super::*;

const REFUNDS_JSON: &str = include_str!("../../../tests/fixtures/refunds.json");

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
    let unknown =
        parse_query_response(200, r#"{"return_code":2,"sub_return_code":-49}"#).expect("unknown");
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
