//! The catalogue's one door to the event's Durable Object, which owns the live ticket counters
//! (reserved, sold, available) and enforces the sale settings. Handlers call only these four
//! functions, so swapping the transport touches this file alone.
//!
//! Ordering, decided by the callers: a ticket class is registered with (or updated in) the
//! object before D1 records its definition, so the object can refuse (`TOTAL_BELOW_COMMITTED`)
//! before anything is written; the event's setup is synced after D1 commits, except for a
//! cancellation, which stops sales in the object first so that a failed D1 write can simply be
//! retried.

use std::collections::HashMap;

use crate::domain::admission::place::ShardCount;
use crate::domain::event_workflow::TicketClassTerms;
use crate::domain::ids::EventId;
use crate::domain::ledger::{ClassAvailability, ClassStatus, TicketClassSpec};
use crate::durable::client::{EventHubClient, EventSetup};
use crate::error::ApiError;
use crate::http::RequestContext;
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

impl From<&ClassAvailability> for Counters {
    fn from(a: &ClassAvailability) -> Self {
        Counters {
            total: a.total,
            reserved: a.reserved,
            sold: a.sold,
            available: a.available,
        }
    }
}

fn hub(rc: &RequestContext, event_id: &EventId) -> Result<EventHubClient, ApiError> {
    EventHubClient::new(&rc.env, event_id.as_str())
        .map(|hub| hub.traced(&rc.trace))
        .map_err(ApiError::from)
}

fn spec(class_id: &str, class: &TicketClassTerms) -> TicketClassSpec {
    TicketClassSpec {
        id: class_id.to_string(),
        total: i64::from(class.total),
        status: if class.paused {
            ClassStatus::Paused
        } else {
            ClassStatus::Active
        },
        sale_start_at: class.sale_start_ms,
        sale_end_at: class.sale_end_ms,
    }
}

/// Makes a new ticket class sellable by the event's object; answers its counters.
pub async fn register_class(
    rc: &RequestContext,
    event_id: &EventId,
    class_id: &str,
    class: &TicketClassTerms,
) -> Result<Counters, ApiError> {
    let availability = hub(rc, event_id)?
        .upsert_class(&spec(class_id, class))
        .await?;
    Ok(Counters::from(&availability))
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
    let hub = hub(rc, event_id)?;
    let availability =
        if old.sale_start_ms != new.sale_start_ms || old.sale_end_ms != new.sale_end_ms {
            hub.upsert_class(&spec(class_id, new)).await?
        } else {
            let status = (old.paused != new.paused).then_some(if new.paused {
                ClassStatus::Paused
            } else {
                ClassStatus::Active
            });
            let total = (old.total != new.total).then_some(i64::from(new.total));
            hub.update_class(class_id, total, status).await?
        };
    Ok(Counters::from(&availability))
}

/// The live counters of the event's classes, by class id. A class the object does not know
/// (never registered) shows its definition untouched.
pub async fn live_counters(
    rc: &RequestContext,
    event_id: &EventId,
    classes: &[ClassRecord],
) -> Result<HashMap<String, Counters>, ApiError> {
    if classes.is_empty() {
        return Ok(HashMap::new());
    }
    let live: HashMap<String, Counters> = hub(rc, event_id)?
        .availability()
        .await?
        .iter()
        .map(|a| (a.id.clone(), Counters::from(a)))
        .collect();
    Ok(classes
        .iter()
        .map(|class| {
            let counters = live.get(&class.id).copied().unwrap_or(Counters {
                total: class.terms.total,
                reserved: 0,
                sold: 0,
                available: class.terms.total,
            });
            (class.id.clone(), counters)
        })
        .collect())
}

/// Sends the event's status and sale terms to its object, which opens, closes or stops the
/// sale and its waitroom accordingly.
pub async fn sync_event(rc: &RequestContext, event: &EventRecord) -> Result<(), ApiError> {
    let config = event.terms.config.as_ref();
    let setup = EventSetup {
        event_id: event.id.as_str().to_string(),
        status: event.status,
        sale_starts_at_ms: config.map(|c| c.ticket_sale_start_ms),
        sale_ends_at_ms: config.map(|c| c.ticket_sale_end_ms),
        max_tickets_per_user: config.and_then(|c| c.max_tickets_per_user),
        allow_wait_room: config.is_some_and(|c| c.allow_wait_room),
        waitroom: config.map(|c| c.waitroom.clone()).unwrap_or_default(),
        shards: config.map_or(ShardCount::ONE, |c| c.waitroom_shards).get(),
    };
    hub(rc, event_id_of(event))?.sync_event(&setup).await?;
    Ok(())
}

fn event_id_of(event: &EventRecord) -> &EventId {
    &event.id
}
