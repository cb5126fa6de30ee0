//! Durable Objects: one `EventHub` per event owns its inventory and waitroom.
//!
//! `protocol` and `outbox` are plain Rust (the wire types, error mapping, message envelopes,
//! retry and alarm arithmetic) so `cargo test` checks them on the host; the rest binds the
//! Workers runtime and is compiled for wasm32 only.

pub mod outbox;
pub mod protocol;

#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
mod commands;
#[cfg(target_arch = "wasm32")]
pub mod door;
#[cfg(target_arch = "wasm32")]
pub mod event_hub;
#[cfg(target_arch = "wasm32")]
mod sockets;
#[cfg(target_arch = "wasm32")]
mod sql_ledger;
#[cfg(target_arch = "wasm32")]
mod sql_outbox;
#[cfg(target_arch = "wasm32")]
mod sql_waitroom;
#[cfg(target_arch = "wasm32")]
mod sqlite;
#[cfg(target_arch = "wasm32")]
mod txn;
