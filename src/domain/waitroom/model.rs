//! The waitroom's vocabulary: sessions and their statuses, the stored state, commands, events,
//! effects, outcomes, rejections and errors.

use serde::{Deserialize, Serialize, Serializer};

use super::*;

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

    pub(super) fn free_slots(&self, config: &WaitroomConfig) -> u64 {
        u64::from(config.max_concurrent_checkouts).saturating_sub(self.slots_in_use)
    }
}

/// A pre-queued session's place, written when the sale opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeqAssignment {
    pub join_no: u64,
    pub seq: u64,
}

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
    /// The hold of a bound order expired. If the checkout's own deadline has passed too, it
    /// ends now (ORDER_EXPIRED): whatever the saga decides, the token could not be used again
    /// (with the defaults, 15-minute holds and checkouts, this is every expiry). Otherwise it
    /// stays bound for the saga, which alone knows whether the buyer saw a payment page: it
    /// ends it ([`WaitroomCommand::CheckoutResolved`]) or reopens it
    /// ([`WaitroomCommand::UnbindOrder`]). At-least-once: unknown orders are no-ops.
    HoldExpired { order_id: String },
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

/// The first and last instants a four-digit RFC 3339 year can name (0000-01-01 to 9999-12-31).
const RFC3339_MIN_MS: i64 = -62_167_219_200_000;
const RFC3339_MAX_MS: i64 = 253_402_300_799_999;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for unix ms: the API's one RFC 3339 format. Instants beyond
/// what four year digits can write are clamped to the nearest one that can be written, so a
/// far-off "no end" still reads as a valid timestamp.
pub fn format_rfc3339_millis(unix_ms: i64) -> String {
    let clamped = unix_ms.clamp(RFC3339_MIN_MS, RFC3339_MAX_MS);
    chrono::DateTime::from_timestamp_millis(clamped)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
