//! The payments-queue consumer and the cron sweeps: each builds the checkout's Workers ports
//! and hands the work to the saga (`crate::checkout::saga`), where every decision is made.

use serde_json::Value;
use worker::{Date, Env};

use crate::checkout::Saga;
use crate::checkout_edge::{D1Checkout, HubStubs, TraceLog};
use crate::error::ApiError;
use crate::log::Trace;

/// One payments-queue message: a payment result or a hold expiry.
pub async fn handle(env: &Env, body: &Value, trace: &Trace) -> Result<(), ApiError> {
    let store = D1Checkout::new(env)?;
    let hub = HubStubs::new(env, trace);
    let log = TraceLog(trace);
    let now = Date::now().as_millis() as i64;
    Saga {
        store: &store,
        hub: &hub,
        log: &log,
    }
    .handle_message(body, now)
    .await?;
    // Every message about an order (the first and any redelivery) issues whatever tickets a
    // COMPLETED order still lacks; the message is acknowledged only once that is done, so a
    // crash between completing and issuing is repaired by the redelivery.
    if let Some(order_id) = body.get("orderId").and_then(Value::as_str) {
        let db = crate::store::d1::db(env)?;
        crate::store::tickets::issue_if_completed(env, &db, order_id, now).await?;
    }
    Ok(())
}

/// The cron's sweeps: stuck checkouts, then holds whose expiry message never arrived; how
/// many orders they closed.
pub async fn sweep(env: &Env, now: i64, trace: &Trace) -> Result<usize, ApiError> {
    let store = D1Checkout::new(env)?;
    let hub = HubStubs::new(env, trace);
    let log = TraceLog(trace);
    let saga = Saga {
        store: &store,
        hub: &hub,
        log: &log,
    };
    let stuck = saga.sweep_stuck_checkouts(now).await?;
    Ok(stuck + saga.sweep_expired_holds(now).await?)
}
