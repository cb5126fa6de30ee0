//! One queue shard of an event (`QUEUE_SHARD.idFromName("{eventId}:{shard}")`): the fans whose
//! user ids hash to it, their joins, polls, leaves and sockets, and its side of the admission
//! tick (`domain::admission::shard`). The event's `EventHub` keeps the checkout slots and runs
//! the ticks; joins and polls never reach it.
//!
//! A thin shell: the queue is a `ShardQueue` rebuilt from the object's SQLite on wake-up
//! (`sql_shard`), and every operation writes the rows it changed in one transaction before it
//! answers. Fan events go out in batches from the alarm, one queue message per kind and flush.

use std::cell::{Cell, OnceCell, RefCell};

use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, js_sys, BatchMessageBuilder, Date, DurableObject, Env, QueueContentType,
    RawMessageBuilder, Request, Response, ResponseBuilder, Result, ScheduledTime, SqlStorage,
    State, Storage, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use crate::domain::admission::protocol::{HandedOver, Moving, ToShard};
use crate::domain::admission::shard::{
    FanRecord, FanStatus, Leave, ShardChanges, ShardQueue, ShardRejection,
};
use crate::domain::admission::snapshot::shown_position;
use crate::domain::tokens::TokenKey;
use crate::log;

use super::client::EventHubClient;
use super::commands::Push;
use super::outbox::{fan_batch_message, FanEvent, FLUSH_BATCH};
use super::protocol::{
    Ack, HubFailure, SessionView, SocketAttachment, SocketPush, PING_PATH, RPC_PATH, USER_HEADER,
    WS_PATH,
};
use super::shard_protocol::{
    session_view, LeaveOutcome, LeaveReply, ShardRequest, ShardSessionReply,
};
use super::sockets;
use super::sql_shard;
use super::sqlite::exec;
use super::txn::{transaction_sync, TxnFailure};

/// Fan events wait at most this long for their batch.
const EVENT_FLUSH_MS: i64 = 1_000;
/// Fans per batched message: well under a queue message's 128 KB.
const EVENT_BATCH: usize = 400;

const QUEUE_JOINED: &str = "QUEUE_JOINED";
const QUEUE_READY: &str = "QUEUE_READY";
const QUEUE_LEFT: &str = "QUEUE_LEFT";

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn failure_response(failure: &HubFailure) -> Result<Response> {
    Ok(Response::from_json(&failure.body())?.with_status(failure.status()))
}

/// What one operation leaves for after its commit.
#[derive(Default)]
struct Effects {
    pushes: Vec<Push>,
    /// Fans whose sockets should see their session again (a closure, a checkout end).
    refresh: Vec<String>,
    /// A join landed in an empty queue: the hub may be idle (`AdmissionHub::wake`).
    wake_hub: Option<String>,
    /// Every socket gets its position (the summary changed).
    positions: bool,
}

#[durable_object]
pub struct QueueShard {
    state: State,
    env: Env,
    storage: Storage,
    sql: SqlStorage,
    /// The stored queue, loaded on first use; dropped whenever a write fails so that the next
    /// operation reads storage again instead of trusting a copy that storage does not hold.
    queue: RefCell<Option<ShardQueue>>,
    schema_error: Option<String>,
    jwt_secret: OnceCell<Option<Vec<u8>>>,
    /// An alarm for the fan-event flush is set (this instance's knowledge).
    armed: Cell<bool>,
    /// Fan events may wait unsent (set by a write that added some; checked once on wake-up),
    /// so a poll does not ask storage.
    events_waiting: Cell<bool>,
    /// When this instance last woke the hub.
    last_wake: Cell<i64>,
}

impl QueueShard {
    fn raw_state(&self) -> &worker::worker_sys::DurableObjectState {
        self.state.as_raw()
    }

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

