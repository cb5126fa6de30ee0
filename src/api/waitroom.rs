//! The waitroom endpoints: join, read or give up one's place, and the live WebSocket. The
//! event's object owns the queue, or, with `waitroom.shards` above 1, the fan's queue shard
//! does (`shard_of(user)`, one user one shard) while the event's object keeps admission; these
//! handlers authenticate and authorize, stamp joins, then forward.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::cell::RefCell;

use crate::domain::access::{Action, Actor, EventOp};
use crate::domain::admission::pass::{PassKey, PASS_TTL_MS};
use crate::domain::admission::place::{shard_of, ArrivalStamp, ShardCount};
use crate::domain::admission::shard::{FanRecord, FanStatus, ShardSettings};
use crate::domain::admission::snapshot::ShardSnapshot;
use crate::domain::event_workflow::{is_publicly_visible, EventStatus};
use crate::domain::time::format_rfc3339;
use crate::domain::ttl_cache::TtlCache;
use crate::domain::waitroom::{
    public_status, PublicSaleState, PublicStatusInputs, WaitroomCounters,
};
use crate::domain::waitroom::{SessionStatus, WaitroomConfig};
use crate::durable::client::{EventHubClient, QueueShardClient};
use crate::durable::protocol::{shuffle_seed, SessionView};
use crate::durable::shard_protocol::{session_view, LeaveOutcome, ShardSessionReply};
use crate::error::ApiError;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::d1;

use super::events::load_event_as;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSessionEnvelope {
    /// `{sessionId, eventId, status, position, queueLength, estimatedWaitSeconds, checkoutToken?, checkoutExpiresAt?}`
    #[schema(value_type = Object)]
    pub waitroom_session: SessionView,
}

/// `POST .../waitroom/join`'s optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinWaitroomRequest {
    /// The Turnstile widget's token, where the bot check is on (or header `CF-Turnstile-Response`).
    pub turnstile_token: Option<String>,
}

/// What the waitroom's handlers need of an event: enough to authorize a fan and find the
/// event's object. Kept per isolate for [`GATE_TTL_MS`], so a crowd's joins, polls and socket
/// upgrades do not each cost D1 two reads (the event and its categories).
#[derive(Debug, Clone)]
struct WaitroomGate {
    event_id: String,
    status: EventStatus,
    ever_published: bool,
    allow_wait_room: bool,
    sale_start_ms: Option<i64>,
    sale_end_ms: Option<i64>,
    shards: ShardCount,
    /// The pre-queue shuffle's seed (an HMAC of the event id), computed with the gate rather
    /// than on every call: only a shard's first join needs it.
    shuffle_seed: u64,
}

/// Where a fan's waitroom calls go.
enum FrontDoor {
    /// One queue per event, in the event's object.
    Hub(EventHubClient),
    /// The fan's queue shard; the event's object keeps the checkout slots.
    Shard {
        shard: QueueShardClient,
        hub: EventHubClient,
        /// The sale settings as this Worker sees them, for a shard's very first join.
        settings: Box<ShardSettings>,
    },
}

/// How stale the gate may be. A change the gate misses is caught by the event's object, which
/// the API keeps in step with the event (a cancelled sale refuses joins there at once), so 2 s
/// only delays when a fan is told, never what is sold.
const GATE_TTL_MS: i64 = 2_000;
/// Events an isolate remembers: an isolate serves a handful of on-sales at a time.
const GATE_CAPACITY: usize = 1_000;

/// Marks an event's gate as being read for as long as it lives (also when the read fails).
struct ReadingGate(String);

impl ReadingGate {
    /// `None` when another request is reading it already.
    fn start(event_id: &str) -> Option<Self> {
        GATES_READING
            .with(|r| r.borrow_mut().insert(event_id.to_owned()))
            .then(|| ReadingGate(event_id.to_owned()))
    }
}

impl Drop for ReadingGate {
    fn drop(&mut self) {
        GATES_READING.with(|r| r.borrow_mut().remove(&self.0));
    }
}

