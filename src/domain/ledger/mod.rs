//! The inventory ledger of one event: ticket-class counters and holds, and the rule that we never oversell.
//!
//! Pure and deterministic: no `worker` types, no clock (every operation takes `now` in unix
//! milliseconds), no randomness. State lives behind [`LedgerStore`], which the event's Durable
//! Object implements on its SQLite storage ([`LEDGER_SCHEMA`]) and tests implement with
//! [`MemoryLedgerStore`]. Each operation reads only the rows it needs (reserve, confirm,
//! release and return each in one store call, [`LedgerStore::reserve_reads`] or
//! [`LedgerStore::hold_with_classes`], which the SQL store answers with one query), computes
//! every change first, and hands them to the store in one [`LedgerStore::commit`], so a
//! rejected or failed operation leaves nothing half-written.
//!
//! Invariants, for every ticket class after every operation:
//! - `reserved + sold <= total`;
//! - `reserved` is the sum of the class's quantities over ACTIVE holds;
//! - `sold` is the sum of the class's quantities over CONFIRMED holds whose tickets were not
//!   returned (`returnedAt` unset).
//!
//! Counters are stored on the class row and moved together with the hold that explains them,
//! rather than recomputed by scanning holds, because an on-sale can hold tens of thousands of holds.
//!
//! Decisions worth knowing:
//! - Every operation is idempotent by order id. A repeat `reserve` returns the stored hold
//!   whatever its state now (an expired hold is not renewed); the same order id with another user
//!   or other items is `ORDER_ID_CONFLICT`. A rejected `reserve` stores nothing, so a retry is
//!   judged afresh.
//! - Duplicate ticket-class ids within one order are rejected (`VALIDATION_FAILED`), not merged:
//!   the order's lines and the hold's lines must agree one to one, and a client that sends the
//!   same class twice has a bug worth surfacing.
//! - A class's sale window is `[saleStartAt, saleEndAt)`; outside it the answer is
//!   `SALE_NOT_OPEN`, like an event that is not on sale. A PAUSED class is `CLASS_NOT_ON_SALE`.
//! - `maxTicketsPerUser` counts tickets (not orders) across classes, over the user's ACTIVE and
//!   CONFIRMED holds; it is checked when tickets are reserved, not again when they are paid.
//!   Tickets returned by a refund no longer count: the buyer may buy them again.
//! - A refunded order's tickets go back on sale through `return_sold`, exactly once per order.
//!   The hold stays CONFIRMED with `returnedAt` set (a fact added to the sale, not a new state,
//!   so live objects keep their `holds.state` CHECK): a payment message redelivered afterwards
//!   gets `Confirmed` and sells nothing again.
//! - A payment is never lost: `confirm` of an ACTIVE hold sells it even if its `expiresAt` has
//!   passed but the expiry alarm has not run yet (the stock is still set aside for it). A payment
//!   for an EXPIRED or RELEASED hold re-reserves-and-sells when every line still has stock, even if
//!   the class is now paused or its window closed (the buyer was admitted in time); otherwise the
//!   answer is `PaidButNoStock` and stays so, even if stock frees up later, because the saga will
//!   already have refunded. On a cancelled event every payment is refused
//!   (`PaidButEventCancelled`) and an ACTIVE hold is released.
//! - CANCELLED is final for the event's sale state.

mod model;
mod rules;
mod store;

#[cfg(any(test, feature = "memory-stores"))]
mod memory;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "memory-stores"))]
pub use memory::MemoryLedgerStore;
pub use model::*;
pub use rules::*;
pub use store::*;
