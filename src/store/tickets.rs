//! Tickets in D1: issuing a COMPLETED order's tickets exactly once (with the TICKETS_ISSUED
//! announcement and the receipt mail in the same batch), reading them, and following the door
//! object's check-ins and voids.

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::{D1Database, Env};

use super::d1::{all, first, int, opt_text, run, stmt, text};
use super::orders::OrderRow;
use super::outbox::{self, OutboxMessage, Queue};
use crate::domain::saga::OrderStatus;
use crate::domain::tickets::receipt::{self, ReceiptTicket};
use crate::domain::tickets::{plan_tickets, IssueLine, TicketSigner};
use crate::error::ApiError;

pub const TICKET_COLUMNS: &str =
    "id, code, order_id, event_id, user_id, ticket_class_id, ticket_class_name, status, \
     checked_in_at, gate, qr";

#[derive(Debug, Clone, Deserialize)]
pub struct TicketRow {
    pub id: String,
    pub code: String,
    pub order_id: String,
    pub event_id: String,
    pub user_id: String,
    pub ticket_class_id: String,
    pub ticket_class_name: String,
    pub status: String,
    pub checked_in_at: Option<i64>,
    pub gate: Option<String>,
    pub qr: String,
}

/// Issues the order's tickets if it is COMPLETED and they are not all issued yet; returns how
/// many were written. Safe to call any number of times, concurrently too: ids are derived from
/// the order, and each insert does nothing when its id exists.
pub async fn issue_if_completed(
    env: &Env,
    db: &D1Database,
    order_id: &str,
    now_ms: i64,
) -> Result<usize, ApiError> {
    let Some(order) = super::orders::find_by_id(db, order_id).await? else {
        return Ok(0);
    };
    if order.status()? != OrderStatus::Completed {
        return Ok(0);
    }
    // A refunded order keeps its COMPLETED status; its tickets are voided, never issued anew.
    if order.refund_status.as_deref() == Some("REFUNDED") {
        return Ok(0);
    }
    let signer = crate::config::Settings::from_env(env)
        .ticket_signer()
        .ok_or_else(|| ApiError::Misconfigured("TICKET_SIGNING_KEY is not usable".into()))?;
    issue_for_order(env, db, &order, &signer, now_ms).await
}

/// Writes the tickets of a COMPLETED order that are missing, with TICKETS_ISSUED and the
/// receipt, then relays the announcement.
pub async fn issue_for_order(
    env: &Env,
    db: &D1Database,
    order: &OrderRow,
    signer: &TicketSigner,
    now_ms: i64,
) -> Result<usize, ApiError> {
    #[derive(Deserialize)]
    struct Line {
        ticket_class_id: String,
        quantity: i64,
        name: String,
        issued: i64,
    }
    let lines: Vec<Line> = all(
        db,
        "SELECT i.ticket_class_id, i.quantity, COALESCE(c.name, '') AS name, \
         (SELECT COUNT(*) FROM tickets t WHERE t.order_id = i.order_id \
            AND t.ticket_class_id = i.ticket_class_id) AS issued \
         FROM order_items i LEFT JOIN ticket_classes c ON c.id = i.ticket_class_id \
         WHERE i.order_id = ?1",
        &[text(&order.id)],
    )
    .await?;
    if lines.iter().all(|l| l.issued >= l.quantity) {
        return Ok(0);
    }
    let issue_lines: Vec<IssueLine> = lines
        .iter()
        .map(|l| IssueLine {
            ticket_class_id: l.ticket_class_id.clone(),
            quantity: u32::try_from(l.quantity).unwrap_or(0),
        })
        .collect();
    let class_name = |class_id: &str| {
        lines
            .iter()
            .find(|l| l.ticket_class_id == class_id)
            .map_or("", |l| l.name.as_str())
    };
    let plan = plan_tickets(&order.id, &issue_lines);
    let mut statements = Vec::with_capacity(plan.len() + 2);
    for ticket in &plan {
        let qr = signer
            .sign(&order.event_id, &ticket.id, &ticket.ticket_class_id)
            .map_err(|e| ApiError::internal(format!("signing ticket {}: {e}", ticket.id)))?;
        // ON CONFLICT (id) only: a code collision with another ticket must fail, not hide.
        statements.push(stmt(
            db,
            "INSERT INTO tickets (id, code, order_id, event_id, user_id, ticket_class_id, \
             ticket_class_name, unit, status, qr, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'VALID', ?9, ?10, ?10) \
             ON CONFLICT (id) DO NOTHING",
            &[
                text(&ticket.id),
                text(ticket.code.as_str()),
                text(&order.id),
                text(&order.event_id),
                text(&order.user_id),
                text(&ticket.ticket_class_id),
                text(class_name(&ticket.ticket_class_id)),
                int(i64::from(ticket.unit)),
                text(&qr),
                int(now_ms),
            ],
        )?);
    }

    let mut payload = Map::new();
    payload.insert("orderId".into(), order.id.clone().into());
    payload.insert("orderCode".into(), order.code.clone().into());
    payload.insert("userId".into(), order.user_id.clone().into());
    payload.insert(
        "ticketIds".into(),
        Value::from(plan.iter().map(|t| t.id.clone()).collect::<Vec<_>>()),
    );
    let announcement_id = format!("tickets-issued-{}", order.id);
    statements.push(
        OutboxMessage::new(
            announcement_id.clone(),
            Queue::DomainEvents,
            "TICKETS_ISSUED",
            ("order", &order.id),
            &order.event_id,
            now_ms,
            payload,
        )
        .insert(db, now_ms)?,
    );

    let receipt_lines: Vec<ReceiptTicket<'_>> = plan
        .iter()
        .map(|t| ReceiptTicket {
            code: t.code.as_str(),
            ticket_class_name: class_name(&t.ticket_class_id),
        })
        .collect();
    let event_name = event_name(db, &order.event_id).await?;
    let mail = receipt::compose(&order.code, &event_name, &receipt_lines);
    statements.push(stmt(
        db,
        "INSERT OR IGNORE INTO mail_outbox (id, to_email, kind, subject, body, link, created_at) \
         SELECT ?1, email, 'ORDER_RECEIPT', ?2, ?3, ?4, ?5 FROM users WHERE id = ?6",
        &[
            text(&format!("receipt-{}", order.id)),
            text(&mail.subject),
            text(&mail.body),
            text(&format!("/orders/{}", order.code)),
            int(now_ms),
            text(&order.user_id),
        ],
    )?);

    let results = db.batch(statements).await.map_err(ApiError::from)?;
    let written = results
        .iter()
        .take(plan.len())
        .filter_map(|r| r.meta().ok().flatten().and_then(|m| m.changes))
        .sum::<usize>();
    outbox::relay(env, db, now_ms, 1, Some(&[announcement_id])).await?;
    Ok(written)
}

