//! The virtual waitroom of one event: a pure state machine over a synchronous storage trait.
//!
//! The per-event Durable Object is the shell: it decodes a request, calls
//! [`Waitroom::apply`] with a [`WaitroomCommand`] and the current unix time in ms, and then
//! performs the returned [`WaitroomEffect`]s (publish domain events, push to sockets, set the
//! alarm). Nothing here reads a clock, talks to the network or imports `worker`.
//!
//! # Why the state lives behind [`WaitroomStore`]
//! A queue can hold a million sessions, so nothing is kept in memory between calls and no call
//! loads the queue (the one exception: the pre-queue shuffle at sale start reads the pre-queue's
//! join numbers once). Every store method is one indexed SQL statement; [`WAITROOM_SCHEMA`] is the
//! DDL and each method's doc names its SQL, so the shell's `SqlWaitroomStore` is a transcription.
//!
//! # Order and position
//! * Every session gets a `join_no` from a counter (pre-queue order, "latest session of a user").
//! * A session enters the queue with a `seq` from a strictly increasing counter: at join time
//!   after the sale opened, or at sale start for the shuffled pre-queue. Admission order is seq
//!   order, never a clock.
//! * Seqs are dense (1, 2, 3, ... with no gaps), so "sessions ahead of seq s" is `s − 1` minus those
//!   that already left the queue (admitted, left, expired). Departures are counted in a sparse
//!   Fenwick tree over seq ([`super::fenwick`]): position = `s − departed(1..s−1)`, at most
//!   [`fenwick::MAX_PATH_LEN`] rows read, one statement. A departure is one statement too.
//!
//! # Checkout slots
//! `slots_in_use` always equals the number of ADMITTED sessions: it moves only together with a
//! session's status, in the same command. A slot is taken at admission and freed when the
//! session leaves ADMITTED: order completed (COMPLETED), order failed/cancelled/expired
//! (EXPIRED), checkout token expired with no order bound (EXPIRED), or the user gives the place up
//! before ordering (LEFT). A session bound to an order keeps its slot past `checkout_expires_at`
//! until the order resolves: the inventory is held for that order. An order that never reached
//! a payment page (the provider could not create the payment) is unbound instead
//! ([`WaitroomCommand::UnbindOrder`]): the session stays ADMITTED with its original deadline.
//!
//! # Atomicity
//! Each phase of a command first reads everything it needs (the plan), then writes; an admission
//! tick either admits its whole plan or, if a read fails, writes nothing. Rules that refuse a
//! command ([`WaitroomRejection`]) are checked before the command writes, and come back inside an
//! `Ok` outcome together with the effects of the upkeep that ran first. An `Err`
//! ([`WaitroomError`]: storage failure, corrupt counters) can come after some statements ran, so
//! the shell runs each `apply` inside one storage transaction (`ctx.storage.transactionSync`,
//! which workers-rs 0.8 does not wrap: call it through `js_sys`) and lets `Err` roll it back.
//!
//! # Decisions worth knowing
//! * Session ids come from the shell (fresh uuid per join); join is idempotent per user, not per id.
//! * A user whose latest session ended (LEFT, EXPIRED, COMPLETED) and joins again gets a new
//!   session with a new seq at the back: a place cannot be parked and reclaimed.
//! * Closure (sale end or cancellation) is final once a command observes it. Queued sessions are
//!   then expired in batches of [`CLOSE_DRAIN_BATCH`] per command (the shell is woken right away
//!   until done); views report them EXPIRED at once, so nothing observable waits for the drain.
//! * Order failure ends the session as EXPIRED: the API has no FAILED status, and the slot must go
//!   to the next fan. The user may join again. The exception is a payment the provider could not
//!   create: the buyer never saw a payment page and did nothing wrong, so the order is unbound
//!   and the same checkout token may place another order until its own deadline.
//! * `Touch` writes `last_seen_at` at most every [`TOUCH_WRITE_INTERVAL_MS`], so polling fans do
//!   not turn every request into a write; idle detection is that much coarser.

use serde::{Deserialize, Serialize, Serializer};

use super::fenwick::{self, FenwickIndex, FenwickNodes};

/// Admission ticks are at most this far apart while anyone waits and a slot is free.
pub const TICK_INTERVAL_MS: i64 = 1_000;
/// A `Touch` closer than this to the last recorded sighting does not write.
pub const TOUCH_WRITE_INTERVAL_MS: i64 = 10_000;
/// Queued sessions expired per command once the sale has closed.
pub const CLOSE_DRAIN_BATCH: u64 = 256;
/// Unused checkouts expired per command (more are picked up by the next, scheduled at once).
pub const CHECKOUT_EXPIRY_BATCH: u64 = 256;
/// Queue-head rows one tick may look at, bounding the work when many idle fans sit at the head.
pub const HEAD_SCAN_LIMIT: u64 = 2_048;
/// Rows per `assign_seqs` statement when the pre-queue is placed.
pub const SHUFFLE_WRITE_CHUNK: usize = 1_000;
/// Weight of the newest measurement in the smoothed admission rate.
pub const RATE_SMOOTHING: f64 = 0.3;

pub const DEFAULT_MAX_CONCURRENT_CHECKOUTS: u32 = 100;
pub const DEFAULT_CHECKOUT_TTL_SECONDS: u32 = 900;
pub const DEFAULT_ADMISSION_BATCH: u32 = 100;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u32 = 600;

// ---------------------------------------------------------------------------------------------
// Configuration and stored records
// ---------------------------------------------------------------------------------------------

/// The organiser's waitroom settings plus the sale window. Changes apply from the next command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WaitroomConfig {
    /// Checkout slots: how many fans may hold a checkout at once. 0 pauses admission.
    pub max_concurrent_checkouts: u32,
    /// Lifetime of a checkout token (and of an admitted session with no order yet).
    pub checkout_ttl_seconds: u32,
    /// The most fans one admission tick lets in.
    pub admission_batch: u32,
    /// A queued fan not seen for this long is skipped when reaching the head.
    pub idle_timeout_seconds: u32,
    /// `ticketSaleStartDate` in unix ms: joins before it wait in the pre-queue.
    pub sale_starts_at: i64,
    /// `ticketSaleEndDate` in unix ms: the queue closes at it.
    pub sale_ends_at: i64,
    /// The event was cancelled: the queue closes, no one is admitted any more.
    pub cancelled: bool,
}

impl Default for WaitroomConfig {
    fn default() -> Self {
        Self {
            max_concurrent_checkouts: DEFAULT_MAX_CONCURRENT_CHECKOUTS,
            checkout_ttl_seconds: DEFAULT_CHECKOUT_TTL_SECONDS,
            admission_batch: DEFAULT_ADMISSION_BATCH,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            sale_starts_at: 0,
            sale_ends_at: i64::MAX,
            cancelled: false,
        }
    }
}

impl WaitroomConfig {
    /// Rejects settings under which the machine cannot work (a zero token lifetime would admit
    /// fans into an already expired checkout).
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.checkout_ttl_seconds == 0 {
            return Err("checkoutTtlSeconds must be at least 1");
        }
        if self.idle_timeout_seconds == 0 {
            return Err("idleTimeoutSeconds must be at least 1");
        }
        if self.sale_ends_at <= self.sale_starts_at {
            return Err("the sale must end after it starts");
        }
        Ok(())
    }

    fn checkout_ttl_ms(&self) -> i64 {
        i64::from(self.checkout_ttl_seconds) * 1_000
    }

    fn idle_timeout_ms(&self) -> i64 {
        i64::from(self.idle_timeout_seconds) * 1_000
    }

    /// Why the queue is closed at `now`, if it is.
    fn closure_at(&self, now: i64) -> Option<ClosedReason> {
        if self.cancelled {
            Some(ClosedReason::EventCancelled)
        } else if now >= self.sale_ends_at {
            Some(ClosedReason::SaleEnded)
        } else {
            None
        }
    }
}

/// The API's `waitroomSession.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    Queued,
    Admitted,
    Completed,
    Expired,
    Left,
}

impl SessionStatus {
    /// The stored (and serialized) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Admitted => "ADMITTED",
            Self::Completed => "COMPLETED",
            Self::Expired => "EXPIRED",
            Self::Left => "LEFT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Admitted,
            Self::Completed,
            Self::Expired,
            Self::Left,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Queued or in checkout: joining again returns this session.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Queued | Self::Admitted)
    }
}

/// Why a session ended: stored for support and shown to the fan ("skipped while away").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionEndReason {
    Left,
    Completed,
    IdleAtHead,
    SaleEnded,
    EventCancelled,
    CheckoutTokenExpired,
    OrderFailed,
    OrderCancelled,
    OrderExpired,
}

impl SessionEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "LEFT",
            Self::Completed => "COMPLETED",
            Self::IdleAtHead => "IDLE_AT_HEAD",
            Self::SaleEnded => "SALE_ENDED",
            Self::EventCancelled => "EVENT_CANCELLED",
            Self::CheckoutTokenExpired => "CHECKOUT_TOKEN_EXPIRED",
            Self::OrderFailed => "ORDER_FAILED",
            Self::OrderCancelled => "ORDER_CANCELLED",
            Self::OrderExpired => "ORDER_EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Left,
            Self::Completed,
            Self::IdleAtHead,
            Self::SaleEnded,
            Self::EventCancelled,
            Self::CheckoutTokenExpired,
            Self::OrderFailed,
            Self::OrderCancelled,
            Self::OrderExpired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Why the queue closed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClosedReason {
    SaleEnded,
    EventCancelled,
}

impl ClosedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SaleEnded => "SALE_ENDED",
            Self::EventCancelled => "EVENT_CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::SaleEnded, Self::EventCancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl From<ClosedReason> for SessionEndReason {
    fn from(reason: ClosedReason) -> Self {
        match reason {
            ClosedReason::SaleEnded => Self::SaleEnded,
            ClosedReason::EventCancelled => Self::EventCancelled,
        }
    }
}

/// One fan's stay in the waitroom: a row of `waitroom_session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSession {
    pub session_id: String,
    pub user_id: String,
    /// Order of joining across the whole waitroom (pre-queue order; latest session of a user).
    pub join_no: u64,
    /// Place in the admission order; `None` while waiting in the pre-queue.
    pub seq: Option<u64>,
    pub status: SessionStatus,
    pub joined_at: i64,
    /// Last time the fan was seen (join, poll, socket message): idle fans are skipped.
    pub last_seen_at: i64,
    pub admitted_at: Option<i64>,
    /// The checkout token's `exp`: set on admission.
    pub checkout_expires_at: Option<i64>,
    /// The order created with the checkout token; holds the slot until it resolves.
    pub order_id: Option<String>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<SessionEndReason>,
}

/// The waitroom's counters and flags: the single row of `waitroom_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomState {
    pub event_id: String,
    /// Seeds the pre-queue shuffle; fixed by the first `Configure` so it cannot be re-rolled.
    pub shuffle_seed: u64,
    /// The seq the next queued session gets (seqs start at 1 and have no gaps).
    pub next_seq: u64,
    pub next_join_no: u64,
    /// Sessions QUEUED with a seq.
    pub queued: u64,
    /// Sessions QUEUED in the pre-queue (no seq yet).
    pub prequeued: u64,
    /// Checkout slots taken: always the number of ADMITTED sessions.
    pub slots_in_use: u64,
    /// The pre-queue has been shuffled into the queue; joins now append.
    pub sale_opened: bool,
    pub closed: Option<ClosedReason>,
    pub last_tick_at: Option<i64>,
    pub last_admission_at: Option<i64>,
    /// Exponentially smoothed admissions per second; `None` until two admitting ticks.
    pub admission_rate: Option<f64>,
}

impl WaitroomState {
    pub fn new(event_id: String, shuffle_seed: u64) -> Self {
        Self {
            event_id,
            shuffle_seed,
            next_seq: 1,
            next_join_no: 1,
            queued: 0,
            prequeued: 0,
            slots_in_use: 0,
            sale_opened: false,
            closed: None,
            last_tick_at: None,
            last_admission_at: None,
            admission_rate: None,
        }
    }

    fn free_slots(&self, config: &WaitroomConfig) -> u64 {
        u64::from(config.max_concurrent_checkouts).saturating_sub(self.slots_in_use)
    }
}

/// A pre-queued session's place, written when the sale opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeqAssignment {
    pub join_no: u64,
    pub seq: u64,
}

// ---------------------------------------------------------------------------------------------
// What the shell sees
// ---------------------------------------------------------------------------------------------

/// The API's `waitroomSession` (the shell adds `checkoutToken`, minted from the session).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSessionView {
    pub session_id: String,
    pub event_id: String,
    pub status: SessionStatus,
    /// 1-based, QUEUED sessions in the queue only (a pre-queued session has none yet).
    pub position: Option<u64>,
    /// Fans waiting: the queue, or the pre-queue before the sale opens; 0 once closed.
    pub queue_length: u64,
    pub estimated_wait_seconds: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_rfc3339"
    )]
    pub checkout_expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<SessionEndReason>,
}

/// How an order made with a checkout token ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckoutOutcome {
    Completed,
    Failed,
    Cancelled,
    Expired,
}

/// What the shell asks of the waitroom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum WaitroomCommand {
    /// Creates the waitroom (first call) or updates its config. `event_id` and `shuffle_seed`
    /// are fixed by the first call; later calls must name the same event.
    Configure {
        event_id: String,
        config: WaitroomConfig,
        shuffle_seed: u64,
    },
    /// Idempotent per user: a live session is returned as is. `session_id` (a fresh uuid from
    /// the shell) is used only when a new session is created.
    Join { user_id: String, session_id: String },
    /// Gives the place (or the unused checkout) up. No-op without a live session.
    Leave { user_id: String },
    /// The fan was seen (poll, socket message); returns the fan's latest session.
    Touch { user_id: String },
    /// Alarm: open the sale, expire, admit.
    AdmissionTick,
    /// An order was created with the session's checkout token (checked for user and expiry).
    BindOrder {
        session_id: String,
        user_id: String,
        order_id: String,
    },
    /// The saga resolved an order. At-least-once: unknown or already handled orders are no-ops.
    CheckoutResolved {
        order_id: String,
        outcome: CheckoutOutcome,
    },
    /// The order did not go ahead before the buyer reached a payment page (the provider could
    /// not create the payment, or the order was never stored): its session stays ADMITTED with
    /// its original deadline and no order, so the same checkout token may place another. If
    /// that deadline has passed meanwhile, the checkout ends as an unused one does. At-least-
    /// once: an unknown order, or a session no longer ADMITTED, is a no-op.
    UnbindOrder { order_id: String },
}

/// Domain events for the event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum WaitroomEvent {
    QueueJoined {
        event_id: String,
        session: WaitroomSession,
        at: i64,
    },
    /// Admitted: the fan may check out until `session.checkout_expires_at`.
    QueueReady {
        event_id: String,
        session: WaitroomSession,
        at: i64,
    },
    QueueLeft {
        event_id: String,
        session: WaitroomSession,
        at: i64,
    },
    SessionExpired {
        event_id: String,
        session: WaitroomSession,
        reason: SessionEndReason,
        at: i64,
    },
    CheckoutCompleted {
        event_id: String,
        session: WaitroomSession,
        at: i64,
    },
    /// The pre-queue was shuffled into the queue (`shuffled` fans got seqs 1..=shuffled).
    SaleOpened {
        event_id: String,
        shuffled: u64,
        shuffle_seed: u64,
        at: i64,
    },
    QueueClosed {
        event_id: String,
        reason: ClosedReason,
        at: i64,
    },
}

