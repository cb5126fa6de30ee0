//! A bounded stable stand-in for the fuzzer: every target on its seeds and on deterministic
//! mutations of them (bit flips, byte inserts and deletes, truncations, splices between seeds).
//! `FUZZ_SMOKE_ITERATIONS` (default 3,000 per target) bounds the run.

use super::*;
use ticketbottle_edge::payments::sandbox::{sign_sandbox_webhook, SandboxEvent, SandboxOutcome};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("webhook_payos", webhook_payos),
    ("webhook_vnpay", webhook_vnpay),
    ("webhook_zalopay", webhook_zalopay),
    ("webhook_sandbox", webhook_sandbox),
    ("catalogue_dto", catalogue_dto),
    ("validators", validators),
    ("hub_protocol", hub_protocol),
    ("ticket_qr", ticket_qr),
    ("hub_commands", hub_commands),
];

fn seeds_dir(target: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target)
}

/// Correctly signed notifications for the fuzz keys, so mutations start on the accepted path.
fn signed_seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "webhook_sandbox" => {
            let event = SandboxEvent {
                payment_id: "pay_1".into(),
                order_ref: "ord_1".into(),
                amount: 150_000,
                currency: "VND".into(),
                outcome: SandboxOutcome::Paid,
                txn_id: "txn_1".into(),
                issued_at_ms: 1_700_000_000_000,
            };
            vec![sign_sandbox_webhook(&event, SANDBOX_SECRET)
                .unwrap()
                .into_bytes()]
        }
        "webhook_payos" => {
            let data = serde_json::json!({
                "orderCode": 20240115001_i64, "amount": 150000, "description": "DH 0001",
                "reference": "FT1", "paymentLinkId": "abc", "code": "00", "desc": "ok", "currency": "VND"
            });
            let unsigned = serde_json::json!({ "code": "00", "desc": "success", "success": true, "data": data });
            let canonical = payos::webhook_canonical_string(&unsigned.to_string()).unwrap();
            let mut body = unsigned;
            body["signature"] = hmac256(PAYOS_KEY, &canonical).into();
            vec![body.to_string().into_bytes()]
        }
        "webhook_vnpay" => {
            let params: Vec<(String, String)> = [
                ("vnp_Amount", "15000000"),
                ("vnp_BankCode", "NCB"),
                ("vnp_OrderInfo", "Thanh toan don hang"),
                ("vnp_ResponseCode", "00"),
                ("vnp_TmnCode", "FUZZTMN1"),
                ("vnp_TransactionNo", "14226112"),
                ("vnp_TransactionStatus", "00"),
                ("vnp_TxnRef", "ord_1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let canonical = vnpay::ipn_canonical_string(&params).unwrap();
            let query = format!(
                "{}&vnp_SecureHash={}",
                vnpay::canonical_query(&params),
                hmac512(VNPAY_SECRET, &canonical)
            );
            vec![query.into_bytes()]
        }
        "webhook_zalopay" => {
            let data = serde_json::json!({
                "app_id": 2553, "app_trans_id": "240115_ord1", "app_time": 1705290000000_i64,
                "amount": 150000, "zp_trans_id": 240115000000001_i64, "server_time": 1705290001000_i64
            })
            .to_string();
            let body =
                serde_json::json!({ "data": data, "mac": hmac256(ZALOPAY_KEY2, &data), "type": 1 });
            vec![body.to_string().into_bytes(), data.into_bytes()]
        }
        "ticket_qr" => {
            let qr = TicketSigner::from_seed(&TICKET_SEED)
                .sign(
                    "0190f3a2-7c1e-7b4d-9a3f-000000000e01",
                    "0190f3a2-7c1e-8b4d-9a3f-0000000000c1",
                    "0190f3a2-7c1e-7b4d-9a3f-0000000000a1",
                )
                .unwrap();
            vec![qr.into_bytes(), b"7KQ4-M2XD-9B0F".to_vec()]
        }
        _ => Vec::new(),
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut out = signed_seeds(target);
    if let Ok(dir) = std::fs::read_dir(seeds_dir(target)) {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            out.push(std::fs::read(f).unwrap());
        }
    }
    if out.is_empty() {
        out.push(b"{}".to_vec());
    }
    out
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"\\u0000",
    b"-1",
    b"9007199254740993",
    b"1e309",
    b"null",
    b"[]",
    b"{}",
    b"%",
    b"&",
    b"=",
    b"\xff",
    b"\xc3\xa2",
    b"T",
    b"Z",
    b"+23:59",
    b"vnp_",
    b"00",
];

fn mutate(rng: &mut XorShift, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below(8.min(out.len() - i));
                out.drain(i..i + n);
            }
            3 => {
                let i = rng.below(out.len() + 1);
                out.truncate(i);
            }
            4 => {
                let i = rng.below(out.len() + 1);
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(i..i, piece.iter().copied());
            }
            _ if !other.is_empty() => {
                let i = rng.below(out.len() + 1);
                let j = rng.below(other.len());
                out.truncate(i);
                out.extend_from_slice(&other[j..]);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_target_survives_its_seeds_and_bounded_mutations() {
    let iterations: usize = std::env::var("FUZZ_SMOKE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    for (name, target) in TARGETS {
        let seeds = seeds(name);
        for seed in &seeds {
            target(seed);
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for _ in 0..iterations {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, a, b);
            target(&input);
        }
    }
}

#[test]
fn signed_seeds_are_accepted_and_tampered_ones_are_not() {
    let cases: &[(&str, Gateway, bool)] = &[
        ("webhook_payos", payos_gateway(), false),
        ("webhook_vnpay", vnpay_gateway(), true),
        ("webhook_zalopay", zalopay_gateway(), false),
        ("webhook_sandbox", sandbox_gateway(), false),
    ];
    for (name, gateway, query) in cases {
        let seed = String::from_utf8(signed_seeds(name).remove(0)).unwrap();
        let verify = |raw: &str| {
            gateway.verify(if *query {
                Inbound::Query(raw)
            } else {
                Inbound::Body(raw)
            })
        };
        assert!(verify(&seed).is_ok(), "{name}: {:?}", verify(&seed));
        // Any change to the amount breaks the signature.
        let tampered = seed.replacen("150000", "150001", 1);
        assert_ne!(tampered, seed, "{name}");
        assert!(
            verify(&tampered).is_err(),
            "{name} accepted a tampered amount"
        );
    }
    let qr = String::from_utf8(signed_seeds("ticket_qr").remove(0)).unwrap();
    let verifier = TicketSigner::from_seed(&TICKET_SEED).verifier();
    assert!(verifier.verify(&qr).is_ok());
    let mut bytes = qr.clone().into_bytes();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert!(verifier.verify(&tampered).is_err());
}

/// Writes the seed corpus `scripts/fuzz.sh` starts libFuzzer from (run with `--ignored`).
#[test]
#[ignore]
fn write_seed_corpus() {
    for (name, _) in TARGETS {
        let dir = seeds_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in signed_seeds(name).into_iter().enumerate() {
            std::fs::write(dir.join(format!("signed-{i}")), seed).unwrap();
        }
    }
}
