//! Tickets: what a buyer holds once an order is COMPLETED, and what the door checks.
//!
//! - [`issue`]: which tickets an order gets. One per unit, with ids and short codes derived
//!   from the order, the class and the unit's number within the class, so issuing the same order
//!   twice (a redelivered or reordered completion message, the cron's repair pass) names the very
//!   same tickets and an insert-if-absent store holds each exactly once.
//! - [`qr`]: the signed payload a door app scans (`TB1.<kid>.<event>.<ticket>.<class>.<sig>`,
//!   Ed25519), verifiable offline with the public key the API serves.
//! - [`door`]: the check-in state machine (VALID → CHECKED_IN, VALID/CHECKED_IN → VOID) that
//!   the event's door object applies, so the same ticket at two gates lets exactly one in.
//! - [`currency`]: which currencies the enabled payment methods take, decided once, so a class
//!   nobody could pay for is refused when it is created rather than at checkout.

pub mod currency;
pub mod door;
pub mod issue;
pub mod qr;
pub mod receipt;
pub mod svg;
pub mod view;

pub use door::{DoorRefusal, Gate, TicketState};
pub use issue::{plan_tickets, IssueLine, PlannedTicket, TicketCode};
pub use qr::{QrError, TicketClaim, TicketSigner, TicketVerifier};
pub use view::Ticket;
