//! Admission across queue shards: the pure rules that let an event's queue live in many
//! objects while admission stays exactly in arrival order. No `worker` imports, time passed in.
//!
//! # Who holds what
//! * A **queue shard** ([`shard::ShardQueue`]) holds the fans whose user id hashes to it
//!   ([`place::shard_of`]: one user, one shard, so nobody holds two places): joins, leaves,
//!   sightings, idle skips, positions, sockets. Joins and polls never reach the hub.
//! * The **hub** ([`hub::AdmissionHub`], in the event's `EventHub`) holds what must stay
//!   strictly consistent: checkout slots and the admission tick.
//!
//! # The order
//! Every stay has a [`place::Place`]; the derived order of places is the admission order. A
//! join is stamped at the edge (ms + random tie-break); the shard records it within
//! [`place::STAMP_GRACE_MS`] of its own clock and never below the frontier it promised the hub.
//! Joins recorded before the sale starts are pre-queued with a keyed random draw
//! ([`place::prequeue_draw`]) instead, and every pre-queue place sorts before every queue
//! place: sorting by independent uniform draws is one uniform shuffle of the whole pre-queue.
//!
//! # The tick (a crash at any point is completed or undone by the next)
//! 1. The hub starts a round with a fresh tick id and asks every shard for its head
//!    ([`protocol::ToShard::Heads`]). A shard answers with its first fans, its summary and a
//!    frontier: it will never record a place with an earlier arrival ms again. Nothing else is
//!    written anywhere, so a crash here (or a lost message) undoes the round.
//! 2. With every report in, the hub merges them and picks the earliest places that are safe
//!    (below every frontier, not beyond a report cut short), up to the free slots and
//!    `admissionBatch`, reserves their slots and stores the picks as the intent of that tick
//!    id, in one write. From here the tick only goes forward: the picks are sent
//!    ([`protocol::ToShard::Admit`]) again and again until each shard answers.
//! 3. A shard applies the picks by the fans' own records, so a redelivery answers the same:
//!    still queued in that place → handed over (confirmed); otherwise → withdrawn. The hub
//!    settles each answer once: checkouts for the confirmed, slots back for the withdrawn.
//!
//! A shard that leaves head requests unanswered for [`hub::STRAGGLER_TIMEOUT_MS`] is left out
//! of rounds until it answers again: only its own fans wait. Exact order is promised while
//! every shard answers within that timeout.

pub mod hub;
pub mod pass;
pub mod place;
pub mod protocol;
pub mod shard;
pub mod snapshot;

#[cfg(test)]
mod tests;
