//! Ticket class definitions in D1 (name, price, currency, total, sale window, status). The live
//! counters are the event's Durable Object's, never stored here.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, opt_int, run, text};
use crate::domain::event_workflow::TicketClassTerms;
use crate::domain::validation::CurrencyCode;
use crate::error::ApiError;

const COLUMNS: &str = "id, event_id, name, price_cents, currency, total, sale_start_at, \
     sale_end_at, status, created_at, updated_at";

#[derive(Debug, Deserialize)]
struct ClassRow {
    id: String,
    event_id: String,
    name: String,
    price_cents: i64,
    currency: String,
    total: i64,
    sale_start_at: Option<i64>,
    sale_end_at: Option<i64>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

/// A stored ticket class definition, in the shape the workflow rules read.
#[derive(Debug, Clone)]
pub struct ClassRecord {
    pub id: String,
    pub event_id: String,
    pub terms: TicketClassTerms,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ClassRow {
    fn into_record(self) -> Result<ClassRecord, ApiError> {
        let corrupt = |what: &str| {
            ApiError::internal(format!(
                "ticket class {}: stored {what} is invalid",
                self.id
            ))
        };
        let currency = CurrencyCode::parse(&self.currency).map_err(|_| corrupt("currency"))?;
        let total = u32::try_from(self.total).map_err(|_| corrupt("total"))?;
        let paused = match self.status.as_str() {
            "ACTIVE" => false,
            "PAUSED" => true,
            _ => return Err(corrupt("status")),
        };
        Ok(ClassRecord {
            terms: TicketClassTerms {
                name: self.name,
                price_cents: self.price_cents,
                currency,
                total,
                sale_start_ms: self.sale_start_at,
                sale_end_ms: self.sale_end_at,
                paused,
            },
            id: self.id,
            event_id: self.event_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn status_text(paused: bool) -> &'static str {
    if paused {
        "PAUSED"
    } else {
        "ACTIVE"
    }
}

/// The event's classes in the order they were created.
pub async fn list(db: &D1Database, event_id: &str) -> Result<Vec<ClassRecord>, ApiError> {
    let rows: Vec<ClassRow> = all(
        db,
        &format!(
            "SELECT {COLUMNS} FROM ticket_classes WHERE event_id = ?1 ORDER BY created_at, id"
        ),
        &[text(event_id)],
    )
    .await?;
    rows.into_iter().map(ClassRow::into_record).collect()
}

pub async fn find(
    db: &D1Database,
    event_id: &str,
    class_id: &str,
) -> Result<Option<ClassRecord>, ApiError> {
    let row: Option<ClassRow> = first(
        db,
        &format!("SELECT {COLUMNS} FROM ticket_classes WHERE id = ?1 AND event_id = ?2"),
        &[text(class_id), text(event_id)],
    )
    .await?;
    row.map(ClassRow::into_record).transpose()
}

/// Inserts the class if the event is still at `event_revision` (the terms it was checked
/// against); `Ok(false)` when the event changed meanwhile.
pub async fn insert(
    db: &D1Database,
    id: &str,
    event_id: &str,
    event_revision: &str,
    terms: &TicketClassTerms,
    now_ms: i64,
) -> Result<bool, ApiError> {
    let changed = run(
        db,
        &format!(
            "INSERT INTO ticket_classes ({COLUMNS}) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10 \
             WHERE EXISTS (SELECT 1 FROM events WHERE id = ?2 AND revision = ?11)"
        ),
        &[
            text(id),
            text(event_id),
            text(&terms.name),
            int(terms.price_cents),
            text(terms.currency.as_str()),
            int(i64::from(terms.total)),
            opt_int(terms.sale_start_ms),
            opt_int(terms.sale_end_ms),
            text(status_text(terms.paused)),
            int(now_ms),
            text(event_revision),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Writes the new definition if the class is unchanged since it was read (`updated_at` only
/// ever grows, even within one millisecond) and the event still at `event_revision`;
/// `Ok(false)` otherwise.
pub async fn update(
    db: &D1Database,
    class: &ClassRecord,
    event_revision: &str,
    terms: &TicketClassTerms,
    now_ms: i64,
) -> Result<bool, ApiError> {
    let changed = run(
        db,
        "UPDATE ticket_classes SET name = ?3, price_cents = ?4, total = ?5, sale_start_at = ?6, \
         sale_end_at = ?7, status = ?8, updated_at = MAX(?9, updated_at + 1) \
         WHERE id = ?1 AND updated_at = ?2 \
         AND EXISTS (SELECT 1 FROM events WHERE id = ?10 AND revision = ?11)",
        &[
            text(&class.id),
            int(class.updated_at),
            text(&terms.name),
            int(terms.price_cents),
            int(i64::from(terms.total)),
            opt_int(terms.sale_start_ms),
            opt_int(terms.sale_end_ms),
            text(status_text(terms.paused)),
            int(now_ms),
            text(&class.event_id),
            text(event_revision),
        ],
    )
    .await?;
    Ok(changed == 1)
}