    /// Runs `operation` on the queue (created from `create` if the shard has none yet) and
    /// writes what it changed, with the fan events it returns, in one transaction.
    fn with_queue<T>(
        &self,
        create: Option<ShardQueue>,
        operation: impl FnOnce(
            &mut ShardQueue,
        )
            -> std::result::Result<(T, Vec<(&'static str, FanEvent)>), HubFailure>,
    ) -> std::result::Result<Option<T>, HubFailure> {
        let mut cached = self.queue.borrow_mut();
        if cached.is_none() {
            *cached = sql_shard::load(&self.sql)
                .map_err(|e| HubFailure::internal(format!("shard load: {e}")))?;
        }
        if cached.is_none() {
            *cached = create;
        }
        let Some(queue) = cached.as_mut() else {
            return Ok(None);
        };
        let result = operation(queue);
        // A refusal writes nothing by the rules, but upkeep before it may have (a closure).
        let changes = queue.take_changes();
        let events = match &result {
            Ok((_, events)) => events.clone(),
            Err(_) => Vec::new(),
        };
        if !events.is_empty() {
            self.events_waiting.set(true);
        }
        if !changes.is_empty() || !events.is_empty() {
            let failure = match one_fan_change(&changes, &events) {
                // A join or a sighting: one statement, atomic without a transaction.
                Some((user_id, record, event)) => {
                    sql_shard::write_fan_change(&self.sql, user_id, record, event)
                        .err()
                        .map(|e| e.to_string())
                }
                None => {
                    let sql = self.sql.clone();
                    let written = transaction_sync(&self.storage, move || {
                        sql_shard::write(&sql, &changes)?;
                        for (kind, fan) in &events {
                            sql_shard::add_event(&sql, kind, fan)?;
                        }
                        Ok::<_, crate::domain::ledger::StoreError>(())
                    });
                    match written {
                        Ok(()) => None,
                        Err(TxnFailure::RolledBack(e)) => Some(e.to_string()),
                        Err(TxnFailure::Runtime(e)) => Some(e),
                    }
                }
            };
            if let Some(detail) = failure {
                *cached = None;
                return Err(HubFailure::internal(format!("shard write: {detail}")));
            }
        }
        result.map(|(value, _)| Some(value))
    }

    fn connected(&self) -> impl Fn(&str) -> bool + '_ {
        move |user: &str| sockets::is_connected(self.raw_state(), user)
    }

    /// The fan's session as the API shows it, with a checkout token when admitted.
    fn view_of(&self, queue: &ShardQueue, user_id: &str, now: i64) -> Option<SessionView> {
        let record = queue.fan(user_id)?;
        let view = queue.view(user_id, now)?;
        let token = match view.status {
            FanStatus::Admitted {
                checkout_expires_at,
                ..
            } => self.checkout_token(queue, user_id, &record.session_id, checkout_expires_at, now),
            _ => None,
        };
        Some(session_view(
            &queue.settings().event_id,
            record,
            &view,
            token,
        ))
    }

    fn reply_of(&self, queue: &ShardQueue, user_id: &str, now: i64) -> ShardSessionReply {
        ShardSessionReply {
            waitroom_session: self.view_of(queue, user_id, now),
            record: queue.fan(user_id).cloned(),
        }
    }

    /// A checkout token for an admitted fan: issued now, running out with the checkout.
    fn checkout_token(
        &self,
        queue: &ShardQueue,
        user_id: &str,
        session_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Option<String> {
        let secret = self.jwt_secret()?;
        TokenKey::new(&secret)
            .issue_checkout(
                user_id,
                &queue.settings().event_id,
                session_id,
                now,
                expires_at,
            )
            .ok()
    }

    async fn rpc(&self, mut req: Request) -> Result<Response> {
        let bytes = req.bytes().await?;
        let request: ShardRequest = match serde_json::from_slice(&bytes) {
            Ok(request) => request,
            Err(error) => {
                return failure_response(&HubFailure::validation(format!(
                    "not a shard request: {error}"
                )))
            }
        };
        let op = request.op();
        let now = now_ms();
        let mut effects = Effects::default();
        let result = self.handle(request, now, &mut effects);
        self.after_commit(effects, now).await;
        match result {
            Ok(body) => json_response(body),
            Err(failure) => {
                if failure.is_internal() {
                    log::error(
                        "queue shard operation failed",
                        None,
                        json!({"op": op, "code": failure.code, "detail": failure.detail}),
                    );
                }
                failure_response(&failure)
            }
        }
    }

    fn handle(
        &self,
        request: ShardRequest,
        now: i64,
        effects: &mut Effects,
    ) -> std::result::Result<String, HubFailure> {
        match request {
            ShardRequest::Join {
                user_id,
                session_id,
                stamp,
                settings,
            } => {
                let fresh = ShardQueue::new(settings);
                let view = self.with_queue(Some(fresh), |queue| {
                    let was_empty = queue.queued() == 0;
                    let event_id = queue.settings().event_id.clone();
                    let record = queue
                        .join(&user_id, &session_id, stamp, now)
                        .map_err(HubFailure::from)?;
                    let mut events = Vec::new();
                    if record.session_id == session_id {
                        if was_empty {
                            effects.wake_hub = Some(event_id);
                        }
                        events.push((
                            QUEUE_JOINED,
                            FanEvent {
                                user_id: user_id.clone(),
                                session_id: session_id.clone(),
                                at: now,
                                arrival_key: Some(record.place.arrival_key()),
                                tick_id: None,
                            },
                        ));
                    }
                    Ok((self.reply_of(queue, &user_id, now), events))
                })?;
                to_json(&view.unwrap_or_else(ShardSessionReply::none))
            }
            ShardRequest::Session { user_id } => {
                let view = self.with_queue(None, |queue| {
                    queue.touch(&user_id, now);
                    Ok((self.reply_of(queue, &user_id, now), Vec::new()))
                })?;
                to_json(&view.unwrap_or_else(ShardSessionReply::none))
            }
            ShardRequest::Leave { user_id } => {
                let outcome = self.with_queue(None, |queue| {
                    let stay = queue
                        .fan(&user_id)
                        .map(|f| (f.session_id.clone(), f.place.arrival_key()));
                    let outcome = match queue.leave(&user_id, now) {
                        Leave::Left => LeaveOutcome::Left,
                        Leave::HeldByHub(_) => LeaveOutcome::HeldByHub,
                        Leave::NotQueued => LeaveOutcome::NotQueued,
                    };
                    let events = match (outcome, stay) {
                        (LeaveOutcome::Left, Some((session_id, arrival_key))) => vec![(
                            QUEUE_LEFT,
                            FanEvent {
                                user_id: user_id.clone(),
                                session_id,
                                at: now,
                                arrival_key: Some(arrival_key),
                                tick_id: None,
                            },
                        )],
                        _ => Vec::new(),
                    };
                    Ok((outcome, events))
                })?;
                effects.refresh.push(user_id);
                to_json(&LeaveReply {
                    outcome: outcome.unwrap_or(LeaveOutcome::NotQueued),
                })
            }
            ShardRequest::Snapshot => {
                let snapshot = self
                    .with_queue(None, |queue| Ok((queue.snapshot(now), Vec::new())))?
                    .ok_or_else(|| HubFailure::not_found("this queue shard is not configured"))?;
                to_json(&snapshot)
            }
            ShardRequest::Admission { message } => self.admission(message, now, effects),
        }
    }

    /// The hub's messages. Each checks that it is meant for this shard's event.
    fn admission(
        &self,
        message: ToShard,
        now: i64,
        effects: &mut Effects,
    ) -> std::result::Result<String, HubFailure> {
        let mismatch = || HubFailure::from(ShardRejection::Mismatch);
        match message {
            ToShard::Configure { settings } => {
                let fresh = ShardQueue::new(settings.clone());
                self.with_queue(Some(fresh), |queue| {
                    if settings.shards > queue.settings().shards {
                        // A raised count: the hub sends it once every moved fan has been
                        // adopted by their new shard, so they leave this one now.
                        queue.hand_over(settings).map_err(HubFailure::from)?;
                    } else {
                        queue.configure(settings).map_err(HubFailure::from)?;
                    }
                    // A closure drains the whole queue now: the fans hear of it at once.
                    while queue.upkeep(now) {}
                    Ok(((), Vec::new()))
                })?;
                effects.positions = true;
                to_json(&Ack::OK)
            }
            ToShard::Heads {
                event_id,
                tick_id,
                want,
                others,
                admission_rate,
            } => {
                let connected = self.connected();
                let report = self
                    .with_queue(None, |queue| {
                        if queue.settings().event_id != event_id {
                            return Err(mismatch());
                        }
                        queue.accept_summary(others, admission_rate);
                        Ok((
                            queue.report_head(tick_id, want, now, &connected),
                            Vec::new(),
                        ))
                    })?
                    .ok_or_else(|| HubFailure::not_found("this queue shard is not configured"))?;
                effects.positions = true;
                to_json(&report)
            }
            ToShard::Admit {
                event_id,
                tick_id,
                picks,
            } => {
                let connected = self.connected();
                let answer = self
                    .with_queue(None, |queue| {
                        if queue.settings().event_id != event_id {
                            return Err(mismatch());
                        }
                        let answer = queue.apply_picks(tick_id, &picks, now, &connected);
                        let events = answer
                            .confirmed
                            .iter()
                            .map(|HandedOver { place, session_id }| {
                                (
                                    QUEUE_READY,
                                    FanEvent {
                                        user_id: place.user_id().to_owned(),
                                        session_id: session_id.clone(),
                                        at: now,
                                        arrival_key: Some(place.arrival_key()),
                                        tick_id: Some(tick_id),
                                    },
                                )
                            })
                            .collect();
                        for handed in &answer.confirmed {
                            let user = handed.place.user_id();
                            if let Some(view) = self.view_of(queue, user, now) {
                                if let (Some(checkout_token), Some(checkout_expires_at)) =
                                    (view.checkout_token, view.checkout_expires_at)
                                {
                                    effects.pushes.push(Push::Admitted {
                                        user_id: user.to_owned(),
                                        checkout_token,
                                        checkout_expires_at,
                                    });
                                }
                            }
                        }
                        for place in &answer.skipped {
                            effects.pushes.push(Push::Expired {
                                user_id: place.user_id().to_owned(),
                            });
                        }
                        Ok((answer, events))
                    })?
                    .ok_or_else(|| HubFailure::not_found("this queue shard is not configured"))?;
                to_json(&answer)
            }
            ToShard::HandOver { settings } => {
                let moving = self
                    .with_queue(None, |queue| {
                        if queue.settings().event_id != settings.event_id {
                            return Err(mismatch());
                        }
                        Ok((
                            Moving {
                                fans: queue.moving(settings.shards),
                            },
                            Vec::new(),
                        ))
                    })?
                    .unwrap_or_default();
                to_json(&moving)
            }
            ToShard::Adopt { settings, fans } => {
                let fresh = ShardQueue::new(settings.clone());
                self.with_queue(Some(fresh), |queue| {
                    if queue.settings().event_id != settings.event_id {
                        return Err(mismatch());
                    }
                    queue.adopt(fans).map_err(HubFailure::from)?;
                    Ok(((), Vec::new()))
                })?;
                to_json(&Ack::OK)
            }
            ToShard::CheckoutsEnded { event_id, ends } => {
                self.with_queue(None, |queue| {
                    if queue.settings().event_id != event_id {
                        return Err(mismatch());
                    }
                    for end in &ends {
                        queue.checkout_ended(&end.place, end.reason);
                    }
                    Ok(((), Vec::new()))
                })?;
                effects
                    .refresh
                    .extend(ends.iter().map(|e| e.place.user_id().to_owned()));
                to_json(&Ack::OK)
            }
            ToShard::CheckoutEnded {
                event_id,
                place,
                reason,
            } => {
                self.with_queue(None, |queue| {
                    if queue.settings().event_id != event_id {
                        return Err(mismatch());
                    }
                    queue.checkout_ended(&place, reason);
                    Ok(((), Vec::new()))
                })?;
                effects.refresh.push(place.user_id().to_owned());
                to_json(&Ack::OK)
            }
        }
    }

    /// Pushes after commit, then makes sure the fan events have an alarm to go out with.
    async fn after_commit(&self, effects: Effects, now: i64) {
        let state = self.raw_state();
        sockets::deliver(state, &effects.pushes);
        let anyone_to_refresh = effects.positions || !effects.refresh.is_empty();
        if let Some(queue) = self.queue.borrow().as_ref().filter(|_| anyone_to_refresh) {
            let sockets: Vec<(WebSocket, SocketAttachment)> = sockets::all(state)
                .into_iter()
                .filter_map(|ws| sockets::attachment(&ws).map(|a| (ws, a)))
                .filter(|(_, a)| effects.positions || effects.refresh.contains(&a.user_id))
                .collect();
            for (ws, attachment) in sockets {
                if let Some(view) = self.view_of(queue, &attachment.user_id, now) {
                    self.push_view(&ws, attachment, view);
                }
            }
        }
        if let Some(event_id) = effects.wake_hub {
            self.wake_hub(&event_id, now);
        }
        if !self.armed.get() && self.events_waiting.get() {
            self.arm(now + EVENT_FLUSH_MS).await;
        }
    }

    /// Sends a socket its fan's session, never showing a queued stay a higher position than
    /// the socket showed before (`snapshot::shown_position`), and remembers what it showed.
    fn push_view(&self, ws: &WebSocket, attachment: SocketAttachment, mut view: SessionView) {
        let same_stay = attachment.session_id == view.session_id;
        let shown = attachment.shown_position.filter(|_| same_stay);
        view.position = shown_position(shown, view.position);
        if view.position.is_some() && view.position != attachment.shown_position {
            let remembered = SocketAttachment {
                shown_position: view.position,
                session_id: view.session_id.clone(),
                ..attachment
            };
            // Kept by the runtime with the socket (across hibernation), not in storage.
            let _ = ws.serialize_attachment(&remembered);
        }
        sockets::send(ws, &SocketPush::for_session(&view));
    }

    /// Tells the event's hub that this shard has a fan again, at most once a second; a lost
    /// wake only costs the fan the idle interval.
    fn wake_hub(&self, event_id: &str, now: i64) {
        if now.saturating_sub(self.last_wake.get()) < 1_000 {
            return;
        }
        self.last_wake.set(now);
        let hub = match EventHubClient::new(&self.env, event_id) {
            Ok(hub) => hub,
            Err(_) => return,
        };
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(error) = hub.wake_admission().await {
                log::warn(
                    "admission wake failed",
                    None,
                    json!({"code": "WAKE_FAILED", "detail": error.to_string()}),
                );
            }
        });
    }

