//! The per-event Durable Object (`id_from_name(eventId)`): the one strictly consistent home of
//! an event's ticket counters, holds and waitroom, kept in the object's SQLite storage.
//!
//! A thin shell: decode the request, run the domain inside one storage transaction
//! (`commands`), then perform the effects: socket pushes, the outbox flush, the alarm. The one
//! alarm serves hold expiry, the waitroom's admission ticks and outbox retries.

use std::cell::Cell;
use std::rc::Rc;

use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    durable_object, js_sys, BatchMessageBuilder, Date, DurableObject, Env, QueueContentType,
    RawMessageBuilder, Request, Response, Result, ScheduledTime, SqlStorage, State, Storage,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use crate::log::{self, Level, Trace};

use super::admission_rounds::Rounds;
use super::commands::{self, AfterCommit, Core, Done};
use super::hub_log::hub_log;
use super::outbox::{alarm_unaffected, keep_armed, Destination, FLUSH_BATCH};
use super::protocol::{
    HubFailure, HubRequest, SessionReply, SocketAttachment, SocketPush, PING_PATH,
    REQUEST_ID_HEADER, RPC_PATH, USER_HEADER, WS_PATH,
};
use super::sockets;
use super::sql_hub::{self, forget_admission, AdmissionCache, SqlHubStore};
use super::sql_ledger::SqlLedgerStore;
use super::sql_outbox::{self, PendingMessage};
use super::sql_waitroom::SqlWaitroomStore;
use super::sqlite::exec;
use super::txn::{transaction_sync, TxnFailure};

/// How long the alarm waits before trying again after its own work failed, so a persistent
/// failure (say, a missing secret) cannot spin the alarm.
const ALARM_RETRY_MS: i64 = 5_000;
/// Whether an operation waits for its outbox flush.
#[derive(Clone, Copy)]
enum Flush {
    /// The alarm: nobody waits for it, and its retries must be done before it re-arms.
    Inline,
    /// A request: reply first, send after.
    Background,
}

/// Rounds of one outbox flush: new rows written while a send is in flight are picked up by
/// the next round instead of waiting for the alarm.
const FLUSH_ROUNDS: usize = 8;

/// The core on the object's own storage.
type SqlCore = Core<SqlLedgerStore, SqlWaitroomStore, SqlHubStore>;

#[durable_object]
pub struct EventHub {
    state: State,
    env: Env,
    sql: SqlStorage,
    /// Shared with outbox flushes that outlive the request that started them.
    dispatch: Rc<Dispatch>,
    positions: Rc<sockets::PositionPushes>,
    /// Why the schema could not be created, if it could not: every request then fails cleanly.
    schema_error: Option<String>,
    jwt_secret: std::cell::OnceCell<Option<Vec<u8>>>,
    /// When this instance started (see `admission_rounds::Rounds::awake_since`).
    awake_since: i64,
    /// A sharded waitroom's admission state as last read or written (`sql_hub::AdmissionCache`).
    admission: AdmissionCache,
}