/// How long this isolate answers a queued fan's polls from their last known record without
/// asking their shard. Also how often a polling fan is seen by their shard (its idle timeout is
/// ten minutes), and how long a leave made through another isolate can go unseen here. At a
/// million fans polling, these refreshes are most of what reaches the shards (BENCHMARKS,
/// capacity model), so it is as long as those two allow; a fan's pass (`Waitroom-Pass`)
/// carries the record that long to isolates that never read it.
const FAN_TTL_MS: i64 = PASS_TTL_MS;
/// Fans an isolate remembers (records, and leaves made through it).
const FANS_CAPACITY: usize = 50_000;
/// The header a sharded fan's record travels in: set on the answers that read it from the
/// shard, sent back with polls.
pub const PASS_HEADER: &str = "Waitroom-Pass";
/// How long a shard's snapshot answers polls: the contract's staleness for positions.
const SNAPSHOT_TTL_MS: i64 = 1_000;

// What this isolate keeps between requests.
thread_local! {
    /// Events' gates (sale settings) by event id.
    static GATES: RefCell<TtlCache<WaitroomGate>> =
        RefCell::new(TtlCache::new(GATE_TTL_MS, GATE_CAPACITY));
    /// Events whose gate a request of this isolate is reading from D1 right now.
    static GATES_READING: RefCell<std::collections::HashSet<String>> =
        RefCell::new(std::collections::HashSet::new());
    /// Sharded fans' records as their shard last told this isolate, by `{eventId}/{userId}`.
    static FANS: RefCell<TtlCache<FanRecord>> = RefCell::new(TtlCache::new(FAN_TTL_MS, FANS_CAPACITY));
    /// When fans gave their place up through this isolate, by `{eventId}/{userId}`, for as
    /// long as a pass from before it could still be brought.
    static LEFT_HERE: RefCell<TtlCache<i64>> =
        RefCell::new(TtlCache::new(PASS_TTL_MS, FANS_CAPACITY));
    /// Shards' snapshots by `{eventId}/{shard}`.
    static SNAPSHOTS: RefCell<TtlCache<ShardSnapshot>> =
        RefCell::new(TtlCache::new(SNAPSHOT_TTL_MS, GATE_CAPACITY));
    /// The key passes are signed with, derived once per isolate from the JWT secret.
    static PASS_KEY: std::cell::OnceCell<Option<PassKey>> = const { std::cell::OnceCell::new() };
}

fn fan_key(event_id: &str, user: &str) -> String {
    format!("{event_id}/{user}")
}

fn with_pass_key<T>(rc: &RequestContext, f: impl FnOnce(&PassKey) -> T) -> Option<T> {
    PASS_KEY.with(|k| {
        k.get_or_init(|| {
            rc.settings
                .jwt_secret
                .as_deref()
                .map(|s| PassKey::derive(s.as_bytes()))
        })
        .as_ref()
        .map(f)
    })
}

/// Keeps what the shard said of the fan for this isolate's next polls, and returns the pass
/// that carries it to the others: only while the fan is queued, the one state a poll is
/// answered in without their shard.
fn remember_fan(
    rc: &RequestContext,
    event_id: &str,
    user: &str,
    reply: &ShardSessionReply,
) -> Option<String> {
    let key = fan_key(event_id, user);
    FANS.with(|f| {
        let mut fans = f.borrow_mut();
        match &reply.record {
            Some(record) => fans.put(&key, record.clone(), rc.now_ms),
            None => fans.forget(&key),
        }
    });
    let record = reply
        .record
        .as_ref()
        .filter(|r| matches!(r.status, FanStatus::Queued { .. }))?;
    with_pass_key(rc, |k| k.issue(event_id, user, record, rc.now_ms))
}

