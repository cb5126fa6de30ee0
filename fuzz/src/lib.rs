//! The bodies of the fuzz targets, as plain functions over bytes, so the same checks run under
//! libFuzzer (`cargo fuzz run <target>`, nightly) and as a bounded smoke run on stable
//! (`cargo test --lib` here: the seeds plus deterministic mutations of them).
//!
//! Each target asserts more than "does not panic":
//! - webhooks: a notification is accepted only if its signature field is exactly the tag we
//!   compute independently (HMAC over the provider's signed string), so nothing unsigned or
//!   wrongly signed is ever accepted; a re-signed copy of any input is also verified, to reach
//!   the parsing behind the signature check;
//! - DTOs and validators: a value that parses is stable under parse → print → parse;
//! - the ticket qr: accepted only if it is byte for byte what the platform signs for the ids it
//!   names (Ed25519 signatures are deterministic), whatever else arrives.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use ticketbottle_edge::domain::catalogue::{self, *};
use ticketbottle_edge::domain::ids::{OrderCode, OrderRef};
use ticketbottle_edge::domain::tickets::{TicketCode, TicketSigner};
use ticketbottle_edge::domain::validation::{self, *};
use ticketbottle_edge::durable::protocol::HubRequest;
use ticketbottle_edge::payments::sandbox::verify_sandbox_webhook;
use ticketbottle_edge::payments::{
    payos, vnpay, zalopay, Gateway, Inbound, PaymentError, PayosConfig, SandboxConfig, VnpayConfig,
    ZalopayConfig,
};

pub const PAYOS_KEY: &str = "fuzz-payos-checksum-key";
pub const VNPAY_SECRET: &str = "fuzz-vnpay-hash-secret";
pub const ZALOPAY_KEY2: &str = "fuzz-zalopay-key2";
pub const SANDBOX_SECRET: &str = "fuzz-sandbox-secret";
pub const TICKET_SEED: [u8; 32] = [42; 32];

