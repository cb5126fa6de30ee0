//! The whole purchase on the host: the checkout service and its saga against in-memory D1,
//! event object and providers that fail, hang or repeat themselves on demand. The middle tier
//! between the pure rules' unit tests and the runtime tests in workerd.
//!
//! Every test ends by checking the event object's counters against its holds (never
//! oversold, nothing leaked) besides what the case itself is about.

#[path = "checkout_saga/fakes.rs"]
mod fakes;

use futures::executor::block_on;
use futures::FutureExt;
use serde_json::{json, Value};

use fakes::{FakeHub, FakeLog, FakeProviders, FakeStore, Fault, ProviderMode};
use ticketbottle_edge::checkout::ports::{EventForSale, OrderRow};
use ticketbottle_edge::checkout::{
    Applied, Checkout, FreshIds, IdempotencyKey, OrderAnswer, OrderRequest, Saga,
};
use ticketbottle_edge::domain::admission::place::ShardCount;
use ticketbottle_edge::domain::checkout::PricedClass;
use ticketbottle_edge::domain::event_workflow::{ConfigTerms, EventStatus};
use ticketbottle_edge::domain::ids::{OrderCode, UserId};
use ticketbottle_edge::domain::ledger::HoldState;
use ticketbottle_edge::domain::saga::{CheckoutOutcome, SagaInput, STUCK_CHECKOUT_AFTER_MS};
use ticketbottle_edge::domain::tokens::TokenKey;
use ticketbottle_edge::error::ApiError;

const EVENT: &str = "0190f3a2-7c1e-7b4d-9a3f-0000000000e1";
const CLASS_A: &str = "0190f3a2-7c1e-7b4d-9a3f-00000000000a";
const CLASS_B: &str = "0190f3a2-7c1e-7b4d-9a3f-00000000000b";
const BUYER: &str = "0190f3a2-7c1e-7b4d-9a3f-000000000001";
const SESSION: &str = "session-of-the-buyer";
const SECRET: &[u8] = b"a host-test secret of at least thirty-two bytes";
/// 2025-06-01T00:00:00Z
const T0: i64 = 1_748_736_000_000;
const MINUTE: i64 = 60_000;
/// The lease of an IN_FLIGHT key (`checkout::idempotency::IDEMPOTENCY_LEASE_MS`).
const LEASE: i64 = MINUTE;

/// One event on sale through its waitroom, two classes (A: 10 seats, B: 2), one admitted buyer.
struct Shop {
    store: FakeStore,
    hub: FakeHub,
    providers: FakeProviders,
    log: FakeLog,
    key: TokenKey,
    next_id: std::cell::Cell<u64>,
}

fn config(allow_wait_room: bool) -> ConfigTerms {
    ConfigTerms {
        ticket_sale_start_ms: T0 - 24 * 60 * MINUTE,
        ticket_sale_end_ms: T0 + 24 * 60 * MINUTE,
        is_free: false,
        max_attendees: None,
        is_public: true,
        requires_approval: false,
        allow_wait_room,
        is_new_trending: false,
        max_tickets_per_user: None,
        waitroom: Default::default(),
        waitroom_shards: ShardCount::ONE,
        refundable_until_ms: None,
    }
}

impl Shop {
    fn new() -> Self {
        Self::with_waitroom(true)
    }

    fn with_waitroom(allow_wait_room: bool) -> Self {
        let shop = Shop {
            store: FakeStore::default(),
            hub: FakeHub::default(),
            providers: FakeProviders::default(),
            log: FakeLog::default(),
            key: TokenKey::new(SECRET),
            next_id: std::cell::Cell::new(1),
        };
        shop.hub.now.set(T0);
        {
            let mut state = shop.store.state.borrow_mut();
            state.events.insert(
                EVENT.into(),
                EventForSale {
                    status: EventStatus::Published,
                    ever_published: true,
                    role: None,
                    config: Some(config(allow_wait_room)),
                },
            );
            for (id, price) in [(CLASS_A, 100_000), (CLASS_B, 250_000)] {
                state.classes.push((
                    EVENT.into(),
                    PricedClass {
                        id: id.into(),
                        name: format!("Class {}", &id[id.len() - 1..]),
                        price_cents: price,
                        currency: "VND".into(),
                    },
                ));
            }
        }
        shop.hub.add_class(CLASS_A, 10);
        shop.hub.add_class(CLASS_B, 2);
        shop.hub.admit(SESSION, BUYER);
        shop
    }

    /// The same shop selling a free event: `isFree`, every class priced 0.
    fn free() -> Self {
        let shop = Self::new();
        {
            let mut state = shop.store.state.borrow_mut();
            if let Some(config) = state.events.get_mut(EVENT).and_then(|e| e.config.as_mut()) {
                config.is_free = true;
            }
            for (_, class) in &mut state.classes {
                class.price_cents = 0;
            }
        }
        shop
    }

    /// An order body for the free event: `method` as `paymentMethod`, or none.
    fn free_body(&self, method: Option<&str>, lines: Value) -> String {
        let mut body = json!({
            "eventId": EVENT,
            "items": lines,
            "checkoutToken": self.token(),
        });
        if let Some(method) = method {
            body["paymentMethod"] = method.into();
        }
        body.to_string()
    }

    fn token(&self) -> String {
        self.key
            .issue_checkout(BUYER, EVENT, SESSION, T0, T0 + 15 * MINUTE)
            .unwrap()
    }

    fn body(&self, provider: &str, lines: Value) -> String {
        json!({
            "eventId": EVENT,
            "items": lines,
            "paymentMethod": provider,
            "checkoutToken": self.token(),
        })
        .to_string()
    }

    fn fresh(&self) -> FreshIds {
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        FreshIds {
            order_id: format!("0190f3a2-7c1e-7b4d-9a3f-{n:012}"),
            code: OrderCode::from_random([n as u8; 8]),
            payment_id: format!("payment{n}"),
            payos_order_code: 1_000 + n as i64,
        }
    }

