//! `EventDoor`: one small Durable Object per event (`id_from_name(eventId)`) that owns its
//! tickets' door state (checked in, void) in the object's SQLite, and the Worker's typed client.
//!
//! A separate class from `EventHub` on purpose: the door opens hours after the on-sale, has its
//! own load (a burst at doors-open), and must not queue behind waitroom ticks or share their
//! failure modes. The object verifies the signed `qr` itself, then reads, decides
//! (`domain::tickets::door`) and writes the ticket's row with no `await` in between, so two
//! gates presenting one ticket at once are served one after the other: exactly one gets in.
//!
//! A ticket nobody has presented yet has no row (it is VALID): issuing never has to reach the
//! object. Every change is marked unreported in the same row write and sent to the domain-events
//! queue (TICKET_CHECKED_IN / TICKET_VOIDED) right after, by the alarm until the queue takes it;
//! the consumer brings the D1 ticket row up to date.

use std::cell::OnceCell;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use worker::{
    durable_object, js_sys, BatchMessageBuilder, Date, DurableObject, Env, Headers, Method,
    QueueContentType, RawMessageBuilder, Request, RequestInit, Response, Result, SqlStorage,
    SqlStorageValue, State, Stub,
};

use crate::config::Settings;
use crate::domain::tickets::door::{self, belongs_here, DoorRefusal, Gate, TicketState};
use crate::domain::tickets::TicketVerifier;
use crate::domain::validation::format_rfc3339;
use crate::error::ApiError;
use crate::log;

/// The binding in wrangler.toml.
const BINDING: &str = "EVENT_DOOR";
const DOOR_ORIGIN: &str = "https://event-door";
/// How long the alarm waits before resending changes the queue refused.
const RETRY_MS: i64 = 5_000;
/// Changes sent per queue batch (the Queues batch limit is 100 messages).
const SEND_BATCH: usize = 100;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS door_tickets (
  ticket_id       TEXT PRIMARY KEY,
  ticket_class_id TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('CHECKED_IN', 'VOID')),
  checked_in_at   INTEGER,
  gate            TEXT,
  voided_at       INTEGER,
  reported        INTEGER NOT NULL DEFAULT 0
)";
const SCHEMA_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS door_tickets_unreported ON door_tickets (reported) WHERE reported = 0";
/// The event this door belongs to, for the messages the alarm sends (an object does not know
/// the name it was addressed by).
const SCHEMA_META: &str =
    "CREATE TABLE IF NOT EXISTS door_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

/// What the Worker asks the door.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
enum DoorRequest {
    /// Let the ticket of this signed qr in.
    CheckIn {
        event_id: String,
        qr: String,
        gate: Option<String>,
        at_ms: i64,
    },
    /// Void these tickets (refunds, cancellations).
    Void {
        event_id: String,
        tickets: Vec<TicketRef>,
        at_ms: i64,
    },
    /// Checked-in counts per class.
    Stats,
    /// A trivial SQLite round trip: the benchmark baseline.
    Ping,
}

/// A ticket as the Worker names it to the door.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketRef {
    pub ticket_id: String,
    pub ticket_class_id: String,
}

