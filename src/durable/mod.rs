//! Durable Objects: one `EventHub` per event owns its inventory and waitroom.

pub mod event_hub;
