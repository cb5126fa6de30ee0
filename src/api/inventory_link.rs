//! The catalogue's one door to the event's Durable Object, which owns the live ticket counters
//! (reserved, sold, available) and enforces the sale settings. Handlers call only these four
//! functions, so swapping the transport touches this file alone.
//!
//! Ordering, decided by the callers: a ticket class is registered with (or updated in) the
//! object before D1 records its definition, so the object can refuse (`TOTAL_BELOW_COMMITTED`)
//! before anything is written; the event's setup is synced after D1 commits, except for a
//! cancellation, which stops sales in the object first so that a failed D1 write can simply be
//! retried.

// Replaced by EventHubClient calls when the event-hub branch lands.
//
// Until then nothing is ever reserved or sold: counters are the D1 definition's total, and
// syncing the event is a no-op. The intended bodies:
// - `register_class`: `EventHubClient::new(&rc.env, event_id)?.upsert_class(&TicketClassSpec {
//   id, total, status, sale_start_at, sale_end_at })` → `Counters::from(&availability)`.
// - `update_class_counters`: `update_class(id, total, status)` when only those changed (409
//   `TOTAL_BELOW_COMMITTED` comes from the object through `From<HubCallError> for ApiError`);
//   `upsert_class` with the full spec when the sale window changed too.
// - `live_counters`: `availability()`, keyed by class id.
// - `sync_event`: `sync_event(&EventSetup { event_id, status, sale_starts_at_ms,
//   sale_ends_at_ms, max_tickets_per_user, allow_wait_room, waitroom { .. } })` from the
//   event's status and `config` (no config yet: nothing to sell, skip or send a closed setup).

use std::collections::HashMap;

use crate::domain::event_workflow::TicketClassTerms;
use crate::domain::ids::EventId;
use crate::http::{ApiError, RequestContext};
use crate::store::events::EventRecord;
use crate::store::ticket_classes::ClassRecord;

/// A ticket class's live counters as the API shows them: `available = total - reserved - sold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub total: u32,
    pub reserved: u32,
    pub sold: u32,
    pub available: u32,
}

impl Counters {
    /// A class nobody has bought from yet.
    fn untouched(total: u32) -> Self {
        Counters {
            total,
            reserved: 0,
            sold: 0,
            available: total,
        }
    }
}

/// Makes a new ticket class sellable by the event's object; answers its counters.
pub async fn register_class(
    rc: &RequestContext,
    event_id: &EventId,
    class_id: &str,
    class: &TicketClassTerms,
) -> Result<Counters, ApiError> {
    let _ = (rc, event_id, class_id);
    Ok(Counters::untouched(class.total))
}

/// Tells the object a class's new total, status or sale window (`old` is what it had); the
/// object refuses a total below what is reserved and sold.
pub async fn update_class_counters(
    rc: &RequestContext,
    event_id: &EventId,
    class_id: &str,
    old: &TicketClassTerms,
    new: &TicketClassTerms,
) -> Result<Counters, ApiError> {
    let _ = (rc, event_id, class_id, old);
    Ok(Counters::untouched(new.total))
}

/// The live counters of the event's classes, by class id.
pub async fn live_counters(
    rc: &RequestContext,
    event_id: &EventId,
    classes: &[ClassRecord],
) -> Result<HashMap<String, Counters>, ApiError> {
    let _ = (rc, event_id);
    Ok(classes
        .iter()
        .map(|class| (class.id.clone(), Counters::untouched(class.terms.total)))
        .collect())
}

/// Sends the event's status and sale terms to its object, which opens, closes or stops the
/// sale and its waitroom accordingly.
pub async fn sync_event(rc: &RequestContext, event: &EventRecord) -> Result<(), ApiError> {
    let _ = (rc, event);
    Ok(())
}