    fn checkout(&self) -> Checkout<'_, FakeStore, FakeHub, FakeProviders, FakeLog> {
        Checkout {
            store: &self.store,
            hub: &self.hub,
            payments: &self.providers,
            log: &self.log,
            token_key: Some(&self.key),
            hold_for_ms: None,
        }
    }

    fn saga(&self) -> Saga<'_, FakeStore, FakeHub, FakeLog> {
        Saga {
            store: &self.store,
            hub: &self.hub,
            log: &self.log,
        }
    }

    /// `POST /api/orders` at `now`, run to its end.
    fn order(&self, key: &str, body: &str, now: i64) -> Result<OrderAnswer, ApiError> {
        let user = UserId::new(BUYER);
        let key = IdempotencyKey::parse(Some(key))?;
        block_on(self.checkout().place_order(OrderRequest {
            user_id: &user,
            key: &key,
            body,
            fresh: self.fresh(),
            origin: "https://tickets.test",
            client_ip: "203.0.113.7",
            now,
        }))
    }

    /// The same request, but the Worker is evicted the first time it waits on something that
    /// hangs: its future is polled once and dropped.
    fn order_and_die(&self, key: &str, body: &str, now: i64) {
        let user = UserId::new(BUYER);
        let key = IdempotencyKey::parse(Some(key)).unwrap();
        let outcome = self
            .checkout()
            .place_order(OrderRequest {
                user_id: &user,
                key: &key,
                body,
                fresh: self.fresh(),
                origin: "https://tickets.test",
                client_ip: "203.0.113.7",
                now,
            })
            .now_or_never();
        assert!(outcome.is_none(), "the request was meant to die mid-way");
    }

    /// A payments-queue message, delivered at `now`.
    fn deliver(&self, id: &str, kind: &str, order_id: &str, now: i64) {
        block_on(self.saga().handle_message(
            &json!({"id": id, "type": kind, "orderId": order_id, "eventId": EVENT}),
            now,
        ))
        .unwrap();
    }

    fn only_order(&self) -> OrderRow {
        let orders = self.store.orders();
        assert_eq!(orders.len(), 1, "{orders:?}");
        orders.into_iter().next().unwrap()
    }

    /// The buyer's checkout ended with `outcome`, announced once as `announcement`.
    fn checkout_ended_once(&self, outcome: CheckoutOutcome, announcement: &str) {
        assert_eq!(self.hub.checkout(SESSION).ended, Some(outcome));
        assert_eq!(self.store.outbox_of_type(announcement).len(), 1);
    }

    fn settled(&self) {
        self.hub.assert_counters_agree_with_holds();
        // A closed order never keeps tickets held; a completed one has them sold.
        for order in self.store.orders() {
            let hold = self.hub.hold(&order.id).map(|h| h.state);
            match order.status.as_str() {
                "COMPLETED" => assert_eq!(hold, Some(HoldState::Confirmed), "{order:?}"),
                "FAILED" | "CANCELLED" => {
                    assert_ne!(hold, Some(HoldState::Active), "{order:?}")
                }
                _ => {}
            }
        }
    }
}

fn created(answer: OrderAnswer) -> (String, String) {
    match answer {
        OrderAnswer::Created(created) => (
            created.order.id.clone(),
            created.payment_url.clone().expect("a payment link"),
        ),
        OrderAnswer::Replayed { status, body } => panic!("replayed {status}: {body}"),
    }
}

fn two_a() -> Value {
    json!([{"ticketClassId": CLASS_A, "quantity": 2}])
}

#[test]
fn a_waitroom_purchase_holds_writes_links_and_completes_when_paid() {
    let shop = Shop::new();
    let body = shop.body("sandbox", two_a());

    let (order_id, url) = created(shop.order("k-1", &body, T0).unwrap());

    assert_eq!(
        url,
        format!("{}/sandbox/checkout/payment1", fakes::SANDBOX_BASE)
    );
    let order = shop.only_order();
    assert_eq!(order.status, "PENDING");
    assert_eq!(order.total_amount_cents, 200_000);
    assert_eq!(order.waitroom_session_id.as_deref(), Some(SESSION));
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 2);
    assert_eq!(
        shop.hub.checkout(SESSION).bound_order.as_deref(),
        Some(order_id.as_str())
    );
    assert_eq!(
        shop.store.steps(&order_id),
        [
            "CHECKOUT_BOUND=DONE",
            "ORDER_WRITTEN=DONE",
            "PAYMENT_CREATED=DONE",
            "RESERVED=DONE"
        ]
    );
    assert!(shop.store.outbox_of_type("ORDER_CREATED")[0].published);
    assert_eq!(shop.store.key(BUYER, "k-1").unwrap().state, "DONE");

    shop.deliver(
        "payment-payment1-completed",
        "PAYMENT_COMPLETED",
        &order_id,
        T0 + MINUTE,
    );

    assert_eq!(shop.only_order().status, "COMPLETED");
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Completed)
    );
    for kind in ["ORDER_COMPLETED", "CHECKOUT_COMPLETED"] {
        let rows = shop.store.outbox_of_type(kind);
        assert_eq!(rows.len(), 1, "{kind}");
        assert!(rows[0].published, "{kind}");
    }
    shop.settled();
}

