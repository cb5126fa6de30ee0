//! The D1 transactional outbox: rows written in the same batch as the change they announce,
//! then relayed to their queue (right away, and by the cron job until published).

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::{D1Database, D1PreparedStatement, Env, QueueContentType, RawMessageBuilder};

use super::d1::{all, int, run, stmt, text};
use crate::domain::validation::format_rfc3339;
use crate::error::ApiError;

/// Where a message goes (the wrangler.toml producer binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Saga input: payment results and hold expiries.
    PaymentEvents,
    /// The event log: order, payment, checkout and waitroom lifecycle.
    DomainEvents,
}

impl Queue {
    pub fn binding(self) -> &'static str {
        match self {
            Queue::PaymentEvents => "PAYMENT_EVENTS",
            Queue::DomainEvents => "DOMAIN_EVENTS",
        }
    }
}

/// One message: `{"type", "id", "eventId", "occurredAt", ...payload}`, the envelope the event
/// object uses too, so consumers read one shape.
pub struct OutboxMessage {
    pub id: String,
    pub queue: Queue,
    pub event_type: &'static str,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub body: Value,
}

impl OutboxMessage {
    /// `id` must be deterministic for effects that may be attempted twice (the insert is
    /// `OR IGNORE`), so a retried step announces once.
    pub fn new(
        id: String,
        queue: Queue,
        event_type: &'static str,
        (aggregate_type, aggregate_id): (&'static str, &str),
        event_id: &str,
        now_ms: i64,
        payload: Map<String, Value>,
    ) -> Self {
        let mut body = Map::new();
        body.insert("type".into(), event_type.into());
        body.insert("id".into(), id.clone().into());
        body.insert("eventId".into(), event_id.into());
        body.insert("occurredAt".into(), format_rfc3339(now_ms).into());
        for (k, v) in payload {
            body.entry(k).or_insert(v);
        }
        OutboxMessage {
            id,
            queue,
            event_type,
            aggregate_type,
            aggregate_id: aggregate_id.to_string(),
            body: Value::Object(body),
        }
    }

    pub fn insert(&self, db: &D1Database, now_ms: i64) -> Result<D1PreparedStatement, ApiError> {
        self.insert_when(db, now_ms, None)
    }

    /// The insert, made conditional on `guard_sql` (an `EXISTS (...)` over rows the same batch
    /// just wrote) so a lost race announces nothing.
    pub fn insert_when(
        &self,
        db: &D1Database,
        now_ms: i64,
        guard: Option<(&str, &[wasm_bindgen::JsValue])>,
    ) -> Result<D1PreparedStatement, ApiError> {
        let mut args = vec![
            text(&self.id),
            text(self.aggregate_type),
            text(&self.aggregate_id),
            text(self.event_type),
            text(self.queue.binding()),
            text(&self.body.to_string()),
            int(now_ms),
        ];
        let condition = match guard {
            Some((sql, extra)) => {
                args.extend_from_slice(extra);
                format!("WHERE {sql}")
            }
            None => String::new(),
        };
        stmt(
            db,
            &format!(
                "INSERT OR IGNORE INTO outbox (id, aggregate_type, aggregate_id, event_type, queue, \
                 payload, created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 {condition}"
            ),
            &args,
        )
    }
}

#[derive(Debug, Deserialize)]
struct PendingRow {
    id: String,
    queue: String,
    payload: String,
}

/// Publishes unpublished rows (oldest first, at most `limit`), recording failures with a retry
/// count. Returns how many were published. Safe to run concurrently: a row published twice
/// is deduplicated by its id downstream.
pub async fn relay(
    env: &Env,
    db: &D1Database,
    now_ms: i64,
    limit: usize,
    only_ids: Option<&[String]>,
) -> Result<usize, ApiError> {
    let rows: Vec<PendingRow> = match only_ids {
        Some(ids) => {
            let list = serde_json::to_string(ids).map_err(ApiError::internal)?;
            all(
                db,
                "SELECT id, queue, payload FROM outbox WHERE published_at IS NULL \
                 AND id IN (SELECT value FROM json_each(?1))",
                &[text(&list)],
            )
            .await?
        }
        None => {
            all(
                db,
                "SELECT id, queue, payload FROM outbox WHERE published_at IS NULL \
                 ORDER BY created_at LIMIT ?1",
                &[int(limit as i64)],
            )
            .await?
        }
    };
    let mut published = 0;
    for row in rows {
        let outcome = async {
            // Parsed into a plain JS object (serde would hand the queue a JS Map), so every
            // consumer reads ordinary JSON.
            let body = js_sys::JSON::parse(&row.payload)
                .map_err(|e| ApiError::internal(format!("outbox payload: {e:?}")))?;
            let queue = env.queue(&row.queue).map_err(ApiError::from)?;
            queue
                .send_raw(
                    RawMessageBuilder::new(body).build_with_content_type(QueueContentType::Json),
                )
                .await
                .map_err(ApiError::from)
        }
        .await;
        match outcome {
            Ok(()) => {
                run(
                    db,
                    "UPDATE outbox SET published_at = ?2 WHERE id = ?1",
                    &[text(&row.id), int(now_ms)],
                )
                .await?;
                published += 1;
            }
            Err(e) => {
                run(
                    db,
                    "UPDATE outbox SET retry_count = retry_count + 1, last_error = ?2 WHERE id = ?1",
                    &[text(&row.id), text(&e.to_string())],
                )
                .await?;
            }
        }
    }
    Ok(published)
}

/// The outbox rows not yet published, for the operator status.
#[derive(Debug, Deserialize)]
pub struct OutboxBacklog {
    /// All events.
    pub unpublished: i64,
    /// Rows whose publishing failed at least once.
    pub failing: i64,
    pub oldest: Option<i64>,
    /// Rows of the one event asked about.
    pub for_event: i64,
}

pub async fn backlog(db: &D1Database, event_id: &str) -> Result<OutboxBacklog, ApiError> {
    super::d1::first(
        db,
        "SELECT COUNT(*) AS unpublished, \
           COALESCE(SUM(retry_count > 0), 0) AS failing, \
           MIN(created_at) AS oldest, \
           COALESCE(SUM(json_extract(payload, '$.eventId') = ?1), 0) AS for_event \
         FROM outbox WHERE published_at IS NULL",
        &[text(event_id)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("outbox counts"))
}