/// A ticket's door state as the object answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoorTicket {
    pub ticket_id: String,
    pub ticket_class_id: String,
    /// `VALID`, `CHECKED_IN` or `VOID`.
    pub status: String,
    pub checked_in_at: Option<i64>,
    pub gate: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DoorProblem {
    code: String,
    detail: String,
    checked_in_at: Option<i64>,
    gate: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassCheckIns {
    pub ticket_class_id: String,
    pub checked_in: i64,
}

#[derive(Debug, Deserialize)]
struct Row {
    ticket_id: String,
    ticket_class_id: String,
    status: String,
    checked_in_at: Option<i64>,
    gate: Option<String>,
    voided_at: Option<i64>,
}

impl Row {
    fn state(&self) -> TicketState {
        match self.status.as_str() {
            "VOID" => TicketState::Void {
                at_ms: self.voided_at.unwrap_or_default(),
            },
            _ => TicketState::CheckedIn {
                at_ms: self.checked_in_at.unwrap_or_default(),
                gate: Gate::parse(self.gate.as_deref()).ok().flatten(),
            },
        }
    }
}

fn int(value: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(value)
}

fn text(value: &str) -> SqlStorageValue {
    SqlStorageValue::String(value.to_string())
}

fn opt_text(value: Option<&str>) -> SqlStorageValue {
    value.map_or(SqlStorageValue::Null, text)
}

fn opt_int(value: Option<i64>) -> SqlStorageValue {
    value.map_or(SqlStorageValue::Null, int)
}

fn problem(status: u16, code: &str, detail: &str) -> Result<Response> {
    let body = DoorProblem {
        code: code.into(),
        detail: detail.into(),
        checked_in_at: None,
        gate: None,
    };
    Ok(Response::from_json(&body)?.with_status(status))
}

fn refusal(refusal: &DoorRefusal) -> Result<Response> {
    let (checked_in_at, gate) = match refusal {
        DoorRefusal::AlreadyCheckedIn { at_ms, gate } => {
            (Some(*at_ms), gate.as_ref().map(|g| g.as_str().to_string()))
        }
        DoorRefusal::Void | DoorRefusal::Invalid => (None, None),
    };
    let body = DoorProblem {
        code: refusal.code().into(),
        detail: refusal.to_string(),
        checked_in_at,
        gate,
    };
    Ok(Response::from_json(&body)?.with_status(refusal.http_status()))
}

fn state_fields(state: &TicketState) -> (Option<i64>, Option<String>, Option<i64>) {
    match state {
        TicketState::Valid => (None, None, None),
        TicketState::CheckedIn { at_ms, gate } => (
            Some(*at_ms),
            gate.as_ref().map(|g| g.as_str().to_string()),
            None,
        ),
        TicketState::Void { at_ms } => (None, None, Some(*at_ms)),
    }
}

#[durable_object]
pub struct EventDoor {
    state: State,
    env: Env,
    sql: SqlStorage,
    schema_error: Option<String>,
    verifier: OnceCell<Option<TicketVerifier>>,
}

impl DurableObject for EventDoor {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let schema_error = [SCHEMA, SCHEMA_INDEX, SCHEMA_META]
            .into_iter()
            .map(|ddl| sql.exec(ddl, None).map(|_| ()))
            .collect::<Result<Vec<()>>>()
            .err()
            .map(|e| e.to_string());
        Self {
            state,
            env,
            sql,
            schema_error,
            verifier: OnceCell::new(),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if let Some(detail) = &self.schema_error {
            log::error("event door schema failed", None, json!({"detail": detail}));
            return problem(500, "INTERNAL_ERROR", "door storage unavailable");
        }
        let request: DoorRequest = match req.json().await {
            Ok(request) => request,
            Err(e) => return problem(400, "BAD_REQUEST", &e.to_string()),
        };
        let outcome = match request {
            DoorRequest::CheckIn {
                event_id,
                qr,
                gate,
                at_ms,
            } => match self.remember_event(&event_id) {
                Ok(()) => self.check_in(&event_id, &qr, gate.as_deref(), at_ms).await,
                Err(e) => Err(e),
            },
            DoorRequest::Void {
                event_id,
                tickets,
                at_ms,
            } => match self.remember_event(&event_id) {
                Ok(()) => self.void(&tickets, at_ms).await,
                Err(e) => Err(e),
            },
            DoorRequest::Stats => self.stats(),
            DoorRequest::Ping => self
                .sql
                .exec(
                    "SELECT COUNT(*) AS n FROM door_tickets WHERE reported = 0",
                    None,
                )
                .and_then(|c| c.to_array::<Value>())
                .and_then(|_| Response::from_json(&json!({"ok": true}))),
        };
        outcome.or_else(|e| {
            log::error("event door failed", None, json!({"detail": e.to_string()}));
            problem(500, "INTERNAL_ERROR", "door failed")
        })
    }

    async fn alarm(&self) -> Result<Response> {
        self.report().await;
        Response::ok("ok")
    }
}

impl EventDoor {
    /// The verifying half of `TICKET_SIGNING_KEY`, read once per instance (a secret changes
    /// only with a deploy, which starts new instances).
    fn verifier(&self) -> Option<&TicketVerifier> {
        self.verifier
            .get_or_init(|| {
                Settings::from_env(&self.env)
                    .ticket_signer()
                    .map(|s| s.verifier())
            })
            .as_ref()
    }

    fn load(&self, ticket_id: &str) -> Result<Option<Row>> {
        Ok(self
            .sql
            .exec(
                "SELECT ticket_id, ticket_class_id, status, checked_in_at, gate, voided_at \
                 FROM door_tickets WHERE ticket_id = ?",
                vec![text(ticket_id)],
            )?
            .to_array::<Row>()?
            .into_iter()
            .next())
    }

    fn remember_event(&self, event_id: &str) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO door_meta (key, value) VALUES ('event_id', ?)",
            vec![text(event_id)],
        )?;
        Ok(())
    }

    fn event_id(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Meta {
            value: String,
        }
        Ok(self
            .sql
            .exec("SELECT value FROM door_meta WHERE key = 'event_id'", None)?
            .to_array::<Meta>()?
            .into_iter()
            .next()
            .map(|m| m.value)
            .unwrap_or_default())
    }

    /// Writes the new state, marked unreported, in one statement.
    fn save(&self, ticket: &TicketRef, state: &TicketState) -> Result<()> {
        let (checked_in_at, gate, voided_at) = state_fields(state);
        self.sql.exec(
            "INSERT INTO door_tickets (ticket_id, ticket_class_id, status, checked_in_at, gate, voided_at, reported) \
             VALUES (?, ?, ?, ?, ?, ?, 0) \
             ON CONFLICT (ticket_id) DO UPDATE SET status = excluded.status, \
             checked_in_at = COALESCE(excluded.checked_in_at, checked_in_at), \
             gate = COALESCE(excluded.gate, gate), voided_at = excluded.voided_at, reported = 0",
            vec![
                text(&ticket.ticket_id),
                text(&ticket.ticket_class_id),
                text(state.status()),
                opt_int(checked_in_at),
                opt_text(gate.as_deref()),
                opt_int(voided_at),
            ],
        )?;
        Ok(())
    }

    async fn check_in(
        &self,
        event_id: &str,
        qr: &str,
        gate: Option<&str>,
        at_ms: i64,
    ) -> Result<Response> {
        let Some(verifier) = self.verifier() else {
            return problem(
                500,
                "SERVICE_MISCONFIGURED",
                "TICKET_SIGNING_KEY is not usable",
            );
        };
        let claim = match verifier.verify(qr) {
            Ok(claim) => claim,
            Err(_) => return refusal(&DoorRefusal::Invalid),
        };
        if let Err(refused) = belongs_here(&claim, event_id) {
            return refusal(&refused);
        }
        let Ok(gate) = Gate::parse(gate) else {
            return problem(400, "VALIDATION_FAILED", "gate is not a gate name");
        };
        // Read, decide and write with no await in between: the object serves one of two
        // simultaneous presentations completely before the other.
        let current = self
            .load(&claim.ticket_id)?
            .map_or(TicketState::Valid, |row| row.state());
        let next = match door::check_in(&current, at_ms, gate) {
            Ok(next) => next,
            Err(refused) => return refusal(&refused),
        };
        let ticket = TicketRef {
            ticket_id: claim.ticket_id,
            ticket_class_id: claim.ticket_class_id,
        };
        self.save(&ticket, &next)?;
        self.report().await;
        let (checked_in_at, gate, _) = state_fields(&next);
        Response::from_json(&DoorTicket {
            ticket_id: ticket.ticket_id,
            ticket_class_id: ticket.ticket_class_id,
            status: next.status().into(),
            checked_in_at,
            gate,
        })
    }

    async fn void(&self, tickets: &[TicketRef], at_ms: i64) -> Result<Response> {
        let mut voided = 0;
        for ticket in tickets {
            let current = self
                .load(&ticket.ticket_id)?
                .map_or(TicketState::Valid, |row| row.state());
            if let Some(next) = door::void(&current, at_ms) {
                self.save(ticket, &next)?;
                voided += 1;
            }
        }
        if voided > 0 {
            self.report().await;
        }
        Response::from_json(&json!({ "voided": voided }))
    }

    fn stats(&self) -> Result<Response> {
        let items = self
            .sql
            .exec(
                "SELECT ticket_class_id AS ticketClassId, COUNT(*) AS checkedIn FROM door_tickets \
                 WHERE status = 'CHECKED_IN' GROUP BY ticket_class_id",
                None,
            )?
            .to_array::<ClassCheckIns>()?;
        Response::from_json(&json!({ "items": items }))
    }

    /// Sends unreported changes to the domain-events queue; what the queue refuses is retried
    /// by the alarm. A change sent twice is one effect downstream (deterministic message ids).
    async fn report(&self) {
        if let Err(e) = self.send_unreported().await {
            log::warn(
                "event door report failed",
                None,
                json!({"code": "DOOR_REPORT_RETRY", "detail": e.to_string()}),
            );
            let at = Date::now().as_millis() as i64 + RETRY_MS;
            let _ = self
                .state
                .storage()
                .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(
                    &JsValue::from_f64(at as f64),
                )))
                .await;
        }
    }

    async fn send_unreported(&self) -> Result<()> {
        let rows = self
            .sql
            .exec(
                "SELECT ticket_id, ticket_class_id, status, checked_in_at, gate, voided_at \
                 FROM door_tickets WHERE reported = 0 LIMIT ?",
                vec![int(SEND_BATCH as i64)],
            )?
            .to_array::<Row>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let event_id = self.event_id()?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let body = change_message(&event_id, row);
            let parsed = js_sys::JSON::parse(&body.to_string())
                .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
            messages.push(
                RawMessageBuilder::new(parsed).build_with_content_type(QueueContentType::Json),
            );
        }
        self.env
            .queue("DOMAIN_EVENTS")?
            .send_raw_batch(BatchMessageBuilder::new().messages(messages).build())
            .await?;
        for row in &rows {
            // Only the state that was sent: a change made meanwhile stays to be reported.
            self.sql.exec(
                "UPDATE door_tickets SET reported = 1 WHERE ticket_id = ? AND status = ?",
                vec![text(&row.ticket_id), text(&row.status)],
            )?;
        }
        Ok(())
    }
}