/// What performs the effects that leave the object: the alarm and the outbox relay.
struct Dispatch {
    env: Env,
    storage: Storage,
    sql: SqlStorage,
    /// A flush is sending; another request's flush leaves the rows to it.
    flushing: Cell<bool>,
    /// The alarm time this instance last set (`None`: unknown, e.g. after a restart).
    armed: Cell<Option<Option<i64>>>,
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn failure_response(failure: &HubFailure) -> Result<Response> {
    Ok(Response::from_json(&failure.body())?.with_status(failure.status()))
}

/// The Worker's request id on an RPC or socket request, as a trace.
fn request_trace(req: &Request) -> Option<Trace> {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .ok()
        .flatten()
        .map(|id| Trace::request(&id))
}

fn reply(
    result: std::result::Result<serde_json::Value, HubFailure>,
    op: &str,
    trace: Option<&Trace>,
    sql: &SqlStorage,
) -> Result<Response> {
    match result {
        Ok(body) => Response::from_json(&body),
        Err(failure) => {
            if failure.is_internal() {
                hub_log(
                    Level::Error,
                    "event hub operation failed",
                    trace,
                    sql,
                    json!({"op": op, "code": failure.code, "detail": failure.detail}),
                );
            }
            failure_response(&failure)
        }
    }
}

impl Dispatch {
    /// Makes sure the alarm fires no later than the earliest stored deadline (and never before
    /// `not_before`); see [`keep_armed`] for when an earlier alarm is left in place.
    async fn arm_alarm(&self, not_before: Option<i64>) {
        let ledger = SqlLedgerStore::new(self.sql.clone());
        let hub = SqlHubStore::new(self.sql.clone());
        let wanted = match commands::next_alarm_at(ledger, &hub) {
            Ok(at) => at,
            Err(failure) => {
                hub_log(
                    Level::Error,
                    "alarm time unreadable",
                    None,
                    &self.sql,
                    json!({"code": failure.code, "detail": failure.detail}),
                );
                Some(now_ms() + ALARM_RETRY_MS)
            }
        };
        let wanted = match (wanted, not_before) {
            (Some(at), Some(floor)) => Some(at.max(floor)),
            (at, _) => at,
        };
        if keep_armed(self.armed.get(), wanted) {
            return;
        }
        // Recorded before the await: a later call that computes a newer time sees this one.
        self.armed.set(Some(wanted));
        let set = match wanted {
            Some(at) => {
                let date = js_sys::Date::new(&JsValue::from_f64(at as f64));
                self.storage.set_alarm(ScheduledTime::new(date)).await
            }
            None => self.storage.delete_alarm().await,
        };
        if let Err(error) = set {
            self.armed.set(None);
            hub_log(
                Level::Error,
                "alarm not set",
                None,
                &self.sql,
                json!({"code": "ALARM_NOT_SET", "detail": error.to_string()}),
            );
        }
    }

    /// Sends due outbox rows, deleting the ones a queue accepted and backing off the rest.
    async fn flush_outbox(&self) {
        if self.flushing.replace(true) {
            return;
        }
        for _ in 0..FLUSH_ROUNDS {
            let now = now_ms();
            let due = match sql_outbox::due(&self.sql, now, FLUSH_BATCH) {
                Ok(due) => due,
                Err(error) => {
                    hub_log(
                        Level::Error,
                        "outbox unreadable",
                        None,
                        &self.sql,
                        json!({"code": "OUTBOX_UNREADABLE", "detail": error.to_string()}),
                    );
                    break;
                }
            };
            if due.is_empty() {
                break;
            }
            for destination in [Destination::PaymentEvents, Destination::DomainEvents] {
                let batch: Vec<&PendingMessage> = due
                    .iter()
                    .filter(|m| m.destination() == Some(destination))
                    .collect();
                if batch.is_empty() {
                    continue;
                }
                let seqs: Vec<i64> = batch.iter().map(|m| m.seq).collect();
                let sent = self.send_batch(destination, &batch).await;
                let stored = match &sent {
                    Ok(()) => sql_outbox::delete(&self.sql, &seqs),
                    Err(_) => sql_outbox::postpone(&self.sql, &seqs, now),
                };
                if let Err(detail) = sent {
                    hub_log(
                        Level::Warn,
                        "outbox send failed",
                        None,
                        &self.sql,
                        json!({"code": "OUTBOX_SEND_FAILED", "queue": destination.binding(),
                            "messages": seqs.len(), "detail": detail}),
                    );
                }
                if let Err(error) = stored {
                    hub_log(
                        Level::Error,
                        "outbox bookkeeping failed",
                        None,
                        &self.sql,
                        json!({"code": "OUTBOX_BOOKKEEPING_FAILED", "detail": error.to_string()}),
                    );
                }
            }
        }
        self.flushing.set(false);
    }