#[test]
fn the_same_key_replays_the_first_answer_and_refuses_another_body() {
    let shop = Shop::new();
    let body = shop.body("sandbox", two_a());
    let first = match shop.order("k-1", &body, T0).unwrap() {
        OrderAnswer::Created(c) => serde_json::to_string(&c).unwrap(),
        OrderAnswer::Replayed { .. } => panic!("first answer replayed"),
    };

    // Same JSON, other key order and spacing.
    let reordered: Value = serde_json::from_str(&body).unwrap();
    let again = shop
        .order(
            "k-1",
            &serde_json::to_string_pretty(&reordered).unwrap(),
            T0 + 1,
        )
        .unwrap();
    match again {
        OrderAnswer::Replayed { status, body } => {
            assert_eq!(status, 201);
            assert_eq!(body, first);
        }
        OrderAnswer::Created(_) => panic!("a second order was made"),
    }
    let other = shop.body(
        "sandbox",
        json!([{"ticketClassId": CLASS_A, "quantity": 1}]),
    );
    assert_eq!(
        shop.order("k-1", &other, T0 + 2).err().map(|e| e.code()),
        Some("IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(shop.store.orders().len(), 1);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 2);
    shop.settled();
}

#[test]
fn a_provider_that_is_down_fails_the_order_gives_everything_back_and_keeps_the_checkout() {
    let shop = Shop::new();
    shop.providers.mode.set(ProviderMode::Down);

    let error = shop
        .order("k-1", &shop.body("payos", two_a()), T0)
        .err()
        .unwrap();

    assert_eq!(error.status(), 502);
    assert_eq!(error.code(), "PAYMENT_PROVIDER_UNAVAILABLE");
    assert_eq!(shop.providers.calls.get(), 1);
    let order = shop.only_order();
    assert_eq!(order.status, "FAILED");
    assert_eq!(
        order.failure_code.as_deref(),
        Some("PAYMENT_PROVIDER_UNAVAILABLE")
    );
    assert_eq!(
        shop.store.payment_of(&order.id).unwrap().status,
        "CANCELLED"
    );
    assert_eq!(shop.hub.hold(&order.id).unwrap().state, HoldState::Released);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    // The buyer never saw a payment page: the checkout is theirs again, unbound.
    let slot = shop.hub.checkout(SESSION);
    assert_eq!((slot.bound_order, slot.ended), (None, None));
    assert_eq!(
        shop.store.steps(&order.id),
        [
            "CHECKOUT_BOUND=DONE",
            "FAIL_ORDER=COMPENSATED",
            "ORDER_WRITTEN=DONE",
            "RELEASE_HOLD=COMPENSATED",
            "REOPEN_CHECKOUT=COMPENSATED",
            "RESERVED=DONE"
        ]
    );
    let logged = shop.log.lines_of("saga compensation");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].1["code"], "PAYMENT_PROVIDER_UNAVAILABLE");
    assert_eq!(
        logged[0].1["steps"],
        json!(["REOPEN_CHECKOUT", "FAIL_ORDER", "RELEASE_HOLD"])
    );
    assert_eq!(
        shop.log.lines_of("payment provider unavailable")[0].0,
        "error"
    );
    // A server-side failure is not replayed: the key is free again.
    assert!(shop.store.key(BUYER, "k-1").is_none());

    // The same checkout token orders again, through another provider.
    shop.providers.mode.set(ProviderMode::Answers);
    let (second, _) = created(
        shop.order("k-2", &shop.body("sandbox", two_a()), T0 + MINUTE)
            .unwrap(),
    );
    assert_eq!(
        shop.hub.checkout(SESSION).bound_order.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 2);
    shop.settled();
}

#[test]
fn a_storage_failure_after_the_reserve_gives_the_tickets_and_the_checkout_back() {
    let shop = Shop::new();
    shop.store.faults.set("write_order", Fault::FailOnce);
    let body = shop.body("sandbox", two_a());

    let error = shop.order("k-1", &body, T0).err().unwrap();

    assert_eq!(error.status(), 500);
    assert!(shop.store.orders().is_empty());
    let held = shop
        .hub
        .hold("0190f3a2-7c1e-7b4d-9a3f-000000000001")
        .unwrap();
    assert_eq!(held.state, HoldState::Released);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(shop.hub.checkout(SESSION).bound_order, None);
    assert!(shop.store.key(BUYER, "k-1").is_none());

    // The client retries with the same key: a new order, bound to the same checkout.
    let (order_id, _) = created(shop.order("k-1", &body, T0 + 1).unwrap());
    assert_eq!(shop.only_order().id, order_id);
    assert_eq!(
        shop.hub.checkout(SESSION).bound_order.as_deref(),
        Some(order_id.as_str())
    );
    shop.settled();
}

#[test]
fn a_failure_while_compensating_surfaces_as_a_server_error_and_leaves_the_hold_to_its_expiry() {
    let shop = Shop::new();
    shop.providers.mode.set(ProviderMode::Down);
    shop.hub.faults.set("release", Fault::FailOnce);

    let error = shop
        .order("k-1", &shop.body("payos", two_a()), T0)
        .err()
        .unwrap();

    // The order is FAILED but its hold is still there: the object could not be reached.
    assert_eq!(error.status(), 500);
    let order = shop.only_order();
    assert_eq!(order.status, "FAILED");
    assert_eq!(shop.hub.hold(&order.id).unwrap().state, HoldState::Active);

    // The object's own expiry gives the stock back; the order needs nothing more.
    shop.hub.expire(&order.id);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(
        block_on(shop.saga().sweep_stuck_checkouts(T0 + 10 * MINUTE)).unwrap(),
        0
    );
    shop.settled();
}

#[test]
fn a_dead_checkout_token_holds_nothing_and_its_refusal_is_replayed() {
    let shop = Shop::new();
    let body = shop.body("sandbox", two_a());
    shop.hub
        .state
        .borrow_mut()
        .checkouts
        .get_mut(SESSION)
        .unwrap()
        .ended = Some(CheckoutOutcome::Expired);

    let error = shop.order("k-1", &body, T0).err().unwrap();

    assert_eq!(
        (error.status(), error.code()),
        (403, "CHECKOUT_TOKEN_INVALID")
    );
    assert!(shop
        .hub
        .hold("0190f3a2-7c1e-7b4d-9a3f-000000000001")
        .is_none());
    assert!(shop.store.orders().is_empty());
    match shop.order("k-1", &body, T0 + 1).unwrap() {
        OrderAnswer::Replayed { status, body } => {
            assert_eq!(status, 403);
            assert!(body.contains("CHECKOUT_TOKEN_INVALID"), "{body}");
        }
        OrderAnswer::Created(_) => panic!("a dead token ordered"),
    }
    shop.settled();
}