/// What the shell must do after a command, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitroomEffect {
    /// Send to the domain-event queue.
    Publish(WaitroomEvent),
    /// Positions changed: push each connected fan its own `{"type":"position",...}`.
    HeadMoved { queue_length: u64 },
    /// Push `{"type":"admitted", checkoutToken, checkoutExpiresAt}` (token minted from `session`).
    Admitted { session: WaitroomSession },
    /// Push `{"type":"expired"}` to the fan's sockets.
    Expired { session: WaitroomSession },
    /// Set the alarm to this time (`None`: delete it). Always the last effect, always present:
    /// it is the complete answer, so the shell simply overwrites the alarm.
    NextWakeUp(Option<i64>),
}

/// The answer to one command.
///
/// A refused command is still an outcome, not an `Err`: the time-driven upkeep that ran before
/// it (sale opened, queue closed, checkouts expired) is written and its effects must be
/// performed, so the shell commits, performs `effects`, then answers with the rejection.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitroomOutcome {
    /// The session the command was about, as the API shows it (also when refused, if it is the
    /// caller's own).
    pub session: Option<WaitroomSessionView>,
    /// Why the command was refused; `None` when it was carried out.
    pub rejection: Option<WaitroomRejection>,
    pub effects: Vec<WaitroomEffect>,
}

impl WaitroomOutcome {
    pub fn next_wake_up(&self) -> Option<i64> {
        self.effects.iter().rev().find_map(|e| match e {
            WaitroomEffect::NextWakeUp(at) => *at,
            _ => None,
        })
    }
}

/// Whether a fan has a socket open right now: lets the tick treat a connected fan as seen
/// without the shell touching every socket (a hibernated socket wakes nothing).
pub trait Presence {
    fn is_connected(&self, user_id: &str) -> bool;
}

/// For callers that know nothing about sockets.
pub struct NobodyConnected;

impl Presence for NobodyConnected {
    fn is_connected(&self, _user_id: &str) -> bool {
        false
    }
}

impl<F: Fn(&str) -> bool> Presence for F {
    fn is_connected(&self, user_id: &str) -> bool {
        self(user_id)
    }
}

/// A command the rules refuse (the shell answers 4xx). Carried in [`WaitroomOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitroomRejection {
    #[error("the ticket sale is not open")]
    SaleNotOpen,
    #[error("no such waitroom session")]
    SessionNotFound,
    #[error("the session holds no active checkout")]
    CheckoutNotActive,
    #[error("the checkout is already bound to another order")]
    CheckoutAlreadyBound,
    #[error("the order is already bound to another checkout")]
    OrderAlreadyBound,
    #[error("the session has an order in progress")]
    CheckoutInProgress,
    #[error("a waitroom session with this id already exists")]
    DuplicateSessionId,
}

impl WaitroomRejection {
    /// The API error code (`problem+json` `code`).
    pub fn code(self) -> &'static str {
        match self {
            Self::SaleNotOpen => "SALE_NOT_OPEN",
            Self::SessionNotFound => "NOT_FOUND",
            Self::CheckoutNotActive | Self::CheckoutAlreadyBound | Self::OrderAlreadyBound => {
                "CHECKOUT_TOKEN_INVALID"
            }
            Self::CheckoutInProgress => "CHECKOUT_IN_PROGRESS",
            Self::DuplicateSessionId => "CONFLICT",
        }
    }
}

