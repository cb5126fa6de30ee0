//! D1 access, one module per aggregate. SQL lives here and nowhere else.

pub mod d1;
pub mod users;