#[test]
fn a_waitroom_event_refuses_an_order_without_a_token_or_with_someone_elses() {
    let shop = Shop::new();
    let mut body: Value = serde_json::from_str(&shop.body("sandbox", two_a())).unwrap();
    body.as_object_mut().unwrap().remove("checkoutToken");
    let error = shop.order("k-1", &body.to_string(), T0).err().unwrap();
    assert_eq!(error.code(), "CHECKOUT_TOKEN_REQUIRED");

    let stranger = "0190f3a2-7c1e-7b4d-9a3f-000000000002";
    body["checkoutToken"] = shop
        .key
        .issue_checkout(stranger, EVENT, SESSION, T0, T0 + 15 * MINUTE)
        .unwrap()
        .into();
    let error = shop.order("k-2", &body.to_string(), T0).err().unwrap();
    assert_eq!(error.code(), "CHECKOUT_TOKEN_INVALID");
    assert!(shop.hub.state.borrow().holds.is_empty());
}

#[test]
fn prices_come_from_the_catalogue_and_a_sold_out_class_holds_nothing() {
    let shop = Shop::with_waitroom(false);
    let body = json!({
        "eventId": EVENT,
        "items": [{"ticketClassId": CLASS_A, "quantity": 1}, {"ticketClassId": CLASS_B, "quantity": 3}],
        "paymentMethod": "sandbox",
    })
    .to_string();

    let error = shop.order("k-1", &body, T0).err().unwrap();

    assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    let body = body.replace("\"quantity\":3", "\"quantity\":2");
    created(shop.order("k-2", &body, T0).unwrap());
    assert_eq!(shop.only_order().total_amount_cents, 100_000 + 2 * 250_000);
    shop.settled();
}

#[test]
fn an_event_not_on_sale_refuses_before_anything_is_held() {
    let shop = Shop::new();
    let body = shop.body("sandbox", two_a());
    let error = shop
        .order("k-1", &body, T0 + 2 * 24 * 60 * MINUTE)
        .err()
        .unwrap();
    assert_eq!(error.code(), "SALE_NOT_OPEN");
    let error = shop
        .order("k-2", &shop.body("vnpay", two_a()), T0)
        .err()
        .unwrap();
    assert_eq!(error.code(), "PAYMENT_METHOD_UNAVAILABLE");
    assert!(shop.hub.state.borrow().holds.is_empty());
}

#[test]
fn a_duplicate_payment_message_has_one_effect() {
    let shop = Shop::new();
    let (order_id, _) = created(
        shop.order("k-1", &shop.body("sandbox", two_a()), T0)
            .unwrap(),
    );

    for _ in 0..3 {
        shop.deliver(
            "payment-payment1-completed",
            "PAYMENT_COMPLETED",
            &order_id,
            T0 + MINUTE,
        );
    }
    // The provider's retry as a second message id, and a stale failure after the success.
    shop.deliver(
        "retry-of-payment1",
        "PAYMENT_COMPLETED",
        &order_id,
        T0 + 2 * MINUTE,
    );
    shop.deliver(
        "payment-payment1-failed",
        "PAYMENT_FAILED",
        &order_id,
        T0 + 3 * MINUTE,
    );

    assert_eq!(shop.only_order().status, "COMPLETED");
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    assert_eq!(shop.store.outbox_of_type("ORDER_COMPLETED").len(), 1);
    let steps = shop.log.lines_of("saga step");
    let outcomes: Vec<&str> = steps
        .iter()
        .map(|(_, f)| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["moved", "ignored", "ignored"]);
    assert_eq!(steps[0].1["input"], "PAYMENT_SUCCEEDED");
    shop.settled();
}

#[test]
fn a_payment_failure_releases_the_hold_and_ends_the_checkout() {
    let shop = Shop::new();
    let (order_id, _) = created(
        shop.order("k-1", &shop.body("sandbox", two_a()), T0)
            .unwrap(),
    );

    shop.deliver(
        "payment-payment1-failed",
        "PAYMENT_FAILED",
        &order_id,
        T0 + MINUTE,
    );

    assert_eq!(shop.only_order().status, "FAILED");
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    shop.checkout_ended_once(CheckoutOutcome::Failed, "CHECKOUT_FAILED");
    shop.settled();
}

