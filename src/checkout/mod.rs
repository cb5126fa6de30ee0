//! The checkout as a service: placing an order under its Idempotency-Key, the order saga that
//! payments, expiries and cancels drive, and the compensations and sweeps that undo what a
//! failure or a crash left half done. The orders handler and the queue consumer both call it.
//!
//! It decides with the pure rules of `domain::checkout` and `domain::saga` and reaches the
//! world only through the traits of [`ports`]: D1, the event's object, the payment providers
//! and the log. So it compiles and runs on the host, where `tests/checkout_saga.rs` drives the
//! whole purchase, compensation included, against in-memory fakes that fail on demand; the
//! Worker's implementations of the traits are in `crate::checkout_edge` (wasm32 only).
//!
//! Invariants it keeps, whatever fails in between:
//! - tickets held for an order that was never written are given back (and its waitroom
//!   checkout with them) before the request answers;
//! - a written order that never got a payment link ends FAILED with its hold released, by the
//!   request itself or, if the request died, by its key's takeover or by the sweep;
//! - every step is recorded in `saga_steps` (forward DONE, compensations COMPENSATED under
//!   their own names) and every effect is idempotent, so a retry or a duplicate message
//!   repeats nothing.

pub mod idempotency;
pub mod place;
pub mod ports;
pub mod saga;
pub mod wire;

pub use idempotency::IdempotencyKey;
pub use place::{Checkout, FreshIds, OrderAnswer, OrderRequest};
pub use saga::{Applied, Saga};