fn hmac256(key: &str, msg: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn hmac512(key: &str, msg: &str) -> String {
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

pub fn payos_gateway() -> Gateway {
    Gateway::Payos(PayosConfig {
        client_id: "fuzz-client".into(),
        api_key: "fuzz-api-key".into(),
        checksum_key: PAYOS_KEY.into(),
        api_base: "http://127.0.0.1:1/payos".into(),
    })
}

pub fn vnpay_gateway() -> Gateway {
    Gateway::Vnpay(VnpayConfig {
        tmn_code: "FUZZTMN1".into(),
        hash_secret: VNPAY_SECRET.into(),
        pay_url: "http://127.0.0.1:1/vnpay".into(),
    })
}

pub fn zalopay_gateway() -> Gateway {
    Gateway::Zalopay(ZalopayConfig {
        app_id: 2553,
        key1: "fuzz-zalopay-key1".into(),
        key2: ZALOPAY_KEY2.into(),
        api_base: "http://127.0.0.1:1/zalopay".into(),
    })
}

pub fn sandbox_gateway() -> Gateway {
    Gateway::Sandbox(SandboxConfig {
        secret: SANDBOX_SECRET.into(),
        base_url: String::new(),
    })
}

/// The wrong input kind for a provider is refused, never verified.
fn wrong_kind_refused(gateway: &Gateway, raw: &str, query: bool) {
    let inbound = if query {
        Inbound::Query(raw)
    } else {
        Inbound::Body(raw)
    };
    assert!(matches!(
        gateway.verify(inbound),
        Err(PaymentError::Malformed(_))
    ));
}

/// PayOS: `signature` over the canonical `data` object, HMAC-SHA256 with the checksum key.
pub fn webhook_payos(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    let gateway = payos_gateway();
    wrong_kind_refused(&gateway, raw, true);
    let verdict = gateway.verify(Inbound::Body(raw));
    if let Ok(n) = &verdict {
        let canonical = payos::webhook_canonical_string(raw).expect("verified body has data");
        let envelope: serde_json::Value = serde_json::from_str(raw).expect("verified body is JSON");
        let sent = envelope.get("signature").and_then(|s| s.as_str());
        assert_eq!(sent, Some(hmac256(PAYOS_KEY, &canonical).as_str()));
        assert!(!n.order_ref.is_empty());
    }
    // Re-signed: reach the checks behind the signature.
    if let (Ok(canonical), Ok(serde_json::Value::Object(mut envelope))) = (
        payos::webhook_canonical_string(raw),
        serde_json::from_str::<serde_json::Value>(raw),
    ) {
        envelope.insert("signature".into(), hmac256(PAYOS_KEY, &canonical).into());
        if let Ok(body) = serde_json::to_string(&envelope) {
            let _ = gateway.verify(Inbound::Body(&body));
        }
    }
}

/// VNPay IPN: `vnp_SecureHash` over the sorted, re-encoded `vnp_*` parameters, HMAC-SHA512.
pub fn webhook_vnpay(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    let gateway = vnpay_gateway();
    wrong_kind_refused(&gateway, raw, false);
    if gateway.verify(Inbound::Query(raw)).is_ok() {
        let params = vnpay::parse_ipn_params(raw).expect("verified query parses");
        let canonical = vnpay::ipn_canonical_string(&params).expect("verified query is canonical");
        let sent = params
            .iter()
            .find(|(k, _)| k == "vnp_SecureHash")
            .map(|(_, v)| v.as_str());
        assert_eq!(sent, Some(hmac512(VNPAY_SECRET, &canonical).as_str()));
    }
    if let Ok(params) = vnpay::parse_ipn_params(raw) {
        if let Ok(canonical) = vnpay::ipn_canonical_string(&params) {
            let unsigned: Vec<_> = params
                .into_iter()
                .filter(|(k, _)| k != "vnp_SecureHash")
                .collect();
            let mut query = vnpay::canonical_query(&unsigned);
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str("vnp_SecureHash=");
            query.push_str(&hmac512(VNPAY_SECRET, &canonical));
            let _ = gateway.verify(Inbound::Query(&query));
        }
    }
}

/// ZaloPay callback: `mac` over the `data` string, HMAC-SHA256 with key2.
pub fn webhook_zalopay(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    let gateway = zalopay_gateway();
    wrong_kind_refused(&gateway, raw, true);
    if gateway.verify(Inbound::Body(raw)).is_ok() {
        let envelope: serde_json::Value = serde_json::from_str(raw).expect("verified body is JSON");
        let signed = envelope["data"].as_str().expect("verified body has data");
        assert_eq!(
            envelope.get("mac").and_then(|m| m.as_str()),
            Some(hmac256(ZALOPAY_KEY2, signed).as_str())
        );
    }
    // Treat the input as the `data` string itself and sign it: the payment decoder behind the MAC.
    let body = serde_json::json!({ "data": raw, "mac": hmac256(ZALOPAY_KEY2, raw), "type": 1 });
    let _ = zalopay::verify_callback(
        match &gateway {
            Gateway::Zalopay(cfg) => cfg,
            _ => unreachable!(),
        },
        &body.to_string(),
    );
}

/// Sandbox: `signature` over the `data` string, HMAC-SHA256 with its own secret.
pub fn webhook_sandbox(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    let gateway = sandbox_gateway();
    wrong_kind_refused(&gateway, raw, true);
    if gateway.verify(Inbound::Body(raw)).is_ok() {
        let envelope: serde_json::Value = serde_json::from_str(raw).expect("verified body is JSON");
        let signed = envelope["data"].as_str().expect("verified body has data");
        assert_eq!(
            envelope.get("signature").and_then(|m| m.as_str()),
            Some(hmac256(SANDBOX_SECRET, signed).as_str())
        );
    }
    let body = serde_json::json!({ "data": raw, "signature": hmac256(SANDBOX_SECRET, raw) });
    if let Ok(n) = verify_sandbox_webhook(&body.to_string(), SANDBOX_SECRET) {
        assert!(!n.order_ref.is_empty() && !n.provider_txn_id.is_empty());
    }
}

/// The catalogue request bodies as the API decodes them (JSON → DTO → validated value).
pub fn catalogue_dto(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<CreateCategoryRequest>(body) {
                if let Ok(c) = parse_new_category(&req) {
                    // The derived slug is itself a valid slug.
                    assert!(Slug::parse(c.slug.as_str()).is_ok());
                }
            }
        }
        1 => {
            if let Ok(req) = serde_json::from_slice::<CreateOrganizerRequest>(body) {
                let _ = parse_new_organizer(&req);
            }
        }
        2 => {
            if let Ok(req) = serde_json::from_slice::<CreateEventRequest>(body) {
                let mut v = Validator::new();
                if let Some(e) = parse_new_event(&mut v, &req) {
                    if v.is_valid() {
                        assert!(e.end_ms > e.start_ms);
                    }
                }
            }
        }
        3 => {
            if let Ok(req) = serde_json::from_slice::<UpdateEventRequest>(body) {
                let mut v = Validator::new();
                let _ = parse_event_changes(&mut v, &req);
            }
        }
        4 => {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
                let unwrapped = catalogue::unwrap_event_config(value);
                if let Ok(req) = serde_json::from_value::<EventConfigRequest>(unwrapped) {
                    let mut v = Validator::new();
                    let _ = parse_event_config(&mut v, &req);
                }
            }
        }
        5 => {
            if let Ok(req) = serde_json::from_slice::<CreateTicketClassRequest>(body) {
                let mut v = Validator::new();
                let _ = parse_new_ticket_class(&mut v, &req);
            }
            if let Ok(req) = serde_json::from_slice::<UpdateTicketClassRequest>(body) {
                let mut v = Validator::new();
                let _ = parse_ticket_class_changes(&mut v, &req);
            }
        }
        6 => {
            if let Ok(req) = serde_json::from_slice::<PutRoleRequest>(body) {
                let _ = parse_role(&req);
            }
        }
        _ => {
            if let Ok(query) = serde_json::from_slice::<EventListQuery>(body) {
                if let Ok(search) = parse_event_search(&query) {
                    assert!(search.pagination.limit() >= 1);
                    if let Some(text) = &search.text {
                        let _ = text.fts_query();
                    }
                }
            }
        }
    }
}