#[test]
fn late_money_after_expiry_sells_when_stock_allows_and_is_flagged_for_refund_otherwise() {
    let shop = Shop::new();
    let (first, _) = created(
        shop.order("k-1", &shop.body("sandbox", two_a()), T0)
            .unwrap(),
    );
    shop.hub.expire(&first);
    shop.deliver("hold-expired-1", "HOLD_EXPIRED", &first, T0 + 16 * MINUTE);
    assert_eq!(shop.store.order(&first).unwrap().status, "CANCELLED");
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Expired)
    );

    // Money for it arrives anyway, and the seats are still there.
    shop.deliver(
        "payment-payment1-completed",
        "PAYMENT_COMPLETED",
        &first,
        T0 + 17 * MINUTE,
    );
    assert_eq!(shop.store.order(&first).unwrap().status, "COMPLETED");
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);

    // A second buyer's late money for class B, whose two seats were sold meanwhile.
    shop.hub.admit("session-2", BUYER);
    let token = shop
        .key
        .issue_checkout(BUYER, EVENT, "session-2", T0, T0 + 30 * MINUTE)
        .unwrap();
    let body = json!({
        "eventId": EVENT,
        "items": [{"ticketClassId": CLASS_B, "quantity": 2}],
        "paymentMethod": "sandbox",
        "checkoutToken": token,
    })
    .to_string();
    let (second, _) = created(shop.order("k-2", &body, T0 + 18 * MINUTE).unwrap());
    shop.hub.expire(&second);
    shop.deliver("hold-expired-2", "HOLD_EXPIRED", &second, T0 + 34 * MINUTE);
    shop.hub.admit("session-3", BUYER);
    let body3 = body.replace(
        &token,
        &shop
            .key
            .issue_checkout(BUYER, EVENT, "session-3", T0, T0 + 60 * MINUTE)
            .unwrap(),
    );
    created(shop.order("k-3", &body3, T0 + 35 * MINUTE).unwrap());
    shop.deliver(
        "payment-of-second",
        "PAYMENT_COMPLETED",
        &second,
        T0 + 36 * MINUTE,
    );

    let order = shop.store.order(&second).unwrap();
    assert_eq!(order.status, "CANCELLED");
    assert_eq!(order.refund_status.as_deref(), Some("REFUND_REQUIRED"));
    assert_eq!(order.refund_reason.as_deref(), Some("PAID_BUT_SOLD_OUT"));
    assert_eq!(shop.store.outbox_of_type("ORDER_REFUND_REQUIRED").len(), 1);
    assert_eq!(shop.hub.counters(CLASS_B).reserved, 2);
    // The refund is recorded once, however often the money is announced.
    shop.deliver(
        "payment-of-second-again",
        "PAYMENT_COMPLETED",
        &second,
        T0 + 37 * MINUTE,
    );
    assert_eq!(shop.store.outbox_of_type("ORDER_REFUND_REQUIRED").len(), 1);
    shop.settled();
}

#[test]
fn a_hold_that_expires_before_its_payment_link_reopens_the_checkout_and_one_after_ends_it() {
    let shop = Shop::new();
    shop.providers.mode.set(ProviderMode::Hangs);
    let body = shop.body("payos", two_a());
    shop.order_and_die("k-1", &body, T0);
    let dead = shop.only_order();

    // The hold runs out while the request that died waits for its retry: the platform's
    // delay, not the buyer's, so the order closes and the checkout is theirs again.
    shop.hub.expire(&dead.id);
    shop.deliver("hold-expired-1", "HOLD_EXPIRED", &dead.id, T0 + MINUTE / 2);
    assert_eq!(shop.store.order(&dead.id).unwrap().status, "CANCELLED");
    let checkout = shop.hub.checkout(SESSION);
    assert_eq!((checkout.ended, checkout.bound_order), (None, None));
    assert!(shop.store.outbox_of_type("CHECKOUT_EXPIRED").is_empty());

    // The retry answers as a failed create does, and the same token orders again.
    shop.providers.mode.set(ProviderMode::Answers);
    let error = shop.order("k-1", &body, T0 + LEASE).err().unwrap();
    assert_eq!(error.code(), "PAYMENT_PROVIDER_UNAVAILABLE");
    let (again, _) = created(shop.order("k-2", &body, T0 + LEASE + 1).unwrap());
    assert_eq!(
        shop.hub.checkout(SESSION).bound_order.as_deref(),
        Some(again.as_str())
    );

    // This buyer had the payment page and let the hold run out: the checkout ends.
    shop.hub.expire(&again);
    shop.deliver("hold-expired-2", "HOLD_EXPIRED", &again, T0 + 20 * MINUTE);
    shop.checkout_ended_once(CheckoutOutcome::Expired, "CHECKOUT_EXPIRED");
    shop.settled();
}

#[test]
fn a_saga_step_cut_off_at_the_checkout_is_repeated_by_the_redelivery() {
    let shop = Shop::new();
    let (order_id, _) = created(
        shop.order("k-1", &shop.body("sandbox", two_a()), T0)
            .unwrap(),
    );
    shop.hub.expire(&order_id);
    // The event's object does not answer the checkout step the first time.
    shop.hub.faults.set("checkout_resolved", Fault::FailOnce);
    let message = json!({"id": "hold-expired-1", "type": "HOLD_EXPIRED", "orderId": order_id, "eventId": EVENT});
    assert!(block_on(shop.saga().handle_message(&message, T0 + 16 * MINUTE)).is_err());
    // Nothing was recorded yet, so the redelivery decides again and finishes both steps.
    assert_eq!(shop.store.order(&order_id).unwrap().status, "PENDING");
    block_on(shop.saga().handle_message(&message, T0 + 17 * MINUTE)).unwrap();
    assert_eq!(shop.store.order(&order_id).unwrap().status, "CANCELLED");
    shop.checkout_ended_once(CheckoutOutcome::Expired, "CHECKOUT_EXPIRED");
    shop.settled();
}

#[test]
fn a_hold_that_expires_for_an_order_never_written_gives_the_checkout_back() {
    let shop = Shop::new();
    shop.store.faults.set("write_order", Fault::Hang);
    shop.order_and_die("k-1", &shop.body("sandbox", two_a()), T0);
    let dead_id = "0190f3a2-7c1e-7b4d-9a3f-000000000001";
    assert_eq!(
        shop.hub.checkout(SESSION).bound_order.as_deref(),
        Some(dead_id)
    );
    shop.store.faults.clear();

    // Nobody retried; the hold's expiry finds no order and unbinds the checkout.
    shop.hub.expire(dead_id);
    shop.deliver("hold-expired-1", "HOLD_EXPIRED", dead_id, T0 + 16 * MINUTE);
    let checkout = shop.hub.checkout(SESSION);
    assert_eq!((checkout.ended, checkout.bound_order), (None, None));
    assert!(shop.store.orders().is_empty());
    shop.settled();
}