async fn event_name(db: &D1Database, event_id: &str) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    Ok(first::<Row>(
        db,
        "SELECT name FROM events WHERE id = ?1",
        &[text(event_id)],
    )
    .await?
    .map_or_else(String::new, |r| r.name))
}

pub async fn find(db: &D1Database, id: &str) -> Result<Option<TicketRow>, ApiError> {
    first(
        db,
        &format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1"),
        &[text(&id.to_ascii_lowercase())],
    )
    .await
}

/// A ticket by its code (as [`crate::domain::tickets::TicketCode`] spells it).
pub async fn find_by_code(db: &D1Database, code: &str) -> Result<Option<TicketRow>, ApiError> {
    first(
        db,
        &format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE code = ?1"),
        &[text(code)],
    )
    .await
}

/// The caller's tickets, newest first (at most 500: a buyer's own, not a listing).
pub async fn list_by_user(db: &D1Database, user_id: &str) -> Result<Vec<TicketRow>, ApiError> {
    all(
        db,
        &format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE user_id = ?1 \
             ORDER BY created_at DESC, order_id, ticket_class_id, unit LIMIT 500"
        ),
        &[text(user_id)],
    )
    .await
}

pub async fn of_orders(db: &D1Database, order_ids: &[String]) -> Result<Vec<TicketRow>, ApiError> {
    let list = serde_json::to_string(order_ids).map_err(ApiError::internal)?;
    all(
        db,
        &format!(
            "SELECT {TICKET_COLUMNS} FROM tickets \
             WHERE order_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY order_id, ticket_class_id, unit"
        ),
        &[text(&list)],
    )
    .await
}

/// Tickets sold per class of an event (issued and not void), every class listed.
#[derive(Debug, Deserialize)]
pub struct ClassSold {
    pub ticket_class_id: String,
    pub name: String,
    pub sold: i64,
}

pub async fn sold_by_class(db: &D1Database, event_id: &str) -> Result<Vec<ClassSold>, ApiError> {
    all(
        db,
        "SELECT c.id AS ticket_class_id, c.name, \
         (SELECT COUNT(*) FROM tickets t WHERE t.event_id = c.event_id \
            AND t.ticket_class_id = c.id AND t.status != 'VOID') AS sold \
         FROM ticket_classes c WHERE c.event_id = ?1 ORDER BY c.created_at, c.id",
        &[text(event_id)],
    )
    .await
}

/// Brings a ticket's D1 row up to the door's state (from TICKET_CHECKED_IN / TICKET_VOIDED).
/// A check-in never overwrites a void; replays change nothing.
pub async fn follow_door(db: &D1Database, change: &Value, now_ms: i64) -> Result<(), ApiError> {
    let field = |name: &str| change.get(name).and_then(Value::as_str);
    let (Some(ticket_id), Some(status)) = (field("ticketId"), field("status")) else {
        return Err(ApiError::internal(
            "ticket change without ticketId or status",
        ));
    };
    let at = change.get("atMs").and_then(Value::as_i64).unwrap_or(now_ms);
    match status {
        "CHECKED_IN" => {
            run(
                db,
                "UPDATE tickets SET status = 'CHECKED_IN', checked_in_at = ?2, gate = ?3, \
                 updated_at = ?4 WHERE id = ?1 AND status = 'VALID'",
                &[
                    text(ticket_id),
                    int(at),
                    opt_text(field("gate")),
                    int(now_ms),
                ],
            )
            .await?;
        }
        "VOID" => {
            run(
                db,
                "UPDATE tickets SET status = 'VOID', voided_at = ?2, updated_at = ?3 \
                 WHERE id = ?1 AND status != 'VOID'",
                &[text(ticket_id), int(at), int(now_ms)],
            )
            .await?;
        }
        other => {
            return Err(ApiError::internal(format!(
                "ticket change with unknown status {other}"
            )))
        }
    }
    Ok(())
}
