//! What the checkout needs from the world, as traits, and the records that cross them: D1
//! (orders, payments, idempotency keys, saga steps, the outbox), the event's object (holds and
//! checkout slots), the payment providers (payment links) and the log.
//!
//! The Worker implements them over D1, the `EventHub` stub and `fetch` (`crate::checkout_edge`,
//! wasm32 only); host tests implement them in memory, with failures on demand.
//!
//! The traits use `async fn` without `Send` bounds on purpose: the Workers runtime is single
//! threaded and its futures are not `Send`, and host tests drive them with a local executor.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::access::EventRole;
use crate::domain::checkout::PricedClass;
use crate::domain::event_workflow::{ConfigTerms, EventStatus};
use crate::domain::ledger::{ConfirmOutcome, Hold, ReleaseOutcome, ReserveRequest};
use crate::domain::saga::{CheckoutOutcome, CheckoutStep, Compensation, OrderStatus};
use crate::domain::tickets::Ticket;
use crate::error::ApiError;
use crate::payments::{Gateway, OutboundRequest, Provider};

/// An order as stored (`orders` row).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderRow {
    pub id: String,
    pub code: String,
    pub event_id: String,
    pub user_id: String,
    pub status: String,
    pub total_amount_cents: i64,
    pub currency: String,
    pub payment_method: String,
    pub waitroom_session_id: Option<String>,
    pub expires_at: i64,
    pub refund_status: Option<String>,
    pub refund_reason: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrderRow {
    pub fn status(&self) -> Result<OrderStatus, ApiError> {
        OrderStatus::parse(&self.status).ok_or_else(|| {
            ApiError::internal(format!("order {} has status {}", self.id, self.status))
        })
    }
}

/// One line of a stored order (`order_items` row).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ItemRow {
    pub order_id: String,
    pub ticket_class_id: String,
    pub quantity: i64,
    pub price_cents: i64,
}

/// A new order with its items and its payment row, written in one batch with the saga's first
/// steps and `ORDER_CREATED`.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub id: &'a str,
    pub code: &'a str,
    pub event_id: &'a str,
    pub user_id: &'a str,
    pub total: i64,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub waitroom_session_id: Option<&'a str>,
    pub expires_at: i64,
    /// (ticket class id, quantity, unit price)
    pub items: Vec<(String, i64, i64)>,
    /// The payment row to write; `None` for a free order, which has nothing to pay.
    pub payment: Option<NewPayment<'a>>,
}

/// The payment row of a new order: its id and what its provider sends back in notifications.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub id: &'a str,
    pub provider_ref: &'a str,
}

impl NewOrder<'_> {
    /// The forward steps the write records as done: a waitroom order was bound to its checkout
    /// by the reserve itself (one step in the object), so the record says so from the start and
    /// a compensation always frees or reopens the checkout.
    pub fn steps_done(&self) -> Vec<CheckoutStep> {
        let mut steps = vec![CheckoutStep::Reserved, CheckoutStep::OrderWritten];
        if self.waitroom_session_id.is_some() {
            steps.push(CheckoutStep::CheckoutBound);
        }
        steps
    }
}

/// A status change with its announcements.
pub struct Transition<'a> {
    pub order: &'a OrderRow,
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub refund_reason: Option<&'a str>,
    pub failure_code: Option<&'a str>,
    /// Domain events to publish if (and only if) this transition is the one that happened.
    pub announce: Vec<(&'static str, Map<String, Value>)>,
}

/// The payment of an order as the order request left it: its id and, once the provider gave
/// one, the link the buyer pays at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutPayment {
    pub id: String,
    pub payment_url: Option<String>,
}

/// An `idempotency_keys` row of `POST /api/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeyRow {
    pub request_hash: String,
    /// `IN_FLIGHT` or `DONE`.
    pub state: String,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    /// The order its request makes (`None` for keys written before keys named their order).
    pub order_id: Option<String>,
    pub created_at: i64,
    pub lease_expires_at: Option<i64>,
}

