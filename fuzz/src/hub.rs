//! The memory-store object [`super::hub_commands`] drives: every step is a wire request (or the
//! alarm) run through `Core`, with the stores rolled back when the operation fails.

use serde_json::{json, Value};
use ticketbottle_edge::domain::ledger::MemoryLedgerStore;
use ticketbottle_edge::domain::waitroom::{MemoryWaitroomStore, NobodyConnected};
use ticketbottle_edge::durable::commands::{Core, Done};
use ticketbottle_edge::durable::hub_store::MemoryHubStore;
use ticketbottle_edge::durable::protocol::{HubFailure, HubRequest};

const SECRET: &[u8] = b"fuzz-jwt-secret-long-enough-for-hs256-0123";
const SALE_START: i64 = 1_700_000_000_000;
const USERS: u8 = 6;
const ORDERS: u8 = 8;

#[derive(Default)]
pub struct Object {
    ledger: MemoryLedgerStore,
    waitroom: MemoryWaitroomStore,
    hub: MemoryHubStore,
    now: i64,
}

type MemoryCore<'a> =
    Core<&'a mut MemoryLedgerStore, &'a mut MemoryWaitroomStore, &'a mut MemoryHubStore>;

fn setup(status: &str) -> Value {
    json!({
        "op": "syncEvent", "eventId": "evt-fuzz", "status": status,
        "saleStartsAtMs": SALE_START, "saleEndsAtMs": SALE_START + 86_400_000,
        "maxTicketsPerUser": 4, "allowWaitRoom": true,
        "waitroom": {"maxConcurrentCheckouts": 2, "checkoutTtlSeconds": 120, "admissionBatch": 3}
    })
}

fn lines(arg: u8) -> Value {
    let class = if arg & 0x80 == 0 { "ga" } else { "vip" };
    json!([{"ticketClassId": class, "quantity": i64::from(arg % 3) + 1}])
}

impl Object {
    pub fn new() -> Self {
        let mut object = Object {
            now: SALE_START - 60_000,
            ..Object::default()
        };
        for request in [
            setup("PUBLISHED"),
            json!({"op": "upsertClass", "id": "ga", "total": 6}),
            json!({"op": "upsertClass", "id": "vip", "total": 2}),
        ] {
            object.request(request).expect("the event is set up");
        }
        object
    }

    fn run(
        &mut self,
        operation: impl FnOnce(MemoryCore<'_>) -> Result<Done, HubFailure>,
    ) -> Result<Value, HubFailure> {
        let before = (self.ledger.clone(), self.waitroom.clone(), self.hub.clone());
        let core = Core::new(
            &mut self.ledger,
            &mut self.waitroom,
            &mut self.hub,
            self.now,
            Some(SECRET.to_vec()),
        );
        let result = operation(core);
        if result.is_err() {
            (self.ledger, self.waitroom, self.hub) = before;
        }
        let reply = result.and_then(|done| done.reply);
        if let Err(failure) = &reply {
            assert!(!failure.is_internal(), "internal failure: {failure}");
        }
        reply
    }

    fn request(&mut self, request: Value) -> Result<Value, HubFailure> {
        let request: HubRequest = serde_json::from_value(request).expect("a valid hub request");
        self.run(|core| core.handle(request, 0))
    }

    /// The user's latest session id (asking counts as being seen, as on the real object).
    fn session_of(&mut self, user: &str) -> Option<String> {
        let reply = self
            .request(json!({"op": "session", "userId": user}))
            .ok()?;
        reply["waitroomSession"]["sessionId"]
            .as_str()
            .map(str::to_owned)
    }

    pub fn step(&mut self, op: u8, arg: u8) {
        let order = format!("o{}", arg % ORDERS);
        let user = format!("u{}", (arg / ORDERS) % USERS);
        let _ = match op % 12 {
            0 => self.request(
                json!({"op": "reserve", "orderId": order, "userId": user, "items": lines(arg)}),
            ),
            1 => self.request(json!({"op": "confirm", "orderId": order})),
            2 => self.request(json!({"op": "release", "orderId": order})),
            3 => self.request(json!({"op": "join", "userId": user})),
            4 => self.request(json!({"op": "leave", "userId": user})),
            5 => self.run(|core| core.alarm(&NobodyConnected)),
            6 => {
                self.now += i64::from(arg) * 5_000;
                Ok(Value::Null)
            }
            7 => match self.session_of(&user) {
                Some(session) => self
                    .request(json!({"op": "reserveForCheckout", "sessionId": session,
                    "reserve": {"orderId": order, "userId": user, "items": lines(arg)}})),
                None => Ok(Value::Null),
            },
            8 => {
                let outcome = ["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"][usize::from(arg % 4)];
                self.request(
                    json!({"op": "checkoutResolved", "orderId": order, "outcome": outcome}),
                )
            }
            9 => self.request(json!({"op": "unbindOrder", "orderId": order})),
            10 => {
                self.request(json!({"op": "updateClass", "ticketClassId": "ga", "total": arg % 10}))
            }
            _ => self.request(setup(if arg == 0xff {
                "CANCELLED"
            } else {
                "PUBLISHED"
            })),
        };
    }

    pub fn check_invariants(&mut self) {
        let Ok(status) = self.request(json!({"op": "status"})) else {
            panic!("the status could not be read");
        };
        for class in status["classes"].as_array().into_iter().flatten() {
            let count = |field: &str| class[field].as_u64().unwrap_or(u64::MAX);
            let (total, reserved, sold) = (count("total"), count("reserved"), count("sold"));
            assert!(reserved + sold <= total, "oversold: {class}");
            assert_eq!(count("available"), total - reserved - sold, "{class}");
        }
        if let Some(waitroom) = status["waitroom"].as_object() {
            assert_eq!(waitroom["admitted"], waitroom["slotsInUse"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness reaches the deep states, not only refusals: the `checkout` seed admits two
    /// fans, sells one checkout's tickets and lets the other's hold expire.
    #[test]
    fn the_checkout_seed_sells_one_checkout_and_expires_the_other() {
        let seed = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/seeds/hub_commands/checkout"
        ))
        .expect("the seed");
        let mut object = Object::new();
        for step in seed.chunks(2) {
            object.step(step[0], step[1]);
            object.check_invariants();
        }
        let status = object.request(json!({"op": "status"})).expect("status");
        let ga = &status["classes"][0];
        assert_eq!(
            (
                ga["id"].as_str(),
                ga["sold"].as_u64(),
                ga["reserved"].as_u64()
            ),
            (Some("ga"), Some(3), Some(0))
        );
        let types: Vec<&str> = object
            .hub
            .outbox
            .iter()
            .filter_map(|m| m.message.body["type"].as_str())
            .collect();
        for expected in ["QUEUE_READY", "CHECKOUT_COMPLETED", "HOLD_EXPIRED"] {
            assert!(
                types.contains(&expected),
                "{expected} missing from {types:?}"
            );
        }
    }
}
