//! In-memory stand-ins for the checkout's ports: D1 (orders, payments, keys, saga steps, the
//! outbox, tickets), the event's object (counters, holds, waitroom checkouts) and the payment providers.
//! Each can be told to fail a named operation, or to hang in it (the request "dies" there:
//! the test drops the future, as the runtime does when it evicts a Worker mid-request).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use ticketbottle_edge::checkout::ports::{
    CheckoutLog, CheckoutPayment, CheckoutStore, EventForSale, EventObject, ItemRow, KeyRow,
    KeyTakeover, NewKey, NewOrder, OrderRow, PaymentLinks, StuckCheckout, Transition,
};
use ticketbottle_edge::domain::checkout::PricedClass;
use ticketbottle_edge::domain::ledger::{
    ConfirmOutcome, Hold, HoldItem, HoldState, ReleaseOutcome, ReserveRequest, DEFAULT_HOLD_MS,
};
use ticketbottle_edge::domain::saga::{CheckoutOutcome, CheckoutStep, Compensation};
use ticketbottle_edge::domain::tickets::{plan_tickets, IssueLine, Ticket};
use ticketbottle_edge::error::ApiError;
use ticketbottle_edge::payments::{Gateway, OutboundRequest, Provider, SandboxConfig};

/// What a fake does the next time(s) a named operation is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers with an internal error (D1 or the object unreachable), once.
    FailOnce,
    /// Never answers: the caller's future stays pending until dropped.
    Hang,
}