#[test]
fn a_retry_within_the_lease_is_told_to_wait_and_after_it_takes_over_a_request_that_died_before_its_link(
) {
    let shop = Shop::new();
    shop.providers.mode.set(ProviderMode::Hangs);
    let body = shop.body("payos", two_a());

    shop.order_and_die("k-1", &body, T0);
    let dead = shop.only_order();
    assert_eq!(dead.status, "PENDING");
    assert_eq!(shop.store.key(BUYER, "k-1").unwrap().state, "IN_FLIGHT");

    shop.providers.mode.set(ProviderMode::Answers);
    let error = shop.order("k-1", &body, T0 + LEASE - 1).err().unwrap();
    assert_eq!(error.code(), "IDEMPOTENCY_KEY_IN_FLIGHT");

    // After the lease the retry answers what the dead request would have: no link was made,
    // so the order fails as a provider failure does, and the checkout is the buyer's again.
    let error = shop.order("k-1", &body, T0 + LEASE).err().unwrap();
    assert_eq!(error.code(), "PAYMENT_PROVIDER_UNAVAILABLE");
    let order = shop.only_order();
    assert_eq!(order.id, dead.id);
    assert_eq!(order.status, "FAILED");
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(shop.hub.checkout(SESSION).bound_order, None);
    assert!(shop
        .log
        .annotations
        .borrow()
        .contains(&("takenOverFrom".into(), dead.id.clone())));
    shop.settled();
}

#[test]
fn a_takeover_of_a_request_that_died_before_writing_gives_its_hold_back_and_orders_afresh() {
    let shop = Shop::new();
    shop.store.faults.set("write_order", Fault::Hang);
    let body = shop.body("sandbox", two_a());

    shop.order_and_die("k-1", &body, T0);
    let dead_id = "0190f3a2-7c1e-7b4d-9a3f-000000000001";
    assert_eq!(shop.hub.hold(dead_id).unwrap().state, HoldState::Active);
    assert!(shop.store.orders().is_empty());

    shop.store.faults.clear();
    let (order_id, _) = created(shop.order("k-1", &body, T0 + LEASE).unwrap());

    assert_ne!(order_id, dead_id);
    assert_eq!(shop.hub.hold(dead_id).unwrap().state, HoldState::Released);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 2);
    assert_eq!(
        shop.hub.checkout(SESSION).bound_order.as_deref(),
        Some(order_id.as_str())
    );
    // The key now names the new order, for whoever retries next.
    assert_eq!(
        shop.store.key(BUYER, "k-1").unwrap().order_id.as_deref(),
        Some(order_id.as_str())
    );
    shop.settled();
}

#[test]
fn a_takeover_of_a_request_that_died_after_its_link_answers_with_that_link() {
    let shop = Shop::new();
    // Dies after the link is stored, while reading the order back for its answer.
    shop.store.faults.set("items_of", Fault::Hang);
    let body = shop.body("sandbox", two_a());
    shop.order_and_die("k-1", &body, T0);
    shop.store.faults.clear();

    let (order_id, url) = created(shop.order("k-1", &body, T0 + LEASE).unwrap());

    let order = shop.only_order();
    assert_eq!(
        (order.id.as_str(), order.status.as_str()),
        (order_id.as_str(), "PENDING")
    );
    assert_eq!(
        url,
        format!("{}/sandbox/checkout/payment1", fakes::SANDBOX_BASE)
    );
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 2);
    shop.settled();
}

#[test]
fn the_sweep_compensates_a_checkout_that_died_before_its_payment_link() {
    let shop = Shop::new();
    shop.providers.mode.set(ProviderMode::Hangs);
    shop.order_and_die("k-1", &shop.body("payos", two_a()), T0);
    let order_id = shop.only_order().id;

    let saga = shop.saga();
    assert_eq!(
        block_on(saga.sweep_stuck_checkouts(T0 + STUCK_CHECKOUT_AFTER_MS - 1)).unwrap(),
        0
    );
    assert_eq!(
        block_on(saga.sweep_stuck_checkouts(T0 + STUCK_CHECKOUT_AFTER_MS + 1)).unwrap(),
        1
    );

    let order = shop.only_order();
    assert_eq!(order.status, "FAILED");
    assert_eq!(order.failure_code.as_deref(), Some("CHECKOUT_ABANDONED"));
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    // Nobody waits on an abandoned checkout: its slot goes to the next fan.
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Failed)
    );
    assert!(shop
        .store
        .steps(&order_id)
        .contains(&"FREE_CHECKOUT_SLOT=COMPENSATED".into()));
    assert_eq!(
        block_on(saga.sweep_stuck_checkouts(T0 + 2 * STUCK_CHECKOUT_AFTER_MS)).unwrap(),
        0
    );
    shop.settled();
}

#[test]
fn the_sweep_closes_orders_whose_expiry_message_never_came_but_not_paid_ones() {
    let shop = Shop::new();
    let (unpaid, _) = created(
        shop.order("k-1", &shop.body("sandbox", two_a()), T0)
            .unwrap(),
    );
    shop.hub.admit("session-2", BUYER);
    let token = shop
        .key
        .issue_checkout(BUYER, EVENT, "session-2", T0, T0 + 15 * MINUTE)
        .unwrap();
    let body = shop.body("sandbox", two_a()).replace(&shop.token(), &token);
    let (paid, _) = created(shop.order("k-2", &body, T0).unwrap());
    // The object sold the second hold, but D1 has not heard yet.
    block_on(ticketbottle_edge::checkout::ports::EventObject::confirm(
        &shop.hub, EVENT, &paid,
    ))
    .unwrap();

    let late = T0 + 15 * MINUTE + STUCK_CHECKOUT_AFTER_MS + 1;
    assert_eq!(block_on(shop.saga().sweep_expired_holds(late)).unwrap(), 1);

    assert_eq!(shop.store.order(&unpaid).unwrap().status, "CANCELLED");
    assert_eq!(shop.hub.hold(&unpaid).unwrap().state, HoldState::Released);
    assert_eq!(shop.store.order(&paid).unwrap().status, "PENDING");
    shop.deliver(
        "payment-payment2-completed",
        "PAYMENT_COMPLETED",
        &paid,
        late,
    );
    assert_eq!(shop.store.order(&paid).unwrap().status, "COMPLETED");
    shop.settled();
}