/// A command that could not be applied at all. Nothing it wrote may be kept: the shell runs
/// `apply` in a storage transaction and rolls back on `Err`.
#[derive(Debug, thiserror::Error)]
pub enum WaitroomError<E: std::error::Error + 'static> {
    /// No `Configure` yet: the shell has not set the waitroom up for this event.
    #[error("the waitroom has not been configured")]
    NotConfigured,
    #[error("the waitroom belongs to event {configured}, not {requested}")]
    EventMismatch {
        configured: String,
        requested: String,
    },
    #[error("invalid waitroom config: {0}")]
    InvalidConfig(&'static str),
    /// More than 2^40 seqs: cannot happen in a real on-sale.
    #[error("the waitroom queue is full")]
    QueueFull,
    /// Counters and rows disagree: a bug or a partially applied command (no transaction).
    #[error("waitroom state is inconsistent: {0}")]
    Corrupt(&'static str),
    #[error("waitroom storage failed")]
    Store(#[source] E),
}

impl<E: std::error::Error + 'static> From<E> for WaitroomError<E> {
    fn from(error: E) -> Self {
        Self::Store(error)
    }
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

/// SQLite DDL for the Durable Object (idempotent: run at object start).
///
/// Integers that are `u64` in Rust (seqs, counters, the seed) are stored as SQLite INTEGER; the
/// seed may exceed `i64::MAX` and is stored as its two's-complement bit pattern (`as i64`, read
/// back `as u64`). Times are unix ms. Booleans are 0/1.
pub const WAITROOM_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS waitroom_config (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  max_concurrent_checkouts INTEGER NOT NULL,
  checkout_ttl_seconds INTEGER NOT NULL,
  admission_batch INTEGER NOT NULL,
  idle_timeout_seconds INTEGER NOT NULL,
  sale_starts_at INTEGER NOT NULL,
  sale_ends_at INTEGER NOT NULL,
  cancelled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS waitroom_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  event_id TEXT NOT NULL,
  shuffle_seed INTEGER NOT NULL,
  next_seq INTEGER NOT NULL,
  next_join_no INTEGER NOT NULL,
  queued INTEGER NOT NULL,
  prequeued INTEGER NOT NULL,
  slots_in_use INTEGER NOT NULL,
  sale_opened INTEGER NOT NULL,
  closed_reason TEXT,
  last_tick_at INTEGER,
  last_admission_at INTEGER,
  admission_rate REAL
);
CREATE TABLE IF NOT EXISTS waitroom_session (
  session_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  join_no INTEGER NOT NULL,
  seq INTEGER,
  status TEXT NOT NULL CHECK (status IN ('QUEUED','ADMITTED','COMPLETED','EXPIRED','LEFT')),
  joined_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  admitted_at INTEGER,
  checkout_expires_at INTEGER,
  order_id TEXT,
  ended_at INTEGER,
  end_reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS waitroom_session_join_no ON waitroom_session (join_no);
CREATE INDEX IF NOT EXISTS waitroom_session_user ON waitroom_session (user_id, join_no);
CREATE UNIQUE INDEX IF NOT EXISTS waitroom_session_order ON waitroom_session (order_id)
  WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS waitroom_session_queue ON waitroom_session (seq)
  WHERE status = 'QUEUED' AND seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS waitroom_session_prequeue ON waitroom_session (join_no)
  WHERE status = 'QUEUED' AND seq IS NULL;
CREATE INDEX IF NOT EXISTS waitroom_session_checkout_expiry
  ON waitroom_session (checkout_expires_at)
  WHERE status = 'ADMITTED' AND order_id IS NULL;
CREATE TABLE IF NOT EXISTS waitroom_fenwick (
  node INTEGER PRIMARY KEY,
  departed INTEGER NOT NULL
);
";

/// The waitroom's storage: each method is one indexed statement (given in its doc).
///
/// `<session columns>` is `session_id, user_id, join_no, seq, status, joined_at, last_seen_at,
/// admitted_at, checkout_expires_at, order_id, ended_at, end_reason`. The Fenwick nodes come
/// from the [`FenwickNodes`] supertrait (table `waitroom_fenwick`).
pub trait WaitroomStore: FenwickNodes {
    /// `SELECT max_concurrent_checkouts, checkout_ttl_seconds, admission_batch,
    /// idle_timeout_seconds, sale_starts_at, sale_ends_at, cancelled
    /// FROM waitroom_config WHERE id = 1`
    fn load_config(&mut self) -> Result<Option<WaitroomConfig>, Self::Error>;

    /// `INSERT INTO waitroom_config (id, max_concurrent_checkouts, ..., cancelled)
    /// VALUES (1, ?1, ..., ?7) ON CONFLICT(id) DO UPDATE SET
    /// max_concurrent_checkouts = excluded.max_concurrent_checkouts, ...`
    fn save_config(&mut self, config: &WaitroomConfig) -> Result<(), Self::Error>;

    /// `SELECT event_id, shuffle_seed, next_seq, next_join_no, queued, prequeued, slots_in_use,
    /// sale_opened, closed_reason, last_tick_at, last_admission_at, admission_rate
    /// FROM waitroom_state WHERE id = 1`
    fn load_state(&mut self) -> Result<Option<WaitroomState>, Self::Error>;

    /// `INSERT INTO waitroom_state (id, event_id, ...) VALUES (1, ?1, ...)
    /// ON CONFLICT(id) DO UPDATE SET event_id = excluded.event_id, ...`
    fn save_state(&mut self, state: &WaitroomState) -> Result<(), Self::Error>;

    /// `SELECT <session columns> FROM waitroom_session WHERE session_id = ?1`
    fn session(&mut self, session_id: &str) -> Result<Option<WaitroomSession>, Self::Error>;

    /// The user's most recent session (index `waitroom_session_user`):
    /// `SELECT <session columns> FROM waitroom_session WHERE user_id = ?1
    /// ORDER BY join_no DESC LIMIT 1`
    fn latest_session_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<WaitroomSession>, Self::Error>;

    /// (index `waitroom_session_order`):
    /// `SELECT <session columns> FROM waitroom_session WHERE order_id = ?1`
    fn session_by_order(&mut self, order_id: &str) -> Result<Option<WaitroomSession>, Self::Error>;

    /// Insert or update by `session_id`:
    /// `INSERT INTO waitroom_session (<session columns>) VALUES (?1, ..., ?12)
    /// ON CONFLICT(session_id) DO UPDATE SET seq = excluded.seq, status = excluded.status,
    /// last_seen_at = excluded.last_seen_at, admitted_at = excluded.admitted_at,
    /// checkout_expires_at = excluded.checkout_expires_at, order_id = excluded.order_id,
    /// ended_at = excluded.ended_at, end_reason = excluded.end_reason`
    fn put_session(&mut self, session: &WaitroomSession) -> Result<(), Self::Error>;

    /// The lowest-seq queued sessions after `after_seq`, in seq order (index
    /// `waitroom_session_queue`):
    /// `SELECT <session columns> FROM waitroom_session
    /// WHERE status = 'QUEUED' AND seq IS NOT NULL AND seq > ?1 ORDER BY seq LIMIT ?2`
    fn queue_head(
        &mut self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error>;

    /// The pre-queue in join order (index `waitroom_session_prequeue`):
    /// `SELECT <session columns> FROM waitroom_session
    /// WHERE status = 'QUEUED' AND seq IS NULL ORDER BY join_no LIMIT ?1`
    fn prequeued_sessions(&mut self, limit: u64) -> Result<Vec<WaitroomSession>, Self::Error>;

    /// The whole pre-queue's join numbers in join order, for the shuffle at sale start
    /// (covered by index `waitroom_session_prequeue`):
    /// `SELECT join_no FROM waitroom_session WHERE status = 'QUEUED' AND seq IS NULL
    /// ORDER BY join_no`
    fn prequeue_join_numbers(&mut self) -> Result<Vec<u64>, Self::Error>;

    /// Places pre-queued sessions (index `waitroom_session_join_no`), `?1` being the JSON array
    /// `[[join_no, seq], ...]` (at most [`SHUFFLE_WRITE_CHUNK`] pairs):
    /// `UPDATE waitroom_session SET seq = json_extract(a.value, '$[1]')
    /// FROM json_each(?1) AS a WHERE waitroom_session.join_no = json_extract(a.value, '$[0]')`
    fn assign_seqs(&mut self, assignments: &[SeqAssignment]) -> Result<(), Self::Error>;

    /// Admitted sessions with no order whose token has expired (index
    /// `waitroom_session_checkout_expiry`):
    /// `SELECT <session columns> FROM waitroom_session
    /// WHERE status = 'ADMITTED' AND order_id IS NULL AND checkout_expires_at <= ?1
    /// ORDER BY checkout_expires_at LIMIT ?2`
    fn overdue_checkouts(
        &mut self,
        now: i64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error>;

    /// When the next unused checkout expires (same index):
    /// `SELECT checkout_expires_at FROM waitroom_session
    /// WHERE status = 'ADMITTED' AND order_id IS NULL ORDER BY checkout_expires_at LIMIT 1`
    fn earliest_checkout_expiry(&mut self) -> Result<Option<i64>, Self::Error>;
}

// ---------------------------------------------------------------------------------------------
// The pre-queue shuffle
// ---------------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-studied generator; its stream from a
/// stored seed is reproducible, so an audit can replay the pre-queue order.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` ≥ 1), without modulo bias: draws below the largest
    /// multiple of `bound` are rejected.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        // 2^64 mod bound: the values [0, threshold) are the biased remainder and are redrawn.
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let draw = self.next_u64();
            if draw >= threshold {
                return draw % bound;
            }
        }
    }
}

/// Fisher–Yates: every permutation of `items` equally likely, fixed by `seed`.
pub fn shuffle_prequeue<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------------------------

/// The waitroom of one event over its store.
pub struct Waitroom<S> {
    store: S,
}

/// The working copy of one command: loaded once, saved once.
struct Step {
    now: i64,
    config: WaitroomConfig,
    state: WaitroomState,
    loaded: Option<WaitroomState>,
    effects: Vec<WaitroomEffect>,
    head_moved: bool,
}

impl Step {
    fn publish(&mut self, event: WaitroomEvent) {
        self.effects.push(WaitroomEffect::Publish(event));
    }
}

/// What a command decided: the session it concerned and, when refused, why.
struct Handled {
    session: Option<WaitroomSession>,
    rejection: Option<WaitroomRejection>,
}

impl Handled {
    fn accepted(session: Option<WaitroomSession>) -> Self {
        Self {
            session,
            rejection: None,
        }
    }

    fn rejected(rejection: WaitroomRejection, session: Option<WaitroomSession>) -> Self {
        Self {
            session,
            rejection: Some(rejection),
        }
    }
}

type WaitroomResult<T, S> = Result<T, WaitroomError<<S as FenwickNodes>::Error>>;

fn decrement<E: std::error::Error + 'static>(
    counter: &mut u64,
    what: &'static str,
) -> Result<(), WaitroomError<E>> {
    *counter = counter.checked_sub(1).ok_or(WaitroomError::Corrupt(what))?;
    Ok(())
}

impl<S: WaitroomStore> Waitroom<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// Applies one command at `now` (unix ms) for a shell that knows nothing about sockets.
    pub fn apply(
        &mut self,
        command: WaitroomCommand,
        now: i64,
    ) -> WaitroomResult<WaitroomOutcome, S> {
        self.apply_with_presence(command, now, &NobodyConnected)
    }

    /// Applies one command at `now`; `presence` lets the admission tick keep connected fans.
    ///
    /// Every command first does the time-driven upkeep (observe closure and expire the closed
    /// queue, open the sale and shuffle the pre-queue, expire unused checkouts), so whichever
    /// command arrives first after a deadline sees the same state the alarm would have made.
    pub fn apply_with_presence(
        &mut self,
        command: WaitroomCommand,
        now: i64,
        presence: &dyn Presence,
    ) -> WaitroomResult<WaitroomOutcome, S> {
        let mut step = match &command {
            WaitroomCommand::Configure {
                event_id,
                config,
                shuffle_seed,
            } => self.begin_configure(event_id, config, *shuffle_seed, now)?,
            _ => self.begin(now)?,
        };
        self.upkeep(&mut step)?;
        let handled = match command {
            WaitroomCommand::Configure { .. } => Handled::accepted(None),
            WaitroomCommand::Join {
                user_id,
                session_id,
            } => self.join(&mut step, user_id, session_id)?,
            WaitroomCommand::Leave { user_id } => self.leave(&mut step, &user_id)?,
            WaitroomCommand::Touch { user_id } => self.touch(&mut step, &user_id)?,
            WaitroomCommand::AdmissionTick => {
                self.admission_tick(&mut step, presence)?;
                Handled::accepted(None)
            }
            WaitroomCommand::BindOrder {
                session_id,
                user_id,
                order_id,
            } => self.bind_order(&mut step, &session_id, &user_id, order_id)?,
            WaitroomCommand::CheckoutResolved { order_id, outcome } => {
                self.checkout_resolved(&mut step, &order_id, outcome)?
            }
            WaitroomCommand::UnbindOrder { order_id } => self.unbind_order(&mut step, &order_id)?,
        };
        self.finish(step, handled)
    }

    /// The user's latest session as the API shows it at `now`, without changing anything.
    pub fn view_of_user(
        &mut self,
        user_id: &str,
        now: i64,
    ) -> WaitroomResult<Option<WaitroomSessionView>, S> {
        let Some(session) = self.store.latest_session_of_user(user_id)? else {
            return Ok(None);
        };
        self.view_at(&session, now).map(Some)
    }

    /// Many fans' latest sessions at `now` (for the pushes after [`WaitroomEffect::HeadMoved`]):
    /// config and state are read once, then each fan costs one session read and one prefix sum.
    pub fn views_of_users<'u>(
        &mut self,
        user_ids: impl IntoIterator<Item = &'u str>,
        now: i64,
    ) -> WaitroomResult<Vec<(&'u str, Option<WaitroomSessionView>)>, S> {
        let config = self
            .store
            .load_config()?
            .ok_or(WaitroomError::NotConfigured)?;
        let state = self
            .store
            .load_state()?
            .ok_or(WaitroomError::NotConfigured)?;
        let mut views = Vec::new();
        for user_id in user_ids {
            let view = match self.store.latest_session_of_user(user_id)? {
                Some(session) => Some(self.view(&session, &config, &state, now)?),
                None => None,
            };
            views.push((user_id, view));
        }
        Ok(views)
    }

    /// A session by id as the API shows it at `now`, without changing anything.
    pub fn view_of_session(
        &mut self,
        session_id: &str,
        now: i64,
    ) -> WaitroomResult<Option<WaitroomSessionView>, S> {
        let Some(session) = self.store.session(session_id)? else {
            return Ok(None);
        };
        self.view_at(&session, now).map(Some)
    }

    fn view_at(
        &mut self,
        session: &WaitroomSession,
        now: i64,
    ) -> WaitroomResult<WaitroomSessionView, S> {
        let config = self
            .store
            .load_config()?
            .ok_or(WaitroomError::NotConfigured)?;
        let state = self
            .store
            .load_state()?
            .ok_or(WaitroomError::NotConfigured)?;
        self.view(session, &config, &state, now)
    }

    fn begin(&mut self, now: i64) -> WaitroomResult<Step, S> {
        let config = self
            .store
            .load_config()?
            .ok_or(WaitroomError::NotConfigured)?;
        let state = self
            .store
            .load_state()?
            .ok_or(WaitroomError::NotConfigured)?;
        Ok(Step {
            now,
            config,
            loaded: Some(state.clone()),
            state,
            effects: Vec::new(),
            head_moved: false,
        })
    }

    fn begin_configure(
        &mut self,
        event_id: &str,
        config: &WaitroomConfig,
        shuffle_seed: u64,
        now: i64,
    ) -> WaitroomResult<Step, S> {
        config.validate().map_err(WaitroomError::InvalidConfig)?;
        let loaded = self.store.load_state()?;
        let state = match &loaded {
            Some(state) if state.event_id != event_id => {
                return Err(WaitroomError::EventMismatch {
                    configured: state.event_id.clone(),
                    requested: event_id.to_owned(),
                });
            }
            Some(state) => state.clone(),
            None => WaitroomState::new(event_id.to_owned(), shuffle_seed),
        };
        self.store.save_config(config)?;
        Ok(Step {
            now,
            config: config.clone(),
            state,
            loaded,
            effects: Vec::new(),
            head_moved: false,
        })
    }

    fn upkeep(&mut self, step: &mut Step) -> WaitroomResult<(), S> {
        if step.state.closed.is_none() {
            if let Some(reason) = step.config.closure_at(step.now) {
                step.state.closed = Some(reason);
                step.publish(WaitroomEvent::QueueClosed {
                    event_id: step.state.event_id.clone(),
                    reason,
                    at: step.now,
                });
            }
        }
        if let Some(reason) = step.state.closed {
            self.drain_closed_queue(step, reason)?;
        } else if !step.state.sale_opened && step.now >= step.config.sale_starts_at {
            self.open_sale(step)?;
        }
        self.expire_unused_checkouts(step)
    }

    /// Places the pre-queue in a uniformly random order: seqs `next_seq..` (1.. in practice).
    fn open_sale(&mut self, step: &mut Step) -> WaitroomResult<(), S> {
        let mut join_numbers = if step.state.prequeued > 0 {
            self.store.prequeue_join_numbers()?
        } else {
            Vec::new()
        };
        if join_numbers.len() as u64 != step.state.prequeued {
            return Err(WaitroomError::Corrupt(
                "pre-queue count differs from its rows",
            ));
        }
        shuffle_prequeue(&mut join_numbers, step.state.shuffle_seed);
        let first_seq = step.state.next_seq;
        let count = join_numbers.len() as u64;
        let next_seq = first_seq
            .checked_add(count)
            .filter(|next| *next - 1 <= fenwick::MAX_INDEX)
            .ok_or(WaitroomError::QueueFull)?;
        let assignments: Vec<SeqAssignment> = join_numbers
            .iter()
            .zip(first_seq..)
            .map(|(join_no, seq)| SeqAssignment {
                join_no: *join_no,
                seq,
            })
            .collect();
        for chunk in assignments.chunks(SHUFFLE_WRITE_CHUNK) {
            self.store.assign_seqs(chunk)?;
        }
        step.state.next_seq = next_seq;
        step.state.queued += count;
        step.state.prequeued = 0;
        step.state.sale_opened = true;
        step.head_moved |= count > 0;
        step.publish(WaitroomEvent::SaleOpened {
            event_id: step.state.event_id.clone(),
            shuffled: count,
            shuffle_seed: step.state.shuffle_seed,
            at: step.now,
        });
        Ok(())
    }

    /// Expires the next batch of sessions still waiting in a closed queue.
    fn drain_closed_queue(
        &mut self,
        step: &mut Step,
        reason: ClosedReason,
    ) -> WaitroomResult<(), S> {
        let mut batch = Vec::new();
        if step.state.prequeued > 0 {
            batch = self.store.prequeued_sessions(CLOSE_DRAIN_BATCH)?;
        }
        let room = CLOSE_DRAIN_BATCH.saturating_sub(batch.len() as u64);
        if room > 0 && step.state.queued > 0 {
            batch.extend(self.store.queue_head(0, room)?);
        }
        for mut session in batch {
            self.remove_from_queue(step, &session)?;
            self.end_as_expired(step, &mut session, reason.into())?;
        }
        Ok(())
    }

    fn expire_unused_checkouts(&mut self, step: &mut Step) -> WaitroomResult<(), S> {
        if step.state.slots_in_use == 0 {
            return Ok(());
        }
        let overdue = self
            .store
            .overdue_checkouts(step.now, CHECKOUT_EXPIRY_BATCH)?;
        for mut session in overdue {
            decrement(
                &mut step.state.slots_in_use,
                "checkout slot count underflow",
            )?;
            self.end_as_expired(step, &mut session, SessionEndReason::CheckoutTokenExpired)?;
        }
        Ok(())
    }

    fn join(
        &mut self,
        step: &mut Step,
        user_id: String,
        session_id: String,
    ) -> WaitroomResult<Handled, S> {
        if step.state.closed.is_some() {
            return Ok(Handled::rejected(WaitroomRejection::SaleNotOpen, None));
        }
        if let Some(mut existing) = self.store.latest_session_of_user(&user_id)? {
            if existing.status.is_live() {
                self.mark_seen(step, &mut existing)?;
                return Ok(Handled::accepted(Some(existing)));
            }
        }
        if self.store.session(&session_id)?.is_some() {
            return Ok(Handled::rejected(
                WaitroomRejection::DuplicateSessionId,
                None,
            ));
        }
        let seq = if step.state.sale_opened {
            let seq = step.state.next_seq;
            FenwickIndex::new(seq).ok_or(WaitroomError::QueueFull)?;
            step.state.next_seq += 1;
            step.state.queued += 1;
            Some(seq)
        } else {
            step.state.prequeued += 1;
            None
        };
        let join_no = step.state.next_join_no;
        step.state.next_join_no += 1;
        let session = WaitroomSession {
            session_id,
            user_id,
            join_no,
            seq,
            status: SessionStatus::Queued,
            joined_at: step.now,
            last_seen_at: step.now,
            admitted_at: None,
            checkout_expires_at: None,
            order_id: None,
            ended_at: None,
            end_reason: None,
        };
        self.store.put_session(&session)?;
        step.publish(WaitroomEvent::QueueJoined {
            event_id: step.state.event_id.clone(),
            session: session.clone(),
            at: step.now,
        });
        Ok(Handled::accepted(Some(session)))
    }

    fn leave(&mut self, step: &mut Step, user_id: &str) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.latest_session_of_user(user_id)? else {
            return Ok(Handled::accepted(None));
        };
        match session.status {
            // A closed queue's sessions are already over; the drain records it.
            SessionStatus::Queued if step.state.closed.is_some() => {}
            SessionStatus::Queued => {
                self.remove_from_queue(step, &session)?;
                self.end_as_left(step, &mut session)?;
            }
            SessionStatus::Admitted if session.order_id.is_some() => {
                // The slot belongs to the pending order until the saga resolves it.
                return Ok(Handled::rejected(
                    WaitroomRejection::CheckoutInProgress,
                    Some(session),
                ));
            }
            SessionStatus::Admitted => {
                decrement(
                    &mut step.state.slots_in_use,
                    "checkout slot count underflow",
                )?;
                self.end_as_left(step, &mut session)?;
            }
            SessionStatus::Completed | SessionStatus::Expired | SessionStatus::Left => {}
        }
        Ok(Handled::accepted(Some(session)))
    }

    fn touch(&mut self, step: &mut Step, user_id: &str) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.latest_session_of_user(user_id)? else {
            return Ok(Handled::accepted(None));
        };
        if step.state.closed.is_none() {
            self.mark_seen(step, &mut session)?;
        }
        Ok(Handled::accepted(Some(session)))
    }

    /// Records a sighting of a queued fan, at most once per [`TOUCH_WRITE_INTERVAL_MS`].
    fn mark_seen(&mut self, step: &Step, session: &mut WaitroomSession) -> WaitroomResult<(), S> {
        if session.status == SessionStatus::Queued
            && step.now.saturating_sub(session.last_seen_at) >= TOUCH_WRITE_INTERVAL_MS
        {
            session.last_seen_at = step.now;
            self.store.put_session(session)?;
        }
        Ok(())
    }

    /// Admits up to `min(free slots, admissionBatch)` fans in seq order, skipping idle ones.
    fn admission_tick(
        &mut self,
        step: &mut Step,
        presence: &dyn Presence,
    ) -> WaitroomResult<(), S> {
        step.state.last_tick_at = Some(step.now);
        if step.state.closed.is_some() || !step.state.sale_opened {
            return Ok(());
        }
        let wanted = step
            .state
            .free_slots(&step.config)
            .min(u64::from(step.config.admission_batch));

        // Plan: read the head until enough fans are found, deciding each; nothing written yet.
        let idle_before = step.now.saturating_sub(step.config.idle_timeout_ms());
        let mut plan: Vec<(WaitroomSession, bool)> = Vec::new();
        let mut admitted = 0u64;
        let mut scanned = 0u64;
        let mut after_seq = 0u64;
        while admitted < wanted && scanned < HEAD_SCAN_LIMIT {
            let limit = (wanted - admitted).min(HEAD_SCAN_LIMIT - scanned);
            let head = self.store.queue_head(after_seq, limit)?;
            if head.is_empty() {
                break;
            }
            for session in head {
                scanned += 1;
                after_seq = session.seq.unwrap_or(after_seq);
                let idle =
                    session.last_seen_at <= idle_before && !presence.is_connected(&session.user_id);
                admitted += u64::from(!idle);
                plan.push((session, !idle));
                if admitted >= wanted {
                    break;
                }
            }
        }

        // Write.
        let expires_at = step.now.saturating_add(step.config.checkout_ttl_ms());
        for (mut session, admit) in plan {
            self.remove_from_queue(step, &session)?;
            if !admit {
                self.end_as_expired(step, &mut session, SessionEndReason::IdleAtHead)?;
                continue;
            }
            session.status = SessionStatus::Admitted;
            session.admitted_at = Some(step.now);
            session.checkout_expires_at = Some(expires_at);
            self.store.put_session(&session)?;
            step.state.slots_in_use += 1;
            step.publish(WaitroomEvent::QueueReady {
                event_id: step.state.event_id.clone(),
                session: session.clone(),
                at: step.now,
            });
            step.effects.push(WaitroomEffect::Admitted { session });
        }
        if admitted > 0 {
            self.record_admissions(step, admitted);
        }
        Ok(())
    }

    /// Smooths admissions per second over the gaps between admitting ticks.
    fn record_admissions(&self, step: &mut Step, admitted: u64) {
        if let Some(previous) = step.state.last_admission_at {
            let gap_ms = step.now.saturating_sub(previous).max(1);
            let measured = admitted as f64 * 1_000.0 / gap_ms as f64;
            step.state.admission_rate = Some(match step.state.admission_rate {
                Some(rate) => rate + RATE_SMOOTHING * (measured - rate),
                None => measured,
            });
        }
        step.state.last_admission_at = Some(step.now);
    }

    fn bind_order(
        &mut self,
        step: &mut Step,
        session_id: &str,
        user_id: &str,
        order_id: String,
    ) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.session(session_id)? else {
            return Ok(Handled::rejected(WaitroomRejection::SessionNotFound, None));
        };
        if session.user_id != user_id {
            // Someone else's session: say nothing about it.
            return Ok(Handled::rejected(
                WaitroomRejection::CheckoutNotActive,
                None,
            ));
        }
        if session.order_id.as_deref() == Some(order_id.as_str()) {
            // A retried order creation: already bound.
            return Ok(Handled::accepted(Some(session)));
        }
        let refusal = if session.status != SessionStatus::Admitted {
            Some(WaitroomRejection::CheckoutNotActive)
        } else if session.order_id.is_some() {
            Some(WaitroomRejection::CheckoutAlreadyBound)
        } else if session.checkout_expires_at.is_none_or(|at| step.now >= at) {
            // The token's own expiry, checked here too: an overdue checkout may not be swept yet.
            Some(WaitroomRejection::CheckoutNotActive)
        } else if self.store.session_by_order(&order_id)?.is_some() {
            Some(WaitroomRejection::OrderAlreadyBound)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Ok(Handled::rejected(refusal, Some(session)));
        }
        session.order_id = Some(order_id);
        self.store.put_session(&session)?;
        Ok(Handled::accepted(Some(session)))
    }

    fn checkout_resolved(
        &mut self,
        step: &mut Step,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.session_by_order(order_id)? else {
            return Ok(Handled::accepted(None));
        };
        if session.status != SessionStatus::Admitted {
            // A redelivery: the slot was freed the first time.
            return Ok(Handled::accepted(Some(session)));
        }
        decrement(
            &mut step.state.slots_in_use,
            "checkout slot count underflow",
        )?;
        let reason = match outcome {
            CheckoutOutcome::Completed => {
                session.status = SessionStatus::Completed;
                session.ended_at = Some(step.now);
                session.end_reason = Some(SessionEndReason::Completed);
                self.store.put_session(&session)?;
                step.publish(WaitroomEvent::CheckoutCompleted {
                    event_id: step.state.event_id.clone(),
                    session: session.clone(),
                    at: step.now,
                });
                return Ok(Handled::accepted(Some(session)));
            }
            CheckoutOutcome::Failed => SessionEndReason::OrderFailed,
            CheckoutOutcome::Cancelled => SessionEndReason::OrderCancelled,
            CheckoutOutcome::Expired => SessionEndReason::OrderExpired,
        };
        self.end_as_expired(step, &mut session, reason)?;
        Ok(Handled::accepted(Some(session)))
    }

    fn unbind_order(&mut self, step: &mut Step, order_id: &str) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.session_by_order(order_id)? else {
            // Never bound, or already unbound (a redelivery): nothing to give back.
            return Ok(Handled::accepted(None));
        };
        if session.status != SessionStatus::Admitted {
            // The checkout already ended; its record keeps the order it ended with.
            return Ok(Handled::accepted(Some(session)));
        }
        session.order_id = None;
        if session.checkout_expires_at.is_none_or(|at| step.now >= at) {
            // The token ran out while the order held the slot: without the order nothing holds
            // it any more, so it goes now rather than on the next sweep.
            decrement(
                &mut step.state.slots_in_use,
                "checkout slot count underflow",
            )?;
            self.end_as_expired(step, &mut session, SessionEndReason::CheckoutTokenExpired)?;
        } else {
            self.store.put_session(&session)?;
        }
        Ok(Handled::accepted(Some(session)))
    }

    /// Counts a queued session out of the queue: a departure in the Fenwick tree moves every
    /// fan behind it up by one.
    fn remove_from_queue(
        &mut self,
        step: &mut Step,
        session: &WaitroomSession,
    ) -> WaitroomResult<(), S> {
        match session.seq {
            Some(seq) => {
                let index =
                    FenwickIndex::new(seq).ok_or(WaitroomError::Corrupt("seq outside the tree"))?;
                fenwick::add(&mut self.store, index, 1)?;
                decrement(&mut step.state.queued, "queued count underflow")?;
                step.head_moved = true;
            }
            None => decrement(&mut step.state.prequeued, "pre-queue count underflow")?,
        }
        Ok(())
    }

    fn end_as_expired(
        &mut self,
        step: &mut Step,
        session: &mut WaitroomSession,
        reason: SessionEndReason,
    ) -> WaitroomResult<(), S> {
        session.status = SessionStatus::Expired;
        session.ended_at = Some(step.now);
        session.end_reason = Some(reason);
        self.store.put_session(session)?;
        step.publish(WaitroomEvent::SessionExpired {
            event_id: step.state.event_id.clone(),
            session: session.clone(),
            reason,
            at: step.now,
        });
        step.effects.push(WaitroomEffect::Expired {
            session: session.clone(),
        });
        Ok(())
    }

    fn end_as_left(
        &mut self,
        step: &mut Step,
        session: &mut WaitroomSession,
    ) -> WaitroomResult<(), S> {
        session.status = SessionStatus::Left;
        session.ended_at = Some(step.now);
        session.end_reason = Some(SessionEndReason::Left);
        self.store.put_session(session)?;
        step.publish(WaitroomEvent::QueueLeft {
            event_id: step.state.event_id.clone(),
            session: session.clone(),
            at: step.now,
        });
        Ok(())
    }

    fn finish(&mut self, mut step: Step, handled: Handled) -> WaitroomResult<WaitroomOutcome, S> {
        if step.head_moved {
            step.effects.push(WaitroomEffect::HeadMoved {
                queue_length: step.state.queued,
            });
        }
        let wake = self.next_wake_up(&step)?;
        step.effects.push(WaitroomEffect::NextWakeUp(wake));
        if step.loaded.as_ref() != Some(&step.state) {
            self.store.save_state(&step.state)?;
        }
        let view = match handled.session {
            Some(session) => Some(self.view(&session, &step.config, &step.state, step.now)?),
            None => None,
        };
        Ok(WaitroomOutcome {
            session: view,
            rejection: handled.rejection,
            effects: step.effects,
        })
    }

    /// The earliest moment something is due: the closed queue's drain, sale start for a
    /// pre-queue, the next admission tick (only while someone waits and a slot is free; a freed
    /// slot comes with a command that recomputes this), an unused checkout's expiry, sale end.
    fn next_wake_up(&mut self, step: &Step) -> WaitroomResult<Option<i64>, S> {
        let state = &step.state;
        let now = step.now;
        let waiting = state.queued + state.prequeued > 0;
        let mut due: Option<i64> = None;
        let mut consider = |at: i64| due = Some(due.map_or(at, |d: i64| d.min(at)));
        if state.closed.is_some() {
            if waiting {
                consider(now);
            }
        } else {
            if waiting {
                consider(step.config.sale_ends_at);
            }
            if !state.sale_opened {
                if state.prequeued > 0 {
                    consider(step.config.sale_starts_at.max(now));
                }
            } else if state.queued > 0
                && state.free_slots(&step.config) > 0
                && step.config.admission_batch > 0
            {
                // From the last tick, not from now: a stream of joins must not keep pushing the
                // alarm back.
                consider(
                    state
                        .last_tick_at
                        .map_or(now, |t| t.saturating_add(TICK_INTERVAL_MS).max(now)),
                );
            }
        }
        if state.slots_in_use > 0 {
            if let Some(at) = self.store.earliest_checkout_expiry()? {
                consider(at.max(now));
            }
        }
        Ok(due)
    }

    fn view(
        &mut self,
        session: &WaitroomSession,
        config: &WaitroomConfig,
        state: &WaitroomState,
        now: i64,
    ) -> WaitroomResult<WaitroomSessionView, S> {
        let closure = state.closed.or_else(|| config.closure_at(now));
        let (status, end_reason) = match (session.status, closure) {
            (SessionStatus::Queued, Some(reason)) => (SessionStatus::Expired, Some(reason.into())),
            (status, _) => (status, session.end_reason),
        };
        let queue_length = if closure.is_some() {
            0
        } else if state.sale_opened {
            state.queued
        } else {
            state.prequeued
        };
        let position = match (status, session.seq) {
            (SessionStatus::Queued, Some(seq)) => Some(self.position_of(seq)?),
            _ => None,
        };
        Ok(WaitroomSessionView {
            session_id: session.session_id.clone(),
            event_id: state.event_id.clone(),
            status,
            position,
            queue_length,
            estimated_wait_seconds: position
                .and_then(|p| estimated_wait_seconds(p, state.admission_rate)),
            checkout_expires_at: if status == SessionStatus::Admitted {
                session.checkout_expires_at
            } else {
                None
            },
            end_reason,
        })
    }

    /// 1-based place of a queued seq: everyone with a smaller seq who has not departed, plus one.
    fn position_of(&mut self, seq: u64) -> WaitroomResult<u64, S> {
        let departed = fenwick::prefix_sum(&mut self.store, seq.saturating_sub(1))?;
        u64::try_from(departed)
            .ok()
            .and_then(|d| seq.checked_sub(d))
            .filter(|p| *p >= 1)
            .ok_or(WaitroomError::Corrupt(
                "more departures ahead than sessions",
            ))
    }
}