    async fn send_batch(
        &self,
        destination: Destination,
        batch: &[&PendingMessage],
    ) -> std::result::Result<(), String> {
        let queue = self
            .env
            .queue(destination.binding())
            .map_err(|e| e.to_string())?;
        let mut messages = Vec::with_capacity(batch.len());
        for message in batch {
            // Parsed into a plain JS object: the consumer sees ordinary JSON.
            let body =
                js_sys::JSON::parse(&message.body).map_err(|e| super::txn::js_error_text(&e))?;
            messages
                .push(RawMessageBuilder::new(body).build_with_content_type(QueueContentType::Json));
        }
        queue
            .send_raw_batch(BatchMessageBuilder::new().messages(messages).build())
            .await
            .map_err(|e| e.to_string())
    }
}

impl EventHub {
    /// Read from the environment once per instance: secrets only change with a deploy, which
    /// starts new instances, and this runs on every call.
    fn jwt_secret(&self) -> Option<Vec<u8>> {
        self.jwt_secret
            .get_or_init(|| {
                self.env
                    .secret("JWT_SECRET")
                    .map(|s| s.to_string())
                    .or_else(|_| self.env.var("JWT_SECRET").map(|v| v.to_string()))
                    .ok()
                    .filter(|s| !s.is_empty())
                    .map(String::into_bytes)
            })
            .clone()
    }

    fn raw_state(&self) -> &worker::worker_sys::DurableObjectState {
        self.state.as_raw()
    }

    /// Runs one operation of the core, on the object's SQLite, as a single transaction.
    fn run(
        &self,
        now: i64,
        operation: impl FnOnce(SqlCore) -> std::result::Result<Done, HubFailure> + 'static,
    ) -> std::result::Result<Done, HubFailure> {
        let sql = self.sql.clone();
        let secret = self.jwt_secret();
        let cache = Rc::clone(&self.admission);
        let result = match transaction_sync(&self.dispatch.storage, move || {
            let core = Core::new(
                SqlLedgerStore::new(sql.clone()),
                SqlWaitroomStore::new(sql.clone()),
                SqlHubStore::cached(sql, cache),
                now,
                secret,
            );
            operation(core)
        }) {
            Ok(done) => Ok(done),
            Err(TxnFailure::RolledBack(failure)) => Err(failure),
            Err(TxnFailure::Runtime(detail)) => Err(HubFailure::internal(format!(
                "transaction failed: {detail}"
            ))),
        };
        if result.is_err() {
            // Rolled back: what the operation saved into the cache is not in storage.
            forget_admission(&self.admission);
        }
        result
    }

    async fn rpc(&self, mut req: Request) -> Result<Response> {
        let trace = request_trace(&req);
        let bytes = req.bytes().await?;
        let request: HubRequest = match serde_json::from_slice(&bytes) {
            Ok(request) => request,
            Err(error) => {
                return failure_response(&HubFailure::validation(format!(
                    "not a hub request: {error}"
                )))
            }
        };
        let op = request.op();
        let now = now_ms();
        let sockets_open = match &request {
            HubRequest::Status => sockets::all(self.raw_state()).len() as u64,
            _ => 0,
        };
        let result = self.run(now, move |core| core.handle(request, sockets_open));
        match result {
            Ok(done) => {
                self.after_commit(done.after, now, Flush::Background).await;
                reply(done.reply, op, trace.as_ref(), &self.sql)
            }
            Err(failure) => reply(Err(failure), op, trace.as_ref(), &self.sql),
        }
    }

    /// Effects of a committed operation, in order: pushes, positions, the alarm (durable before
    /// any network I/O), then the outbox. A request's reply does not wait for the queues: its
    /// flush runs on after the reply (the alarm retries whatever it leaves behind).
    async fn after_commit(&self, after: AfterCommit, now: i64, flush: Flush) {
        sockets::deliver(self.raw_state(), &after.pushes);
        if after.has_shard_messages() {
            let dispatch = Rc::clone(&self.dispatch);
            let awake_since = self.awake_since;
            let ends = after.shard_messages.clone();
            let cache = Rc::clone(&self.admission);
            wasm_bindgen_futures::spawn_local(async move {
                let rounds = Rounds {
                    env: &dispatch.env,
                    storage: &dispatch.storage,
                    sql: &dispatch.sql,
                    cache: &cache,
                    awake_since,
                    now: now_ms,
                };
                if let Err(failure) = rounds.deliver(ends).await {
                    hub_log(
                        Level::Warn,
                        "checkout end not delivered",
                        None,
                        &dispatch.sql,
                        json!({"code": failure.code, "detail": failure.detail}),
                    );
                }
            });
        }
        if after.head_moved {
            self.positions.head_moved(now, now_ms);
        }
        if !alarm_unaffected(self.dispatch.armed.get(), after.earliest_deadline) {
            self.dispatch.arm_alarm(None).await;
        }
        if !after.outbox_written {
            return;
        }
        match flush {
            Flush::Inline => {
                self.dispatch.flush_outbox().await;
                self.dispatch.arm_alarm(None).await;
            }
            Flush::Background => {
                let dispatch = Rc::clone(&self.dispatch);
                wasm_bindgen_futures::spawn_local(async move {
                    dispatch.flush_outbox().await;
                    dispatch.arm_alarm(None).await;
                });
            }
        }
    }