    async fn arm(&self, at: i64) {
        self.armed.set(true);
        let date = js_sys::Date::new(&JsValue::from_f64(at as f64));
        if let Err(error) = self.storage.set_alarm(ScheduledTime::new(date)).await {
            self.armed.set(false);
            log::error(
                "queue shard alarm not set",
                None,
                json!({"code": "ALARM_NOT_SET", "detail": error.to_string()}),
            );
        }
    }

    /// Sends the waiting fan events, one message per kind and batch.
    async fn flush_events(&self) -> std::result::Result<(), String> {
        let event_id = self
            .queue
            .borrow()
            .as_ref()
            .map(|q| q.settings().event_id.clone());
        let event_id = match event_id {
            Some(id) => id,
            None => sql_shard::load(&self.sql)
                .map_err(|e| e.to_string())?
                .map(|q| q.settings().event_id.clone())
                .unwrap_or_default(),
        };
        let shard = self
            .queue
            .borrow()
            .as_ref()
            .map_or(0, |q| q.settings().shard.0);
        let domain_events = self.env.queue("DOMAIN_EVENTS").map_err(|e| e.to_string())?;
        for _ in 0..FLUSH_BATCH {
            let Some((kind, last_seq, fans)) =
                sql_shard::next_batch(&self.sql, EVENT_BATCH).map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            let message = fan_batch_message(
                &kind,
                &event_id,
                shard,
                &fans,
                uuid::Uuid::new_v4().to_string(),
            )
            .map_err(|e| e.to_string())?;
            let body = js_sys::JSON::parse(&message.body.to_string())
                .map_err(|e| super::txn::js_error_text(&e))?;
            domain_events
                .send_raw_batch(
                    BatchMessageBuilder::new()
                        .messages(vec![RawMessageBuilder::new(body)
                            .build_with_content_type(QueueContentType::Json)])
                        .build(),
                )
                .await
                .map_err(|e| e.to_string())?;
            sql_shard::drop_batch(&self.sql, &kind, last_seq).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// `/ws`: the Worker authenticated the user ([`USER_HEADER`]); the socket attaches to the
    /// user's stay in this shard, so it only ever sees the user's own session.
    async fn websocket(&self, req: Request) -> Result<Response> {
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
        let touched = user_id.clone();
        let view = match self.with_queue(None, |queue| {
            queue.touch(&touched, now);
            Ok((self.view_of(queue, &touched, now), Vec::new()))
        }) {
            Ok(Some(Some(view))) => view,
            Ok(_) => {
                return failure_response(&HubFailure::not_found(
                    "join the waitroom before opening its socket",
                ))
            }
            Err(failure) => return failure_response(&failure),
        };
        let pair = WebSocketPair::new()?;
        let attachment = SocketAttachment::new(user_id, view.session_id.clone(), now);
        if let Err(detail) = sockets::accept(self.raw_state(), &pair.server, &attachment) {
            return failure_response(&HubFailure::internal(detail));
        }
        self.push_view(&pair.server, attachment, view);
        Response::from_websocket(pair.client)
    }
}

/// One fan's record and the one event it caused, if any.
type FanChange<'a> = (&'a str, &'a FanRecord, Option<(&'a str, &'a FanEvent)>);

/// When an operation changed one fan's record (kept, not deleted), nothing else, and caused at
/// most one event, for that fan: the fan, the record and the event.
fn one_fan_change<'a>(
    changes: &'a ShardChanges,
    events: &'a [(&'static str, FanEvent)],
) -> Option<FanChange<'a>> {
    let [(user_id, Some(record))] = changes.fans.as_slice() else {
        return None;
    };
    if changes.meta.is_some() {
        return None;
    }
    let event = match events {
        [] => None,
        [(kind, fan)] if fan.user_id == *user_id => Some((*kind, fan)),
        _ => return None,
    };
    Some((user_id.as_str(), record, event))
}