/// The fan's record: what this isolate read from the shard, else what their pass carries
/// (then kept here until the pass runs out). This isolate's own reading comes first: it may be
/// newer (a leave made here forgets it, and the pass is not used again for that stay's age).
fn known_record(rc: &RequestContext, event_id: &str, user: &str) -> Option<FanRecord> {
    let key = fan_key(event_id, user);
    if let Some(record) = FANS.with(|f| f.borrow().get(&key, rc.now_ms)) {
        return Some(record);
    }
    let pass = rc.header(PASS_HEADER)?;
    let opened = with_pass_key(rc, |k| k.open(&pass, event_id, user, rc.now_ms))?.ok()?;
    // A pass from before a leave made here answers nothing: the stay it carries is over.
    if LEFT_HERE
        .with(|l| l.borrow().get(&key, rc.now_ms))
        .is_some_and(|left_at| opened.issued_at <= left_at)
    {
        return None;
    }
    FANS.with(|f| {
        f.borrow_mut()
            .put(&key, opened.record.clone(), opened.issued_at.min(rc.now_ms))
    });
    Some(opened.record)
}

/// The shard's snapshot: from this isolate, else the edge cache, else the shard (then both).
async fn snapshot_of(
    rc: &RequestContext,
    settings: &ShardSettings,
    shard: &QueueShardClient,
) -> Result<ShardSnapshot, ApiError> {
    let key = format!("{}/{}", settings.event_id, settings.shard.0);
    if let Some(snapshot) = SNAPSHOTS.with(|s| s.borrow().get(&key, rc.now_ms)) {
        return Ok(snapshot);
    }
    let url = format!("{}/__shard-snapshot/{key}", rc.origin()?);
    let cache = worker::Cache::default();
    let cached = match cache.get(url.as_str(), false).await {
        Ok(Some(mut hit)) => hit
            .text()
            .await
            .ok()
            .and_then(|body| serde_json::from_str::<ShardSnapshot>(&body).ok()),
        _ => None,
    };
    let snapshot = match cached.filter(|s| rc.now_ms - s.taken_at < SNAPSHOT_TTL_MS) {
        Some(snapshot) => snapshot,
        None => {
            let fresh = shard.snapshot().await?;
            if let Ok(body) = serde_json::to_string(&fresh) {
                let headers = worker::Headers::new();
                let put = headers
                    .set(
                        "Cache-Control",
                        &format!("max-age={}", SNAPSHOT_TTL_MS / 1_000),
                    )
                    .and_then(|_| worker::Response::ok(body))
                    .map(|r| r.with_headers(headers));
                if let Ok(response) = put {
                    // A failed write only costs the next poll a shard call.
                    let _ = cache.put(url.as_str(), response).await;
                }
            }
            fresh
        }
    };
    SNAPSHOTS.with(|s| s.borrow_mut().put(&key, snapshot.clone(), rc.now_ms));
    Ok(snapshot)
}

/// A queued fan's poll answered without their shard: their last known record and the shard's
/// snapshot (`domain::admission::snapshot`), when both say only time has passed.
async fn session_from_snapshot(
    rc: &RequestContext,
    user: &str,
    settings: &ShardSettings,
    shard: &QueueShardClient,
) -> Option<SessionView> {
    let record = known_record(rc, &settings.event_id, user)?;
    if !matches!(record.status, FanStatus::Queued { .. }) {
        return None;
    }
    let snapshot = snapshot_of(rc, settings, shard).await.ok()?;
    let view = snapshot.view_of(&record, rc.now_ms)?;
    Some(session_view(&settings.event_id, &record, &view, None))
}

/// Development only (`DELETE /api/dev/isolate-memory`): this isolate forgets the fans it read
/// from their shards, as an isolate that never saw them.
pub(super) fn forget_fans() {
    FANS.with(|f| f.borrow_mut().clear());
}

/// Called after this isolate changed the event (its status or sale terms), so its own next
/// waitroom request reads it again; other isolates see the change within [`GATE_TTL_MS`].
pub(super) fn forget_gate(event_id: &str) {
    GATES.with(|g| g.borrow_mut().forget(event_id));
}

