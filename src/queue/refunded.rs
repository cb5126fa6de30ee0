//! What a refund takes back besides the money: on `ORDER_REFUNDED` (domain-events queue) the
//! order's tickets are voided at the event's door and, while the event has not started, its
//! units go back on sale in the event's object.
//!
//! Both effects are idempotent (the door leaves a VOID ticket as it is; the ledger answers a
//! second return with `AlreadyReturned`), so a redelivered message repeats nothing, and any
//! failure is handed back for the queue to retry the whole message. The door comes first: a
//! refunded ticket must stop working even if the stock cannot be returned yet.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use worker::{Date, Env};

use crate::domain::ledger::ReturnOutcome;
use crate::domain::refunds::tickets_go_back_on_sale;
use crate::domain::tickets::{plan_tickets, IssueLine};
use crate::durable::client::EventHubClient;
use crate::durable::door::{EventDoorClient, TicketRef};
use crate::error::ApiError;
use crate::log::{self, Trace};
use crate::store::{d1, events, orders, tickets};

const ORDER_REFUNDED: &str = "ORDER_REFUNDED";

/// Whether a domain event is a refunded order, whose tickets and stock this module takes back.
pub fn handles(body: &Value) -> bool {
    body.get("type").and_then(Value::as_str) == Some(ORDER_REFUNDED)
}

/// Voids the refunded order's tickets, then returns its units to sale if the event is still
/// ahead. Logs one line with what was done.
pub async fn take_back(env: &Env, body: &Value, trace: &Trace) -> Result<(), ApiError> {
    let Some(order_id) = body.get("orderId").and_then(Value::as_str) else {
        return Err(ApiError::internal("ORDER_REFUNDED without orderId"));
    };
    let db = d1::db(env)?;
    let Some(order) = orders::find_by_id(&db, order_id).await? else {
        // Retrying cannot make the order appear: say so and let the message go.
        log::error(
            "refunded order not found",
            Some(trace),
            json!({"code": "ORDER_NOT_FOUND", "orderId": order_id}),
        );
        return Ok(());
    };
    if order.refund_status.as_deref() != Some("REFUNDED") {
        // The announcement is written in the same batch as the flag, so this is not a refund
        // in progress: never void the tickets of an order that still owns them.
        log::error(
            "ORDER_REFUNDED for an order that is not refunded",
            Some(trace),
            json!({"code": "REFUND_NOT_RECORDED", "orderId": order_id,
                   "refundStatus": order.refund_status}),
        );
        return Ok(());
    }
    let now = Date::now().as_millis() as i64;

    let tickets = tickets_of(&db, &order.id).await?;
    let ticket_count = tickets.len();
    let voided = if tickets.is_empty() {
        0
    } else {
        EventDoorClient::new(env, &order.event_id)?
            .void(tickets, now)
            .await?
    };

    let starts_at = events::starts_at(&db, &order.event_id).await?;
    let stock = match starts_at {
        Some(start) if tickets_go_back_on_sale(start, now) => {
            let hub = EventHubClient::new(env, &order.event_id)?.traced(trace);
            match hub.return_sold(&order.id).await? {
                ReturnOutcome::Returned(_) => "RETURNED",
                ReturnOutcome::AlreadyReturned(_) => "ALREADY_RETURNED",
                ReturnOutcome::NotSold(_) => "NOT_SOLD",
                ReturnOutcome::UnknownOrder => "UNKNOWN_ORDER",
            }
        }
        Some(_) => "EVENT_STARTED",
        None => "EVENT_NOT_FOUND",
    };
    log::info(
        "refunded order taken back",
        Some(trace),
        json!({
            "orderId": order.id,
            "eventId": order.event_id,
            "tickets": ticket_count,
            "ticketsVoided": voided,
            "stock": stock,
        }),
    );
    Ok(())
}

/// Every ticket the order has or would be issued: the issued rows and the ids planned from
/// its lines (the same set once issued). Voiding the planned ids too means a ticket issued
/// after this step (a redelivered payment message racing the refund) is already void at the
/// door.
async fn tickets_of(db: &worker::D1Database, order_id: &str) -> Result<Vec<TicketRef>, ApiError> {
    let ids = [order_id.to_owned()];
    let lines: Vec<IssueLine> = orders::items_of(db, &ids)
        .await?
        .into_iter()
        .map(|item| IssueLine {
            quantity: u32::try_from(item.quantity).unwrap_or(0),
            ticket_class_id: item.ticket_class_id,
        })
        .collect();
    let mut by_id: BTreeMap<String, String> = plan_tickets(order_id, &lines)
        .into_iter()
        .map(|ticket| (ticket.id, ticket.ticket_class_id))
        .collect();
    for row in tickets::of_orders(db, &ids).await? {
        by_id.entry(row.id).or_insert(row.ticket_class_id);
    }
    Ok(by_id
        .into_iter()
        .map(|(ticket_id, ticket_class_id)| TicketRef {
            ticket_id,
            ticket_class_id,
        })
        .collect())
}
