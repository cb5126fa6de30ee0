//! The typed wire protocol between the Worker and its per-event `EventHub` object: one
//! `op`-tagged request enum, one reply type per operation, the error body with the API's
//! codes, and the messages pushed over waitroom WebSockets.
//!
//! Wire format (all JSON, camelCase):
//! - `POST https://event-hub/rpc` with a [`HubRequest`] body, e.g.
//!   `{"op":"reserve","orderId":"o1","userId":"u1","items":[{"ticketClassId":"ga","quantity":1}]}`.
//!   2xx: the operation's reply type. 4xx/5xx: a [`HubErrorBody`] `{status, code, detail}`.
//! - `GET https://event-hub/ws` with `Upgrade: websocket` and [`USER_HEADER`]: a hibernating
//!   socket for that user's waitroom session (the Worker authenticated the user).
//! - `GET|POST https://event-hub/ping`: a trivial SQLite round trip (benchmark baseline).

use serde::{Deserialize, Serialize};

use crate::domain::event_workflow::EventStatus;
// Which socket messages count is a domain rule; the wire names it here with the pushes.
use crate::domain::ledger::{
    ClassAvailability, ClassStatus, Hold, LedgerError, ReserveRequest, SaleSettings, SaleState,
    TicketClassSpec,
};
use crate::domain::socket_rules::SocketMeter;
pub use crate::domain::socket_rules::SocketRequest;
use crate::domain::waitroom::{
    format_rfc3339_millis, CheckoutOutcome, ClosedReason, SessionEndReason, SessionStatus,
    WaitroomConfig, WaitroomError, WaitroomRejection, WaitroomSessionView,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
};
use crate::error::rule_code;

/// The object is only reached through its stub; the host part of the URL is never resolved.
pub const HUB_ORIGIN: &str = "https://event-hub";
pub const RPC_PATH: &str = "/rpc";
pub const WS_PATH: &str = "/ws";
pub const PING_PATH: &str = "/ping";
/// The user the Worker authenticated, on `/ws` requests. The object trusts it: only the Worker
/// can reach the object, and it sets this header from a verified access token.
pub const USER_HEADER: &str = "X-Hub-User-Id";
/// The Worker's request id on calls made while serving a request, for the object's log lines.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// The largest instant (unix ms) the object stores: SQLite integers cross the JS boundary as
/// f64, so anything beyond 2^53 would come back changed. "No end" is stored as this.
pub const MAX_SAFE_MS: i64 = (1 << 53) - 1;

// ---------------------------------------------------------------------------------------------
// Event setup
// ---------------------------------------------------------------------------------------------

/// What the object must know about its event, synced by the Worker on configure, approve,
/// publish, cancel and patch. Idempotent: the latest setup wins, CANCELLED is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSetup {
    pub event_id: String,
    pub status: EventStatus,
    /// `ticketSaleStartDate` in unix ms; `None` before the event is configured.
    #[serde(default)]
    pub sale_starts_at_ms: Option<i64>,
    /// `ticketSaleEndDate` in unix ms.
    #[serde(default)]
    pub sale_ends_at_ms: Option<i64>,
    #[serde(default)]
    pub max_tickets_per_user: Option<u32>,
    #[serde(default)]
    pub allow_wait_room: bool,
    #[serde(default)]
    pub waitroom: WaitroomConfig,
    /// `eventConfig.waitroom.shards`: above 1 the queue lives in that many `QueueShard`
    /// objects and this object keeps the admission (`domain::admission::hub`).
    #[serde(default = "one_shard")]
    pub shards: u16,
}

fn one_shard() -> u16 {
    1
}

impl EventSetup {
    /// Refuses setups the object could not store faithfully or would never sell under.
    pub fn validate(&self) -> Result<(), HubFailure> {
        if self.event_id.is_empty() {
            return Err(HubFailure::validation("eventId must not be empty"));
        }
        for (field, value) in [
            ("saleStartsAtMs", self.sale_starts_at_ms),
            ("saleEndsAtMs", self.sale_ends_at_ms),
        ] {
            if value.is_some_and(|ms| !(0..=MAX_SAFE_MS).contains(&ms)) {
                return Err(HubFailure::validation(format!(
                    "{field} must be between 0 and {MAX_SAFE_MS}"
                )));
            }
        }
        if let (Some(start), Some(end)) = (self.sale_starts_at_ms, self.sale_ends_at_ms) {
            if end <= start {
                return Err(HubFailure::validation(
                    "saleEndsAtMs must be after saleStartsAtMs",
                ));
            }
        }
        if self.waitroom.checkout_ttl_seconds == 0 {
            return Err(HubFailure::validation(
                "waitroom.checkoutTtlSeconds must be at least 1",
            ));
        }
        Ok(())
    }