/// The caller, checked against the event: it exists, is visible to them, and sells through its
/// waitroom. The event comes from this isolate's [`GATES`] when it was read in the last
/// [`GATE_TTL_MS`] and the caller is allowed without an event role; else from D1 through the
/// shared loader (which also sees the caller's role). Returns the user id and the event's object.
async fn enter(
    rc: &RequestContext,
    actor: Actor,
    op: EventOp,
) -> Result<(String, FrontDoor), ApiError> {
    let event_id = rc.param("id")?;
    let fresh = GATES.with(|g| g.borrow().get(event_id, rc.now_ms));
    // Expired while a crowd is calling: one request reads D1 again, the others use the gate
    // it had until then (at most one more TTL), instead of all of them reading it at once.
    let reading = match fresh {
        Some(_) => None,
        None => ReadingGate::start(event_id),
    };
    let cached = fresh
        .or_else(|| {
            reading.is_none().then(|| {
                GATES.with(|g| g.borrow().get_within(event_id, rc.now_ms, 2 * GATE_TTL_MS))
            })?
        })
        .filter(|gate| {
            let published = is_publicly_visible(gate.status, gate.ever_published);
            rc.permit(&actor, None, &Action::OnEvent { op, published })
                .is_ok()
        });
    let gate = match cached {
        Some(gate) => gate,
        None => {
            let db = d1::db(&rc.env)?;
            let access = load_event_as(rc, &db, event_id, op, actor.clone()).await?;
            let event = access.event;
            let config = event.terms.config.as_ref();
            let secret = rc
                .settings
                .jwt_secret
                .as_deref()
                .ok_or_else(|| ApiError::Internal("JWT_SECRET is not set".into()))?;
            let gate = WaitroomGate {
                shuffle_seed: shuffle_seed(secret.as_bytes(), event.id.as_str()),
                event_id: event.id.as_str().to_string(),
                status: event.status,
                ever_published: event.ever_published,
                allow_wait_room: config.is_some_and(|c| c.allow_wait_room),
                sale_start_ms: config.map(|c| c.ticket_sale_start_ms),
                sale_end_ms: config.map(|c| c.ticket_sale_end_ms),
                shards: config.map_or(ShardCount::ONE, |c| c.waitroom_shards),
            };
            // Only what anyone may see is shared between callers.
            if is_publicly_visible(gate.status, gate.ever_published) {
                GATES.with(|g| g.borrow_mut().put(event_id, gate.clone(), rc.now_ms));
            }
            gate
        }
    };
    let user = actor
        .user_id()
        .ok_or(ApiError::Unauthenticated)?
        .as_str()
        .to_string();
    if !gate.allow_wait_room {
        return Err(ApiError::rule(
            409,
            "WAITROOM_NOT_ENABLED",
            "This event sells without a waitroom: order directly.",
        ));
    }
    // Fans may queue before the sale opens (the pre-queue), never after it ends.
    let closed = gate.status != EventStatus::Published
        || gate.sale_end_ms.is_some_and(|end| rc.now_ms >= end);
    if op == EventOp::JoinWaitroom && closed {
        return Err(ApiError::rule(
            409,
            "SALE_NOT_OPEN",
            "Tickets for this event are not on sale.",
        ));
    }
    let hub = EventHubClient::new(&rc.env, &gate.event_id)?.traced(&rc.trace);
    if gate.shards == ShardCount::ONE {
        return Ok((user, FrontDoor::Hub(hub)));
    }
    let shard = shard_of(&user, gate.shards);
    let sale = WaitroomConfig {
        sale_starts_at: gate.sale_start_ms.unwrap_or(0),
        sale_ends_at: gate.sale_end_ms.unwrap_or(i64::MAX),
        cancelled: gate.status == EventStatus::Cancelled,
        ..WaitroomConfig::default()
    };
    let settings =
        ShardSettings::of_waitroom(&gate.event_id, shard, gate.shards, gate.shuffle_seed, &sale);
    Ok((
        user,
        FrontDoor::Shard {
            shard: QueueShardClient::new(&rc.env, &gate.event_id, shard)?.traced(&rc.trace),
            hub,
            settings: Box::new(settings),
        },
    ))
}

/// A join as this edge saw it: its clock, and a random tie-break so that fans of the same
/// millisecond (at any edge) are ordered at random.
fn arrival_stamp(now_ms: i64) -> Result<ArrivalStamp, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(ArrivalStamp {
        at_ms: now_ms,
        tie_break: u64::from_be_bytes(bytes),
    })
}

