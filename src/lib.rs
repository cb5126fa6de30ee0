//! TicketBottle Edge: the Worker's entry points. HTTP routing lives in `http`, the rules in `domain`.
//!
//! Everything that touches the Workers runtime is compiled for wasm32 only; `domain`,
//! `payments` and the `checkout` service are plain Rust and are what `cargo test` exercises on
//! the host.

pub mod checkout;
pub mod config;
pub mod domain;
pub mod durable;
pub mod error;
pub mod payments;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod checkout_edge;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod log;
#[cfg(target_arch = "wasm32")]
mod outbound;
#[cfg(target_arch = "wasm32")]
mod queue;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
mod webcrypto;

#[cfg(target_arch = "wasm32")]
pub use durable::door::EventDoor;
#[cfg(target_arch = "wasm32")]
pub use durable::event_hub::EventHub;
#[cfg(target_arch = "wasm32")]
pub use durable::queue_shard::QueueShard;

#[cfg(target_arch = "wasm32")]
mod entry {
    use worker::{
        event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext,
        ScheduledEvent,
    };

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
        Ok(crate::http::serve::<crate::api::Endpoint>(req, env, ctx).await)
    }

    #[event(queue)]
    async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
        crate::queue::consume(batch, env).await
    }

    #[event(scheduled)]
    async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        crate::queue::on_schedule(event.cron(), event.schedule(), env).await;
    }
}
