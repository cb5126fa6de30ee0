//! `GET /api/ops/events/{id}/status`: one event's sale as an operator watches it during an
//! on-sale, for platform admins. Live counters come from the event's object (queue, admitted,
//! checkout slots, holds, sold per class, its unsent outbox); orders, the D1 outbox backlog
//! and the dead letters come from D1.
//!
//! Dead letters: Cloudflare Queues have no depth or browse API a Worker can reach, so the
//! dead-letter queues have a consumer that records each message in `dead_letters` (see
//! `queue::dead_letters`); "open" dead letters are the rows nobody has resolved yet.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::access::Action;
use crate::domain::ids::EventId;
use crate::domain::validation::format_rfc3339;
use crate::durable::client::{EventHubClient, HubCallError};
use crate::durable::protocol::HubStatus;
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::{d1, dead_letters, events, orders, outbox, ticket_classes};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsWaitroom {
    /// Fans waiting with a place in the queue.
    pub queue_length: u64,
    /// Fans who joined before the sale opened, placed by a shuffle when it opens.
    pub prequeued: u64,
    /// Fans admitted to checkout right now (each holds one checkout slot).
    pub admitted: u64,
    pub checkout_slots_in_use: u64,
    pub max_checkout_slots: u32,
    pub sale_opened: bool,
    /// Why the queue closed for good (`SOLD_OUT`, `SALE_ENDED`, `EVENT_CANCELLED`), if it did.
    pub closed: Option<String>,
    /// The measured admission rate, once there is one.
    pub admissions_per_second: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsTicketClass {
    pub id: String,
    /// From D1; absent if the class exists only in the object.
    pub name: Option<String>,
    pub total: u32,
    /// Held by checkouts that have not paid yet.
    pub reserved: u32,
    pub sold: u32,
    pub available: u32,
    /// `ACTIVE` or `PAUSED`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsEventHub {
    /// `OPEN`, `CLOSED` or `CANCELLED`, as the object enforces it.
    pub sale_state: String,
    /// Absent for events that sell without a waitroom.
    pub waitroom: Option<OpsWaitroom>,
    /// Holds not yet confirmed, released or expired.
    pub active_holds: u64,
    pub classes: Vec<OpsTicketClass>,
    /// Messages the object wrote and its queues have not accepted yet.
    pub outbox_backlog: u64,
    /// Hibernating waitroom WebSockets attached to the object.
    pub connected_sockets: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsOrders {
    pub pending: i64,
    /// PENDING orders whose hold has expired: the saga should have closed them (a stuck
    /// `HOLD_EXPIRED` message, or a dead letter).
    pub pending_past_hold: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub failed: i64,
    /// Paid but not deliverable (stock gone, event cancelled): owed a refund.
    pub refund_required: i64,
    /// The earliest expired hold among `pendingPastHold`.
    pub oldest_expired_hold_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsOutbox {
    /// D1 outbox rows not yet published to their queue (all events).
    pub unpublished: i64,
    /// Of those, rows whose publishing failed at least once.
    pub failing: i64,
    pub oldest_unpublished_at: Option<String>,
    /// D1 outbox rows of this event not yet published.
    pub unpublished_for_event: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsDeadLetters {
    /// Dead-lettered messages nobody has resolved yet (all events): the DLQs' depth.
    pub open: i64,
    pub open_for_event: i64,
    /// Open dead letters from the payment-events queue (saga inputs).
    pub payment_events: i64,
    /// Open dead letters from the domain-events queue (event log).
    pub domain_events: i64,
    pub newest_at: Option<String>,
}

/// One event's sale for operators.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaleStatus {
    pub event_id: String,
    pub name: String,
    /// The event's workflow status in D1 (`PUBLISHED`, ...).
    pub event_status: String,
    pub generated_at: String,
    /// The object's live view; null when it could not be read (see `eventHubError`).
    pub event_hub: Option<OpsEventHub>,
    /// The error code when the object could not be read.
    pub event_hub_error: Option<String>,
    pub orders: OpsOrders,
    pub outbox: OpsOutbox,
    pub dead_letters: OpsDeadLetters,
}

fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn event_hub_view(status: HubStatus, names: &[(String, String)]) -> OpsEventHub {
    OpsEventHub {
        sale_state: name_of(&status.sale_state),
        waitroom: status.waitroom.map(|w| OpsWaitroom {
            queue_length: w.queue_length,
            prequeued: w.prequeued,
            admitted: w.admitted,
            checkout_slots_in_use: w.slots_in_use,
            max_checkout_slots: w.max_slots,
            sale_opened: w.sale_opened,
            closed: w.closed.as_ref().map(name_of),
            admissions_per_second: w.admissions_per_second,
        }),
        active_holds: status.active_holds,
        classes: status
            .classes
            .iter()
            .map(|c| OpsTicketClass {
                id: c.id.clone(),
                name: names
                    .iter()
                    .find(|(id, _)| *id == c.id)
                    .map(|(_, n)| n.clone()),
                total: c.total,
                reserved: c.reserved,
                sold: c.sold,
                available: c.available,
                status: name_of(&c.status),
            })
            .collect(),
        outbox_backlog: status.outbox_backlog,
        connected_sockets: status.connected_sockets,
    }
}

#[utoipa::path(get, path = "/api/ops/events/{id}/status", tag = "operations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event's sale: queue, admissions, checkout slots, holds, sold per class, orders, outbox and dead-letter backlog", body = SaleStatus),
        (status = 401, body = crate::error::Problem),
        (status = 403, description = "Not a platform admin", body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn event_status(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::ReadOperatorStatus)?;
    let id = EventId::parse(rc.param("id")?).map_err(|_| ApiError::NotFound)?;
    let db = d1::db(&rc.env)?;
    let (event, _) = events::find_with_role(&db, id.as_str(), None)
        .await?
        .ok_or(ApiError::NotFound)?;
    rc.annotate("eventId", id.as_str());

    let names: Vec<(String, String)> = ticket_classes::list(&db, id.as_str())
        .await?
        .into_iter()
        .map(|c| (c.id, c.terms.name))
        .collect();
    let hub = EventHubClient::new(&rc.env, id.as_str())?.traced(&rc.trace);
    let (event_hub, event_hub_error) = match hub.status().await {
        Ok(status) => (Some(event_hub_view(status, &names)), None),
        Err(HubCallError::Rule { code, .. }) => (None, Some(code)),
        Err(HubCallError::Transport(detail)) => {
            crate::log::error(
                "event hub status unavailable",
                Some(&rc.trace),
                serde_json::json!({"code": "INTERNAL_ERROR", "eventId": id.as_str(), "detail": detail}),
            );
            (None, Some("INTERNAL_ERROR".to_string()))
        }
    };

    let now = rc.now_ms;
    let orders = orders::counts_for_event(&db, id.as_str(), now).await?;
    let outbox = outbox::backlog(&db, id.as_str()).await?;
    let dead = dead_letters::open_counts(&db, id.as_str()).await?;

    json_response(
        200,
        &SaleStatus {
            event_id: id.as_str().to_string(),
            name: event.terms.name.clone(),
            event_status: event.status.as_str().to_string(),
            generated_at: format_rfc3339(now),
            event_hub,
            event_hub_error,
            orders: OpsOrders {
                pending: orders.pending,
                pending_past_hold: orders.pending_past_hold,
                completed: orders.completed,
                cancelled: orders.cancelled,
                failed: orders.failed,
                refund_required: orders.refund_required,
                oldest_expired_hold_at: orders.oldest_expired_hold_at.map(format_rfc3339),
            },
            outbox: OpsOutbox {
                unpublished: outbox.unpublished,
                failing: outbox.failing,
                oldest_unpublished_at: outbox.oldest.map(format_rfc3339),
                unpublished_for_event: outbox.for_event,
            },
            dead_letters: OpsDeadLetters {
                open: dead.open,
                open_for_event: dead.for_event,
                payment_events: dead.payment_events,
                domain_events: dead.domain_events,
                newest_at: dead.newest.map(format_rfc3339),
            },
        },
    )
}
