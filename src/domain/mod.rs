//! Pure domain rules: no `worker` imports, time passed in, tested on the host with `cargo test`.

pub mod fenwick;
pub mod ledger;
pub mod tokens;
pub mod waitroom;