#[test]
fn an_owner_cancels_a_pending_order_once_and_never_a_completed_one() {
    let shop = Shop::new();
    let (order_id, _) = created(
        shop.order("k-1", &shop.body("sandbox", two_a()), T0)
            .unwrap(),
    );
    let order = shop.store.order(&order_id).unwrap();

    let cancelled = block_on(shop.saga().cancel_by_owner(&order, T0 + MINUTE)).unwrap();
    assert_eq!(cancelled.status, "CANCELLED");
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Cancelled)
    );
    // Cancelling again is harmless and answers the same.
    let again = block_on(shop.saga().cancel_by_owner(&cancelled, T0 + 2 * MINUTE)).unwrap();
    assert_eq!(again.status, "CANCELLED");

    shop.hub.admit("session-2", BUYER);
    let token = shop
        .key
        .issue_checkout(BUYER, EVENT, "session-2", T0, T0 + 15 * MINUTE)
        .unwrap();
    let body = shop.body("sandbox", two_a()).replace(&shop.token(), &token);
    let (paid, _) = created(shop.order("k-2", &body, T0).unwrap());
    shop.deliver("paid", "PAYMENT_COMPLETED", &paid, T0 + MINUTE);
    let completed = shop.store.order(&paid).unwrap();
    assert_eq!(
        block_on(shop.saga().continue_saga(
            &completed,
            SagaInput::CancelledByOwner,
            T0 + 2 * MINUTE
        ))
        .unwrap(),
        Applied::Refused
    );
    let error = block_on(shop.saga().cancel_by_owner(&completed, T0 + 2 * MINUTE)).unwrap_err();
    assert_eq!(error.code(), "ORDER_NOT_CANCELLABLE");
    assert_eq!(shop.store.order(&paid).unwrap().status, "COMPLETED");
    shop.settled();
}

/// The 201 of a free order: the order as answered (with its tickets), and the JSON body.
fn created_free(answer: OrderAnswer) -> (Value, String) {
    match answer {
        OrderAnswer::Created(created) => {
            assert_eq!(
                created.payment_url, None,
                "a free order has no payment link"
            );
            let body = serde_json::to_string(&created).unwrap();
            (serde_json::from_str(&body).unwrap(), body)
        }
        OrderAnswer::Replayed { status, body } => panic!("replayed {status}: {body}"),
    }
}

#[test]
fn a_free_order_completes_in_its_request_with_its_tickets_and_frees_the_checkout() {
    let shop = Shop::free();

    let (answer, _) = created_free(
        shop.order("k-1", &shop.free_body(Some("free"), two_a()), T0)
            .unwrap(),
    );

    assert_eq!(answer["paymentUrl"], Value::Null);
    assert_eq!(answer["order"]["status"], "COMPLETED");
    assert_eq!(answer["order"]["paymentMethod"], "free");
    assert_eq!(answer["order"]["totalAmountCents"], 0);
    let tickets = answer["order"]["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    let order = shop.only_order();
    assert_eq!(order.status, "COMPLETED");
    assert_eq!(shop.store.payment_of(&order.id), None, "nothing to pay");
    assert_eq!(shop.store.state.borrow().tickets.len(), 2);
    // Sold in the event's object and the checkout slot freed, as a paid order completes.
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Completed)
    );
    for kind in [
        "ORDER_CREATED",
        "ORDER_COMPLETED",
        "CHECKOUT_COMPLETED",
        "TICKETS_ISSUED",
    ] {
        assert_eq!(shop.store.outbox_of_type(kind).len(), 1, "{kind}");
    }
    assert!(shop.store.outbox_of_type("ORDER_COMPLETED")[0].published);
    assert_eq!(shop.store.key(BUYER, "k-1").unwrap().state, "DONE");
    shop.settled();
}

#[test]
fn a_free_event_takes_an_order_without_a_method_and_refuses_a_provider() {
    let shop = Shop::free();
    let error = shop
        .order("k-1", &shop.free_body(Some("sandbox"), two_a()), T0)
        .err()
        .unwrap();
    assert_eq!(error.code(), "PAYMENT_METHOD_UNAVAILABLE");
    assert!(shop.store.orders().is_empty());
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);

    let (answer, _) = created_free(
        shop.order("k-2", &shop.free_body(None, two_a()), T0)
            .unwrap(),
    );

    assert_eq!(answer["order"]["status"], "COMPLETED");
    assert_eq!(answer["order"]["tickets"].as_array().unwrap().len(), 2);
    shop.settled();
}

#[test]
fn free_on_a_priced_order_is_refused_before_anything_is_held() {
    let shop = Shop::new();
    let body = shop.body("free", two_a());

    let error = shop.order("k-1", &body, T0).err().unwrap();

    assert_eq!(
        (error.status(), error.code()),
        (422, "PAYMENT_METHOD_UNAVAILABLE")
    );
    assert!(shop.store.orders().is_empty());
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(shop.hub.checkout(SESSION).bound_order, None);
    // A client error is the key's answer for good.
    match shop.order("k-1", &body, T0 + 1).unwrap() {
        OrderAnswer::Replayed { status, body } => {
            assert_eq!(status, 422);
            assert!(body.contains("PAYMENT_METHOD_UNAVAILABLE"), "{body}");
        }
        OrderAnswer::Created(_) => panic!("a refused order was made on replay"),
    }
    shop.settled();
}

