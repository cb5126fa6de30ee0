//! The checkout's ports over the Workers runtime: D1 through `store`, each event's `EventHub`
//! stub, the providers' create calls through `fetch` with a timeout, and log lines tied to a
//! trace. Thin on purpose: every decision is in the service, which is tested on the host.
//!
//! A module of its own, beside `checkout` rather than in it, so the arrows run one way: the
//! service names only its ports, `store` returns the ports' records, and this file is the one
//! place that joins them.

use serde_json::Value;
use worker::{Context, D1Database, Date, Env};

use crate::checkout::ports::{
    CheckoutLog, CheckoutPayment, CheckoutStore, EventForSale, EventObject, ItemRow, KeyRow,
    KeyTakeover, NewKey, NewOrder, OrderRow, StuckCheckout, Transition,
};
use crate::domain::checkout::PricedClass;
use crate::domain::ledger::{ConfirmOutcome, Hold, ReleaseOutcome, ReserveRequest};
use crate::domain::saga::{CheckoutOutcome, Compensation};
use crate::domain::tickets::Ticket;
use crate::durable::client::EventHubClient;
use crate::error::ApiError;
use crate::log::{self, Trace};
use crate::payments::{Gateway, OutboundRequest};
use crate::store::{checkout as co, d1, events, orders, outbox, saga, tickets};

/// A provider that has not answered in this long is treated as down.
const PROVIDER_TIMEOUT_MS: u32 = 8_000;

/// The checkout's D1 store.
pub struct D1Checkout<'a> {
    env: &'a Env,
    db: D1Database,
    /// Where a request's work may go on after its response (`waitUntil`).
    request: Option<&'a Context>,
}

impl<'a> D1Checkout<'a> {
    pub fn new(env: &'a Env) -> Result<Self, ApiError> {
        Ok(D1Checkout {
            env,
            db: d1::db(env)?,
            request: None,
        })
    }

    /// For a request: publishing after the response uses its `waitUntil`.
    pub fn serving(mut self, ctx: &'a Context) -> Self {
        self.request = Some(ctx);
        self
    }

    pub fn db(&self) -> &D1Database {
        &self.db
    }
}

impl CheckoutStore for D1Checkout<'_> {
    async fn delete_expired_key(&self, user_id: &str, key: &str, now: i64) -> Result<(), ApiError> {
        co::delete_expired_key(&self.db, user_id, key, now).await
    }

    async fn insert_key(&self, key: &NewKey<'_>) -> Result<bool, ApiError> {
        co::insert_key(&self.db, key).await
    }

    async fn read_key(&self, user_id: &str, key: &str) -> Result<Option<KeyRow>, ApiError> {
        co::read_key(&self.db, user_id, key).await
    }

    async fn take_over_key(&self, takeover: &KeyTakeover<'_>) -> Result<bool, ApiError> {
        co::take_over_key(&self.db, takeover).await
    }

    async fn store_response(
        &self,
        user_id: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), ApiError> {
        co::store_response(&self.db, user_id, key, status, body).await
    }

    async fn release_key(&self, user_id: &str, key: &str) -> Result<(), ApiError> {
        co::release_key(&self.db, user_id, key).await
    }

    async fn event_for_sale(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<EventForSale>, ApiError> {
        Ok(events::find_with_role(&self.db, event_id, Some(user_id))
            .await?
            .map(|(event, role)| EventForSale {
                status: event.status,
                ever_published: event.ever_published,
                role,
                config: event.terms.config,
            }))
    }

    async fn priced_classes(
        &self,
        event_id: &str,
        ids: &[String],
    ) -> Result<Vec<PricedClass>, ApiError> {
        co::priced_classes(&self.db, event_id, ids).await
    }

    async fn write_order(&self, order: &NewOrder<'_>, now: i64) -> Result<String, ApiError> {
        co::write_order(&self.db, order, now).await
    }

    async fn order(&self, id: &str) -> Result<Option<OrderRow>, ApiError> {
        orders::find_by_id(&self.db, id).await
    }

    async fn items_of(&self, order_ids: &[String]) -> Result<Vec<ItemRow>, ApiError> {
        orders::items_of(&self.db, order_ids).await
    }

    async fn set_payment_url(
        &self,
        payment_id: &str,
        order_id: &str,
        url: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        co::set_payment_url(&self.db, payment_id, order_id, url, now).await
    }

    async fn checkout_payment(&self, order_id: &str) -> Result<Option<CheckoutPayment>, ApiError> {
        co::checkout_payment(&self.db, order_id).await
    }

    async fn cancel_payment(&self, payment_id: &str, now: i64) -> Result<(), ApiError> {
        co::cancel_payment(&self.db, payment_id, now).await
    }

    async fn issue_tickets(&self, order_id: &str, now: i64) -> Result<Vec<Ticket>, ApiError> {
        tickets::issue_if_completed(self.env, &self.db, order_id, now).await?;
        let ids = [order_id.to_owned()];
        Ok(tickets::of_orders(&self.db, &ids)
            .await?
            .iter()
            .map(Ticket::from_row)
            .collect())
    }

    async fn transition(&self, t: &Transition<'_>, now: i64) -> Result<Vec<String>, ApiError> {
        orders::transition(&self.db, t, now).await
    }

    async fn record_compensation(
        &self,
        order_id: &str,
        step: Compensation,
        failure_code: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        saga::record_compensation(&self.db, order_id, step, failure_code, now).await
    }

    async fn stuck_checkouts(&self, created_before: i64) -> Result<Vec<StuckCheckout>, ApiError> {
        saga::stuck_checkouts(&self.db, created_before).await
    }

    async fn pending_orders_expired_before(
        &self,
        expired_before: i64,
    ) -> Result<Vec<String>, ApiError> {
        saga::pending_orders_expired_before(&self.db, expired_before).await
    }

    async fn already_processed(&self, message_id: &str) -> Result<bool, ApiError> {
        saga::already_processed(&self.db, message_id).await
    }

    async fn mark_processed(&self, message_id: &str, now: i64) -> Result<(), ApiError> {
        saga::mark_processed(&self.db, message_id, now).await
    }

    async fn relay(&self, outbox_ids: &[String], now: i64) -> Result<(), ApiError> {
        outbox::relay(self.env, &self.db, now, outbox_ids.len(), Some(outbox_ids)).await?;
        Ok(())
    }

    fn relay_after_response(&self, outbox_ids: Vec<String>) {
        // Outside a request there is no `waitUntil`; the cron relays what is left.
        let Some(ctx) = self.request else {
            return;
        };
        let env = self.env.clone();
        ctx.wait_until(async move {
            if let Ok(db) = d1::db(&env) {
                let now = Date::now().as_millis() as i64;
                let _ = outbox::relay(&env, &db, now, outbox_ids.len(), Some(&outbox_ids)).await;
            }
        });
    }
}