    /// `/ws`: the Worker authenticated the user and passes the id in [`USER_HEADER`]; the
    /// socket attaches to that user's latest session, so it can only ever see the user's own.
    async fn websocket(&self, req: Request) -> Result<Response> {
        let trace = request_trace(&req);
        let upgrade = req.headers().get("Upgrade").ok().flatten();
        if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return failure_response(&HubFailure::new(
                "UPGRADE_REQUIRED",
                "expected a WebSocket upgrade",
            ));
        }
        let Some(user_id) = req
            .headers()
            .get(USER_HEADER)
            .ok()
            .flatten()
            .filter(|u| !u.is_empty())
        else {
            return failure_response(&HubFailure::new(
                "UNAUTHENTICATED",
                "the Worker must name the authenticated user",
            ));
        };
        let now = now_ms();
        // Connecting counts as being seen.
        let touched_user = user_id.clone();
        let done = match self.run(now, move |core| core.touch(touched_user)) {
            Ok(done) => done,
            Err(failure) => return reply(Err(failure), "ws", trace.as_ref(), &self.sql),
        };
        let view = match done
            .reply
            .clone()
            .map(serde_json::from_value::<SessionReply>)
        {
            Ok(Ok(SessionReply {
                waitroom_session: Some(view),
            })) => view,
            Ok(Ok(_)) => {
                self.after_commit(done.after, now, Flush::Background).await;
                return failure_response(&HubFailure::not_found(
                    "join the waitroom before opening its socket",
                ));
            }
            Ok(Err(error)) => {
                return reply(
                    Err(HubFailure::internal(error.to_string())),
                    "ws",
                    trace.as_ref(),
                    &self.sql,
                );
            }
            Err(failure) => return reply(Err(failure), "ws", trace.as_ref(), &self.sql),
        };
        let pair = WebSocketPair::new()?;
        let attachment = SocketAttachment::new(user_id, view.session_id.clone(), now);
        if let Err(detail) = sockets::accept(self.raw_state(), &pair.server, &attachment) {
            return reply(
                Err(HubFailure::internal(detail)),
                "ws",
                trace.as_ref(),
                &self.sql,
            );
        }
        sockets::send(&pair.server, &SocketPush::for_session(&view));
        self.after_commit(done.after, now, Flush::Background).await;
        Response::from_websocket(pair.client)
    }
}