#[test]
fn a_replayed_free_order_answers_the_same_order_and_issues_nothing_more() {
    let shop = Shop::free();
    let body = shop.free_body(Some("free"), two_a());
    let (_, first) = created_free(shop.order("k-1", &body, T0).unwrap());

    let again = shop.order("k-1", &body, T0 + MINUTE).unwrap();

    match again {
        OrderAnswer::Replayed { status, body } => {
            assert_eq!(status, 201);
            assert_eq!(body, first);
        }
        OrderAnswer::Created(_) => panic!("a second order was made"),
    }
    assert_eq!(shop.store.orders().len(), 1);
    assert_eq!(shop.store.state.borrow().tickets.len(), 2);
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    shop.settled();
}

#[test]
fn a_free_order_whose_request_died_after_writing_it_is_completed_by_the_keys_takeover() {
    let shop = Shop::free();
    // Dies in the event's object while confirming: the order is written, still PENDING.
    shop.hub.faults.set("confirm", Fault::Hang);
    let body = shop.free_body(Some("free"), two_a());
    shop.order_and_die("k-1", &body, T0);
    let dead = shop.only_order();
    assert_eq!(dead.status, "PENDING");
    assert!(shop.store.state.borrow().tickets.is_empty());
    shop.hub.faults.clear();

    let error = shop.order("k-1", &body, T0 + LEASE - 1).err().unwrap();
    assert_eq!(error.code(), "IDEMPOTENCY_KEY_IN_FLIGHT");

    let (answer, _) = created_free(shop.order("k-1", &body, T0 + LEASE).unwrap());

    assert_eq!(answer["order"]["id"], dead.id.as_str());
    assert_eq!(answer["order"]["status"], "COMPLETED");
    assert_eq!(answer["order"]["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(shop.only_order().status, "COMPLETED");
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Completed)
    );
    shop.settled();
}

#[test]
fn a_free_order_that_fails_after_its_write_keeps_its_key_for_the_retry_that_finishes_it() {
    let shop = Shop::free();
    // The event's object fails once while confirming: the order is written, still PENDING.
    shop.hub.faults.set("confirm", Fault::FailOnce);
    let body = shop.free_body(Some("free"), two_a());

    let error = shop.order("k-1", &body, T0).err().unwrap();

    assert!(error.status() >= 500, "{}", error.code());
    let written = shop.only_order();
    assert_eq!(written.status, "PENDING");
    // The key stays in flight: a retry at once cannot make a second order beside this one.
    assert_eq!(shop.store.key(BUYER, "k-1").unwrap().state, "IN_FLIGHT");
    let error = shop.order("k-1", &body, T0 + 1).err().unwrap();
    assert_eq!(error.code(), "IDEMPOTENCY_KEY_IN_FLIGHT");

    // Once the lease has run out the retry takes the key over and finishes the same order.
    let (answer, _) = created_free(shop.order("k-1", &body, T0 + LEASE).unwrap());

    assert_eq!(answer["order"]["id"], written.id.as_str());
    assert_eq!(answer["order"]["status"], "COMPLETED");
    assert_eq!(answer["order"]["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(shop.store.orders().len(), 1);
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    assert_eq!(
        shop.hub.checkout(SESSION).ended,
        Some(CheckoutOutcome::Completed)
    );
    assert_eq!(shop.store.key(BUYER, "k-1").unwrap().state, "DONE");
    shop.settled();
}

#[test]
fn a_free_order_finished_after_its_hold_lapsed_and_the_stock_went_is_closed_owing_nothing() {
    let shop = Shop::free();
    shop.hub.faults.set("confirm", Fault::Hang);
    let body = shop.free_body(Some("free"), two_a());
    shop.order_and_die("k-1", &body, T0);
    let dead = shop.only_order();
    shop.hub.faults.clear();
    // Before the retry comes, the hold lapses and the tickets it kept are gone (the organizer
    // lowered the class to what is sold, none).
    {
        let mut state = shop.hub.state.borrow_mut();
        if let Some(hold) = state.holds.get_mut(&dead.id) {
            hold.state = HoldState::Expired;
        }
        if let Some(class) = state.classes.get_mut(CLASS_A) {
            class.reserved -= 2;
            class.total = class.sold;
        }
    }

    let answer = shop.order("k-1", &body, T0 + LEASE).unwrap();

    let OrderAnswer::Created(created) = answer else {
        panic!("no order answered");
    };
    assert_eq!(created.order.id, dead.id);
    assert_eq!(created.order.status, "CANCELLED");
    assert_eq!(created.payment_url, None);
    let order = shop.only_order();
    assert_eq!(order.status, "CANCELLED");
    assert_eq!(
        order.refund_status, None,
        "nothing was paid, nothing is owed"
    );
    assert!(shop.store.state.borrow().tickets.is_empty());
    shop.settled();
}

#[test]
fn a_free_order_over_the_purchase_limit_holds_and_writes_nothing() {
    let shop = Shop::free();
    shop.hub.max_tickets_per_user.set(Some(3));
    created_free(
        shop.order("k-1", &shop.free_body(Some("free"), two_a()), T0)
            .unwrap(),
    );
    // Admitted again later, the buyer asks for 2 more: 4 in all, over the limit of 3.
    shop.hub.admit("session-2", BUYER);
    let token = shop
        .key
        .issue_checkout(BUYER, EVENT, "session-2", T0, T0 + 15 * MINUTE)
        .unwrap();
    let body = shop
        .free_body(Some("free"), two_a())
        .replace(&shop.token(), &token);

    let error = shop.order("k-2", &body, T0 + MINUTE).err().unwrap();

    assert_eq!(
        (error.status(), error.code()),
        (422, "PURCHASE_LIMIT_EXCEEDED")
    );
    assert_eq!(shop.store.orders().len(), 1);
    assert_eq!(shop.hub.counters(CLASS_A).sold, 2);
    assert_eq!(shop.hub.counters(CLASS_A).reserved, 0);
    assert_eq!(shop.hub.checkout("session-2").bound_order, None);
    assert_eq!(shop.store.state.borrow().tickets.len(), 2);
    shop.settled();
}
