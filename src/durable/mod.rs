//! Durable Objects: one `EventHub` per event owns its inventory and waitroom; one `EventDoor`
//! per event owns its tickets' door state (check-ins and voids).
//!
//! `protocol`, `outbox`, `hub_store` and `commands` (the object's core, generic over its
//! stores) are plain Rust, so `cargo test` runs every operation of the object on the host
//! against memory stores; the rest binds the Workers runtime and is compiled for wasm32 only.

pub mod commands;
pub mod hub_store;
pub mod outbox;
pub mod protocol;
pub mod shard_protocol;

#[cfg(target_arch = "wasm32")]
mod admission_rounds;
#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
pub mod door;
#[cfg(target_arch = "wasm32")]
pub mod event_hub;
#[cfg(target_arch = "wasm32")]
mod hub_log;
#[cfg(target_arch = "wasm32")]
pub mod queue_shard;
#[cfg(target_arch = "wasm32")]
mod sockets;
#[cfg(target_arch = "wasm32")]
mod sql_hub;
#[cfg(target_arch = "wasm32")]
mod sql_ledger;
#[cfg(target_arch = "wasm32")]
mod sql_outbox;
#[cfg(target_arch = "wasm32")]
mod sql_shard;
#[cfg(target_arch = "wasm32")]
mod sql_waitroom;
#[cfg(target_arch = "wasm32")]
mod sqlite;
#[cfg(target_arch = "wasm32")]
mod txn;