    /// The ledger's view: only a PUBLISHED event sells, and only inside its sale window.
    pub fn sale_settings(&self) -> SaleSettings {
        SaleSettings {
            state: match self.status {
                EventStatus::Published => SaleState::Open,
                EventStatus::Cancelled => SaleState::Cancelled,
                EventStatus::Draft | EventStatus::Configured | EventStatus::Approved => {
                    SaleState::Closed
                }
            },
            max_tickets_per_user: self.max_tickets_per_user,
            sale_starts_at: self.sale_starts_at_ms,
            sale_ends_at: self.sale_ends_at_ms,
        }
    }

    /// The waitroom's view. An unset window edge becomes "always" (0 / [`MAX_SAFE_MS`]).
    pub fn waitroom_config(&self) -> WaitroomConfig {
        WaitroomConfig {
            max_concurrent_checkouts: self.waitroom.max_concurrent_checkouts,
            checkout_ttl_seconds: self.waitroom.checkout_ttl_seconds,
            admission_batch: self.waitroom.admission_batch,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            sale_starts_at: self.sale_starts_at_ms.unwrap_or(0),
            sale_ends_at: self.sale_ends_at_ms.unwrap_or(MAX_SAFE_MS),
            cancelled: self.status == EventStatus::Cancelled,
        }
    }

