//! Pure domain rules: no `worker` imports, time passed in, tested on the host with `cargo test`.

pub mod access;
pub mod admission;
pub mod bot_check;
pub mod catalogue;
pub mod checkout;
pub mod event_workflow;
pub mod fenwick;
pub mod ids;
pub mod ledger;
pub mod mail;
pub mod password;
pub mod refunds;
pub mod saga;
pub mod sessions;
pub mod socket_rules;
pub mod throttle;
pub mod tickets;
pub mod time;
pub mod tokens;
pub mod ttl_cache;
pub mod validation;
pub mod waitroom;