/// The event objects of the `EVENT_HUB` namespace, each call tagged with the trace's request id.
pub struct HubStubs<'a> {
    env: &'a Env,
    trace: &'a Trace,
}

impl<'a> HubStubs<'a> {
    pub fn new(env: &'a Env, trace: &'a Trace) -> Self {
        HubStubs { env, trace }
    }

    fn of(&self, event_id: &str) -> Result<EventHubClient, ApiError> {
        Ok(EventHubClient::new(self.env, event_id)?.traced(self.trace))
    }
}

impl EventObject for HubStubs<'_> {
    async fn reserve(&self, event_id: &str, request: &ReserveRequest) -> Result<Hold, ApiError> {
        Ok(self.of(event_id)?.reserve(request).await?)
    }

    async fn reserve_for_checkout(
        &self,
        event_id: &str,
        session_id: &str,
        request: &ReserveRequest,
    ) -> Result<Hold, ApiError> {
        Ok(self
            .of(event_id)?
            .reserve_for_checkout(session_id, request)
            .await?)
    }

    async fn confirm(&self, event_id: &str, order_id: &str) -> Result<ConfirmOutcome, ApiError> {
        Ok(self.of(event_id)?.confirm(order_id).await?)
    }

    async fn release(&self, event_id: &str, order_id: &str) -> Result<ReleaseOutcome, ApiError> {
        Ok(self.of(event_id)?.release(order_id).await?)
    }

    async fn unbind_order(&self, event_id: &str, order_id: &str) -> Result<(), ApiError> {
        Ok(self.of(event_id)?.unbind_order(order_id).await?)
    }

    async fn checkout_resolved(
        &self,
        event_id: &str,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> Result<(), ApiError> {
        Ok(self
            .of(event_id)?
            .checkout_resolved(order_id, outcome)
            .await?)
    }
}

/// Sends a provider's create call with a timeout and reads the payment link from its answer.
pub async fn send_create(gateway: &Gateway, request: OutboundRequest) -> Result<String, String> {
    let (status, text) =
        crate::outbound::send(&request, PROVIDER_TIMEOUT_MS, "the payment provider").await?;
    gateway
        .parse_create_response(status, &text)
        .map(|c| c.payment_url)
        .map_err(|e| e.to_string())
}

/// Log lines of work that is not a request (a queue message, the cron).
pub struct TraceLog<'a>(pub &'a Trace);

impl CheckoutLog for TraceLog<'_> {
    fn info(&self, msg: &str, fields: Value) {
        log::info(msg, Some(self.0), fields)
    }

    fn warn(&self, msg: &str, fields: Value) {
        log::warn(msg, Some(self.0), fields)
    }

    fn error(&self, msg: &str, fields: Value) {
        log::error(msg, Some(self.0), fields)
    }

    fn annotate(&self, _key: &str, _value: &str) {}
}