/// Joins the fan's shard: their session and the pass that carries their record.
async fn join_shard(
    rc: &RequestContext,
    user: &str,
    shard: &QueueShardClient,
    settings: &ShardSettings,
) -> Result<(SessionView, Option<String>), ApiError> {
    let session_id = uuid::Uuid::new_v4().to_string();
    let reply = shard
        .join(user, &session_id, arrival_stamp(rc.now_ms)?, settings)
        .await?;
    let pass = remember_fan(rc, &settings.event_id, user, &reply);
    let session = reply
        .waitroom_session
        .ok_or_else(|| ApiError::internal("join answered without a session"))?;
    Ok((session, pass))
}

/// The session as JSON, with the fan's pass when this answer read it from their shard.
fn session_response(session: SessionView, pass: Option<String>) -> ApiResult {
    let mut response = json_response(
        200,
        &WaitroomSessionEnvelope {
            waitroom_session: session,
        },
    )?;
    if let Some(pass) = pass {
        response.headers_mut().set(PASS_HEADER, &pass)?;
    }
    Ok(response)
}

/// `GET .../waitroom/status`: the sale's front door as anyone may see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicWaitroomStatusBody {
    /// NOT_OPEN, PREQUEUE, OPEN, SOLD_OUT or CLOSED.
    #[schema(value_type = String, example = "OPEN")]
    pub state: PublicSaleState,
    /// When the sale opens (RFC 3339).
    pub sale_opens_at: String,
    /// Fans waiting (the pre-queue before the sale opens); 0 once closed.
    pub queue_length: u64,
    /// Fans let through to checkout in the last 60 s.
    pub admitted_last_minute: u64,
    /// For a fan joining now; null where nobody can tell yet or the sale is sold out or closed.
    pub estimated_wait_seconds: Option<u64>,
    /// Queue shards the event's line is spread over.
    pub shards: u32,
}

/// How long an edge may reuse one status answer: the contract's `max-age`.
const STATUS_MAX_AGE_SECONDS: u32 = 1;

fn status_response(body: String) -> ApiResult {
    let headers = worker::Headers::new();
    headers.set("Content-Type", "application/json")?;
    headers.set(
        "Cache-Control",
        &format!("public, max-age={STATUS_MAX_AGE_SECONDS}"),
    )?;
    Ok(worker::Response::ok(body)?.with_headers(headers))
}

#[utoipa::path(get, operation_id = "get_waitroom_status", path = "/api/events/{id}/waitroom/status", tag = "waitroom",
    params(("id" = String, Path)),
    responses((status = 200, description = "No authentication; `Cache-Control: public, max-age=1`, and this Worker keeps each answer in the edge cache for that second, so a crowd polling it costs the event's object about one read a second per Cloudflare location", body = PublicWaitroomStatusBody),
              (status = 404, description = "No such event, or not published", body = crate::error::Problem)))]