/// The domain event of a row's current state, in the outbox envelope every consumer reads.
fn change_message(event_id: &str, row: &Row) -> Value {
    let (kind, suffix, at) = if row.status == "VOID" {
        ("TICKET_VOIDED", "voided", row.voided_at)
    } else {
        ("TICKET_CHECKED_IN", "checked-in", row.checked_in_at)
    };
    let at = at.unwrap_or_default();
    json!({
        "type": kind,
        "id": format!("ticket-{}-{suffix}", row.ticket_id),
        "eventId": event_id,
        "occurredAt": format_rfc3339(at),
        "ticketId": row.ticket_id,
        "ticketClassId": row.ticket_class_id,
        "status": row.status,
        "atMs": at,
        "gate": row.gate,
    })
}

/// How the Worker's handlers reach one event's door.
pub struct EventDoorClient {
    stub: Stub,
    event_id: String,
}

impl EventDoorClient {
    pub fn new(env: &Env, event_id: &str) -> Result<Self> {
        let stub = env
            .durable_object(BINDING)?
            .id_from_name(event_id)?
            .get_stub()?;
        Ok(Self {
            stub,
            event_id: event_id.to_string(),
        })
    }

    async fn call(&self, request: &DoorRequest) -> std::result::Result<(u16, String), ApiError> {
        let body = serde_json::to_string(request).map_err(ApiError::internal)?;
        let headers = Headers::new();
        headers.set("Content-Type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&body)));
        let req = Request::new_with_init(DOOR_ORIGIN, &init)?;
        let mut res = self.stub.fetch_with_request(req).await?;
        let status = res.status_code();
        Ok((status, res.text().await?))
    }

    /// Lets the ticket of `qr` in at `gate`, or the refusal as the API answers it.
    pub async fn check_in(
        &self,
        qr: &str,
        gate: Option<&Gate>,
        at_ms: i64,
    ) -> std::result::Result<DoorTicket, ApiError> {
        let (status, text) = self
            .call(&DoorRequest::CheckIn {
                event_id: self.event_id.clone(),
                qr: qr.to_string(),
                gate: gate.map(|g| g.as_str().to_string()),
                at_ms,
            })
            .await?;
        if status == 200 {
            return serde_json::from_str(&text).map_err(ApiError::internal);
        }
        let problem: DoorProblem = serde_json::from_str(&text)
            .map_err(|_| ApiError::internal(format!("event door answered {status}: {text}")))?;
        Err(match problem.code.as_str() {
            "ALREADY_CHECKED_IN" => {
                let mut facts = serde_json::Map::new();
                facts.insert(
                    "checkedInAt".into(),
                    problem.checked_in_at.map(format_rfc3339).into(),
                );
                facts.insert("gate".into(), problem.gate.into());
                ApiError::RuleWithFacts {
                    status: 409,
                    code: "ALREADY_CHECKED_IN",
                    detail: problem.detail,
                    facts,
                }
            }
            "TICKET_VOID" => ApiError::rule(409, "TICKET_VOID", problem.detail),
            "TICKET_INVALID" => ApiError::rule(422, "TICKET_INVALID", problem.detail),
            _ => ApiError::internal(format!("event door answered {status}: {text}")),
        })
    }

    /// Voids tickets (idempotent); how many changed.
    pub async fn void(
        &self,
        tickets: Vec<TicketRef>,
        at_ms: i64,
    ) -> std::result::Result<u64, ApiError> {
        let (status, text) = self
            .call(&DoorRequest::Void {
                event_id: self.event_id.clone(),
                tickets,
                at_ms,
            })
            .await?;
        if status != 200 {
            return Err(ApiError::internal(format!(
                "event door answered {status}: {text}"
            )));
        }
        let reply: Value = serde_json::from_str(&text).map_err(ApiError::internal)?;
        Ok(reply.get("voided").and_then(Value::as_u64).unwrap_or(0))
    }

    /// Checked-in counts per class, from the door's own state.
    pub async fn stats(&self) -> std::result::Result<Vec<ClassCheckIns>, ApiError> {
        let (status, text) = self.call(&DoorRequest::Stats).await?;
        if status != 200 {
            return Err(ApiError::internal(format!(
                "event door answered {status}: {text}"
            )));
        }
        #[derive(Deserialize)]
        struct Stats {
            items: Vec<ClassCheckIns>,
        }
        Ok(serde_json::from_str::<Stats>(&text)
            .map_err(ApiError::internal)?
            .items)
    }
}