/// The field validators on raw strings, with parse → print → parse stability.
pub fn validators(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    if let Ok(email) = Email::parse(raw) {
        assert_eq!(Email::parse(email.as_str()).ok().as_ref(), Some(&email));
        assert!(!email.domain().is_empty());
    }
    let _ = Password::parse(raw);
    if let Ok(url) = validation::Url::parse(raw) {
        assert!(validation::Url::parse(url.as_str()).is_ok());
    }
    if let Ok(slug) = Slug::from_name(raw) {
        assert!(Slug::parse(slug.as_str()).is_ok());
    }
    if let Ok(slug) = Slug::parse(raw) {
        assert_eq!(Slug::parse(slug.as_str()).ok().as_ref(), Some(&slug));
    }
    if let Ok(c) = CurrencyCode::parse(raw) {
        assert_eq!(CurrencyCode::parse(c.as_str()).ok(), Some(c));
    }
    if let Ok(t) = Timestamp::parse(raw) {
        let printed = t.to_rfc3339();
        assert_eq!(Timestamp::parse(&printed).ok(), Some(t));
        assert_eq!(validation::format_rfc3339(t.unix_ms()), printed);
    }
    if let Ok(code) = OrderCode::parse(raw) {
        assert_eq!(OrderCode::parse(code.as_str()).ok().as_ref(), Some(&code));
    }
    let _ = OrderRef::parse(raw);
    let _ = CategoryRef::parse(raw);
    if let Ok(Some(search)) = SearchText::parse(raw) {
        let _ = search.fts_query();
    }
    let (page, size) = raw.split_once('&').unwrap_or((raw, ""));
    if let Ok(p) = Pagination::parse(Some(page), Some(size)) {
        assert!(p.limit() >= 1 && p.offset() < u64::MAX);
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(raw) {
        if let Ok(n) = validation::json_integer(&value) {
            let _ = PriceCents::parse(n);
            let _ = TicketTotal::parse(n);
            let _ = MaxTicketsPerUser::parse(n);
            let _ = parse_waitroom_settings(Some(n), Some(n), Some(n));
        }
    }
}

/// The Worker ↔ EventHub wire protocol: the object decodes whatever the Worker sends.
pub fn hub_protocol(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<HubRequest>(data) {
        let again = serde_json::to_string(&request).expect("a decoded request encodes");
        let back: HubRequest = serde_json::from_str(&again).expect("an encoded request decodes");
        assert_eq!(back, request);
        let _ = request.op();
    }
}

/// The door's qr decoder (and the typed ticket code): nothing but an exact signed payload is
/// accepted, and a typed code is stable under parse → print → parse.
pub fn ticket_qr(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    let signer = TicketSigner::from_seed(&TICKET_SEED);
    if let Ok(claim) = signer.verifier().verify(raw) {
        let signed = signer
            .sign(&claim.event_id, &claim.ticket_id, &claim.ticket_class_id)
            .expect("decoded ids are UUIDs");
        assert_eq!(signed, raw, "accepted a qr the platform did not sign");
        assert_eq!(claim.kid, signer.kid());
    }
    if let Ok(code) = TicketCode::parse(raw) {
        assert_eq!(TicketCode::parse(code.as_str()).ok().as_ref(), Some(&code));
    }
}

/// The event's object on memory stores (`ticketbottle-edge`'s `memory-stores` feature), driven
/// by a byte-coded stream of its operations under a moving clock. Each operation runs all or
/// nothing, like the object's storage transaction. After every step: no operation fails as
/// internal (the memory stores never fail, so an internal failure is a broken rule or
/// invariant), and every class keeps `reserved + sold <= total`, `available` the rest.
pub fn hub_commands(data: &[u8]) {
    let mut object = hub::Object::new();
    for step in data.chunks(2) {
        let (op, arg) = (step[0], step.get(1).copied().unwrap_or(0));
        object.step(op, arg);
        object.check_invariants();
    }
}

mod hub;

#[cfg(test)]
mod smoke;