/// A new key's row: owned by the request that claims it until `lease_expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey<'a> {
    pub user_id: &'a str,
    pub key: &'a str,
    pub request_hash: &'a str,
    pub order_id: &'a str,
    pub lease_expires_at: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An IN_FLIGHT key taken over from a request that died: applied only if the key still names
/// `dead_order_id` and its lease (or, for keys without one, `created_at + lease_ms`) is over at
/// `now`, so of two racing retries one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTakeover<'a> {
    pub user_id: &'a str,
    pub key: &'a str,
    pub dead_order_id: Option<&'a str>,
    pub order_id: &'a str,
    pub lease_expires_at: i64,
    pub lease_ms: i64,
    pub now: i64,
}

/// What the checkout reads about an event: what the access policy and the sale rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventForSale {
    pub status: EventStatus,
    pub ever_published: bool,
    /// The buyer's role on the event, if any (a role can see an event before it is public).
    pub role: Option<EventRole>,
    pub config: Option<ConfigTerms>,
}

/// A PENDING order that never recorded its payment link, with the forward steps it did record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StuckCheckout {
    pub order_id: String,
    /// The DONE steps, comma separated (`saga_steps.step`).
    pub steps: Option<String>,
    pub created_at: i64,
}

/// D1, as the checkout and its saga use it. Every write is idempotent or guarded, because a
/// request may die between two of them and be retried.
#[allow(async_fn_in_trait)]
pub trait CheckoutStore {
    // Idempotency keys of POST /api/orders.