pub async fn status(rc: &mut RequestContext) -> ApiResult {
    let event_id = rc.param("id")?.to_string();
    // One answer serves every caller (nothing in it is the caller's), keyed by the bare URL.
    let key = format!("{}/api/events/{event_id}/waitroom/status", rc.origin()?);
    let cache = worker::Cache::default();
    if let Ok(Some(mut hit)) = cache.get(key.as_str(), false).await {
        if let Ok(body) = hit.text().await {
            return status_response(body);
        }
    }
    let db = d1::db(&rc.env)?;
    let event = load_event_as(rc, &db, &event_id, EventOp::Read, Actor::Anonymous)
        .await?
        .event;
    let config = event.terms.config.as_ref().ok_or(ApiError::NotFound)?;
    let hub = EventHubClient::new(&rc.env, event.id.as_str())?.traced(&rc.trace);
    let object = hub.status().await?;
    let on_sale = object
        .classes
        .iter()
        .filter(|c| c.status == crate::domain::ledger::ClassStatus::Active);
    let inputs = PublicStatusInputs {
        now_ms: rc.now_ms,
        sale_starts_at: config.ticket_sale_start_ms,
        sale_ends_at: config.ticket_sale_end_ms,
        cancelled: event.status == EventStatus::Cancelled,
        waitroom: object
            .waitroom
            .filter(|_| config.allow_wait_room)
            .map(|w| WaitroomCounters {
                queued: w.queue_length,
                prequeued: w.prequeued,
                slots_in_use: w.slots_in_use,
                max_slots: w.max_slots,
                admitted_last_minute: w.admitted_last_minute,
                admissions_per_second: w.admissions_per_second,
                closed: w.closed.is_some(),
            }),
        available: on_sale.map(|c| u64::from(c.available)).sum(),
        held: object.active_holds,
        // With shards the hub's counters come from the shards' last reports (admission).
        shards: u32::from(config.waitroom_shards.get()),
    };
    let status = public_status(&inputs);
    let body = serde_json::to_string(&PublicWaitroomStatusBody {
        state: status.state,
        sale_opens_at: format_rfc3339(status.sale_opens_at),
        queue_length: status.queue_length,
        admitted_last_minute: status.admitted_last_minute,
        estimated_wait_seconds: status.estimated_wait_seconds,
        shards: status.shards,
    })
    .map_err(|e| ApiError::internal(format!("waitroom status: {e}")))?;
    // A failed cache write only costs the next caller an object read.
    if let Ok(copy) = status_response(body.clone()) {
        if let Err(e) = cache.put(key.as_str(), copy).await {
            rc.annotate("statusCache", e.to_string());
        }
    }
    status_response(body)
}

#[utoipa::path(post, operation_id = "join_waitroom", path = "/api/events/{id}/waitroom/join", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body(content = Option<JoinWaitroomRequest>, description = "Optional: `turnstileToken` where the bot check is on"),
    responses((status = 200, description = "The caller's session; joining again returns the same place", body = WaitroomSessionEnvelope,
               headers(("Waitroom-Pass" = String, description = "Sharded waitrooms: the fan's signed record, good for 30 s; send it back with polls of the session"))),
              (status = 400, description = "MALFORMED_JSON", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem),
              (status = 403, description = "EMAIL_NOT_VERIFIED (where the deployment requires a verified email), BOT_CHECK_FAILED (where TURNSTILE_SECRET is set; with `siteKey` where TURNSTILE_SITE_KEY is set)", body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "SALE_NOT_OPEN, WAITROOM_NOT_ENABLED", body = crate::error::Problem),
              (status = 503, description = "BOT_CHECK_UNAVAILABLE (siteverify gave no answer)", body = crate::error::Problem)))]
pub async fn join(rc: &mut RequestContext) -> ApiResult {
    // The body is optional: without the bot check a client may post nothing.
    let raw = rc.raw_body().await?;
    let body: JoinWaitroomRequest = if raw.trim().is_empty() {
        JoinWaitroomRequest::default()
    } else {
        crate::http::parse_json(raw.as_bytes())?
    };
    rc.require_user()?;
    rc.require_verified_buyer()?;
    rc.check_bot(body.turnstile_token.as_deref()).await?;
    let (user, door) = enter(rc, rc.actor()?, EventOp::JoinWaitroom).await?;
    let (session, pass) = match door {
        FrontDoor::Hub(hub) => (hub.join(&user).await?, None),
        FrontDoor::Shard {
            shard, settings, ..
        } => join_shard(rc, &user, &shard, &settings).await?,
    };
    session_response(session, pass)
}

#[utoipa::path(get, operation_id = "get_waitroom_session", path = "/api/events/{id}/waitroom/session", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path),
           ("Waitroom-Pass" = Option<String>, Header, description = "The latest pass the join or a poll gave (sharded waitrooms): any edge answers from it and the shard's snapshot without asking the shard; a stale, foreign or invalid pass is ignored, never an error")),
    responses((status = 200, body = WaitroomSessionEnvelope,
               headers(("Waitroom-Pass" = String, description = "Set when this answer read a queued fan's record from their shard: the pass to send from now on"))),
              (status = 401, body = crate::error::Problem),
              (status = 404, description = "No session for the caller", body = crate::error::Problem)))]