/// Seconds until a fan at `position` is admitted at the measured rate; `None` before a rate.
pub fn estimated_wait_seconds(position: u64, admissions_per_second: Option<f64>) -> Option<u64> {
    let rate = admissions_per_second.filter(|r| r.is_finite() && *r > 0.0)?;
    Some((position as f64 / rate).ceil() as u64)
}

// ---------------------------------------------------------------------------------------------
// Time formatting for the view (the API speaks RFC 3339)
// ---------------------------------------------------------------------------------------------

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for unix ms: the API's one RFC 3339 format.
pub fn format_rfc3339_millis(unix_ms: i64) -> String {
    super::validation::format_rfc3339(unix_ms)
}

fn serialize_optional_rfc3339<Z: Serializer>(
    value: &Option<i64>,
    serializer: Z,
) -> Result<Z::Ok, Z::Error> {
    match value {
        Some(ms) => serializer.serialize_str(&format_rfc3339_millis(*ms)),
        None => serializer.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory store for tests
// ---------------------------------------------------------------------------------------------

/// What the memory store was asked: proves cost bounds by counting, not timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Store method calls: storage round trips (SQL statements).
    pub calls: u64,
    pub session_rows_read: u64,
    pub session_rows_written: u64,
    pub fenwick_nodes_read: u64,
    pub fenwick_nodes_written: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStoreError {
    #[error("injected failure in {0}")]
    Injected(&'static str),
    #[error("unique constraint failed: {0}")]
    UniqueViolation(&'static str),
}

/// The tables and the indexes of [`WAITROOM_SCHEMA`] as ordered maps, so every lookup is a
/// range query exactly like its SQL counterpart (no scans that SQLite would not do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryWaitroomData {
    config: Option<WaitroomConfig>,
    state: Option<WaitroomState>,
    sessions: std::collections::BTreeMap<String, WaitroomSession>,
    by_join_no: std::collections::BTreeMap<u64, String>,
    by_user: std::collections::BTreeMap<(String, u64), String>,
    by_order: std::collections::BTreeMap<String, String>,
    queue: std::collections::BTreeMap<u64, String>,
    prequeue: std::collections::BTreeMap<u64, String>,
    unused_checkouts: std::collections::BTreeSet<(i64, String)>,
    fenwick: std::collections::BTreeMap<u64, i64>,
}

/// A [`WaitroomStore`] over ordered maps, with call counting and failure injection.
#[derive(Debug, Clone, Default)]
pub struct MemoryWaitroomStore {
    pub data: MemoryWaitroomData,
    pub stats: StoreStats,
    /// A store method of this name fails (like `StorageMode::Break`): e.g. `"queue_head"`.
    pub fail_on: Option<&'static str>,
}

impl MemoryWaitroomStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// All sessions, for tests that compare against a naive model.
    pub fn sessions(&self) -> impl Iterator<Item = &WaitroomSession> {
        self.data.sessions.values()
    }

    fn call(&mut self, method: &'static str) -> Result<(), MemoryStoreError> {
        self.stats.calls += 1;
        if self.fail_on == Some(method) {
            return Err(MemoryStoreError::Injected(method));
        }
        Ok(())
    }

    fn read_rows(&mut self, ids: Vec<String>) -> Vec<WaitroomSession> {
        let rows: Vec<WaitroomSession> = ids
            .iter()
            .filter_map(|id| self.data.sessions.get(id).cloned())
            .collect();
        self.stats.session_rows_read += rows.len() as u64;
        rows
    }

    fn unindex(&mut self, session: &WaitroomSession) {
        let data = &mut self.data;
        if let Some(order) = &session.order_id {
            data.by_order.remove(order);
        }
        if let Some(seq) = session.seq {
            data.queue.remove(&seq);
        }
        data.prequeue.remove(&session.join_no);
        if let Some(at) = session.checkout_expires_at {
            data.unused_checkouts
                .remove(&(at, session.session_id.clone()));
        }
    }

    fn index(&mut self, session: &WaitroomSession) {
        let data = &mut self.data;
        let id = session.session_id.clone();
        data.by_join_no.insert(session.join_no, id.clone());
        data.by_user
            .insert((session.user_id.clone(), session.join_no), id.clone());
        if let Some(order) = &session.order_id {
            data.by_order.insert(order.clone(), id.clone());
        }
        if session.status == SessionStatus::Queued {
            match session.seq {
                Some(seq) => data.queue.insert(seq, id.clone()),
                None => data.prequeue.insert(session.join_no, id.clone()),
            };
        }
        if session.status == SessionStatus::Admitted && session.order_id.is_none() {
            if let Some(at) = session.checkout_expires_at {
                data.unused_checkouts.insert((at, id));
            }
        }
    }

    fn write_row(&mut self, session: WaitroomSession) -> Result<(), MemoryStoreError> {
        let id = session.session_id.clone();
        if let Some(order) = &session.order_id {
            if self
                .data
                .by_order
                .get(order)
                .is_some_and(|other| *other != id)
            {
                return Err(MemoryStoreError::UniqueViolation(
                    "waitroom_session.order_id",
                ));
            }
        }
        if let Some(owner) = self.data.by_join_no.get(&session.join_no) {
            if *owner != id {
                return Err(MemoryStoreError::UniqueViolation(
                    "waitroom_session.join_no",
                ));
            }
        }
        if let Some(old) = self.data.sessions.get(&id).cloned() {
            self.unindex(&old);
        }
        self.index(&session);
        self.data.sessions.insert(id, session);
        self.stats.session_rows_written += 1;
        Ok(())
    }
}

impl FenwickNodes for MemoryWaitroomStore {
    type Error = MemoryStoreError;

    fn sum_nodes(&mut self, nodes: &[u64]) -> Result<i64, Self::Error> {
        self.call("sum_nodes")?;
        self.stats.fenwick_nodes_read += nodes.len() as u64;
        Ok(nodes
            .iter()
            .map(|n| self.data.fenwick.get(n).copied().unwrap_or(0))
            .sum())
    }

    fn add_to_nodes(&mut self, nodes: &[u64], delta: i64) -> Result<(), Self::Error> {
        self.call("add_to_nodes")?;
        self.stats.fenwick_nodes_written += nodes.len() as u64;
        for node in nodes {
            *self.data.fenwick.entry(*node).or_insert(0) += delta;
        }
        Ok(())
    }
}

impl WaitroomStore for MemoryWaitroomStore {
    fn load_config(&mut self) -> Result<Option<WaitroomConfig>, Self::Error> {
        self.call("load_config")?;
        Ok(self.data.config.clone())
    }

    fn save_config(&mut self, config: &WaitroomConfig) -> Result<(), Self::Error> {
        self.call("save_config")?;
        self.data.config = Some(config.clone());
        Ok(())
    }

    fn load_state(&mut self) -> Result<Option<WaitroomState>, Self::Error> {
        self.call("load_state")?;
        Ok(self.data.state.clone())
    }

    fn save_state(&mut self, state: &WaitroomState) -> Result<(), Self::Error> {
        self.call("save_state")?;
        self.data.state = Some(state.clone());
        Ok(())
    }

    fn session(&mut self, session_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        self.call("session")?;
        Ok(self.read_rows(vec![session_id.to_owned()]).pop())
    }

    fn latest_session_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<WaitroomSession>, Self::Error> {
        self.call("latest_session_of_user")?;
        let range = (user_id.to_owned(), 0)..=(user_id.to_owned(), u64::MAX);
        let id = self
            .data
            .by_user
            .range(range)
            .next_back()
            .map(|(_, id)| id.clone());
        Ok(self.read_rows(id.into_iter().collect()).pop())
    }

    fn session_by_order(&mut self, order_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        self.call("session_by_order")?;
        let id = self.data.by_order.get(order_id).cloned();
        Ok(self.read_rows(id.into_iter().collect()).pop())
    }

    fn put_session(&mut self, session: &WaitroomSession) -> Result<(), Self::Error> {
        self.call("put_session")?;
        self.write_row(session.clone())
    }

    fn queue_head(
        &mut self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        self.call("queue_head")?;
        let ids = self
            .data
            .queue
            .range(after_seq.saturating_add(1)..)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, id)| id.clone())
            .collect();
        Ok(self.read_rows(ids))
    }

    fn prequeued_sessions(&mut self, limit: u64) -> Result<Vec<WaitroomSession>, Self::Error> {
        self.call("prequeued_sessions")?;
        let ids = self
            .data
            .prequeue
            .values()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(self.read_rows(ids))
    }

    fn prequeue_join_numbers(&mut self) -> Result<Vec<u64>, Self::Error> {
        self.call("prequeue_join_numbers")?;
        let numbers: Vec<u64> = self.data.prequeue.keys().copied().collect();
        self.stats.session_rows_read += numbers.len() as u64;
        Ok(numbers)
    }

    fn assign_seqs(&mut self, assignments: &[SeqAssignment]) -> Result<(), Self::Error> {
        self.call("assign_seqs")?;
        for assignment in assignments {
            let Some(id) = self.data.by_join_no.get(&assignment.join_no).cloned() else {
                continue;
            };
            if let Some(mut session) = self.data.sessions.get(&id).cloned() {
                session.seq = Some(assignment.seq);
                self.write_row(session)?;
            }
        }
        Ok(())
    }

    fn overdue_checkouts(
        &mut self,
        now: i64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        self.call("overdue_checkouts")?;
        let ids = self
            .data
            .unused_checkouts
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, id)| id.clone())
            .collect();
        Ok(self.read_rows(ids))
    }

    fn earliest_checkout_expiry(&mut self) -> Result<Option<i64>, Self::Error> {
        self.call("earliest_checkout_expiry")?;
        Ok(self.data.unused_checkouts.first().map(|(at, _)| *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const EVENT: &str = "evt-1";
    const SALE_START: i64 = 1_700_000_000_000;
    const SALE_END: i64 = SALE_START + 6 * 3_600_000;
    const SEED: u64 = 0x5EED;

    type Error = WaitroomError<MemoryStoreError>;

    fn config() -> WaitroomConfig {
        WaitroomConfig {
            max_concurrent_checkouts: 2,
            checkout_ttl_seconds: 60,
            admission_batch: 10,
            idle_timeout_seconds: 600,
            sale_starts_at: SALE_START,
            sale_ends_at: SALE_END,
            cancelled: false,
        }
    }

    /// A waitroom on a memory store with a test clock.
    struct Room {
        room: Waitroom<MemoryWaitroomStore>,
        now: i64,
        config: WaitroomConfig,
        joins: u64,
    }

    impl Room {
        fn configured_at(now: i64, config: WaitroomConfig) -> Self {
            let mut room = Self {
                room: Waitroom::new(MemoryWaitroomStore::new()),
                now,
                config: config.clone(),
                joins: 0,
            };
            room.apply(WaitroomCommand::Configure {
                event_id: EVENT.into(),
                config,
                shuffle_seed: SEED,
            });
            room
        }

        /// Configured at sale start: joins go straight into the queue.
        fn open(config: WaitroomConfig) -> Self {
            Self::configured_at(SALE_START, config)
        }

        fn try_apply(&mut self, command: WaitroomCommand) -> Result<WaitroomOutcome, Error> {
            let outcome = self.room.apply(command, self.now)?;
            self.assert_invariants();
            Ok(outcome)
        }

        fn apply(&mut self, command: WaitroomCommand) -> WaitroomOutcome {
            self.try_apply(command).expect("command applies")
        }

        fn join(&mut self, user: &str) -> WaitroomSessionView {
            self.joins += 1;
            let session_id = format!("s{}", self.joins);
            self.apply(WaitroomCommand::Join {
                user_id: user.into(),
                session_id,
            })
            .session
            .expect("join returns the session")
        }

        fn join_all(&mut self, users: &[&str]) {
            for user in users {
                self.join(user);
            }
        }

        fn leave(&mut self, user: &str) -> WaitroomOutcome {
            self.apply(WaitroomCommand::Leave {
                user_id: user.into(),
            })
        }

        fn touch(&mut self, user: &str) {
            self.apply(WaitroomCommand::Touch {
                user_id: user.into(),
            });
        }

        fn tick(&mut self) -> WaitroomOutcome {
            self.apply(WaitroomCommand::AdmissionTick)
        }

        fn bind(&mut self, user: &str, order: &str) -> WaitroomOutcome {
            let session_id = self.view(user).map(|v| v.session_id).unwrap_or_default();
            self.apply(WaitroomCommand::BindOrder {
                session_id,
                user_id: user.into(),
                order_id: order.into(),
            })
        }

        fn resolve(&mut self, order: &str, outcome: CheckoutOutcome) -> WaitroomOutcome {
            self.apply(WaitroomCommand::CheckoutResolved {
                order_id: order.into(),
                outcome,
            })
        }

        fn unbind(&mut self, order: &str) -> WaitroomOutcome {
            self.apply(WaitroomCommand::UnbindOrder {
                order_id: order.into(),
            })
        }

        fn reconfigure(&mut self, change: impl FnOnce(&mut WaitroomConfig)) -> WaitroomOutcome {
            change(&mut self.config);
            let config = self.config.clone();
            self.apply(WaitroomCommand::Configure {
                event_id: EVENT.into(),
                config,
                shuffle_seed: SEED,
            })
        }

        fn view(&mut self, user: &str) -> Option<WaitroomSessionView> {
            self.room.view_of_user(user, self.now).expect("view")
        }

        fn status(&mut self, user: &str) -> SessionStatus {
            self.view(user).expect("session").status
        }

        fn position(&mut self, user: &str) -> Option<u64> {
            self.view(user).expect("session").position
        }

        fn state(&self) -> WaitroomState {
            self.room.store().data.state.clone().expect("state")
        }

        fn session_of(&self, user: &str) -> WaitroomSession {
            self.room
                .store()
                .sessions()
                .filter(|s| s.user_id == user)
                .max_by_key(|s| s.join_no)
                .cloned()
                .expect("session")
        }

        /// Slot accounting and the queue counters match the rows after every command.
        fn assert_invariants(&self) {
            let state = self.state();
            let store = self.room.store();
            let count = |wanted: fn(&WaitroomSession) -> bool| -> u64 {
                store.sessions().filter(|s| wanted(s)).count() as u64
            };
            assert_eq!(
                state.slots_in_use,
                count(|s| s.status == SessionStatus::Admitted),
                "slots in use == ADMITTED sessions"
            );
            assert_eq!(
                state.queued,
                count(|s| s.status == SessionStatus::Queued && s.seq.is_some())
            );
            assert_eq!(
                state.prequeued,
                count(|s| s.status == SessionStatus::Queued && s.seq.is_none())
            );
        }
    }

    fn rejection(outcome: WaitroomOutcome) -> Option<WaitroomRejection> {
        outcome.rejection
    }

    fn accepted(outcome: WaitroomOutcome) -> WaitroomOutcome {
        assert_eq!(outcome.rejection, None, "command accepted");
        outcome
    }

    fn admitted_users(outcome: &WaitroomOutcome) -> Vec<String> {
        outcome
            .effects
            .iter()
            .filter_map(|e| match e {
                WaitroomEffect::Admitted { session } => Some(session.user_id.clone()),
                _ => None,
            })
            .collect()
    }

    fn expired_users(outcome: &WaitroomOutcome) -> Vec<(String, SessionEndReason)> {
        outcome
            .effects
            .iter()
            .filter_map(|e| match e {
                WaitroomEffect::Publish(WaitroomEvent::SessionExpired {
                    session, reason, ..
                }) => Some((session.user_id.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    fn users(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn as_strs(names: &[String]) -> Vec<&str> {
        names.iter().map(String::as_str).collect()
    }

    // --- join ---------------------------------------------------------------------------------

    #[test]
    fn joining_twice_returns_the_same_session_and_place() {
        let mut room = Room::open(config());
        let first = room.join("ann");
        room.join("bob");
        let again = room.apply(WaitroomCommand::Join {
            user_id: "ann".into(),
            session_id: "a-fresh-uuid".into(),
        });
        let again_view = again.session.clone().expect("session");
        assert_eq!(again_view.session_id, first.session_id);
        assert_eq!(again_view.position, Some(1));
        assert_eq!(again_view.queue_length, 2);
        assert!(
            !again.effects.iter().any(|e| matches!(
                e,
                WaitroomEffect::Publish(WaitroomEvent::QueueJoined { .. })
            )),
            "no second QueueJoined"
        );
        assert_eq!(room.state().queued, 2);
    }

    #[test]
    fn joining_while_admitted_returns_the_checkout() {
        let mut room = Room::open(config());
        room.join("ann");
        room.tick();
        let again = room.join("ann");
        assert_eq!(again.status, SessionStatus::Admitted);
        assert_eq!(again.checkout_expires_at, Some(SALE_START + 60_000));
        assert_eq!(room.state().slots_in_use, 1);
    }

    #[test]
    fn a_fan_who_left_joins_again_at_the_back() {
        let mut room = Room::open(config());
        let first = room.join("ann");
        room.join("bob");
        accepted(room.leave("ann"));
        assert_eq!(room.status("ann"), SessionStatus::Left);
        let second = room.join("ann");
        assert_ne!(second.session_id, first.session_id);
        assert_eq!(second.position, Some(2), "behind bob");
        assert_eq!(room.session_of("ann").seq, Some(3), "a new seq");
        assert_eq!(room.position("bob"), Some(1));
    }

    #[test]
    fn a_reused_session_id_is_refused() {
        let mut room = Room::open(config());
        room.join("ann");
        let reused = room.apply(WaitroomCommand::Join {
            user_id: "bob".into(),
            session_id: "s1".into(),
        });
        assert_eq!(
            reused.rejection,
            Some(WaitroomRejection::DuplicateSessionId)
        );
        assert_eq!(room.view("bob"), None);
    }

    #[test]
    fn leaving_without_a_session_is_a_no_op() {
        let mut room = Room::open(config());
        let outcome = accepted(room.leave("nobody"));
        assert_eq!(outcome.session, None);
    }

    // --- admission order ----------------------------------------------------------------------

    #[test]
    fn admission_follows_join_order_after_the_sale_opens() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 3,
            ..config()
        });
        let fans = users("fan", 6);
        room.join_all(&as_strs(&fans));
        assert_eq!(admitted_users(&room.tick()), fans[..3]);
        for (i, fan) in fans[3..].iter().enumerate() {
            assert_eq!(room.position(fan), Some(i as u64 + 1));
        }
        accepted(room.bind(&fans[1], "order-1"));
        room.resolve("order-1", CheckoutOutcome::Completed);
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()), fans[3..4]);
        assert_eq!(room.position(&fans[5]), Some(2));
    }

    #[test]
    fn a_tick_admits_at_most_the_admission_batch() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 10,
            admission_batch: 3,
            ..config()
        });
        room.join_all(&as_strs(&users("fan", 8)));
        assert_eq!(admitted_users(&room.tick()).len(), 3);
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()).len(), 3);
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()).len(), 2);
    }

    #[test]
    fn prequeue_is_shuffled_at_sale_start_and_later_fans_are_appended() {
        let mut room = Room::configured_at(
            SALE_START - 60_000,
            WaitroomConfig {
                max_concurrent_checkouts: 0,
                ..config()
            },
        );
        let early = users("early", 6);
        for (i, fan) in early.iter().enumerate() {
            let view = room.join(fan);
            assert_eq!(view.status, SessionStatus::Queued);
            assert_eq!(view.position, None, "no place before the shuffle");
            assert_eq!(view.queue_length, i as u64 + 1);
        }
        assert_eq!(
            room.tick().next_wake_up(),
            Some(SALE_START),
            "wake at sale start"
        );

        room.now = SALE_START;
        let opened = room.tick();
        assert!(opened.effects.iter().any(|e| matches!(
            e,
            WaitroomEffect::Publish(WaitroomEvent::SaleOpened { shuffled: 6, .. })
        )));
        let mut expected: Vec<u64> = (1..=6).collect();
        shuffle_prequeue(&mut expected, SEED);
        let mut order_by_position = vec![String::new(); 6];
        for fan in &early {
            let join_no = room.session_of(fan).join_no;
            let place = expected.iter().position(|j| *j == join_no).expect("placed");
            assert_eq!(room.position(fan), Some(place as u64 + 1));
            assert_eq!(
                room.session_of(fan).seq,
                Some(place as u64 + 1),
                "seqs 1..=k"
            );
            order_by_position[place] = fan.clone();
        }
        assert_ne!(order_by_position, early, "this seed reorders the pre-queue");

        let late = room.join("late");
        assert_eq!(late.position, Some(7));
        assert_eq!(room.session_of("late").seq, Some(7));

        room.reconfigure(|c| c.max_concurrent_checkouts = 10);
        let mut admitted = admitted_users(&room.tick());
        order_by_position.push("late".into());
        assert_eq!(admitted.len(), 7);
        admitted.truncate(7);
        assert_eq!(admitted, order_by_position);
    }

    #[test]
    fn a_fan_joining_after_sale_start_but_before_the_tick_queues_behind_the_prequeue() {
        let mut room = Room::configured_at(SALE_START - 1, config());
        room.join_all(&["a", "b", "c"]);
        room.now = SALE_START + 10;
        let view = room.join("d");
        assert_eq!(view.position, Some(4));
        assert_eq!(room.state().prequeued, 0);
    }

    /// Chi-square statistic of observed counts against equal expected counts.
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|c| (*c as f64 - expected).powi(2) / expected)
            .sum()
    }

    /// Counts how often each of the 24 orders of 4 items comes out of `shuffle`.
    fn permutation_counts(runs: u64, mut shuffle: impl FnMut(&mut [u8; 4], u64)) -> Vec<u64> {
        let mut seeds = SplitMix64::new(0x0DD5_EED5);
        let mut counts: BTreeMap<[u8; 4], u64> = BTreeMap::new();
        for _ in 0..runs {
            let mut items = [0, 1, 2, 3];
            shuffle(&mut items, seeds.next_u64());
            *counts.entry(items).or_insert(0) += 1;
        }
        let mut all: Vec<u64> = counts.values().copied().collect();
        all.resize(24, 0);
        all
    }

    /// 23 degrees of freedom, p = 0.001.
    const CHI_SQUARE_23_DOF_P001: f64 = 49.728;

    #[test]
    fn the_prequeue_shuffle_is_uniform_over_all_orders() {
        let counts = permutation_counts(24_000, |items, seed| shuffle_prequeue(items, seed));
        assert!(counts.iter().all(|c| *c > 0), "every order occurs");
        let statistic = chi_square(&counts);
        assert!(
            statistic < CHI_SQUARE_23_DOF_P001,
            "chi-square {statistic} over {counts:?}"
        );
    }

    #[test]
    fn the_uniformity_check_rejects_the_classic_biased_shuffle() {
        // Swapping each item with any position (not only the unshuffled ones) is the textbook
        // biased shuffle: the test above must be able to see bias of that size.
        let counts = permutation_counts(24_000, |items, seed| {
            let mut rng = SplitMix64::new(seed);
            for i in 0..items.len() {
                let j = rng.below(items.len() as u64) as usize;
                items.swap(i, j);
            }
        });
        assert!(chi_square(&counts) > CHI_SQUARE_23_DOF_P001);
    }

    #[test]
    fn the_opened_queue_puts_each_early_fan_first_equally_often() {
        // Through the machine: 4 early fans, many seeds; who gets seq 1.
        let mut seeds = SplitMix64::new(0xFA1E);
        let mut first = [0u64; 4];
        for _ in 0..2_000 {
            let mut room = Waitroom::new(MemoryWaitroomStore::new());
            let mut at = SALE_START - 1_000;
            room.apply(
                WaitroomCommand::Configure {
                    event_id: EVENT.into(),
                    config: config(),
                    shuffle_seed: seeds.next_u64(),
                },
                at,
            )
            .expect("configure");
            for i in 0..4 {
                at += 1;
                room.apply(
                    WaitroomCommand::Join {
                        user_id: format!("u{i}"),
                        session_id: format!("s{i}"),
                    },
                    at,
                )
                .expect("join");
            }
            room.apply(WaitroomCommand::AdmissionTick, SALE_START)
                .expect("tick");
            let head = room
                .store()
                .sessions()
                .find(|s| s.seq == Some(1))
                .expect("seq 1")
                .join_no;
            first[(head - 1) as usize] += 1;
        }
        // 3 degrees of freedom, p = 0.001.
        assert!(chi_square(&first) < 16.266, "first places {first:?}");
    }

    #[test]
    fn below_is_unbiased_at_the_edges() {
        let mut rng = SplitMix64::new(1);
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
        assert!((0..1_000).all(|_| rng.below(3) < 3));
        assert!((0..1_000).all(|_| rng.below(u64::MAX) < u64::MAX));
    }

    // --- positions ----------------------------------------------------------------------------

    #[test]
    fn positions_stay_exact_after_leaves_admissions_and_expiries() {
        let mut room = Room::open(config());
        let fans = users("fan", 8);
        room.join_all(&as_strs(&fans));
        accepted(room.leave(&fans[2]));
        accepted(room.leave(&fans[5]));
        assert_eq!(room.position(&fans[3]), Some(3));
        assert_eq!(room.position(&fans[7]), Some(6));

        // fan0, fan1 admitted (2 slots).
        assert_eq!(admitted_users(&room.tick()), fans[..2]);
        assert_eq!(room.position(&fans[3]), Some(1));
        assert_eq!(room.position(&fans[7]), Some(4));

        // fan3 goes idle; the others stay seen. fan0 completes, fan1's token expires.
        accepted(room.bind(&fans[0], "o0"));
        room.now += 601_000;
        for fan in [&fans[4], &fans[6], &fans[7]] {
            room.touch(fan);
        }
        room.resolve("o0", CheckoutOutcome::Completed);
        // fan1's unused token was swept by the first command after its expiry.
        let fan1 = room.view(&fans[1]).expect("view");
        assert_eq!(
            fan1.end_reason,
            Some(SessionEndReason::CheckoutTokenExpired)
        );
        let outcome = room.tick();
        assert_eq!(
            expired_users(&outcome),
            vec![(fans[3].clone(), SessionEndReason::IdleAtHead)]
        );
        assert_eq!(
            admitted_users(&outcome),
            vec![fans[4].clone(), fans[6].clone()]
        );
        assert_eq!(room.position(&fans[7]), Some(1));
        assert_eq!(room.view(&fans[7]).expect("view").queue_length, 1);
    }

    // --- checkout slots -----------------------------------------------------------------------

    /// A redelivered or late command changed nothing: its only effect is the wake-up time.
    fn assert_only_wake_up(outcome: &WaitroomOutcome, order: &str) {
        assert!(
            outcome
                .effects
                .iter()
                .all(|e| matches!(e, WaitroomEffect::NextWakeUp(_))),
            "{order}: only the wake-up"
        );
    }

    fn room_with_two_in_checkout() -> Room {
        let mut room = Room::open(config());
        room.join_all(&["ann", "bob", "cat", "dan"]);
        room.tick();
        accepted(room.bind("ann", "order-ann"));
        accepted(room.bind("bob", "order-bob"));
        room
    }

    #[test]
    fn a_completed_order_frees_the_slot_and_completes_the_session() {
        let mut room = room_with_two_in_checkout();
        let outcome = room.resolve("order-ann", CheckoutOutcome::Completed);
        assert_eq!(
            outcome.session.as_ref().map(|s| s.status),
            Some(SessionStatus::Completed)
        );
        assert!(outcome.effects.iter().any(|e| matches!(
            e,
            WaitroomEffect::Publish(WaitroomEvent::CheckoutCompleted { .. })
        )));
        assert_eq!(room.state().slots_in_use, 1);
        assert_eq!(
            outcome.next_wake_up(),
            Some(SALE_START + TICK_INTERVAL_MS),
            "a freed slot schedules the next tick"
        );
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
    }

    #[test]
    fn failed_cancelled_and_expired_orders_free_the_slot() {
        for (outcome, reason) in [
            (CheckoutOutcome::Failed, SessionEndReason::OrderFailed),
            (CheckoutOutcome::Cancelled, SessionEndReason::OrderCancelled),
            (CheckoutOutcome::Expired, SessionEndReason::OrderExpired),
        ] {
            let mut room = room_with_two_in_checkout();
            let resolved = room.resolve("order-bob", outcome);
            assert_eq!(expired_users(&resolved), vec![("bob".to_string(), reason)]);
            assert_eq!(room.status("bob"), SessionStatus::Expired);
            assert_eq!(room.state().slots_in_use, 1);
            room.now += TICK_INTERVAL_MS;
            assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
        }
    }

    #[test]
    fn redelivered_and_unknown_checkout_events_change_nothing() {
        let mut room = room_with_two_in_checkout();
        room.resolve("order-ann", CheckoutOutcome::Completed);
        let settled = room.room.store().data.clone();
        for (order, outcome) in [
            ("order-ann", CheckoutOutcome::Completed),
            ("order-ann", CheckoutOutcome::Failed),
            ("order-ann", CheckoutOutcome::Expired),
            ("order-nobody", CheckoutOutcome::Completed),
            ("order-nobody", CheckoutOutcome::Cancelled),
        ] {
            assert_only_wake_up(&room.resolve(order, outcome), order);
        }
        assert_eq!(room.room.store().data, settled);
        assert_eq!(room.state().slots_in_use, 1);
        assert_eq!(room.status("ann"), SessionStatus::Completed);
    }

    #[test]
    fn a_bound_order_keeps_its_slot_past_the_checkout_expiry() {
        let mut room = room_with_two_in_checkout();
        room.now += 3_600_000;
        room.touch("cat");
        room.touch("dan");
        let outcome = room.tick();
        assert!(admitted_users(&outcome).is_empty());
        assert_eq!(room.status("ann"), SessionStatus::Admitted);
        assert_eq!(room.state().slots_in_use, 2);
        assert_eq!(
            outcome.next_wake_up(),
            Some(SALE_END),
            "nothing is due before sale end while orders hold every slot"
        );
        room.resolve("order-ann", CheckoutOutcome::Expired);
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
    }

    #[test]
    fn an_unbound_order_leaves_the_checkout_admitted_with_its_deadline() {
        let mut room = room_with_two_in_checkout();
        let deadline = room.session_of("ann").checkout_expires_at;
        assert_eq!(deadline, Some(SALE_START + 60_000));
        room.now += 10_000;
        let outcome = accepted(room.unbind("order-ann"));
        let view = outcome.session.as_ref().expect("the session");
        assert_eq!(
            (view.status, view.checkout_expires_at),
            (SessionStatus::Admitted, deadline)
        );
        assert!(
            !outcome.effects.iter().any(|e| matches!(
                e,
                WaitroomEffect::Publish(_) | WaitroomEffect::Expired { .. }
            )),
            "the fan's checkout did not change: nothing to announce or push"
        );
        assert_eq!(room.session_of("ann").order_id, None);
        assert_eq!(room.state().slots_in_use, 2, "the slot stays with ann");
        assert_eq!(
            outcome.next_wake_up(),
            deadline,
            "the unbound checkout's deadline is due again"
        );

        // The same checkout places another order; the first order's late news touches nothing.
        accepted(room.bind("ann", "order-ann-2"));
        room.resolve("order-ann", CheckoutOutcome::Failed);
        room.unbind("order-ann");
        assert_eq!(room.status("ann"), SessionStatus::Admitted);
        assert_eq!(
            room.session_of("ann").order_id.as_deref(),
            Some("order-ann-2")
        );
        room.resolve("order-ann-2", CheckoutOutcome::Completed);
        assert_eq!(room.status("ann"), SessionStatus::Completed);
        assert_eq!(room.state().slots_in_use, 1);
    }

    #[test]
    fn an_unbound_checkout_still_ends_with_its_token() {
        let mut room = room_with_two_in_checkout();
        room.unbind("order-ann");
        room.now = SALE_START + 60_000;
        let outcome = room.tick();
        assert_eq!(
            expired_users(&outcome),
            vec![("ann".to_string(), SessionEndReason::CheckoutTokenExpired)]
        );
        assert_eq!(admitted_users(&outcome), vec!["cat".to_string()]);
        assert_eq!(
            rejection(room.bind("ann", "order-ann-2")),
            Some(WaitroomRejection::CheckoutNotActive)
        );
    }

    #[test]
    fn unbinding_after_the_deadline_ends_the_checkout_at_once() {
        let mut room = room_with_two_in_checkout();
        // A bound order holds the slot past the deadline; once unbound nothing holds it.
        room.now = SALE_START + 90_000;
        let outcome = accepted(room.unbind("order-ann"));
        assert_eq!(
            expired_users(&outcome),
            vec![("ann".to_string(), SessionEndReason::CheckoutTokenExpired)]
        );
        assert!(outcome
            .effects
            .iter()
            .any(|e| matches!(e, WaitroomEffect::Expired { session } if session.user_id == "ann")));
        assert_eq!(room.status("ann"), SessionStatus::Expired);
        assert_eq!(room.state().slots_in_use, 1);
        assert_eq!(
            outcome.next_wake_up(),
            Some(room.now),
            "the freed slot is offered at once"
        );
        assert_eq!(admitted_users(&room.tick()), vec!["cat".to_string()]);
    }

    #[test]
    fn redelivered_unknown_and_late_unbinds_change_nothing() {
        let mut room = room_with_two_in_checkout();
        room.unbind("order-ann");
        room.resolve("order-bob", CheckoutOutcome::Failed);
        let settled = room.room.store().data.clone();
        for order in ["order-ann", "order-bob", "order-nobody"] {
            let outcome = room.unbind(order);
            assert_eq!(outcome.rejection, None);
            assert_only_wake_up(&outcome, order);
        }
        assert_eq!(room.room.store().data, settled);
        assert_eq!(
            room.status("bob"),
            SessionStatus::Expired,
            "an ended checkout is not reopened"
        );
        assert_eq!(
            room.session_of("bob").order_id.as_deref(),
            Some("order-bob")
        );
    }

    #[test]
    fn an_unused_checkout_token_expires_and_frees_its_slot() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 1,
            ..config()
        });
        room.join_all(&["ann", "bob"]);
        let admitted = room.tick();
        assert_eq!(admitted_users(&admitted), vec!["ann".to_string()]);
        assert_eq!(
            admitted.next_wake_up(),
            Some(SALE_START + 60_000),
            "wake when the token expires"
        );
        room.now = SALE_START + 59_999;
        room.touch("bob");
        assert_eq!(room.status("ann"), SessionStatus::Admitted);
        room.now = SALE_START + 60_000;
        let outcome = room.tick();
        assert_eq!(
            expired_users(&outcome),
            vec![("ann".to_string(), SessionEndReason::CheckoutTokenExpired)]
        );
        assert!(outcome
            .effects
            .iter()
            .any(|e| matches!(e, WaitroomEffect::Expired { session } if session.user_id == "ann")));
        assert_eq!(admitted_users(&outcome), vec!["bob".to_string()]);
        assert_eq!(room.state().slots_in_use, 1);
    }

    #[test]
    fn leaving_an_unused_checkout_frees_the_slot() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 1,
            ..config()
        });
        room.join_all(&["ann", "bob"]);
        room.tick();
        accepted(room.leave("ann"));
        assert_eq!(room.status("ann"), SessionStatus::Left);
        assert_eq!(room.state().slots_in_use, 0);
        room.now += TICK_INTERVAL_MS;
        assert_eq!(admitted_users(&room.tick()), vec!["bob".to_string()]);
    }

    #[test]
    fn leaving_with_an_order_in_progress_is_refused() {
        let mut room = room_with_two_in_checkout();
        let refused = room.leave("ann");
        assert_eq!(
            refused.rejection,
            Some(WaitroomRejection::CheckoutInProgress)
        );
        assert_eq!(
            refused.session.map(|s| s.status),
            Some(SessionStatus::Admitted)
        );
        assert_eq!(room.state().slots_in_use, 2);
    }

    #[test]
    fn binding_an_order_checks_user_token_expiry_and_uniqueness() {
        let mut room = room_with_two_in_checkout();
        accepted(room.bind("ann", "order-ann"));
        assert_eq!(
            rejection(room.bind("ann", "order-other")),
            Some(WaitroomRejection::CheckoutAlreadyBound)
        );
        assert_eq!(
            rejection(room.bind("cat", "order-x")),
            Some(WaitroomRejection::CheckoutNotActive)
        );
        let ann = room.session_of("ann").session_id;
        let stranger = room.apply(WaitroomCommand::BindOrder {
            session_id: ann,
            user_id: "mallory".into(),
            order_id: "order-m".into(),
        });
        assert_eq!(
            stranger.rejection,
            Some(WaitroomRejection::CheckoutNotActive)
        );
        assert_eq!(
            stranger.session, None,
            "nothing about another fan's session"
        );
        let unknown = room.apply(WaitroomCommand::BindOrder {
            session_id: "nope".into(),
            user_id: "ann".into(),
            order_id: "order-n".into(),
        });
        assert_eq!(unknown.rejection, Some(WaitroomRejection::SessionNotFound));

        let mut room = Room::open(config());
        room.join_all(&["ann", "bob"]);
        room.tick();
        accepted(room.bind("ann", "order-1"));
        assert_eq!(
            rejection(room.bind("bob", "order-1")),
            Some(WaitroomRejection::OrderAlreadyBound)
        );
        room.now = SALE_START + 60_000;
        let late = room.bind("bob", "order-2");
        assert_eq!(late.rejection, Some(WaitroomRejection::CheckoutNotActive));
        // The refused command's upkeep still counts: the token expiry it swept is kept.
        assert_eq!(room.status("bob"), SessionStatus::Expired);
        assert_eq!(
            expired_users(&late),
            vec![("bob".to_string(), SessionEndReason::CheckoutTokenExpired)]
        );
    }

    #[test]
    fn an_expired_token_cannot_bind_even_before_the_sweep_reaches_it() {
        let fans = users("fan", 300);
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 300,
            admission_batch: 300,
            ..config()
        });
        room.join_all(&as_strs(&fans));
        room.tick();
        // One sweep expires CHECKOUT_EXPIRY_BATCH tokens; the last in index order is left over.
        let last = room
            .room
            .store()
            .sessions()
            .filter(|s| s.status == SessionStatus::Admitted)
            .max_by_key(|s| (s.checkout_expires_at, s.session_id.clone()))
            .cloned()
            .expect("admitted");
        room.now = SALE_START + 60_000;
        let late = room.apply(WaitroomCommand::BindOrder {
            session_id: last.session_id.clone(),
            user_id: last.user_id.clone(),
            order_id: "order-late".into(),
        });
        assert_eq!(late.rejection, Some(WaitroomRejection::CheckoutNotActive));
        assert_eq!(
            late.session.as_ref().map(|s| s.status),
            Some(SessionStatus::Admitted),
            "not swept yet"
        );
        assert_eq!(
            late.next_wake_up(),
            Some(room.now),
            "the sweep continues at once"
        );
        room.tick();
        assert_eq!(room.state().slots_in_use, 0);
    }

    // --- idle fans ----------------------------------------------------------------------------

    #[test]
    fn idle_fans_at_the_head_are_skipped_without_spending_a_slot() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 1,
            ..config()
        });
        room.join_all(&["gone", "here"]);
        room.now += 600_000;
        room.touch("here");
        let outcome = room.tick();
        assert_eq!(
            expired_users(&outcome),
            vec![("gone".to_string(), SessionEndReason::IdleAtHead)]
        );
        assert_eq!(admitted_users(&outcome), vec!["here".to_string()]);
        assert_eq!(room.state().slots_in_use, 1);
        let gone = room.view("gone").expect("view");
        assert_eq!(gone.end_reason, Some(SessionEndReason::IdleAtHead));
    }

    #[test]
    fn a_connected_fan_counts_as_seen() {
        let mut room = Room::open(config());
        room.join_all(&["socket", "gone"]);
        room.now += 3_600_000;
        let connected = |user: &str| user == "socket";
        let outcome = room
            .room
            .apply_with_presence(WaitroomCommand::AdmissionTick, room.now, &connected)
            .expect("tick");
        assert_eq!(admitted_users(&outcome), vec!["socket".to_string()]);
        assert_eq!(
            expired_users(&outcome),
            vec![("gone".to_string(), SessionEndReason::IdleAtHead)]
        );
    }

    #[test]
    fn connected_fans_get_their_own_positions_in_one_pass() {
        let mut room = Room::open(config());
        room.join_all(&["a", "b", "c", "d"]);
        let outcome = room.tick();
        assert!(outcome
            .effects
            .iter()
            .any(|e| matches!(e, WaitroomEffect::HeadMoved { queue_length: 2 })));
        let before = room.room.store().stats.calls;
        let views = room
            .room
            .views_of_users(["c", "d", "nobody"], room.now)
            .expect("views");
        let positions: Vec<_> = views
            .iter()
            .map(|(user, view)| (*user, view.as_ref().and_then(|v| v.position)))
            .collect();
        assert_eq!(
            positions,
            vec![("c", Some(1)), ("d", Some(2)), ("nobody", None)]
        );
        // Config and state once, then a session read and a prefix sum per queued fan.
        assert_eq!(room.room.store().stats.calls - before, 2 + 2 * 2 + 1);
    }

    #[test]
    fn touching_writes_at_most_once_per_interval() {
        let mut room = Room::open(config());
        room.join("ann");
        let written = room.room.store().stats.session_rows_written;
        room.now += TOUCH_WRITE_INTERVAL_MS - 1;
        room.touch("ann");
        assert_eq!(room.room.store().stats.session_rows_written, written);
        room.now += 1;
        room.touch("ann");
        assert_eq!(room.room.store().stats.session_rows_written, written + 1);
        assert_eq!(room.session_of("ann").last_seen_at, room.now);
    }

    // --- closing ------------------------------------------------------------------------------

    #[test]
    fn cancelling_expires_the_queue_and_admits_no_one() {
        let mut room = Room::open(config());
        room.join_all(&["ann", "bob", "cat"]);
        room.tick();
        let outcome = room.reconfigure(|c| {
            c.cancelled = true;
            c.max_concurrent_checkouts = 100;
        });
        assert_eq!(
            expired_users(&outcome),
            vec![("cat".to_string(), SessionEndReason::EventCancelled)]
        );
        assert!(outcome.effects.iter().any(|e| matches!(
            e,
            WaitroomEffect::Publish(WaitroomEvent::QueueClosed {
                reason: ClosedReason::EventCancelled,
                ..
            })
        )));
        room.now += TICK_INTERVAL_MS;
        assert!(admitted_users(&room.tick()).is_empty());
        assert_eq!(
            rejection(room.apply(WaitroomCommand::Join {
                user_id: "dan".into(),
                session_id: "late".into()
            })),
            Some(WaitroomRejection::SaleNotOpen)
        );
        let cat = room.view("cat").expect("view");
        assert_eq!((cat.status, cat.queue_length), (SessionStatus::Expired, 0));
        // Admitted fans keep their slot until the token expires.
        assert_eq!(room.status("ann"), SessionStatus::Admitted);
        room.now = SALE_START + 60_000;
        room.tick();
        assert_eq!(room.status("ann"), SessionStatus::Expired);
        assert_eq!(room.state().slots_in_use, 0);
        assert_eq!(room.tick().next_wake_up(), None);
    }

    #[test]
    fn the_sale_end_closes_the_queue() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 0,
            ..config()
        });
        room.join_all(&["ann", "bob"]);
        assert_eq!(room.tick().next_wake_up(), Some(SALE_END));
        room.now = SALE_END;
        // Seen at once, before any command records it.
        assert_eq!(room.status("ann"), SessionStatus::Expired);
        let outcome = room.tick();
        assert_eq!(
            expired_users(&outcome),
            vec![
                ("ann".to_string(), SessionEndReason::SaleEnded),
                ("bob".to_string(), SessionEndReason::SaleEnded),
            ]
        );
        assert_eq!(outcome.next_wake_up(), None);
        assert_eq!(
            rejection(room.apply(WaitroomCommand::Join {
                user_id: "cat".into(),
                session_id: "late".into()
            })),
            Some(WaitroomRejection::SaleNotOpen)
        );
    }

    #[test]
    fn cancelling_before_the_sale_expires_the_prequeue_without_shuffling() {
        let mut room = Room::configured_at(SALE_START - 10_000, config());
        room.join_all(&["ann", "bob"]);
        let outcome = room.reconfigure(|c| c.cancelled = true);
        assert_eq!(expired_users(&outcome).len(), 2);
        assert!(!room.state().sale_opened);
        assert!(room.room.store().sessions().all(|s| s.seq.is_none()));
    }

    #[test]
    fn a_large_closed_queue_drains_in_batches() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 0,
            ..config()
        });
        let fans = users("fan", 600);
        room.join_all(&as_strs(&fans));
        let outcome = room.reconfigure(|c| c.cancelled = true);
        assert_eq!(expired_users(&outcome).len(), CLOSE_DRAIN_BATCH as usize);
        assert_eq!(outcome.next_wake_up(), Some(room.now), "keep draining");
        assert_eq!(
            room.status("fan599"),
            SessionStatus::Expired,
            "already final"
        );
        let mut commands = 1;
        while room.state().queued > 0 {
            room.tick();
            commands += 1;
        }
        assert_eq!(commands, 3);
        assert_eq!(room.tick().next_wake_up(), None);
    }

    // --- estimated wait -----------------------------------------------------------------------

    #[test]
    fn estimated_wait_is_unknown_until_an_admission_rate_is_measured() {
        let mut room = Room::open(WaitroomConfig {
            max_concurrent_checkouts: 10,
            admission_batch: 1,
            ..config()
        });
        room.join_all(&as_strs(&users("fan", 6)));
        assert_eq!(
            room.view("fan5").expect("view").estimated_wait_seconds,
            None
        );
        room.tick();
        assert_eq!(
            room.view("fan5").expect("view").estimated_wait_seconds,
            None
        );
        room.now += 2_000;
        room.tick();
        // One admission per 2 s; fan5 is 4th.
        let view = room.view("fan5").expect("view");
        assert_eq!(view.position, Some(4));
        assert_eq!(view.estimated_wait_seconds, Some(8));
        room.now += 1_000;
        room.tick();
        // Smoothed: 0.5 + 0.3 * (1.0 - 0.5) = 0.65/s; position 3 → ceil(4.6) s.
        assert_eq!(
            room.view("fan5").expect("view").estimated_wait_seconds,
            Some(5)
        );
        assert_eq!(estimated_wait_seconds(10, Some(0.0)), None);
    }

    // --- wake-ups -----------------------------------------------------------------------------

    #[test]
    fn an_empty_waitroom_needs_no_alarm() {
        let mut room = Room::open(config());
        assert_eq!(room.tick().next_wake_up(), None);
    }

    #[test]
    fn joins_do_not_push_the_next_tick_back() {
        let mut room = Room::open(WaitroomConfig {
            admission_batch: 1,
            max_concurrent_checkouts: 10,
            ..config()
        });
        room.join_all(&["a", "b", "c"]);
        room.tick();
        for step in 1..=5 {
            room.now += 150;
            let outcome = room.apply(WaitroomCommand::Join {
                user_id: format!("late{step}"),
                session_id: format!("late-s{step}"),
            });
            let unused_expiry = SALE_START + 60_000;
            assert_eq!(
                outcome.next_wake_up(),
                Some((SALE_START + TICK_INTERVAL_MS).min(unused_expiry))
            );
        }
    }

    #[test]
    fn every_outcome_ends_with_exactly_one_wake_up() {
        let mut room = Room::open(config());
        let outcomes = [room.tick(), {
            room.join("a");
            room.tick()
        }];
        for outcome in outcomes {
            let wakes = outcome
                .effects
                .iter()
                .filter(|e| matches!(e, WaitroomEffect::NextWakeUp(_)))
                .count();
            assert_eq!(wakes, 1);
            assert!(matches!(
                outcome.effects.last(),
                Some(WaitroomEffect::NextWakeUp(_))
            ));
        }
    }

    // --- storage ------------------------------------------------------------------------------

    #[test]
    fn a_tick_whose_plan_cannot_be_read_writes_nothing() {
        let mut room = Room::open(config());
        room.join_all(&["ann", "bob", "cat"]);
        let before = room.room.store().data.clone();
        room.room.store_mut().fail_on = Some("queue_head");
        let result = room.room.apply(WaitroomCommand::AdmissionTick, room.now);
        assert!(matches!(
            result,
            Err(WaitroomError::Store(MemoryStoreError::Injected(
                "queue_head"
            )))
        ));
        assert_eq!(room.room.store().data, before);
    }

    #[test]
    fn commands_before_configuration_are_refused() {
        let mut room = Waitroom::new(MemoryWaitroomStore::new());
        assert!(matches!(
            room.apply(WaitroomCommand::AdmissionTick, 0),
            Err(WaitroomError::NotConfigured)
        ));
    }

    #[test]
    fn configuration_is_validated_and_bound_to_one_event() {
        let mut room = Room::open(config());
        let bad = room.try_apply(WaitroomCommand::Configure {
            event_id: EVENT.into(),
            config: WaitroomConfig {
                checkout_ttl_seconds: 0,
                ..config()
            },
            shuffle_seed: SEED,
        });
        assert!(matches!(bad, Err(WaitroomError::InvalidConfig(_))));
        let other = room.try_apply(WaitroomCommand::Configure {
            event_id: "evt-2".into(),
            config: config(),
            shuffle_seed: SEED,
        });
        assert!(matches!(other, Err(WaitroomError::EventMismatch { .. })));
        room.apply(WaitroomCommand::Configure {
            event_id: EVENT.into(),
            config: config(),
            shuffle_seed: 42,
        });
        assert_eq!(
            room.state().shuffle_seed,
            SEED,
            "the seed cannot be re-rolled"
        );
        let ends_first = WaitroomConfig {
            sale_ends_at: SALE_START,
            ..config()
        };
        assert!(ends_first.validate().is_err());
    }

    #[test]
    fn the_config_reads_the_event_config_spelling_with_defaults() {
        let parsed: WaitroomConfig = serde_json::from_value(serde_json::json!({
            "maxConcurrentCheckouts": 5,
            "saleStartsAt": 10,
            "saleEndsAt": 20
        }))
        .expect("parse");
        assert_eq!(parsed.max_concurrent_checkouts, 5);
        assert_eq!(parsed.checkout_ttl_seconds, DEFAULT_CHECKOUT_TTL_SECONDS);
        assert_eq!(parsed.admission_batch, DEFAULT_ADMISSION_BATCH);
        assert_eq!(parsed.idle_timeout_seconds, DEFAULT_IDLE_TIMEOUT_SECONDS);
    }

    #[test]
    fn the_view_serializes_as_the_api_waitroom_session() {
        let mut room = Room::open(config());
        room.join("ann");
        let queued = serde_json::to_value(room.join("bob")).expect("json");
        assert_eq!(
            queued,
            serde_json::json!({
                "sessionId": "s2",
                "eventId": EVENT,
                "status": "QUEUED",
                "position": 2,
                "queueLength": 2,
                "estimatedWaitSeconds": null
            })
        );
        room.tick();
        let admitted = serde_json::to_value(room.view("ann")).expect("json");
        assert_eq!(admitted["status"], "ADMITTED");
        assert_eq!(admitted["position"], serde_json::Value::Null);
        assert_eq!(admitted["checkoutExpiresAt"], "2023-11-14T22:14:20.000Z");
    }

    #[test]
    fn status_and_reason_spellings_round_trip() {
        for status in [
            SessionStatus::Queued,
            SessionStatus::Admitted,
            SessionStatus::Completed,
            SessionStatus::Expired,
            SessionStatus::Left,
        ] {
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).expect("json"),
                serde_json::json!(status.as_str())
            );
        }
        for reason in [
            SessionEndReason::IdleAtHead,
            SessionEndReason::CheckoutTokenExpired,
            SessionEndReason::OrderCancelled,
        ] {
            assert_eq!(SessionEndReason::parse(reason.as_str()), Some(reason));
            assert_eq!(
                serde_json::to_value(reason).expect("json"),
                serde_json::json!(reason.as_str())
            );
        }
        assert_eq!(
            ClosedReason::parse("EVENT_CANCELLED"),
            Some(ClosedReason::EventCancelled)
        );
    }

    #[test]
    fn rfc3339_formatting_matches_known_instants() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_schema_declares_every_table_and_index_the_store_uses() {
        for name in [
            "waitroom_config",
            "waitroom_state",
            "waitroom_session",
            "waitroom_fenwick",
            "waitroom_session_user",
            "waitroom_session_order",
            "waitroom_session_queue",
            "waitroom_session_prequeue",
            "waitroom_session_checkout_expiry",
            "waitroom_session_join_no",
        ] {
            assert!(WAITROOM_SCHEMA.contains(name), "{name}");
        }
    }

    // --- cost at depth ------------------------------------------------------------------------

    struct DepthCost {
        join: StoreStats,
        view: StoreStats,
        position: Option<u64>,
    }

    /// Join and view at the back of a queue `depth` long with 100 departures spread through it.
    /// The queue is fast-forwarded through the store trait (counters and tree nodes) instead of
    /// joining `depth` fans one by one, which would only measure the test.
    fn join_and_view_at_depth(depth: u64) -> DepthCost {
        const DEPARTED: u64 = 100;
        let mut room = Room::open(config());
        let store = room.room.store_mut();
        let mut state = store.load_state().expect("load").expect("state");
        state.next_seq = depth;
        state.next_join_no = depth;
        state.queued = depth - 1 - DEPARTED;
        state.sale_opened = true;
        store.save_state(&state).expect("save");
        for k in 0..DEPARTED {
            let seq = FenwickIndex::new(1 + k * (depth - 1) / DEPARTED).expect("seq");
            fenwick::add(store, seq, 1).expect("depart");
        }

        store.stats = StoreStats::default();
        room.room
            .apply(
                WaitroomCommand::Join {
                    user_id: "fan".into(),
                    session_id: "fan-session".into(),
                },
                room.now,
            )
            .expect("join");
        let join = std::mem::take(&mut room.room.store_mut().stats);
        let position = room
            .room
            .view_of_user("fan", room.now)
            .expect("view")
            .and_then(|v| v.position);
        let view = room.room.store().stats;
        DepthCost {
            join,
            view,
            position,
        }
    }

    #[test]
    fn join_and_position_cost_the_same_at_a_million_as_at_a_thousand() {
        let small = join_and_view_at_depth(1_000);
        let large = join_and_view_at_depth(1_000_000);
        assert_eq!(small.position, Some(1_000 - 100));
        assert_eq!(large.position, Some(1_000_000 - 100));

        for cost in [&small, &large] {
            for stats in [cost.join, cost.view] {
                assert!(stats.session_rows_read <= 2, "no queue scan: {stats:?}");
                assert!(stats.session_rows_written <= 1);
                assert!(stats.fenwick_nodes_read <= fenwick::MAX_PATH_LEN as u64);
                assert_eq!(stats.fenwick_nodes_written, 0);
            }
        }
        assert_eq!(small.join.calls, large.join.calls, "same round trips");
        assert_eq!(small.view.calls, large.view.calls);
        assert_eq!(small.join.session_rows_read, large.join.session_rows_read);
    }

    #[test]
    fn a_departure_at_a_million_deep_touches_at_most_forty_nodes() {
        let mut store = MemoryWaitroomStore::new();
        let seq = FenwickIndex::new(999_999).expect("seq");
        fenwick::add(&mut store, seq, 1).expect("depart");
        assert_eq!(store.stats.calls, 1);
        assert!(store.stats.fenwick_nodes_written <= fenwick::MAX_PATH_LEN as u64);
        assert_eq!(fenwick::prefix_sum(&mut store, 1_000_000).expect("sum"), 1);
    }

    // --- the model check ----------------------------------------------------------------------

    const MODEL_USERS: u8 = 8;

    #[derive(Debug, Clone)]
    enum Op {
        Join(u8),
        Leave(u8),
        Touch(u8),
        Tick,
        Advance(i64),
        Bind(u8, u8),
        Resolve(u8, CheckoutOutcome),
        Unbind(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let outcome = prop_oneof![
            Just(CheckoutOutcome::Completed),
            Just(CheckoutOutcome::Failed),
            Just(CheckoutOutcome::Cancelled),
            Just(CheckoutOutcome::Expired),
        ];
        prop_oneof![
            5 => (0..MODEL_USERS).prop_map(Op::Join),
            1 => (0..MODEL_USERS).prop_map(Op::Leave),
            2 => (0..MODEL_USERS).prop_map(Op::Touch),
            4 => Just(Op::Tick),
            3 => (0i64..120_000).prop_map(Op::Advance),
            2 => (0..MODEL_USERS, 0u8..6).prop_map(|(u, o)| Op::Bind(u, o)),
            2 => (0u8..6, outcome).prop_map(|(o, out)| Op::Resolve(o, out)),
            1 => (0u8..6).prop_map(Op::Unbind),
        ]
    }

    #[derive(Debug, Clone)]
    struct ModelSession {
        id: String,
        user: String,
        join_no: u64,
        seq: Option<u64>,
        status: SessionStatus,
        last_seen: i64,
        expires_at: Option<i64>,
        order: Option<String>,
    }

    /// The waitroom the slow, obvious way: a list scanned on every question.
    struct Model {
        config: WaitroomConfig,
        seed: u64,
        sessions: Vec<ModelSession>,
        opened: bool,
        closed: bool,
        next_seq: u64,
    }

    type ModelView = (String, SessionStatus, Option<u64>, u64, Option<i64>);

    impl Model {
        fn upkeep(&mut self, now: i64) {
            if self.config.cancelled || now >= self.config.sale_ends_at {
                self.closed = true;
            }
            if self.closed {
                for s in &mut self.sessions {
                    if s.status == SessionStatus::Queued {
                        s.status = SessionStatus::Expired;
                    }
                }
            } else if !self.opened && now >= self.config.sale_starts_at {
                let mut pre: Vec<u64> = self
                    .sessions
                    .iter()
                    .filter(|s| s.status == SessionStatus::Queued && s.seq.is_none())
                    .map(|s| s.join_no)
                    .collect();
                pre.sort_unstable();
                shuffle_prequeue(&mut pre, self.seed);
                for join_no in pre {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.join_no == join_no) {
                        s.seq = Some(seq);
                    }
                }
                self.opened = true;
            }
            for s in &mut self.sessions {
                if s.status == SessionStatus::Admitted
                    && s.order.is_none()
                    && s.expires_at.is_some_and(|at| at <= now)
                {
                    s.status = SessionStatus::Expired;
                }
            }
        }

        fn latest(&mut self, user: &str) -> Option<&mut ModelSession> {
            self.sessions
                .iter_mut()
                .filter(|s| s.user == user)
                .max_by_key(|s| s.join_no)
        }

        fn slots(&self) -> u64 {
            self.sessions
                .iter()
                .filter(|s| s.status == SessionStatus::Admitted)
                .count() as u64
        }

        fn seen(s: &mut ModelSession, now: i64) {
            if s.status == SessionStatus::Queued && now - s.last_seen >= TOUCH_WRITE_INTERVAL_MS {
                s.last_seen = now;
            }
        }

        fn join(&mut self, user: &str, id: &str, now: i64) -> Result<(), &'static str> {
            self.upkeep(now);
            if self.closed {
                return Err("SALE_NOT_OPEN");
            }
            if let Some(s) = self.latest(user) {
                if s.status.is_live() {
                    Self::seen(s, now);
                    return Ok(());
                }
            }
            let seq = self.opened.then(|| {
                self.next_seq += 1;
                self.next_seq - 1
            });
            self.sessions.push(ModelSession {
                id: id.into(),
                user: user.into(),
                join_no: self.sessions.len() as u64 + 1,
                seq,
                status: SessionStatus::Queued,
                last_seen: now,
                expires_at: None,
                order: None,
            });
            Ok(())
        }

        fn leave(&mut self, user: &str, now: i64) -> Result<(), &'static str> {
            self.upkeep(now);
            if let Some(s) = self.latest(user) {
                match s.status {
                    SessionStatus::Queued => s.status = SessionStatus::Left,
                    SessionStatus::Admitted if s.order.is_some() => {
                        return Err("CHECKOUT_IN_PROGRESS")
                    }
                    SessionStatus::Admitted => s.status = SessionStatus::Left,
                    _ => {}
                }
            }
            Ok(())
        }

        fn touch(&mut self, user: &str, now: i64) {
            self.upkeep(now);
            if let Some(s) = self.latest(user) {
                Self::seen(s, now);
            }
        }

        fn tick(&mut self, now: i64) {
            self.upkeep(now);
            if self.closed || !self.opened {
                return;
            }
            let free = u64::from(self.config.max_concurrent_checkouts).saturating_sub(self.slots());
            let wanted = free.min(u64::from(self.config.admission_batch));
            let mut order: Vec<usize> = (0..self.sessions.len())
                .filter(|i| {
                    self.sessions[*i].status == SessionStatus::Queued
                        && self.sessions[*i].seq.is_some()
                })
                .collect();
            order.sort_by_key(|i| self.sessions[*i].seq);
            let mut admitted = 0;
            for i in order {
                if admitted >= wanted {
                    break;
                }
                let s = &mut self.sessions[i];
                if now - s.last_seen >= self.config.idle_timeout_ms() {
                    s.status = SessionStatus::Expired;
                } else {
                    s.status = SessionStatus::Admitted;
                    s.expires_at = Some(now + self.config.checkout_ttl_ms());
                    admitted += 1;
                }
            }
        }

        fn bind(&mut self, user: &str, order: &str, now: i64) -> Result<(), &'static str> {
            self.upkeep(now);
            let taken = self
                .sessions
                .iter()
                .any(|s| s.order.as_deref() == Some(order));
            let Some(s) = self.latest(user) else {
                return Err("NOT_FOUND");
            };
            if s.order.as_deref() == Some(order) {
                return Ok(());
            }
            if s.status != SessionStatus::Admitted || s.order.is_some() {
                return Err("CHECKOUT_TOKEN_INVALID");
            }
            if s.expires_at.is_none_or(|at| now >= at) || taken {
                return Err("CHECKOUT_TOKEN_INVALID");
            }
            s.order = Some(order.into());
            Ok(())
        }

        fn resolve(&mut self, order: &str, outcome: CheckoutOutcome, now: i64) {
            self.upkeep(now);
            if let Some(s) = self
                .sessions
                .iter_mut()
                .find(|s| s.order.as_deref() == Some(order))
            {
                if s.status == SessionStatus::Admitted {
                    s.status = match outcome {
                        CheckoutOutcome::Completed => SessionStatus::Completed,
                        _ => SessionStatus::Expired,
                    };
                }
            }
        }

        fn unbind(&mut self, order: &str, now: i64) {
            self.upkeep(now);
            if let Some(s) = self
                .sessions
                .iter_mut()
                .find(|s| s.order.as_deref() == Some(order))
            {
                if s.status == SessionStatus::Admitted {
                    s.order = None;
                    if s.expires_at.is_none_or(|at| at <= now) {
                        s.status = SessionStatus::Expired;
                    }
                }
            }
        }

        fn view(&self, user: &str, now: i64) -> Option<ModelView> {
            let s = self
                .sessions
                .iter()
                .filter(|s| s.user == user)
                .max_by_key(|s| s.join_no)?;
            let closed = self.closed || self.config.closure_at(now).is_some();
            let status = if s.status == SessionStatus::Queued && closed {
                SessionStatus::Expired
            } else {
                s.status
            };
            let waiting = |s: &&ModelSession| s.status == SessionStatus::Queued;
            let queue_length = if closed {
                0
            } else {
                self.sessions
                    .iter()
                    .filter(waiting)
                    .filter(|q| q.seq.is_some() == self.opened)
                    .count() as u64
            };
            let position = match (status, s.seq) {
                (SessionStatus::Queued, Some(seq)) => Some(
                    1 + self
                        .sessions
                        .iter()
                        .filter(waiting)
                        .filter(|q| q.seq.is_some_and(|q| q < seq))
                        .count() as u64,
                ),
                _ => None,
            };
            let expires = (status == SessionStatus::Admitted)
                .then_some(s.expires_at)
                .flatten();
            Some((s.id.clone(), status, position, queue_length, expires))
        }
    }

    fn refusal(outcome: WaitroomOutcome) -> Result<(), &'static str> {
        outcome.rejection.map_or(Ok(()), |r| Err(r.code()))
    }

    fn real_view(room: &mut Room, user: &str) -> Option<ModelView> {
        room.view(user).map(|v| {
            (
                v.session_id,
                v.status,
                v.position,
                v.queue_length,
                v.checkout_expires_at,
            )
        })
    }

    proptest! {
        // No regression files: the suite runs from a checkout that must stay clean.
        #![proptest_config(ProptestConfig {
            cases: 200,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn the_waitroom_matches_a_naive_model(
            seed in any::<u64>(),
            ops in proptest::collection::vec(op(), 1..80),
            cancel_at in proptest::option::of(0usize..160),
        ) {
            let config = WaitroomConfig {
                max_concurrent_checkouts: 3,
                checkout_ttl_seconds: 60,
                admission_batch: 2,
                idle_timeout_seconds: 90,
                sale_starts_at: SALE_START,
                sale_ends_at: SALE_START + 900_000,
                cancelled: false,
            };
            let start = SALE_START - 20_000;
            let mut room = Room {
                room: Waitroom::new(MemoryWaitroomStore::new()),
                now: start,
                config: config.clone(),
                joins: 0,
            };
            room.room.apply(WaitroomCommand::Configure {
                event_id: EVENT.into(), config: config.clone(), shuffle_seed: seed,
            }, start).expect("configure");
            let mut model = Model {
                config, seed, sessions: Vec::new(), opened: false, closed: false, next_seq: 1,
            };

            for (step, op) in ops.into_iter().enumerate() {
                let now = room.now;
                let user = |u: u8| format!("user{u}");
                let real: Result<(), &'static str>;
                let expected: Result<(), &'static str>;
                if cancel_at == Some(step) {
                    room.reconfigure(|c| c.cancelled = true);
                    model.config.cancelled = true;
                    model.upkeep(now);
                }
                match op {
                    Op::Join(u) => {
                        let id = format!("s{step}");
                        real = refusal(room.apply(WaitroomCommand::Join {
                            user_id: user(u), session_id: id.clone(),
                        }));
                        expected = model.join(&user(u), &id, now);
                    }
                    Op::Leave(u) => {
                        real = refusal(room.leave(&user(u)));
                        expected = model.leave(&user(u), now);
                    }
                    Op::Touch(u) => {
                        room.touch(&user(u));
                        model.touch(&user(u), now);
                        real = Ok(());
                        expected = Ok(());
                    }
                    Op::Tick => {
                        let outcome = room.tick();
                        model.tick(now);
                        prop_assert!(matches!(
                            outcome.effects.last(), Some(WaitroomEffect::NextWakeUp(_))
                        ));
                        real = Ok(());
                        expected = Ok(());
                    }
                    Op::Advance(ms) => {
                        room.now += ms;
                        real = Ok(());
                        expected = Ok(());
                    }
                    Op::Bind(u, o) => {
                        let order = format!("order{o}");
                        real = refusal(room.bind(&user(u), &order));
                        expected = model.bind(&user(u), &order, now);
                    }
                    Op::Resolve(o, outcome) => {
                        room.resolve(&format!("order{o}"), outcome);
                        model.resolve(&format!("order{o}"), outcome, now);
                        real = Ok(());
                        expected = Ok(());
                    }
                    Op::Unbind(o) => {
                        real = refusal(room.unbind(&format!("order{o}")));
                        model.unbind(&format!("order{o}"), now);
                        expected = Ok(());
                    }
                }
                prop_assert_eq!(real, expected, "step {}", step);

                let state = room.state();
                prop_assert_eq!(state.slots_in_use, model.slots());
                prop_assert!(state.slots_in_use <= u64::from(room.config.max_concurrent_checkouts));
                for u in 0..MODEL_USERS {
                    prop_assert_eq!(
                        real_view(&mut room, &user(u)),
                        model.view(&user(u), room.now),
                        "user{} after step {}", u, step
                    );
                }
            }
        }
    }
}
