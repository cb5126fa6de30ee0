//! The virtual waitroom of one event: a pure state machine over a synchronous storage trait.
//!
//! The per-event Durable Object is the shell: it decodes a request, calls
//! [`Waitroom::apply`] with a [`WaitroomCommand`] and the current unix time in ms, and then
//! performs the returned [`WaitroomEffect`]s (publish domain events, push to sockets, set the
//! alarm). Nothing here reads a clock, talks to the network or imports `worker`.
//!
//! # Why the state lives behind [`WaitroomStore`]
//! A queue can hold a million sessions, so nothing is kept in memory between calls and no call
//! loads the queue (the one exception: the pre-queue shuffle at sale start reads the pre-queue's
//! join numbers once). Every store method is one indexed SQL statement; [`WAITROOM_SCHEMA`] is the
//! DDL and each method's doc names its SQL, so the shell's `SqlWaitroomStore` is a transcription.
//!
//! # Order and position
//! * Every session gets a `join_no` from a counter (pre-queue order, "latest session of a user").
//! * A session enters the queue with a `seq` from a strictly increasing counter: at join time
//!   after the sale opened, or at sale start for the shuffled pre-queue. Admission order is seq
//!   order, never a clock.
//! * Seqs are dense (1, 2, 3, ... with no gaps), so "sessions ahead of seq s" is `s − 1` minus those
//!   that already left the queue (admitted, left, expired). Departures are counted in a sparse
//!   Fenwick tree over seq ([`super::fenwick`]): position = `s − departed(1..s−1)`, at most
//!   [`fenwick::MAX_PATH_LEN`] rows read, one statement. A departure is one statement too.
//!
//! # Checkout slots
//! `slots_in_use` always equals the number of ADMITTED sessions: it moves only together with a
//! session's status, in the same command. A slot is taken at admission and freed when the
//! session leaves ADMITTED: order completed (COMPLETED), order failed/cancelled/expired
//! (EXPIRED), checkout token expired with no order bound (EXPIRED), or the user gives the place up
//! before ordering (LEFT). A session bound to an order keeps its slot past `checkout_expires_at`
//! until the order resolves: the inventory is held for that order. An order that never reached
//! a payment page (the provider could not create the payment) is unbound instead
//! ([`WaitroomCommand::UnbindOrder`]): the session stays ADMITTED with its original deadline.
//!
//! # Atomicity
//! Each phase of a command first reads everything it needs (the plan), then writes; an admission
//! tick either admits its whole plan or, if a read fails, writes nothing. Rules that refuse a
//! command ([`WaitroomRejection`]) are checked before the command writes, and come back inside an
//! `Ok` outcome together with the effects of the upkeep that ran first. An `Err`
//! ([`WaitroomError`]: storage failure, corrupt counters) can come after some statements ran, so
//! the shell runs each `apply` inside one storage transaction (`ctx.storage.transactionSync`,
//! which workers-rs 0.8 does not wrap: call it through `js_sys`) and lets `Err` roll it back.
//!
//! # Decisions worth knowing
//! * Session ids come from the shell (fresh uuid per join); join is idempotent per user, not per id.
//! * A user whose latest session ended (LEFT, EXPIRED, COMPLETED) and joins again gets a new
//!   session with a new seq at the back: a place cannot be parked and reclaimed.
//! * Closure (sale end or cancellation) is final once a command observes it. Queued sessions are
//!   then expired in batches of [`CLOSE_DRAIN_BATCH`] per command (the shell is woken right away
//!   until done); views report them EXPIRED at once, so nothing observable waits for the drain.
//! * Order failure ends the session as EXPIRED: the API has no FAILED status, and the slot must go
//!   to the next fan. The user may join again. The exception is a payment the provider could not
//!   create: the buyer never saw a payment page and did nothing wrong, so the order is unbound
//!   and the same checkout token may place another order until its own deadline.
//! * `Touch` writes `last_seen_at` at most every [`TOUCH_WRITE_INTERVAL_MS`], so polling fans do
//!   not turn every request into a write; idle detection is that much coarser.

// Shared with the files below, which see this module's names through `use super::*`.
use super::fenwick::{self, FenwickNodes};

mod config;
mod model;
mod public_status;
mod rules;
mod shuffle;
mod store;

#[cfg(any(test, feature = "memory-stores"))]
mod memory;
#[cfg(test)]
mod tests;

pub use config::*;
#[cfg(any(test, feature = "memory-stores"))]
pub use memory::*;
pub use model::*;
pub use public_status::*;
pub use rules::*;
pub use shuffle::*;
pub use store::*;

/// Admission ticks are at most this far apart while anyone waits and a slot is free.
pub const TICK_INTERVAL_MS: i64 = 1_000;
/// A `Touch` closer than this to the last recorded sighting does not write.
pub const TOUCH_WRITE_INTERVAL_MS: i64 = 10_000;
/// Queued sessions expired per command once the sale has closed.
pub const CLOSE_DRAIN_BATCH: u64 = 256;
/// Unused checkouts expired per command (more are picked up by the next, scheduled at once).
pub const CHECKOUT_EXPIRY_BATCH: u64 = 256;
/// Queue-head rows one tick may look at, bounding the work when many idle fans sit at the head.
pub const HEAD_SCAN_LIMIT: u64 = 2_048;
/// Rows per `assign_seqs` statement when the pre-queue is placed.
pub const SHUFFLE_WRITE_CHUNK: usize = 1_000;
/// Weight of the newest measurement in the smoothed admission rate.
pub const RATE_SMOOTHING: f64 = 0.3;