    /// Whether fans may queue now: the event is published (the waitroom itself refuses once
    /// the sale has ended or the event was cancelled; before the sale they wait in the pre-queue).
    pub fn accepts_joins(&self) -> bool {
        self.allow_wait_room && self.status == EventStatus::Published
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Everything the Worker can ask of an event's object (`POST /rpc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum HubRequest {
    /// The event's status, sale window, per-user limit and waitroom settings. Reply: [`Ack`].
    SyncEvent(EventSetup),
    /// Creates or updates a class keeping its counters. Reply: [`ClassReply`].
    UpsertClass(TicketClassSpec),
    /// Changes a class's total and/or status. Reply: [`ClassReply`].
    UpdateClass {
        ticket_class_id: String,
        #[serde(default)]
        total: Option<i64>,
        #[serde(default)]
        status: Option<ClassStatus>,
    },
    /// Live counters of every class. Reply: [`ClassesReply`].
    Availability,
    /// Holds an order's tickets, all or nothing. Reply: [`HoldReply`].
    Reserve(ReserveRequest),
    /// An order placed with a waitroom checkout token (`session_id` is its `sid`, the hold's
    /// user its `sub`): binds the order to the checkout and holds its tickets in one
    /// transaction. A checkout that is not that user's ADMITTED one, is past its deadline or
    /// holds another order is refused with 403 `CHECKOUT_TOKEN_INVALID` before any stock is
    /// looked at; a hold the ledger refuses leaves the checkout unbound. Idempotent per order.
    /// Reply: [`HoldReply`].
    ReserveForCheckout {
        session_id: String,
        reserve: ReserveRequest,
    },
    /// Reply: the ledger's `ConfirmOutcome`.
    Confirm { order_id: String },
    /// Reply: the ledger's `ReleaseOutcome`.
    Release { order_id: String },
    /// A refunded order's sold tickets go back on sale, once. Reply: the ledger's
    /// `ReturnOutcome`.
    ReturnSold { order_id: String },
    /// Reply: [`SessionReply`] (always with a session).
    Join { user_id: String },
    /// The caller's latest session; also counts as "seen". Reply: [`SessionReply`].
    Session { user_id: String },
    /// Reply: [`Ack`].
    Leave { user_id: String },
    /// The saga resolved an order; frees its checkout slot. Idempotent. Reply: [`Ack`].
    CheckoutResolved {
        order_id: String,
        outcome: CheckoutOutcome,
    },
    /// The order's payment was never created (the buyer saw no payment page): its checkout
    /// stays ADMITTED, unbound, until its own deadline. Idempotent. Reply: [`Ack`].
    UnbindOrder { order_id: String },
    /// The operator view. Reply: [`HubStatus`].
    Status,
    /// A sharded waitroom's fan gives up an unused checkout (their shard said the slot is
    /// the hub's). 409 `CHECKOUT_IN_PROGRESS` while an order holds it. Reply: [`Ack`].
    LeaveCheckout { user_id: String },
    /// A queue shard recorded a join into its empty queue: an idle sharded admission goes
    /// back to a round a second. Reply: [`Ack`].
    WakeAdmission,
}

impl HubRequest {
    /// A low-cardinality name for logs.
    pub fn op(&self) -> &'static str {
        match self {
            HubRequest::SyncEvent(_) => "syncEvent",
            HubRequest::UpsertClass(_) => "upsertClass",
            HubRequest::UpdateClass { .. } => "updateClass",
            HubRequest::Availability => "availability",
            HubRequest::Reserve(_) => "reserve",
            HubRequest::ReserveForCheckout { .. } => "reserveForCheckout",
            HubRequest::Confirm { .. } => "confirm",
            HubRequest::Release { .. } => "release",
            HubRequest::ReturnSold { .. } => "returnSold",
            HubRequest::Join { .. } => "join",
            HubRequest::Session { .. } => "session",
            HubRequest::Leave { .. } => "leave",
            HubRequest::CheckoutResolved { .. } => "checkoutResolved",
            HubRequest::UnbindOrder { .. } => "unbindOrder",
            HubRequest::Status => "status",
            HubRequest::LeaveCheckout { .. } => "leaveCheckout",
            HubRequest::WakeAdmission => "wakeAdmission",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
}

impl Ack {
    pub const OK: Ack = Ack { ok: true };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassReply {
    pub ticket_class: ClassAvailability,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassesReply {
    pub items: Vec<ClassAvailability>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldReply {
    pub hold: Hold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReply {
    pub waitroom_session: Option<SessionView>,
}

/// The API's `waitroomSession`, with the checkout token minted from the session when ADMITTED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: String,
    pub event_id: String,
    pub status: SessionStatus,
    /// 1-based; QUEUED sessions in the queue only.
    pub position: Option<u64>,
    pub queue_length: u64,
    pub estimated_wait_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_token: Option<String>,
    /// RFC 3339, ADMITTED only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<SessionEndReason>,
}

impl SessionView {
    pub fn new(view: WaitroomSessionView, checkout_token: Option<String>) -> Self {
        SessionView {
            session_id: view.session_id,
            event_id: view.event_id,
            status: view.status,
            position: view.position,
            queue_length: view.queue_length,
            estimated_wait_seconds: view.estimated_wait_seconds,
            checkout_token,
            checkout_expires_at: view.checkout_expires_at.map(format_rfc3339_millis),
            end_reason: view.end_reason,
        }
    }
}

/// The operator view of one event's object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubStatus {
    pub event_id: Option<String>,
    pub event_status: Option<EventStatus>,
    pub sale_state: SaleState,
    pub waitroom: Option<WaitroomStatus>,
    /// ACTIVE holds right now.
    pub active_holds: u64,
    pub classes: Vec<ClassAvailability>,
    /// Messages written to the outbox and not yet accepted by their queue.
    pub outbox_backlog: u64,
    /// Hibernating waitroom sockets attached to this object.
    pub connected_sockets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomStatus {
    /// Fans waiting with a place in the queue.
    pub queue_length: u64,
    /// Fans waiting for the sale to open (placed by a shuffle at sale start).
    pub prequeued: u64,
    /// ADMITTED sessions: equal to the checkout slots in use.
    pub admitted: u64,
    pub slots_in_use: u64,
    pub max_slots: u32,
    pub sale_opened: bool,
    pub closed: Option<ClosedReason>,
    pub admissions_per_second: Option<f64>,
    /// Fans admitted in the last 60 s (exact, from the sessions' admission times).
    #[serde(default)]
    pub admitted_last_minute: u64,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The body of every non-2xx reply from the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubErrorBody {
    pub status: u16,
    pub code: String,
    pub detail: String,
}

/// A refused or failed operation inside the object: the API's code (its status comes from
/// the crate's one code table, [`crate::error::rule_code`]) and a detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct HubFailure {
    pub code: &'static str,
    pub detail: String,
}

impl HubFailure {
    /// `code` must be one of the table's; an unknown one answers 500 so a test catches it.
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        HubFailure {
            code,
            detail: detail.into(),
        }
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new("VALIDATION_FAILED", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new("NOT_FOUND", detail)
    }

    /// Storage or invariant trouble: the detail is logged by the object, never shown.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new("INTERNAL_ERROR", detail)
    }

    pub fn status(&self) -> u16 {
        rule_code(self.code).map_or(500, |(_, status)| status)
    }

    pub fn is_internal(&self) -> bool {
        self.status() >= 500
    }

    pub fn body(&self) -> HubErrorBody {
        HubErrorBody {
            status: self.status(),
            code: self.code.to_owned(),
            detail: if self.is_internal() {
                "the event's object failed".to_owned()
            } else {
                self.detail.clone()
            },
        }
    }
}

impl From<LedgerError> for HubFailure {
    fn from(error: LedgerError) -> Self {
        HubFailure::new(error.code(), error.to_string())
    }
}

impl From<WaitroomRejection> for HubFailure {
    fn from(rejection: WaitroomRejection) -> Self {
        HubFailure::new(rejection.code(), rejection.to_string())
    }
}

impl<E: std::error::Error + 'static> From<WaitroomError<E>> for HubFailure {
    fn from(error: WaitroomError<E>) -> Self {
        match &error {
            WaitroomError::NotConfigured => HubFailure::not_found("this event has no waitroom"),
            WaitroomError::InvalidConfig(why) => HubFailure::validation(*why),
            WaitroomError::EventMismatch { .. } => HubFailure::new("CONFLICT", error.to_string()),
            WaitroomError::QueueFull => HubFailure::new("SERVICE_UNAVAILABLE", error.to_string()),
            WaitroomError::Corrupt(_) => HubFailure::internal(error.to_string()),
            WaitroomError::Store(source) => {
                HubFailure::internal(format!("waitroom storage: {source}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket messages
// ---------------------------------------------------------------------------------------------

/// What the object pushes to a fan's socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SocketPush {
    /// On connect and whenever the head of the queue moves.
    Position {
        position: Option<u64>,
        queue_length: u64,
        estimated_wait_seconds: Option<u64>,
    },
    Admitted {
        checkout_token: String,
        checkout_expires_at: String,
    },
    Expired,
    /// On connect, for a session that ended otherwise (LEFT, COMPLETED).
    Status {
        status: SessionStatus,
    },
    Pong,
}

impl SocketPush {
    /// What a fan with this session should see on connect.
    pub fn for_session(view: &SessionView) -> SocketPush {
        match (view.status, &view.checkout_token, &view.checkout_expires_at) {
            (SessionStatus::Queued, _, _) => SocketPush::Position {
                position: view.position,
                queue_length: view.queue_length,
                estimated_wait_seconds: view.estimated_wait_seconds,
            },
            (SessionStatus::Admitted, Some(token), Some(expires)) => SocketPush::Admitted {
                checkout_token: token.clone(),
                checkout_expires_at: expires.clone(),
            },
            (SessionStatus::Expired, _, _) => SocketPush::Expired,
            (status, _, _) => SocketPush::Status { status },
        }
    }
}

/// What the object keeps on each hibernating socket: whose it is, and what it has spent
/// (`domain::socket_rules`). `meter` defaults so a socket accepted before it existed still
/// reads (as a fresh meter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketAttachment {
    pub user_id: String,
    pub session_id: String,
    #[serde(default)]
    pub meter: SocketMeter,
    /// The last position this socket was shown for its stay (a queue shard's sockets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_position: Option<u64>,
}

impl SocketAttachment {
    /// A socket accepted at `now`.
    pub fn new(user_id: String, session_id: String, now: i64) -> Self {
        SocketAttachment {
            user_id,
            session_id,
            meter: SocketMeter::opened(now),
            shown_position: None,
        }
    }
}

/// The pre-queue shuffle seed: HMAC-SHA256(JWT_SECRET, "prequeue:" + event id), first 8 bytes.
/// Fixed per event (an audit can replay the shuffle) yet not derivable by the public, who
/// could otherwise time their joins to land early in the shuffled order.
pub fn shuffle_seed(secret: &[u8], event_id: &str) -> u64 {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this branch exists only to avoid a panic path.
        return 0;
    };
    mac.update(b"prequeue:");
    mac.update(event_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The hibernation tag that finds a user's sockets without waking them all.
pub fn user_tag(user_id: &str) -> String {
    format!("u:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setup(status: EventStatus) -> EventSetup {
        EventSetup {
            event_id: "evt-1".into(),
            status,
            sale_starts_at_ms: Some(1_000),
            sale_ends_at_ms: Some(2_000),
            max_tickets_per_user: Some(4),
            allow_wait_room: true,
            waitroom: WaitroomConfig::default(),
            shards: 1,
        }
    }

    #[test]
    fn the_shuffle_seed_is_fixed_per_event_and_secret() {
        let seed = shuffle_seed(b"secret-a", "evt-1");
        assert_eq!(seed, shuffle_seed(b"secret-a", "evt-1"));
        assert_ne!(seed, shuffle_seed(b"secret-a", "evt-2"));
        assert_ne!(seed, shuffle_seed(b"secret-b", "evt-1"));
        // HMAC-SHA256(key = "key", "prequeue:evt") computed independently (Python hmac).
        assert_eq!(
            format!("{:016x}", shuffle_seed(b"key", "evt")),
            "96b55372bcf23609"
        );
    }

    #[test]
    fn requests_travel_as_op_tagged_camel_case_json() {
        let reserve: HubRequest = serde_json::from_value(json!({
            "op": "reserve",
            "orderId": "o1",
            "userId": "u1",
            "items": [{"ticketClassId": "ga", "quantity": 2}],
            "holdForMs": 60000
        }))
        .unwrap();
        assert_eq!(reserve.op(), "reserve");
        let HubRequest::Reserve(request) = &reserve else {
            panic!("expected reserve, got {reserve:?}");
        };
        assert_eq!(request.hold_for_ms, Some(60_000));

        let resolved: HubRequest = serde_json::from_value(
            json!({"op": "checkoutResolved", "orderId": "o1", "outcome": "EXPIRED"}),
        )
        .unwrap();
        assert_eq!(
            resolved,
            HubRequest::CheckoutResolved {
                order_id: "o1".into(),
                outcome: CheckoutOutcome::Expired
            }
        );
        let checkout: HubRequest = serde_json::from_value(json!({
            "op": "reserveForCheckout",
            "sessionId": "s1",
            "reserve": {"orderId": "o1", "userId": "u1", "items": [{"ticketClassId": "ga", "quantity": 1}]}
        }))
        .unwrap();
        assert_eq!(checkout.op(), "reserveForCheckout");
        let HubRequest::ReserveForCheckout {
            session_id,
            reserve,
        } = &checkout
        else {
            panic!("expected reserveForCheckout, got {checkout:?}");
        };
        assert_eq!(
            (session_id.as_str(), reserve.user_id.as_str()),
            ("s1", "u1")
        );
        assert_eq!(
            serde_json::to_value(HubRequest::UnbindOrder {
                order_id: "o1".into()
            })
            .unwrap(),
            json!({"op": "unbindOrder", "orderId": "o1"})
        );
        let sync: HubRequest = serde_json::from_value(json!({
            "op": "syncEvent", "eventId": "e", "status": "PUBLISHED", "allowWaitRoom": true,
            "waitroom": {"maxConcurrentCheckouts": 2, "checkoutTtlSeconds": 60, "admissionBatch": 5}
        }))
        .unwrap();
        let HubRequest::SyncEvent(setup) = sync else {
            panic!("expected syncEvent");
        };
        assert_eq!(setup.waitroom.max_concurrent_checkouts, 2);
        assert_eq!(setup.sale_starts_at_ms, None);
        for op in [json!({"op": "availability"}), json!({"op": "status"})] {
            let request: HubRequest = serde_json::from_value(op.clone()).unwrap();
            assert_eq!(serde_json::to_value(&request).unwrap(), op);
        }
    }

    #[test]
    fn an_unknown_op_does_not_decode() {
        assert!(serde_json::from_value::<HubRequest>(json!({"op": "dropTables"})).is_err());
        assert!(serde_json::from_value::<HubRequest>(json!({"orderId": "o1"})).is_err());
        // Binding an order on its own went with `reserveForCheckout`, which binds and holds.
        let bind = json!({"op": "bindOrder", "sessionId": "s", "userId": "u", "orderId": "o"});
        assert!(serde_json::from_value::<HubRequest>(bind).is_err());
    }

    #[test]
    fn only_a_published_event_sells_and_a_cancelled_one_closes_the_waitroom() {
        assert_eq!(
            setup(EventStatus::Published).sale_settings().state,
            SaleState::Open
        );
        for status in [
            EventStatus::Draft,
            EventStatus::Configured,
            EventStatus::Approved,
        ] {
            assert_eq!(setup(status).sale_settings().state, SaleState::Closed);
            assert!(!setup(status).accepts_joins());
        }
        let cancelled = setup(EventStatus::Cancelled);
        assert_eq!(cancelled.sale_settings().state, SaleState::Cancelled);
        assert!(cancelled.waitroom_config().cancelled);
        assert!(!cancelled.accepts_joins());
        assert!(setup(EventStatus::Published).accepts_joins());
    }

    #[test]
    fn the_sale_window_reaches_both_the_ledger_and_the_waitroom() {
        let published = setup(EventStatus::Published);
        let sale = published.sale_settings();
        assert_eq!(
            (sale.sale_starts_at, sale.sale_ends_at),
            (Some(1_000), Some(2_000))
        );
        assert_eq!(sale.max_tickets_per_user, Some(4));
        let config = published.waitroom_config();
        assert_eq!((config.sale_starts_at, config.sale_ends_at), (1_000, 2_000));
        assert_eq!(config.validate(), Ok(()));

        let open_ended = EventSetup {
            sale_starts_at_ms: None,
            sale_ends_at_ms: None,
            ..published
        };
        let config = open_ended.waitroom_config();
        assert_eq!(
            (config.sale_starts_at, config.sale_ends_at),
            (0, MAX_SAFE_MS)
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn setups_the_object_cannot_store_faithfully_are_refused() {
        let good = setup(EventStatus::Published);
        assert_eq!(good.validate(), Ok(()));
        let cases = [
            EventSetup {
                event_id: String::new(),
                ..good.clone()
            },
            EventSetup {
                sale_ends_at_ms: Some(1_000),
                ..good.clone()
            },
            EventSetup {
                sale_ends_at_ms: Some(i64::MAX),
                ..good.clone()
            },
            EventSetup {
                sale_starts_at_ms: Some(-1),
                ..good.clone()
            },
            EventSetup {
                waitroom: WaitroomConfig {
                    checkout_ttl_seconds: 0,
                    ..WaitroomConfig::default()
                },
                ..good.clone()
            },
        ];
        for case in cases {
            let failure = case.validate().unwrap_err();
            assert_eq!((failure.status(), failure.code), (400, "VALIDATION_FAILED"));
        }
    }

    #[test]
    fn ledger_errors_map_to_the_api_status_codes() {
        let cases = [
            (
                LedgerError::InsufficientInventory {
                    ticket_class_id: "ga".into(),
                    requested: 2,
                    available: 1,
                },
                409,
                "INSUFFICIENT_INVENTORY",
            ),
            (
                LedgerError::SaleNotOpen {
                    state: SaleState::Closed,
                },
                409,
                "SALE_NOT_OPEN",
            ),
            (LedgerError::OutsideSaleWindow, 409, "SALE_NOT_OPEN"),
            (
                LedgerError::PurchaseLimitExceeded {
                    limit: 2,
                    already_committed: 2,
                    requested: 1,
                },
                422,
                "PURCHASE_LIMIT_EXCEEDED",
            ),
            (
                LedgerError::TotalBelowCommitted {
                    ticket_class_id: "ga".into(),
                    total: 1,
                    committed: 2,
                },
                409,
                "TOTAL_BELOW_COMMITTED",
            ),
            (
                LedgerError::UnknownTicketClass {
                    ticket_class_id: "x".into(),
                },
                404,
                "UNKNOWN_TICKET_CLASS",
            ),
            (
                LedgerError::Invalid {
                    field: "items".into(),
                    message: "empty".into(),
                },
                400,
                "VALIDATION_FAILED",
            ),
            (
                LedgerError::Corrupt { detail: "x".into() },
                500,
                "INTERNAL_ERROR",
            ),
        ];
        for (error, status, code) in cases {
            let failure = HubFailure::from(error);
            assert_eq!((failure.status(), failure.code), (status, code));
            assert_eq!(
                rule_code(code),
                Some((code, status)),
                "{code} is in the table"
            );
        }
    }

    #[test]
    fn waitroom_rejections_map_to_the_api_status_codes() {
        let cases = [
            (WaitroomRejection::SaleNotOpen, 409, "SALE_NOT_OPEN"),
            (WaitroomRejection::SessionNotFound, 404, "NOT_FOUND"),
            (
                WaitroomRejection::CheckoutNotActive,
                403,
                "CHECKOUT_TOKEN_INVALID",
            ),
            (
                WaitroomRejection::CheckoutInProgress,
                409,
                "CHECKOUT_IN_PROGRESS",
            ),
            (WaitroomRejection::DuplicateSessionId, 409, "CONFLICT"),
        ];
        for (rejection, status, code) in cases {
            let failure = HubFailure::from(rejection);
            assert_eq!((failure.status(), failure.code), (status, code));
            assert_eq!(rule_code(code), Some((code, status)));
        }
        let missing: HubFailure = WaitroomError::<std::fmt::Error>::NotConfigured.into();
        assert_eq!((missing.status(), missing.code), (404, "NOT_FOUND"));
    }

    #[test]
    fn internal_failures_never_carry_their_detail_over_the_wire() {
        let failure = HubFailure::internal("sqlite said: disk I/O error at /var/...");
        let body = failure.body();
        assert_eq!((body.status, body.code.as_str()), (500, "INTERNAL_ERROR"));
        assert!(!body.detail.contains("sqlite"));
        let rule = HubFailure::new("SALE_NOT_OPEN", "not on sale").body();
        assert_eq!(rule.detail, "not on sale");
    }

    #[test]
    fn socket_messages_have_the_api_shapes() {
        let position = SocketPush::Position {
            position: Some(3),
            queue_length: 10,
            estimated_wait_seconds: None,
        };
        assert_eq!(
            serde_json::to_value(&position).unwrap(),
            json!({"type": "position", "position": 3, "queueLength": 10, "estimatedWaitSeconds": null})
        );
        let admitted = SocketPush::Admitted {
            checkout_token: "jwt".into(),
            checkout_expires_at: "2026-01-01T00:00:00.000Z".into(),
        };
        assert_eq!(
            serde_json::to_value(&admitted).unwrap(),
            json!({"type": "admitted", "checkoutToken": "jwt", "checkoutExpiresAt": "2026-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            serde_json::to_value(SocketPush::Expired).unwrap(),
            json!({"type": "expired"})
        );
        assert_eq!(
            serde_json::from_value::<SocketRequest>(json!({"type": "ping"})).unwrap(),
            SocketRequest::Ping
        );
    }

    #[test]
    fn a_socket_attachment_from_before_the_meter_still_reads() {
        let old: SocketAttachment =
            serde_json::from_value(json!({"userId": "u", "sessionId": "s"})).unwrap();
        assert_eq!(old.user_id, "u");
        assert_eq!(old.meter, SocketMeter::default());
        let new = SocketAttachment::new("u".into(), "s".into(), 7);
        let round: SocketAttachment =
            serde_json::from_value(serde_json::to_value(&new).unwrap()).unwrap();
        assert_eq!(round, new);
    }

    #[test]
    fn a_session_view_formats_its_deadline_and_keeps_the_token() {
        let view = WaitroomSessionView {
            session_id: "s1".into(),
            event_id: "e1".into(),
            status: SessionStatus::Admitted,
            position: None,
            queue_length: 4,
            estimated_wait_seconds: None,
            checkout_expires_at: Some(0),
            end_reason: None,
        };
        let session = SessionView::new(view, Some("jwt".into()));
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(json["checkoutExpiresAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["checkoutToken"], "jwt");
        assert_eq!(json["status"], "ADMITTED");
        assert!(json.get("endReason").is_none());
        assert_eq!(
            SocketPush::for_session(&session),
            SocketPush::Admitted {
                checkout_token: "jwt".into(),
                checkout_expires_at: "1970-01-01T00:00:00.000Z".into()
            }
        );
    }
}