pub async fn session(rc: &mut RequestContext) -> ApiResult {
    let (user, door) = enter(rc, rc.actor()?, EventOp::UseWaitroomSession).await?;
    let (session, pass) = match door {
        FrontDoor::Hub(hub) => (hub.session(&user).await?, None),
        FrontDoor::Shard {
            shard,
            hub,
            settings,
        } => match session_from_snapshot(rc, &user, &settings, &shard).await {
            Some(session) => (Some(session), None),
            None => {
                let reply = shard.session(&user).await?;
                let pass = remember_fan(rc, &settings.event_id, &user, &reply);
                match reply.waitroom_session {
                    Some(session) => (Some(session), pass),
                    // Pre-queued in the event's own queue before the count was raised: the
                    // fan moves to their shard, where a pre-queue place is the same draw.
                    None => match hub.session(&user).await? {
                        Some(old) if old.status == SessionStatus::Queued => {
                            let (session, pass) = join_shard(rc, &user, &shard, &settings).await?;
                            (Some(session), pass)
                        }
                        _ => (None, None),
                    },
                }
            }
        },
    };
    session_response(session.ok_or(ApiError::NotFound)?, pass)
}

#[utoipa::path(delete, operation_id = "leave_waitroom", path = "/api/events/{id}/waitroom/session", tag = "waitroom", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "The place is given up"), (status = 401, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "CHECKOUT_IN_PROGRESS: an order holds the slot", body = crate::error::Problem)))]
pub async fn leave(rc: &mut RequestContext) -> ApiResult {
    let (user, door) = enter(rc, rc.actor()?, EventOp::UseWaitroomSession).await?;
    match door {
        FrontDoor::Hub(hub) => hub.leave(&user).await?,
        FrontDoor::Shard {
            shard,
            hub,
            settings,
        } => {
            let key = fan_key(&settings.event_id, &user);
            FANS.with(|f| f.borrow_mut().forget(&key));
            LEFT_HERE.with(|l| l.borrow_mut().put(&key, rc.now_ms, rc.now_ms));
            if shard.leave(&user).await? == LeaveOutcome::HeldByHub {
                // In checkout: the slot is the hub's to give back (refused while an order
                // holds it).
                hub.leave_checkout(&user).await?;
            }
        }
    }
    Ok(worker::Response::empty()?.with_status(204))
}

#[utoipa::path(get, operation_id = "waitroom_socket", path = "/api/events/{id}/waitroom/ws", tag = "waitroom",
    params(("id" = String, Path), ("token" = String, Query, description = "The caller's access token")),
    responses((status = 101, description = "WebSocket: position, admitted and expired messages; the fan may send {\"type\":\"ping\"} (answered with pong) in a burst of 5, then 1 a second, anything else is dropped unanswered; a fan keeps at most 4 sockets, a fifth closes the oldest with close code 4409"),
              (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 426, description = "Not a WebSocket upgrade")))]
pub async fn socket(rc: &mut RequestContext) -> ApiResult {
    // Browsers cannot set headers on a WebSocket, so the access token comes in the query.
    let url = rc.req.url()?;
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .ok_or(ApiError::Unauthenticated)?;
    let claims = rc
        .token_key()?
        .verify_access(&token, rc.now_ms)
        .map_err(|_| ApiError::Unauthenticated)?;
    let actor = Actor::User {
        platform_admin: claims.role == crate::domain::tokens::PlatformRole::Admin,
        id: crate::domain::ids::UserId::new(claims.sub),
    };
    // The object is told only the user this token proves: a socket can never follow
    // someone else's session.
    let (user, door) = enter(rc, actor, EventOp::UseWaitroomSession).await?;
    let forwarded = match door {
        FrontDoor::Hub(hub) => hub.forward_websocket(rc.req.clone()?, &user).await?,
        // The fan's socket lives on their shard: one tick's pushes spread over the shards.
        FrontDoor::Shard { shard, .. } => shard.forward_websocket(rc.req.clone()?, &user).await?,
    };
    Ok(forwarded)
}