#[derive(Default)]
pub struct Faults(RefCell<HashMap<&'static str, Fault>>);

impl Faults {
    pub fn set(&self, operation: &'static str, fault: Fault) {
        self.0.borrow_mut().insert(operation, fault);
    }

    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    /// Runs the fault set for `operation`, if any.
    async fn check(&self, operation: &'static str) -> Result<(), ApiError> {
        let fault = self.0.borrow().get(operation).copied();
        match fault {
            None => Ok(()),
            Some(Fault::FailOnce) => {
                self.0.borrow_mut().remove(operation);
                Err(ApiError::internal(format!("{operation} failed (injected)")))
            }
            Some(Fault::Hang) => {
                futures::future::pending::<()>().await;
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// D1
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub order_id: String,
    pub provider: String,
    pub status: String,
    pub payment_url: Option<String>,
    pub created_seq: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: String,
    pub event_type: String,
    pub published: bool,
}

#[derive(Default)]
pub struct StoreState {
    pub keys: HashMap<(String, String), KeyRow>,
    pub events: HashMap<String, EventForSale>,
    pub classes: Vec<(String, PricedClass)>,
    pub orders: BTreeMap<String, OrderRow>,
    pub items: Vec<ItemRow>,
    pub payments: BTreeMap<String, PaymentRecord>,
    /// (order id, step) → (DONE or COMPENSATED, detail)
    pub saga_steps: BTreeMap<(String, String), (String, Option<String>)>,
    pub outbox: Vec<OutboxRecord>,
    pub processed: HashSet<String>,
    /// Issued tickets by id (the insert does nothing when the id exists, as in D1).
    pub tickets: BTreeMap<String, Ticket>,
}

#[derive(Default)]
pub struct FakeStore {
    pub state: RefCell<StoreState>,
    pub faults: Faults,
}

impl FakeStore {
    pub fn order(&self, id: &str) -> Option<OrderRow> {
        self.state.borrow().orders.get(id).cloned()
    }

    pub fn orders(&self) -> Vec<OrderRow> {
        self.state.borrow().orders.values().cloned().collect()
    }

    pub fn payment_of(&self, order_id: &str) -> Option<PaymentRecord> {
        self.state
            .borrow()
            .payments
            .values()
            .find(|p| p.order_id == order_id)
            .cloned()
    }

    /// The saga steps of an order: `STEP=STATUS`, sorted by step name.
    pub fn steps(&self, order_id: &str) -> Vec<String> {
        self.state
            .borrow()
            .saga_steps
            .iter()
            .filter(|((o, _), _)| o == order_id)
            .map(|((_, step), (status, _))| format!("{step}={status}"))
            .collect()
    }

    /// Outbox rows of one event type.
    pub fn outbox_of_type(&self, event_type: &str) -> Vec<OutboxRecord> {
        self.state
            .borrow()
            .outbox
            .iter()
            .filter(|r| r.event_type == event_type)
            .cloned()
            .collect()
    }

    pub fn key(&self, user_id: &str, key: &str) -> Option<KeyRow> {
        self.state
            .borrow()
            .keys
            .get(&(user_id.to_owned(), key.to_owned()))
            .cloned()
    }

    fn add_outbox(state: &mut StoreState, id: &str, event_type: &str) {
        // INSERT OR IGNORE on a deterministic id: a retried step announces once.
        if !state.outbox.iter().any(|r| r.id == id) {
            state.outbox.push(OutboxRecord {
                id: id.to_owned(),
                event_type: event_type.to_owned(),
                published: false,
            });
        }
    }

    fn step_done(state: &mut StoreState, order_id: &str, step: CheckoutStep) {
        state
            .saga_steps
            .entry((order_id.to_owned(), step.as_str().to_owned()))
            .or_insert(("DONE".into(), None));
    }
}

impl CheckoutStore for FakeStore {
    async fn delete_expired_key(&self, user_id: &str, key: &str, now: i64) -> Result<(), ApiError> {
        self.faults.check("delete_expired_key").await?;
        let mut state = self.state.borrow_mut();
        let id = (user_id.to_owned(), key.to_owned());
        // Keys live 24 hours from creation (expires_at is not part of KeyRow).
        if state
            .keys
            .get(&id)
            .is_some_and(|k| k.created_at + 24 * 3600 * 1000 <= now)
        {
            state.keys.remove(&id);
        }
        Ok(())
    }

    async fn insert_key(&self, key: &NewKey<'_>) -> Result<bool, ApiError> {
        self.faults.check("insert_key").await?;
        let mut state = self.state.borrow_mut();
        let id = (key.user_id.to_owned(), key.key.to_owned());
        if state.keys.contains_key(&id) {
            return Ok(false);
        }
        state.keys.insert(
            id,
            KeyRow {
                request_hash: key.request_hash.to_owned(),
                state: "IN_FLIGHT".into(),
                response_status: None,
                response_body: None,
                order_id: Some(key.order_id.to_owned()),
                created_at: key.created_at,
                lease_expires_at: Some(key.lease_expires_at),
            },
        );
        Ok(true)
    }

    async fn read_key(&self, user_id: &str, key: &str) -> Result<Option<KeyRow>, ApiError> {
        self.faults.check("read_key").await?;
        Ok(self.key(user_id, key))
    }

    async fn take_over_key(&self, t: &KeyTakeover<'_>) -> Result<bool, ApiError> {
        self.faults.check("take_over_key").await?;
        let mut state = self.state.borrow_mut();
        let Some(row) = state
            .keys
            .get_mut(&(t.user_id.to_owned(), t.key.to_owned()))
        else {
            return Ok(false);
        };
        let lease_over = row.lease_expires_at.unwrap_or(row.created_at + t.lease_ms) <= t.now;
        if row.state != "IN_FLIGHT" || row.order_id.as_deref() != t.dead_order_id || !lease_over {
            return Ok(false);
        }
        row.lease_expires_at = Some(t.lease_expires_at);
        row.order_id = Some(t.order_id.to_owned());
        Ok(true)
    }

    async fn store_response(
        &self,
        user_id: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), ApiError> {
        self.faults.check("store_response").await?;
        if let Some(row) = self
            .state
            .borrow_mut()
            .keys
            .get_mut(&(user_id.to_owned(), key.to_owned()))
        {
            row.state = "DONE".into();
            row.response_status = Some(i64::from(status));
            row.response_body = Some(body.to_owned());
        }
        Ok(())
    }

    async fn release_key(&self, user_id: &str, key: &str) -> Result<(), ApiError> {
        self.faults.check("release_key").await?;
        let mut state = self.state.borrow_mut();
        let id = (user_id.to_owned(), key.to_owned());
        if state.keys.get(&id).is_some_and(|k| k.state == "IN_FLIGHT") {
            state.keys.remove(&id);
        }
        Ok(())
    }

    async fn event_for_sale(
        &self,
        event_id: &str,
        _user_id: &str,
    ) -> Result<Option<EventForSale>, ApiError> {
        self.faults.check("event_for_sale").await?;
        Ok(self.state.borrow().events.get(event_id).cloned())
    }

    async fn priced_classes(
        &self,
        event_id: &str,
        ids: &[String],
    ) -> Result<Vec<PricedClass>, ApiError> {
        self.faults.check("priced_classes").await?;
        Ok(self
            .state
            .borrow()
            .classes
            .iter()
            .filter(|(e, c)| e == event_id && ids.contains(&c.id))
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn write_order(&self, o: &NewOrder<'_>, now: i64) -> Result<String, ApiError> {
        self.faults.check("write_order").await?;
        let mut state = self.state.borrow_mut();
        if state.orders.contains_key(o.id) || state.orders.values().any(|x| x.code == o.code) {
            return Err(ApiError::internal("UNIQUE constraint failed"));
        }
        state.orders.insert(
            o.id.to_owned(),
            OrderRow {
                id: o.id.to_owned(),
                code: o.code.to_owned(),
                event_id: o.event_id.to_owned(),
                user_id: o.user_id.to_owned(),
                status: "PENDING".into(),
                total_amount_cents: o.total,
                currency: o.currency.to_owned(),
                payment_method: o.payment_method.to_owned(),
                waitroom_session_id: o.waitroom_session_id.map(str::to_owned),
                expires_at: o.expires_at,
                refund_status: None,
                refund_reason: None,
                failure_code: None,
                created_at: now,
                updated_at: now,
            },
        );
        for (class, quantity, price) in &o.items {
            state.items.push(ItemRow {
                order_id: o.id.to_owned(),
                ticket_class_id: class.clone(),
                quantity: *quantity,
                price_cents: *price,
            });
        }
        if let Some(payment) = &o.payment {
            let created_seq = state.payments.len();
            state.payments.insert(
                payment.id.to_owned(),
                PaymentRecord {
                    order_id: o.id.to_owned(),
                    provider: o.payment_method.to_owned(),
                    status: "PENDING".into(),
                    payment_url: None,
                    created_seq,
                },
            );
        }
        for step in o.steps_done() {
            Self::step_done(&mut state, o.id, step);
        }
        let outbox_id = format!("order-{}-created", o.id);
        Self::add_outbox(&mut state, &outbox_id, "ORDER_CREATED");
        Ok(outbox_id)
    }

    async fn order(&self, id: &str) -> Result<Option<OrderRow>, ApiError> {
        self.faults.check("order").await?;
        Ok(FakeStore::order(self, id))
    }

    async fn items_of(&self, order_ids: &[String]) -> Result<Vec<ItemRow>, ApiError> {
        self.faults.check("items_of").await?;
        let mut items: Vec<ItemRow> = self
            .state
            .borrow()
            .items
            .iter()
            .filter(|i| order_ids.contains(&i.order_id))
            .cloned()
            .collect();
        items.sort_by(|a, b| {
            (&a.order_id, &a.ticket_class_id).cmp(&(&b.order_id, &b.ticket_class_id))
        });
        Ok(items)
    }

    async fn set_payment_url(
        &self,
        payment_id: &str,
        order_id: &str,
        url: &str,
        _now: i64,
    ) -> Result<(), ApiError> {
        self.faults.check("set_payment_url").await?;
        let mut state = self.state.borrow_mut();
        if let Some(p) = state.payments.get_mut(payment_id) {
            p.payment_url = Some(url.to_owned());
        }
        Self::step_done(&mut state, order_id, CheckoutStep::PaymentCreated);
        Ok(())
    }

    async fn checkout_payment(&self, order_id: &str) -> Result<Option<CheckoutPayment>, ApiError> {
        self.faults.check("checkout_payment").await?;
        Ok(self
            .state
            .borrow()
            .payments
            .iter()
            .filter(|(_, p)| p.order_id == order_id)
            .min_by_key(|(_, p)| p.created_seq)
            .map(|(id, p)| CheckoutPayment {
                id: id.clone(),
                payment_url: p.payment_url.clone(),
            }))
    }

    async fn cancel_payment(&self, payment_id: &str, _now: i64) -> Result<(), ApiError> {
        self.faults.check("cancel_payment").await?;
        if let Some(p) = self.state.borrow_mut().payments.get_mut(payment_id) {
            if p.status == "PENDING" {
                p.status = "CANCELLED".into();
            }
        }
        Ok(())
    }

    async fn issue_tickets(&self, order_id: &str, _now: i64) -> Result<Vec<Ticket>, ApiError> {
        self.faults.check("issue_tickets").await?;
        let mut state = self.state.borrow_mut();
        let Some(order) = state.orders.get(order_id).cloned() else {
            return Ok(Vec::new());
        };
        if order.status == "COMPLETED" {
            let lines: Vec<IssueLine> = state
                .items
                .iter()
                .filter(|i| i.order_id == order_id)
                .map(|i| IssueLine {
                    ticket_class_id: i.ticket_class_id.clone(),
                    quantity: u32::try_from(i.quantity).unwrap_or(0),
                })
                .collect();
            for planned in plan_tickets(order_id, &lines) {
                state
                    .tickets
                    .entry(planned.id.clone())
                    .or_insert_with(|| Ticket {
                        id: planned.id.clone(),
                        code: planned.code.as_str().to_owned(),
                        order_id: order_id.to_owned(),
                        event_id: order.event_id.clone(),
                        ticket_class_id: planned.ticket_class_id.clone(),
                        ticket_class_name: String::new(),
                        status: "VALID".into(),
                        checked_in_at: None,
                        gate: None,
                        qr: format!("qr-of-{}", planned.id),
                    });
            }
            Self::add_outbox(
                &mut state,
                &format!("tickets-issued-{order_id}"),
                "TICKETS_ISSUED",
            );
        }
        Ok(state
            .tickets
            .values()
            .filter(|t| t.order_id == order_id)
            .cloned()
            .collect())
    }

    async fn transition(&self, t: &Transition<'_>, now: i64) -> Result<Vec<String>, ApiError> {
        self.faults.check("transition").await?;
        let mut state = self.state.borrow_mut();
        let Some(order) = state.orders.get_mut(&t.order.id) else {
            return Ok(Vec::new());
        };
        let same_status = t.from == t.to;
        if order.status != t.from.as_str() || (same_status && order.refund_status.is_some()) {
            return Ok(Vec::new());
        }
        order.status = t.to.as_str().to_owned();
        order.updated_at = now;
        if let Some(reason) = t.refund_reason {
            order.refund_status = Some("REFUND_REQUIRED".into());
            order.refund_reason = Some(reason.to_owned());
        }
        if let Some(code) = t.failure_code {
            order.failure_code = Some(code.to_owned());
        }
        let mut ids = Vec::new();
        for (event_type, _) in &t.announce {
            let id = format!(
                "order-{}-{}-{}",
                t.order.id,
                t.to.as_str().to_lowercase(),
                event_type.to_lowercase()
            );
            Self::add_outbox(&mut state, &id, event_type);
            ids.push(id);
        }
        Ok(ids)
    }

    async fn record_compensation(
        &self,
        order_id: &str,
        step: Compensation,
        failure_code: &str,
        _now: i64,
    ) -> Result<(), ApiError> {
        self.faults.check("record_compensation").await?;
        self.state.borrow_mut().saga_steps.insert(
            (order_id.to_owned(), step.as_str().to_owned()),
            ("COMPENSATED".into(), Some(failure_code.to_owned())),
        );
        Ok(())
    }

    async fn stuck_checkouts(&self, created_before: i64) -> Result<Vec<StuckCheckout>, ApiError> {
        self.faults.check("stuck_checkouts").await?;
        let state = self.state.borrow();
        let mut stuck: Vec<StuckCheckout> = state
            .orders
            .values()
            .filter(|o| o.status == "PENDING" && o.created_at < created_before)
            .filter(|o| {
                !state
                    .saga_steps
                    .contains_key(&(o.id.clone(), "PAYMENT_CREATED".into()))
            })
            .map(|o| {
                let steps: Vec<&str> = state
                    .saga_steps
                    .iter()
                    .filter(|((id, _), (status, _))| id == &o.id && status == "DONE")
                    .map(|((_, step), _)| step.as_str())
                    .collect();
                StuckCheckout {
                    order_id: o.id.clone(),
                    steps: (!steps.is_empty()).then(|| steps.join(",")),
                    created_at: o.created_at,
                }
            })
            .collect();
        stuck.sort_by_key(|s| s.created_at);
        Ok(stuck)
    }

    async fn pending_orders_expired_before(
        &self,
        expired_before: i64,
    ) -> Result<Vec<String>, ApiError> {
        self.faults.check("pending_orders_expired_before").await?;
        Ok(self
            .state
            .borrow()
            .orders
            .values()
            .filter(|o| o.status == "PENDING" && o.expires_at < expired_before)
            .map(|o| o.id.clone())
            .collect())
    }

    async fn already_processed(&self, message_id: &str) -> Result<bool, ApiError> {
        self.faults.check("already_processed").await?;
        Ok(self.state.borrow().processed.contains(message_id))
    }

    async fn mark_processed(&self, message_id: &str, _now: i64) -> Result<(), ApiError> {
        self.faults.check("mark_processed").await?;
        self.state
            .borrow_mut()
            .processed
            .insert(message_id.to_owned());
        Ok(())
    }

    async fn relay(&self, outbox_ids: &[String], _now: i64) -> Result<(), ApiError> {
        self.faults.check("relay").await?;
        for row in self.state.borrow_mut().outbox.iter_mut() {
            if outbox_ids.contains(&row.id) {
                row.published = true;
            }
        }
        Ok(())
    }

    fn relay_after_response(&self, outbox_ids: Vec<String>) {
        for row in self.state.borrow_mut().outbox.iter_mut() {
            if outbox_ids.contains(&row.id) {
                row.published = true;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The event's object
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub total: u32,
    pub reserved: u32,
    pub sold: u32,
}

/// A buyer's waitroom checkout as the object keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSlot {
    pub user_id: String,
    pub bound_order: Option<String>,
    /// `None` while ADMITTED; how it ended otherwise (the slot is free again).
    pub ended: Option<CheckoutOutcome>,
}

#[derive(Default)]
pub struct HubState {
    pub classes: BTreeMap<String, Counters>,
    pub holds: BTreeMap<String, Hold>,
    pub checkouts: BTreeMap<String, CheckoutSlot>,
}

/// One event's object (every test sells one event). Its clock is the test's.
#[derive(Default)]
pub struct FakeHub {
    pub state: RefCell<HubState>,
    pub now: Cell<i64>,
    pub faults: Faults,
    /// The event's `maxTicketsPerUser`: held and sold tickets per buyer, as the ledger counts.
    pub max_tickets_per_user: Cell<Option<u32>>,
}

fn rule(status: u16, code: &'static str) -> ApiError {
    ApiError::rule(status, code, code)
}

impl FakeHub {
    pub fn add_class(&self, id: &str, total: u32) {
        self.state.borrow_mut().classes.insert(
            id.to_owned(),
            Counters {
                total,
                reserved: 0,
                sold: 0,
            },
        );
    }

    pub fn counters(&self, class_id: &str) -> Counters {
        self.state.borrow().classes[class_id]
    }

    pub fn hold(&self, order_id: &str) -> Option<Hold> {
        self.state.borrow().holds.get(order_id).cloned()
    }

    pub fn admit(&self, session_id: &str, user_id: &str) {
        self.state.borrow_mut().checkouts.insert(
            session_id.to_owned(),
            CheckoutSlot {
                user_id: user_id.to_owned(),
                bound_order: None,
                ended: None,
            },
        );
    }

    pub fn checkout(&self, session_id: &str) -> CheckoutSlot {
        self.state.borrow().checkouts[session_id].clone()
    }

    /// The object's expiry alarm for one hold.
    pub fn expire(&self, order_id: &str) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        if let Some(hold) = state.holds.get_mut(order_id) {
            if hold.state == HoldState::Active {
                hold.state = HoldState::Expired;
                for item in &hold.items {
                    if let Some(c) = state.classes.get_mut(&item.ticket_class_id) {
                        c.reserved -= item.quantity;
                    }
                }
            }
        }
    }

    /// `reserved` and `sold` are the sums over ACTIVE and CONFIRMED holds, never over `total`.
    pub fn assert_counters_agree_with_holds(&self) {
        let state = self.state.borrow();
        for (id, c) in &state.classes {
            let sum = |wanted: HoldState| -> u32 {
                state
                    .holds
                    .values()
                    .filter(|h| h.state == wanted)
                    .flat_map(|h| &h.items)
                    .filter(|i| &i.ticket_class_id == id)
                    .map(|i| i.quantity)
                    .sum()
            };
            assert_eq!(c.reserved, sum(HoldState::Active), "reserved of {id}");
            assert_eq!(c.sold, sum(HoldState::Confirmed), "sold of {id}");
            assert!(c.reserved + c.sold <= c.total, "class {id} oversold");
        }
    }

    fn has_stock(state: &HubState, items: &[HoldItem]) -> bool {
        items.iter().all(|i| {
            state
                .classes
                .get(&i.ticket_class_id)
                .is_some_and(|c| c.reserved + c.sold + i.quantity <= c.total)
        })
    }

    fn hold_now(&self, request: &ReserveRequest) -> Result<Hold, ApiError> {
        let mut state = self.state.borrow_mut();
        if let Some(hold) = state.holds.get(&request.order_id) {
            return Ok(hold.clone());
        }
        let mut items: Vec<HoldItem> = Vec::new();
        for item in &request.items {
            let quantity = u32::try_from(item.quantity)
                .ok()
                .filter(|q| *q > 0)
                .ok_or_else(|| rule(400, "VALIDATION_FAILED"))?;
            if !state.classes.contains_key(&item.ticket_class_id) {
                return Err(rule(404, "NOT_FOUND"));
            }
            items.push(HoldItem {
                ticket_class_id: item.ticket_class_id.clone(),
                quantity,
            });
        }
        if let Some(limit) = self.max_tickets_per_user.get() {
            let owned: u32 = state
                .holds
                .values()
                .filter(|h| {
                    h.user_id == request.user_id
                        && matches!(h.state, HoldState::Active | HoldState::Confirmed)
                })
                .flat_map(|h| &h.items)
                .map(|i| i.quantity)
                .sum();
            let asked: u32 = items.iter().map(|i| i.quantity).sum();
            if owned + asked > limit {
                return Err(rule(422, "PURCHASE_LIMIT_EXCEEDED"));
            }
        }
        if !Self::has_stock(&state, &items) {
            return Err(rule(409, "INSUFFICIENT_INVENTORY"));
        }
        for item in &items {
            if let Some(c) = state.classes.get_mut(&item.ticket_class_id) {
                c.reserved += item.quantity;
            }
        }
        let now = self.now.get();
        let hold = Hold {
            order_id: request.order_id.clone(),
            user_id: request.user_id.clone(),
            items,
            state: HoldState::Active,
            created_at: now,
            expires_at: now + request.hold_for_ms.unwrap_or(DEFAULT_HOLD_MS),
            updated_at: now,
            refused_payment: None,
            returned_at: None,
        };
        state.holds.insert(hold.order_id.clone(), hold.clone());
        Ok(hold)
    }
}

impl EventObject for FakeHub {
    async fn reserve(&self, _event_id: &str, request: &ReserveRequest) -> Result<Hold, ApiError> {
        self.faults.check("reserve").await?;
        self.hold_now(request)
    }

    async fn reserve_for_checkout(
        &self,
        _event_id: &str,
        session_id: &str,
        request: &ReserveRequest,
    ) -> Result<Hold, ApiError> {
        self.faults.check("reserve_for_checkout").await?;
        let usable = self
            .state
            .borrow()
            .checkouts
            .get(session_id)
            .is_some_and(|c| {
                c.ended.is_none()
                    && c.user_id == request.user_id
                    && c.bound_order
                        .as_ref()
                        .is_none_or(|o| o == &request.order_id)
            });
        if !usable {
            return Err(rule(403, "CHECKOUT_TOKEN_INVALID"));
        }
        let hold = self.hold_now(request)?;
        if let Some(c) = self.state.borrow_mut().checkouts.get_mut(session_id) {
            c.bound_order = Some(request.order_id.clone());
        }
        Ok(hold)
    }

    async fn confirm(&self, _event_id: &str, order_id: &str) -> Result<ConfirmOutcome, ApiError> {
        self.faults.check("confirm").await?;
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let Some(mut hold) = state.holds.get(order_id).cloned() else {
            return Err(rule(404, "NOT_FOUND"));
        };
        match hold.state {
            HoldState::Confirmed => return Ok(ConfirmOutcome::Confirmed(hold)),
            HoldState::Active => {
                for item in &hold.items {
                    if let Some(c) = state.classes.get_mut(&item.ticket_class_id) {
                        c.reserved -= item.quantity;
                    }
                }
            }
            HoldState::Released | HoldState::Expired => {
                if hold.refused_payment.is_some() || !Self::has_stock(state, &hold.items) {
                    return Ok(ConfirmOutcome::PaidButNoStock(hold));
                }
            }
        }
        for item in &hold.items {
            if let Some(c) = state.classes.get_mut(&item.ticket_class_id) {
                c.sold += item.quantity;
            }
        }
        hold.state = HoldState::Confirmed;
        state.holds.insert(order_id.to_owned(), hold.clone());
        Ok(ConfirmOutcome::Confirmed(hold))
    }

    async fn release(&self, _event_id: &str, order_id: &str) -> Result<ReleaseOutcome, ApiError> {
        self.faults.check("release").await?;
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let Some(hold) = state.holds.get_mut(order_id) else {
            return Ok(ReleaseOutcome::UnknownOrder);
        };
        Ok(match hold.state {
            HoldState::Active => {
                hold.state = HoldState::Released;
                for item in &hold.items {
                    if let Some(c) = state.classes.get_mut(&item.ticket_class_id) {
                        c.reserved -= item.quantity;
                    }
                }
                ReleaseOutcome::Released(hold.clone())
            }
            HoldState::Released => ReleaseOutcome::AlreadyReleased(hold.clone()),
            HoldState::Expired => ReleaseOutcome::AlreadyExpired(hold.clone()),
            HoldState::Confirmed => ReleaseOutcome::AlreadyConfirmed(hold.clone()),
        })
    }

    async fn unbind_order(&self, _event_id: &str, order_id: &str) -> Result<(), ApiError> {
        self.faults.check("unbind_order").await?;
        for c in self.state.borrow_mut().checkouts.values_mut() {
            if c.bound_order.as_deref() == Some(order_id) && c.ended.is_none() {
                c.bound_order = None;
            }
        }
        Ok(())
    }

    async fn checkout_resolved(
        &self,
        _event_id: &str,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> Result<(), ApiError> {
        self.faults.check("checkout_resolved").await?;
        for c in self.state.borrow_mut().checkouts.values_mut() {
            if c.bound_order.as_deref() == Some(order_id) && c.ended.is_none() {
                c.ended = Some(outcome);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Payment providers and the log
// ---------------------------------------------------------------------------------------------

/// What the providers' create API does with the next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMode {
    Answers,
    /// Refuses, fails or times out: the shell reports it as an error string.
    Down,
    /// Never answers and the request dies waiting (the future is dropped).
    Hangs,
}

pub struct FakeProviders {
    pub mode: Cell<ProviderMode>,
    pub calls: Cell<u32>,
}

impl Default for FakeProviders {
    fn default() -> Self {
        FakeProviders {
            mode: Cell::new(ProviderMode::Answers),
            calls: Cell::new(0),
        }
    }
}

pub const SANDBOX_BASE: &str = "https://tickets.test";

impl PaymentLinks for FakeProviders {
    fn enabled(&self, provider: Provider) -> bool {
        provider != Provider::Vnpay
    }

    fn gateway(&self, provider: Provider) -> Result<Gateway, ApiError> {
        match provider {
            Provider::Sandbox => Ok(Gateway::Sandbox(SandboxConfig {
                secret: "sandbox-secret".into(),
                base_url: SANDBOX_BASE.into(),
            })),
            other => Gateway::from_secrets(other, |name| Some(format!("test-{name}-12345")))
                .map_err(|e| ApiError::Misconfigured(e.to_string())),
        }
    }

    async fn create_link(
        &self,
        _gateway: &Gateway,
        request: OutboundRequest,
    ) -> Result<String, String> {
        self.calls.set(self.calls.get() + 1);
        match self.mode.get() {
            ProviderMode::Answers => Ok(format!("https://pay.test/link?for={}", request.url)),
            ProviderMode::Down => Err("connection refused".into()),
            ProviderMode::Hangs => {
                futures::future::pending::<()>().await;
                Err("unreachable".into())
            }
        }
    }
}

#[derive(Default)]
pub struct FakeLog {
    pub lines: RefCell<Vec<(String, String, Value)>>,
    pub annotations: RefCell<Vec<(String, String)>>,
}

impl FakeLog {
    /// The lines with this message, as (level, fields).
    pub fn lines_of(&self, msg: &str) -> Vec<(String, Value)> {
        self.lines
            .borrow()
            .iter()
            .filter(|(_, m, _)| m == msg)
            .map(|(level, _, fields)| (level.clone(), fields.clone()))
            .collect()
    }

    fn push(&self, level: &str, msg: &str, fields: Value) {
        self.lines
            .borrow_mut()
            .push((level.into(), msg.into(), fields));
    }
}

impl CheckoutLog for FakeLog {
    fn info(&self, msg: &str, fields: Value) {
        self.push("info", msg, fields)
    }

    fn warn(&self, msg: &str, fields: Value) {
        self.push("warn", msg, fields)
    }

    fn error(&self, msg: &str, fields: Value) {
        self.push("error", msg, fields)
    }

    fn annotate(&self, key: &str, value: &str) {
        self.annotations
            .borrow_mut()
            .push((key.into(), value.into()));
    }
}