impl DurableObject for EventHub {
    fn new(state: State, env: Env) -> Self {
        let storage = state.storage();
        let sql = storage.sql();
        let schema_error = sql_hub::ensure_schema(&sql).err().map(|e| e.to_string());
        if let Some(detail) = &schema_error {
            log::error(
                "event hub schema failed",
                None,
                json!({"code": "SCHEMA_FAILED", "objectId": state.id().to_string(), "detail": detail}),
            );
        }
        let dispatch = Rc::new(Dispatch {
            env: env.clone(),
            storage,
            sql: sql.clone(),
            flushing: Cell::new(false),
            armed: Cell::new(None),
        });
        let raw_state: worker::worker_sys::DurableObjectState =
            AsRef::<JsValue>::as_ref(state.as_raw())
                .clone()
                .unchecked_into();
        let positions = Rc::new(sockets::PositionPushes::new(raw_state, sql.clone()));
        Self {
            state,
            env,
            sql,
            dispatch,
            positions,
            schema_error,
            jwt_secret: std::cell::OnceCell::new(),
            awake_since: now_ms(),
            admission: AdmissionCache::default(),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path();
        if path == PING_PATH {
            // A trivial SQLite round trip: the baseline the benchmarks compare against. Its
            // statements run to completion like every other (an unfinished cursor keeps its
            // cached statement busy, so the next call would compile it again).
            let counted = exec(
                &self.sql,
                "CREATE TABLE IF NOT EXISTS hub_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
                Vec::new(),
            )
            .and_then(|_| {
                exec(
                    &self.sql,
                    "INSERT INTO hub_meta(key, value) VALUES ('pings', 1) \
                     ON CONFLICT(key) DO UPDATE SET value = value + 1",
                    Vec::new(),
                )
            });
            if let Err(error) = counted {
                return failure_response(&HubFailure::internal(error.to_string()));
            }
            return Response::from_json(&serde_json::json!({ "ok": true }));
        }
        if let Some(detail) = &self.schema_error {
            return reply(
                Err(HubFailure::internal(detail.clone())),
                "schema",
                request_trace(&req).as_ref(),
                &self.sql,
            );
        }
        match path.as_str() {
            RPC_PATH => self.rpc(req).await,
            WS_PATH => self.websocket(req).await,
            _ => failure_response(&HubFailure::not_found("unknown object route")),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        // The runtime consumed the alarm that woke us.
        self.dispatch.armed.set(None);
        let now = now_ms();
        // An owned handle on the same JS object: the transaction callback must be 'static.
        let state: worker::worker_sys::DurableObjectState =
            AsRef::<JsValue>::as_ref(self.raw_state())
                .clone()
                .unchecked_into();
        let result = self.run(now, move |core| {
            let presence = move |user_id: &str| sockets::is_connected(&state, user_id);
            core.alarm(&presence)
        });
        let not_before = match result {
            Ok(done) => {
                self.after_commit(done.after, now, Flush::Inline).await;
                None
            }
            Err(failure) => {
                hub_log(
                    Level::Error,
                    "event hub alarm failed",
                    None,
                    &self.sql,
                    json!({"code": failure.code, "detail": failure.detail}),
                );
                Some(now + ALARM_RETRY_MS)
            }
        };
        // A sharded waitroom's round: settle, ask, decide, send (no-op without shards).
        let rounds = Rounds {
            env: &self.env,
            storage: &self.dispatch.storage,
            sql: &self.sql,
            cache: &self.admission,
            awake_since: self.awake_since,
            now: now_ms,
        };
        if let Err(failure) = rounds.run().await {
            hub_log(
                Level::Error,
                "admission round failed",
                None,
                &self.sql,
                json!({"code": failure.code, "detail": failure.detail}),
            );
        }
        // Retries of messages whose queue refused them earlier.
        self.dispatch.flush_outbox().await;
        self.dispatch.arm_alarm(not_before).await;
        Response::ok("ok")
    }

    /// Decided by `domain::socket_rules` before anything is read or written: over the allowance,
    /// malformed or not a ping, a message costs nothing but this call; a ping is answered, and
    /// refreshes the session's last-seen time (one transaction) at most once per interval.
    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let now = now_ms();
        let sockets::SocketAsk::Pong { user_id, touch } = sockets::on_message(&ws, &message, now)
        else {
            return Ok(());
        };
        if touch {
            match self.run(now, move |core| core.touch(user_id)) {
                Ok(done) => self.after_commit(done.after, now, Flush::Background).await,
                // At most once per touch interval per socket, so this cannot flood the log.
                Err(failure) => hub_log(
                    Level::Error,
                    "socket touch failed",
                    None,
                    &self.sql,
                    json!({"code": failure.code, "detail": failure.detail}),
                ),
            }
        }
        sockets::send(&ws, &SocketPush::Pong);
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        sockets::close(&ws, code);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("socket error"));
        Ok(())
    }
}
