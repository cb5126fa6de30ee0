//! D1 access, one module per aggregate. SQL lives here and nowhere else.

pub mod catalogue;
pub mod checkout;
pub mod d1;
pub mod dead_letters;
pub mod event_log;
pub mod events;
pub mod mail;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod refunds;
pub mod saga;
pub mod ticket_classes;
pub mod tickets;
pub mod users;
