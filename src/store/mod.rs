//! D1 access, one module per aggregate. SQL lives here and nowhere else.

pub mod checkout;
pub mod d1;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod users;
