//! D1 access, one module per aggregate. SQL lives here and nowhere else.

pub mod catalogue;
pub mod d1;
pub mod events;
pub mod ticket_classes;
pub mod users;