/// A reply's JSON text, serialized once (no intermediate `serde_json::Value`).
fn to_json<T: serde::Serialize>(value: &T) -> std::result::Result<String, HubFailure> {
    serde_json::to_string(value).map_err(|e| HubFailure::internal(format!("reply: {e}")))
}

fn json_response(body: String) -> Result<Response> {
    Ok(ResponseBuilder::new()
        .with_header("content-type", "application/json")?
        .fixed(body.into_bytes()))
}

impl DurableObject for QueueShard {
    fn new(state: State, env: Env) -> Self {
        let storage = state.storage();
        let sql = storage.sql();
        let schema_error = sql_shard::ensure_schema(&sql).err().map(|e| e.to_string());
        let waiting = sql_shard::has_events(&sql).unwrap_or(true);
        if let Some(detail) = &schema_error {
            log::error(
                "queue shard schema failed",
                None,
                json!({"code": "SCHEMA_FAILED", "objectId": state.id().to_string(), "detail": detail}),
            );
        }
        Self {
            state,
            env,
            storage,
            sql,
            queue: RefCell::new(None),
            schema_error,
            jwt_secret: OnceCell::new(),
            armed: Cell::new(false),
            events_waiting: Cell::new(waiting),
            last_wake: Cell::new(i64::MIN),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path();
        if path == PING_PATH {
            // The same trivial SQLite round trip as the hub's: the benchmarks' baseline.
            let counted = exec(
                &self.sql,
                "CREATE TABLE IF NOT EXISTS shard_ping(key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
                Vec::new(),
            )
            .and_then(|_| {
                exec(
                    &self.sql,
                    "INSERT INTO shard_ping(key, value) VALUES ('pings', 1) \
                     ON CONFLICT(key) DO UPDATE SET value = value + 1",
                    Vec::new(),
                )
            });
            if let Err(error) = counted {
                return failure_response(&HubFailure::internal(error.to_string()));
            }
            return Response::from_json(&json!({ "ok": true }));
        }
        if let Some(detail) = &self.schema_error {
            return failure_response(&HubFailure::internal(detail.clone()));
        }
        match path.as_str() {
            RPC_PATH => self.rpc(req).await,
            WS_PATH => self.websocket(req).await,
            _ => failure_response(&HubFailure::not_found("unknown object route")),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.armed.set(false);
        if let Err(detail) = self.flush_events().await {
            log::warn(
                "queue shard event flush failed",
                None,
                json!({"code": "OUTBOX_SEND_FAILED", "detail": detail}),
            );
        }
        let waiting = sql_shard::has_events(&self.sql).unwrap_or(true);
        self.events_waiting.set(waiting);
        if waiting {
            self.arm(now_ms() + EVENT_FLUSH_MS).await;
        }
        Response::ok("ok")
    }

    /// As the hub's sockets: decided by `domain::socket_rules` before anything is read or
    /// written; a ping is answered and counts as a sighting (written at most every 10 s).
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
            if let Err(failure) = self.with_queue(None, |queue| {
                queue.touch(&user_id, now);
                Ok(((), Vec::new()))
            }) {
                log::error(
                    "socket touch failed",
                    None,
                    json!({"code": failure.code, "detail": failure.detail}),
                );
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