    /// Deletes the key if it expired, so it may be used again.
    async fn delete_expired_key(&self, user_id: &str, key: &str, now: i64) -> Result<(), ApiError>;
    /// Inserts the key unless it exists; whether this call inserted it.
    async fn insert_key(&self, key: &NewKey<'_>) -> Result<bool, ApiError>;
    async fn read_key(&self, user_id: &str, key: &str) -> Result<Option<KeyRow>, ApiError>;
    /// Whether this call took the key over (see [`KeyTakeover`]).
    async fn take_over_key(&self, takeover: &KeyTakeover<'_>) -> Result<bool, ApiError>;
    /// Marks the key DONE with the answer to replay.
    async fn store_response(
        &self,
        user_id: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), ApiError>;
    /// Deletes an IN_FLIGHT key (a server-side failure is not worth replaying).
    async fn release_key(&self, user_id: &str, key: &str) -> Result<(), ApiError>;

    // The catalogue.

    async fn event_for_sale(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<EventForSale>, ApiError>;
    /// The event's ticket classes among `ids`, priced.
    async fn priced_classes(
        &self,
        event_id: &str,
        ids: &[String],
    ) -> Result<Vec<PricedClass>, ApiError>;

    // Orders and payments.

    /// Writes the order, its items, its payment row, the steps of [`NewOrder::steps_done`] and
    /// `ORDER_CREATED`, all or nothing; returns the outbox id of `ORDER_CREATED`.
    async fn write_order(&self, order: &NewOrder<'_>, now: i64) -> Result<String, ApiError>;
    async fn order(&self, id: &str) -> Result<Option<OrderRow>, ApiError>;
    async fn items_of(&self, order_ids: &[String]) -> Result<Vec<ItemRow>, ApiError>;
    /// Stores the payment link and records PAYMENT_CREATED, together.
    async fn set_payment_url(
        &self,
        payment_id: &str,
        order_id: &str,
        url: &str,
        now: i64,
    ) -> Result<(), ApiError>;
    async fn checkout_payment(&self, order_id: &str) -> Result<Option<CheckoutPayment>, ApiError>;
    /// Cancels a PENDING payment, so a late notification cannot settle it as PENDING.
    async fn cancel_payment(&self, payment_id: &str, now: i64) -> Result<(), ApiError>;
    /// Issues the tickets of a COMPLETED order that are still missing (none otherwise), with
    /// their announcement and receipt, and returns all of the order's tickets. Idempotent: the
    /// same issuing the saga runs after a paid order completes.
    async fn issue_tickets(&self, order_id: &str, now: i64) -> Result<Vec<Ticket>, ApiError>;
    /// Applies the transition if the order is still in `from` (and, for a same-status change,
    /// has no refund recorded yet), with its outbox rows; the ids of the rows written, empty
    /// when another worker got there first.
    async fn transition(&self, t: &Transition<'_>, now: i64) -> Result<Vec<String>, ApiError>;

    // The saga's own records.

    async fn record_compensation(
        &self,
        order_id: &str,
        step: Compensation,
        failure_code: &str,
        now: i64,
    ) -> Result<(), ApiError>;
    /// PENDING orders created before `created_before` without PAYMENT_CREATED, oldest first.
    async fn stuck_checkouts(&self, created_before: i64) -> Result<Vec<StuckCheckout>, ApiError>;
    /// Ids of PENDING orders whose hold expired before `expired_before`, soonest first.
    async fn pending_orders_expired_before(
        &self,
        expired_before: i64,
    ) -> Result<Vec<String>, ApiError>;
    async fn already_processed(&self, message_id: &str) -> Result<bool, ApiError>;
    async fn mark_processed(&self, message_id: &str, now: i64) -> Result<(), ApiError>;

    // The outbox.

    /// Publishes these outbox rows now (the cron relays whatever this misses).
    async fn relay(&self, outbox_ids: &[String], now: i64) -> Result<(), ApiError>;
    /// Publishes these rows after the answer is sent, where the runtime allows it.
    fn relay_after_response(&self, outbox_ids: Vec<String>);
}

/// The event's object, addressed by event id: the one consistent home of holds and checkout
/// slots. A refusal by a rule comes back as [`ApiError::Rule`] with the object's code.
#[allow(async_fn_in_trait)]
pub trait EventObject {
    async fn reserve(&self, event_id: &str, request: &ReserveRequest) -> Result<Hold, ApiError>;
    /// Binds the order to the session's checkout and holds, in one step; 403
    /// `CHECKOUT_TOKEN_INVALID` with nothing held when the checkout is not the buyer's to use.
    async fn reserve_for_checkout(
        &self,
        event_id: &str,
        session_id: &str,
        request: &ReserveRequest,
    ) -> Result<Hold, ApiError>;
    async fn confirm(&self, event_id: &str, order_id: &str) -> Result<ConfirmOutcome, ApiError>;
    async fn release(&self, event_id: &str, order_id: &str) -> Result<ReleaseOutcome, ApiError>;
    /// Gives the order's checkout back to its buyer, still ADMITTED. Idempotent.
    async fn unbind_order(&self, event_id: &str, order_id: &str) -> Result<(), ApiError>;
    /// Ends the order's checkout and frees its slot. Idempotent.
    async fn checkout_resolved(
        &self,
        event_id: &str,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> Result<(), ApiError>;
}

/// The payment providers as this deployment configures them.
#[allow(async_fn_in_trait)]
pub trait PaymentLinks {
    /// Whether buyers may pay with `provider` here.
    fn enabled(&self, provider: Provider) -> bool;
    /// The configured gateway (a missing secret is `SERVICE_MISCONFIGURED`).
    fn gateway(&self, provider: Provider) -> Result<Gateway, ApiError>;
    /// Sends a provider's create call and returns the payment link it answered, or why not
    /// (refused, failed, malformed, or no answer in time); the reason is for the log.
    async fn create_link(
        &self,
        gateway: &Gateway,
        request: OutboundRequest,
    ) -> Result<String, String>;
}

/// Log lines about orders, tied to what caused them (a request, a message, the cron).
pub trait CheckoutLog {
    fn info(&self, msg: &str, fields: Value);
    fn warn(&self, msg: &str, fields: Value);
    fn error(&self, msg: &str, fields: Value);
    /// Adds a field to the line of the request being served; nothing outside a request.
    fn annotate(&self, key: &str, value: &str);
}
