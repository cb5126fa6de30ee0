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
    Saga {
        store: &store,
        hub: &hub,
        log: &log,
    }
    .handle_message(body, Date::now().as_millis() as i64)
    .await
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
