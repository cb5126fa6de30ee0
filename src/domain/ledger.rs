//! The inventory ledger of one event: ticket-class counters and holds, and the rule that we never oversell.
//!
//! Pure and deterministic: no `worker` types, no clock (every operation takes `now` in unix
//! milliseconds), no randomness. State lives behind [`LedgerStore`], which the event's Durable
//! Object implements on its SQLite storage ([`LEDGER_SCHEMA`]) and tests implement with
//! [`MemoryLedgerStore`]. Each operation reads only the rows it needs (reserve, confirm and
//! release each in one store call, [`LedgerStore::reserve_reads`] or
//! [`LedgerStore::hold_with_classes`], which the SQL store answers with one query), computes
//! every change first, and hands them to the store in one [`LedgerStore::commit`], so a
//! rejected or failed operation leaves nothing half-written.
//!
//! Invariants, for every ticket class after every operation:
//! - `reserved + sold <= total`;
//! - `reserved` is the sum of the class's quantities over ACTIVE holds;
//! - `sold` is the sum of the class's quantities over CONFIRMED holds.
//!
//! Counters are stored on the class row and moved together with the hold that explains them,
//! rather than recomputed by scanning holds, because an on-sale can hold tens of thousands of holds.
//!
//! Decisions worth knowing:
//! - Every operation is idempotent by order id. A repeat `reserve` returns the stored hold
//!   whatever its state now (an expired hold is not renewed); the same order id with another user
//!   or other items is `ORDER_ID_CONFLICT`. A rejected `reserve` stores nothing, so a retry is
//!   judged afresh.
//! - Duplicate ticket-class ids within one order are rejected (`VALIDATION_FAILED`), not merged:
//!   the order's lines and the hold's lines must agree one to one, and a client that sends the
//!   same class twice has a bug worth surfacing.
//! - A class's sale window is `[saleStartAt, saleEndAt)`; outside it the answer is
//!   `SALE_NOT_OPEN`, like an event that is not on sale. A PAUSED class is `CLASS_NOT_ON_SALE`.
//! - `maxTicketsPerUser` counts tickets (not orders) across classes, over the user's ACTIVE and
//!   CONFIRMED holds; it is checked when tickets are reserved, not again when they are paid.
//! - A payment is never lost: `confirm` of an ACTIVE hold sells it even if its `expiresAt` has
//!   passed but the expiry alarm has not run yet (the stock is still set aside for it). A payment
//!   for an EXPIRED or RELEASED hold re-reserves-and-sells when every line still has stock, even if
//!   the class is now paused or its window closed (the buyer was admitted in time); otherwise the
//!   answer is `PaidButNoStock` and stays so, even if stock frees up later, because the saga will
//!   already have refunded. On a cancelled event every payment is refused
//!   (`PaidButEventCancelled`) and an ACTIVE hold is released.
//! - CANCELLED is final for the event's sale state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type Millis = i64;

/// How long tickets stay held for an order when the caller does not say (the API's 15 minutes).
pub const DEFAULT_HOLD_MS: Millis = 15 * 60 * 1000;

/// Most holds expired by one [`Ledger::expire_due`] call, so one alarm stays well inside the
/// object's CPU budget even after a wave of abandoned checkouts; the rest are picked up by the
/// next alarm, which [`Ledger::next_expiry`] then puts in the past (that is, at once).
pub const EXPIRY_BATCH: usize = 500;

/// The SQLite schema behind the Durable Object's `SqlLedgerStore`, one statement per `;`.
///
/// Columns are snake_case; the queries documented on [`LedgerStore`] alias them to the
/// camelCase serde names so rows deserialize straight into [`TicketClass`], [`SaleSettings`]
/// and [`HoldRow`]. The CHECKs repeat the ledger's invariants so that a bug fails a write
/// instead of overselling.
///
/// Every B-tree page a write touches costs the object at commit, so the holds table carries
/// only the two indexes its queries need, and the user index leaves `state` out: a hold that
/// is released, expires or is paid does not move in it (the limit check reads the few rows of
/// one user instead). The index it replaced is dropped where an older object still has it.
pub const LEDGER_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS ledger_settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  sale_state TEXT NOT NULL CHECK (sale_state IN ('CLOSED', 'OPEN', 'CANCELLED')),
  max_tickets_per_user INTEGER CHECK (max_tickets_per_user IS NULL OR max_tickets_per_user >= 0),
  sale_starts_at INTEGER,
  sale_ends_at INTEGER
);
CREATE TABLE IF NOT EXISTS ticket_classes (
  id TEXT PRIMARY KEY,
  total INTEGER NOT NULL CHECK (total >= 0),
  reserved INTEGER NOT NULL CHECK (reserved >= 0),
  sold INTEGER NOT NULL CHECK (sold >= 0),
  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'PAUSED')),
  sale_start_at INTEGER,
  sale_end_at INTEGER,
  CHECK (reserved + sold <= total)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
  order_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  items_json TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'CONFIRMED', 'RELEASED', 'EXPIRED')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  refusal_reason TEXT CHECK (refusal_reason IS NULL OR refusal_reason IN ('NO_STOCK', 'EVENT_CANCELLED')),
  refused_at INTEGER,
  CHECK ((refusal_reason IS NULL) = (refused_at IS NULL))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS holds_by_user ON holds (user_id);
DROP INDEX IF EXISTS holds_by_user_state;
CREATE INDEX IF NOT EXISTS holds_active_by_expiry ON holds (expires_at, order_id) WHERE state = 'ACTIVE';
";

// ---------------------------------------------------------------------------------------------
// Event-level sale settings
// ---------------------------------------------------------------------------------------------

/// Whether the event sells tickets at all, as told to the object by the event workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaleState {
    /// Not (yet) published, or the sale was closed: no new holds; payments for holds still count.
    #[default]
    Closed,
    /// Published and on sale.
    Open,
    /// The event is cancelled: no new holds and no payment is accepted. Final.
    Cancelled,
}

/// The event's sale state, per-user ticket limit and sale window.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleSettings {
    pub state: SaleState,
    /// Tickets one user may hold or own across all classes; `None` means no limit.
    pub max_tickets_per_user: Option<u32>,
    /// The event's `ticketSaleStartDate`: no holds before it; `None` means no lower bound.
    #[serde(default)]
    pub sale_starts_at: Option<Millis>,
    /// The event's `ticketSaleEndDate`: no holds from it on; `None` means no upper bound.
    #[serde(default)]
    pub sale_ends_at: Option<Millis>,
}

impl SaleSettings {
    /// Whether `now` lies in the event's sale window `[saleStartsAt, saleEndsAt)`. A class's
    /// own window narrows this further; both must contain `now` for a hold.
    pub fn window_contains(&self, now: Millis) -> bool {
        self.sale_starts_at.is_none_or(|start| start <= now)
            && self.sale_ends_at.is_none_or(|end| now < end)
    }
}

// ---------------------------------------------------------------------------------------------
// Ticket classes
// ---------------------------------------------------------------------------------------------

/// Whether a ticket class can be reserved right now (the organizer can pause one class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClassStatus {
    #[default]
    Active,
    Paused,
}

/// A ticket class's inventory row: the live counters and what decides whether it is on sale.
/// Name and price live with the event's catalogue, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketClass {
    pub id: String,
    pub total: u32,
    pub reserved: u32,
    pub sold: u32,
    pub status: ClassStatus,
    /// First instant tickets may be reserved; `None` means since the event opened.
    pub sale_start_at: Option<Millis>,
    /// First instant tickets may no longer be reserved; `None` means until the event closes.
    pub sale_end_at: Option<Millis>,
}

impl TicketClass {
    /// Tickets neither held nor sold.
    pub fn available(&self) -> u32 {
        let committed = self.committed();
        u32::try_from(u64::from(self.total).saturating_sub(committed)).unwrap_or(0)
    }

    /// Tickets held or sold, in u64 so that a corrupt row cannot overflow the check.
    pub fn committed(&self) -> u64 {
        u64::from(self.reserved) + u64::from(self.sold)
    }

    fn window_contains(&self, now: Millis) -> bool {
        self.sale_start_at.is_none_or(|start| start <= now)
            && self.sale_end_at.is_none_or(|end| now < end)
    }

    fn hold_back(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.reserved = self
            .reserved
            .checked_add(quantity)
            .ok_or_else(|| corrupt(format!("reserved counter of class {} overflows", self.id)))?;
        Ok(())
    }

    fn give_back(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.reserved = self.reserved.checked_sub(quantity).ok_or_else(|| {
            corrupt(format!(
                "class {} has {} reserved, fewer than a hold's {quantity}",
                self.id, self.reserved
            ))
        })?;
        Ok(())
    }

    fn sell(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.sold = self
            .sold
            .checked_add(quantity)
            .ok_or_else(|| corrupt(format!("sold counter of class {} overflows", self.id)))?;
        Ok(())
    }
}

/// What the organizer sets on a ticket class; counters are the ledger's own business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketClassSpec {
    pub id: String,
    /// Signed because it comes straight off the wire; negative is a validation error.
    pub total: i64,
    #[serde(default)]
    pub status: ClassStatus,
    #[serde(default)]
    pub sale_start_at: Option<Millis>,
    #[serde(default)]
    pub sale_end_at: Option<Millis>,
}

/// A class's live counters as the API shows them (`available = total - reserved - sold`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassAvailability {
    pub id: String,
    pub total: u32,
    pub reserved: u32,
    pub sold: u32,
    pub available: u32,
    pub status: ClassStatus,
    pub sale_start_at: Option<Millis>,
    pub sale_end_at: Option<Millis>,
}

impl From<&TicketClass> for ClassAvailability {
    fn from(class: &TicketClass) -> Self {
        ClassAvailability {
            id: class.id.clone(),
            total: class.total,
            reserved: class.reserved,
            sold: class.sold,
            available: class.available(),
            status: class.status,
            sale_start_at: class.sale_start_at,
            sale_end_at: class.sale_end_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Holds
// ---------------------------------------------------------------------------------------------

/// Where a hold is in its life. Only ACTIVE holds count in `reserved`, only CONFIRMED in `sold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldState {
    Active,
    Confirmed,
    Released,
    Expired,
}

/// One line of an order as requested, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedItem {
    pub ticket_class_id: String,
    /// Signed because it comes straight off the wire; zero or negative is a validation error.
    pub quantity: i64,
}

impl RequestedItem {
    pub fn new(ticket_class_id: impl Into<String>, quantity: i64) -> Self {
        RequestedItem {
            ticket_class_id: ticket_class_id.into(),
            quantity,
        }
    }
}

/// What the Worker asks the object to hold for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveRequest {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<RequestedItem>,
    /// How long the hold lasts; `None` means [`DEFAULT_HOLD_MS`].
    #[serde(default)]
    pub hold_for_ms: Option<Millis>,
}

/// One validated line of a hold: a known-positive quantity of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldItem {
    pub ticket_class_id: String,
    pub quantity: u32,
}

/// Why a payment was not turned into tickets; the saga refunds on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefusalReason {
    /// The hold had lapsed and its tickets were gone by the time the payment arrived.
    NoStock,
    /// The event was cancelled before the payment arrived.
    EventCancelled,
}

/// A payment the ledger refused, remembered so that a repeated confirm gives the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedPayment {
    pub reason: RefusalReason,
    pub at: Millis,
}

/// Tickets set aside for one order. Lines are sorted by class id and name each class once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<HoldItem>,
    pub state: HoldState,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// When the hold last changed state (its creation time until then).
    pub updated_at: Millis,
    pub refused_payment: Option<RefusedPayment>,
}

impl Hold {
    /// Tickets across all lines, as counted against `maxTicketsPerUser`.
    pub fn quantity(&self) -> u64 {
        self.items.iter().map(|item| u64::from(item.quantity)).sum()
    }
}

/// A hold as stored in the `holds` table (camelCase aliases of its columns): lines as JSON
/// text and the total quantity beside them so the per-user limit is one indexed SUM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRow {
    pub order_id: String,
    pub user_id: String,
    pub items_json: String,
    pub quantity: u64,
    pub state: HoldState,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub updated_at: Millis,
    pub refusal_reason: Option<RefusalReason>,
    pub refused_at: Option<Millis>,
}

impl TryFrom<&Hold> for HoldRow {
    type Error = StoreError;

    fn try_from(hold: &Hold) -> Result<Self, Self::Error> {
        let items_json = serde_json::to_string(&hold.items)
            .map_err(|error| StoreError::Malformed(format!("hold items: {error}")))?;
        Ok(HoldRow {
            order_id: hold.order_id.clone(),
            user_id: hold.user_id.clone(),
            items_json,
            quantity: hold.quantity(),
            state: hold.state,
            created_at: hold.created_at,
            expires_at: hold.expires_at,
            updated_at: hold.updated_at,
            refusal_reason: hold.refused_payment.map(|refusal| refusal.reason),
            refused_at: hold.refused_payment.map(|refusal| refusal.at),
        })
    }
}

impl TryFrom<HoldRow> for Hold {
    type Error = StoreError;

    fn try_from(row: HoldRow) -> Result<Self, Self::Error> {
        let items: Vec<HoldItem> = serde_json::from_str(&row.items_json).map_err(|error| {
            StoreError::Malformed(format!("items of hold {}: {error}", row.order_id))
        })?;
        let refused_payment = match (row.refusal_reason, row.refused_at) {
            (Some(reason), Some(at)) => Some(RefusedPayment { reason, at }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Malformed(format!(
                    "hold {} has half a refusal",
                    row.order_id
                )));
            }
        };
        Ok(Hold {
            order_id: row.order_id,
            user_id: row.user_id,
            items,
            state: row.state,
            created_at: row.created_at,
            expires_at: row.expires_at,
            updated_at: row.updated_at,
            refused_payment,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

/// The answer to a payment. Every variant is definite, so the saga always knows whether to
/// complete the order or refund it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "hold", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfirmOutcome {
    /// The tickets are sold to the order (now or by an earlier confirm).
    Confirmed(Hold),
    /// Paid for a hold that had lapsed and whose tickets are gone: refund.
    PaidButNoStock(Hold),
    /// Paid for an event that has been cancelled: refund.
    PaidButEventCancelled(Hold),
}

/// The answer to a release; only `Released` changed anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "hold", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReleaseOutcome {
    Released(Hold),
    AlreadyReleased(Hold),
    AlreadyExpired(Hold),
    /// The tickets are sold; releasing does not take them back (that is a refund's business).
    AlreadyConfirmed(Hold),
    UnknownOrder,
}

/// A hold that lapsed, for the saga to cancel its order and free the buyer's checkout slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredHold {
    pub order_id: String,
    pub user_id: String,
    pub expires_at: Millis,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A failure of the storage underneath the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "camelCase")]
pub enum StoreError {
    #[error("ledger storage unavailable: {0}")]
    Unavailable(String),
    #[error("ledger storage holds a malformed row: {0}")]
    Malformed(String),
}

/// Why a ledger operation was rejected. A rejected operation changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(
    tag = "error",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LedgerError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("ticket class {ticket_class_id} does not exist")]
    UnknownTicketClass { ticket_class_id: String },
    #[error("the event is not on sale ({state:?})")]
    SaleNotOpen { state: SaleState },
    #[error("the event's ticket sale window does not contain this moment")]
    OutsideSaleWindow,
    #[error("ticket class {ticket_class_id} is outside its sale window")]
    ClassSaleWindowClosed { ticket_class_id: String },
    #[error("ticket class {ticket_class_id} is paused")]
    ClassNotOnSale { ticket_class_id: String },
    #[error(
        "purchase limit of {limit} tickets per user exceeded: {already_committed} held or bought, {requested} requested"
    )]
    PurchaseLimitExceeded {
        limit: u32,
        already_committed: u64,
        requested: u64,
    },
    #[error(
        "not enough tickets of class {ticket_class_id}: {requested} requested, {available} available"
    )]
    InsufficientInventory {
        ticket_class_id: String,
        requested: u32,
        available: u32,
    },
    #[error(
        "total {total} of class {ticket_class_id} is below the {committed} tickets held or sold"
    )]
    TotalBelowCommitted {
        ticket_class_id: String,
        total: i64,
        committed: u64,
    },
    #[error("order {order_id} already holds tickets for another user or other items")]
    OrderIdConflict { order_id: String },
    #[error("no hold for order {order_id}")]
    HoldNotFound { order_id: String },
    #[error("the event's sale is cancelled for good")]
    SaleCancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored state contradicts the ledger's invariants; nothing was written.
    #[error("ledger state is inconsistent: {detail}")]
    Corrupt { detail: String },
}

impl LedgerError {
    /// The stable API error code (`code` in problem+json).
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Invalid { .. } => "VALIDATION_FAILED",
            LedgerError::UnknownTicketClass { .. } => "UNKNOWN_TICKET_CLASS",
            LedgerError::SaleNotOpen { .. }
            | LedgerError::OutsideSaleWindow
            | LedgerError::ClassSaleWindowClosed { .. } => "SALE_NOT_OPEN",
            LedgerError::ClassNotOnSale { .. } => "CLASS_NOT_ON_SALE",
            LedgerError::PurchaseLimitExceeded { .. } => "PURCHASE_LIMIT_EXCEEDED",
            LedgerError::InsufficientInventory { .. } => "INSUFFICIENT_INVENTORY",
            LedgerError::TotalBelowCommitted { .. } => "TOTAL_BELOW_COMMITTED",
            LedgerError::OrderIdConflict { .. } => "ORDER_ID_CONFLICT",
            LedgerError::HoldNotFound { .. } => "HOLD_NOT_FOUND",
            LedgerError::SaleCancelled => "INVALID_STATUS_TRANSITION",
            LedgerError::Store(_) | LedgerError::Corrupt { .. } => "INTERNAL_ERROR",
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> LedgerError {
    LedgerError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn corrupt(detail: String) -> LedgerError {
    LedgerError::Corrupt { detail }
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

/// Every row one ledger operation writes, applied by [`LedgerStore::commit`] all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerChanges {
    pub settings: Option<SaleSettings>,
    pub classes: Vec<TicketClass>,
    pub holds: Vec<Hold>,
}

impl LedgerChanges {
    pub fn is_empty(&self) -> bool {
        self.settings.is_none() && self.classes.is_empty() && self.holds.is_empty()
    }
}

/// The ledger's storage. Synchronous because the Durable Object's `sql.exec` is; each read is
/// one indexed query on [`LEDGER_SCHEMA`] (the SQL is given per method).
pub trait LedgerStore {
    /// `SELECT sale_state AS state, max_tickets_per_user AS maxTicketsPerUser,
    ///  sale_starts_at AS saleStartsAt, sale_ends_at AS saleEndsAt
    ///  FROM ledger_settings WHERE id = 1`
    fn settings(&self) -> Result<Option<SaleSettings>, StoreError>;

    /// `SELECT id, total, reserved, sold, status, sale_start_at AS saleStartAt,
    ///  sale_end_at AS saleEndAt FROM ticket_classes WHERE id = ?1`
    fn class(&self, ticket_class_id: &str) -> Result<Option<TicketClass>, StoreError>;

    /// Same columns as [`LedgerStore::class`], `FROM ticket_classes ORDER BY id`
    /// (one row per class: a handful per event).
    fn classes(&self) -> Result<Vec<TicketClass>, StoreError>;

    /// `SELECT order_id AS orderId, user_id AS userId, items_json AS itemsJson, quantity, state,
    ///  created_at AS createdAt, expires_at AS expiresAt, updated_at AS updatedAt,
    ///  refusal_reason AS refusalReason, refused_at AS refusedAt
    ///  FROM holds WHERE order_id = ?1` — a [`HoldRow`], turned into a [`Hold`] with `TryFrom`.
    fn hold(&self, order_id: &str) -> Result<Option<Hold>, StoreError>;

    /// Tickets the user holds or bought:
    /// `SELECT COALESCE(SUM(quantity), 0) AS quantity FROM holds
    ///  WHERE user_id = ?1 AND state IN ('ACTIVE', 'CONFIRMED')` (through `holds_by_user`).
    fn user_committed_quantity(&self, user_id: &str) -> Result<u64, StoreError>;

    /// ACTIVE holds whose time is up, earliest first:
    /// `SELECT <hold columns> FROM holds WHERE state = 'ACTIVE' AND expires_at <= ?1
    ///  ORDER BY expires_at, order_id LIMIT ?2` (the partial index `holds_active_by_expiry`).
    fn due_holds(&self, now: Millis, limit: usize) -> Result<Vec<Hold>, StoreError>;

    /// `SELECT MIN(expires_at) AS expiresAt FROM holds WHERE state = 'ACTIVE'`
    /// (one step down `holds_active_by_expiry`).
    fn next_expiry(&self) -> Result<Option<Millis>, StoreError>;

    /// Writes every row of `changes` or none, inside `ctx.storage.transactionSync(..)`:
    /// - settings: `INSERT INTO ledger_settings (id, sale_state, max_tickets_per_user,
    ///   sale_starts_at, sale_ends_at) VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET
    ///   sale_state = excluded.sale_state, max_tickets_per_user = excluded.max_tickets_per_user,
    ///   sale_starts_at = excluded.sale_starts_at, sale_ends_at = excluded.sale_ends_at`
    /// - each class: `INSERT INTO ticket_classes (id, total, reserved, sold, status,
    ///   sale_start_at, sale_end_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id)
    ///   DO UPDATE SET total = excluded.total, reserved = excluded.reserved, sold = excluded.sold,
    ///   status = excluded.status, sale_start_at = excluded.sale_start_at,
    ///   sale_end_at = excluded.sale_end_at`
    /// - each hold (via [`HoldRow`]): `INSERT INTO holds (order_id, user_id, items_json,
    ///   quantity, state, created_at, expires_at, updated_at, refusal_reason, refused_at)
    ///   VALUES (?1, ..., ?10) ON CONFLICT (order_id) DO UPDATE SET state = excluded.state,
    ///   updated_at = excluded.updated_at, refusal_reason = excluded.refusal_reason,
    ///   refused_at = excluded.refused_at`
    fn commit(&mut self, changes: &LedgerChanges) -> Result<(), StoreError>;

    /// Everything [`Ledger::reserve`] may need, in one read: the order's stored hold, the sale
    /// settings, the user's committed quantity and the named classes that exist. A store whose
    /// every statement has a fixed cost (the object's SQLite behind the JavaScript boundary)
    /// answers it with one query; the default asks the single-row methods above.
    fn reserve_reads(
        &self,
        order_id: &str,
        user_id: &str,
        ticket_class_ids: &[&str],
    ) -> Result<ReserveReads, StoreError> {
        let mut classes = Vec::with_capacity(ticket_class_ids.len());
        for id in ticket_class_ids {
            classes.extend(self.class(id)?);
        }
        Ok(ReserveReads {
            hold: self.hold(order_id)?,
            settings: self.settings()?,
            user_committed_quantity: self.user_committed_quantity(user_id)?,
            classes,
        })
    }

    /// An order's hold with the rows of the classes its lines name, in one read (see
    /// [`LedgerStore::reserve_reads`] for why). A class row that is missing is left out.
    fn hold_with_classes(&self, order_id: &str) -> Result<Option<HoldWithClasses>, StoreError> {
        let Some(hold) = self.hold(order_id)? else {
            return Ok(None);
        };
        let mut classes = Vec::with_capacity(hold.items.len());
        for item in &hold.items {
            classes.extend(self.class(&item.ticket_class_id)?);
        }
        Ok(Some(HoldWithClasses { hold, classes }))
    }
}

/// The rows a reserve decides on (see [`LedgerStore::reserve_reads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveReads {
    pub hold: Option<Hold>,
    pub settings: Option<SaleSettings>,
    pub user_committed_quantity: u64,
    /// The requested classes that exist, in any order.
    pub classes: Vec<TicketClass>,
}

/// A stored hold and the class rows it names (see [`LedgerStore::hold_with_classes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldWithClasses {
    pub hold: Hold,
    pub classes: Vec<TicketClass>,
}

impl<S: LedgerStore + ?Sized> LedgerStore for &mut S {
    fn settings(&self) -> Result<Option<SaleSettings>, StoreError> {
        (**self).settings()
    }
    fn class(&self, ticket_class_id: &str) -> Result<Option<TicketClass>, StoreError> {
        (**self).class(ticket_class_id)
    }
    fn classes(&self) -> Result<Vec<TicketClass>, StoreError> {
        (**self).classes()
    }
    fn hold(&self, order_id: &str) -> Result<Option<Hold>, StoreError> {
        (**self).hold(order_id)
    }
    fn user_committed_quantity(&self, user_id: &str) -> Result<u64, StoreError> {
        (**self).user_committed_quantity(user_id)
    }
    fn due_holds(&self, now: Millis, limit: usize) -> Result<Vec<Hold>, StoreError> {
        (**self).due_holds(now, limit)
    }
    fn next_expiry(&self) -> Result<Option<Millis>, StoreError> {
        (**self).next_expiry()
    }
    fn commit(&mut self, changes: &LedgerChanges) -> Result<(), StoreError> {
        (**self).commit(changes)
    }
    fn reserve_reads(
        &self,
        order_id: &str,
        user_id: &str,
        ticket_class_ids: &[&str],
    ) -> Result<ReserveReads, StoreError> {
        (**self).reserve_reads(order_id, user_id, ticket_class_ids)
    }
    fn hold_with_classes(&self, order_id: &str) -> Result<Option<HoldWithClasses>, StoreError> {
        (**self).hold_with_classes(order_id)
    }
}

/// An in-memory [`LedgerStore`] for tests and host tools, which can be told to fail its next
/// write. Reads scan, which is fine at test sizes; the SQL store answers them from indexes.
#[derive(Debug, Clone, Default)]
pub struct MemoryLedgerStore {
    settings: Option<SaleSettings>,
    classes: BTreeMap<String, TicketClass>,
    holds: BTreeMap<String, Hold>,
    fail_next_write: bool,
}

impl MemoryLedgerStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next [`LedgerStore::commit`] fail without writing anything.
    pub fn fail_next_write(&mut self) {
        self.fail_next_write = true;
    }

    /// Every hold, by order id (the SQL store has no such query: tests use it to check sums).
    pub fn all_holds(&self) -> impl Iterator<Item = &Hold> {
        self.holds.values()
    }
}

impl LedgerStore for MemoryLedgerStore {
    fn settings(&self) -> Result<Option<SaleSettings>, StoreError> {
        Ok(self.settings.clone())
    }

    fn class(&self, ticket_class_id: &str) -> Result<Option<TicketClass>, StoreError> {
        Ok(self.classes.get(ticket_class_id).cloned())
    }

    fn classes(&self) -> Result<Vec<TicketClass>, StoreError> {
        Ok(self.classes.values().cloned().collect())
    }

    fn hold(&self, order_id: &str) -> Result<Option<Hold>, StoreError> {
        Ok(self.holds.get(order_id).cloned())
    }

    fn user_committed_quantity(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(self
            .holds
            .values()
            .filter(|hold| hold.user_id == user_id)
            .filter(|hold| matches!(hold.state, HoldState::Active | HoldState::Confirmed))
            .map(Hold::quantity)
            .sum())
    }

    fn due_holds(&self, now: Millis, limit: usize) -> Result<Vec<Hold>, StoreError> {
        let mut due: Vec<&Hold> = self
            .holds
            .values()
            .filter(|hold| hold.state == HoldState::Active && hold.expires_at <= now)
            .collect();
        due.sort_by(|a, b| (a.expires_at, &a.order_id).cmp(&(b.expires_at, &b.order_id)));
        Ok(due.into_iter().take(limit).cloned().collect())
    }

    fn next_expiry(&self) -> Result<Option<Millis>, StoreError> {
        Ok(self
            .holds
            .values()
            .filter(|hold| hold.state == HoldState::Active)
            .map(|hold| hold.expires_at)
            .min())
    }

    fn commit(&mut self, changes: &LedgerChanges) -> Result<(), StoreError> {
        if self.fail_next_write {
            self.fail_next_write = false;
            return Err(StoreError::Unavailable("injected write failure".to_owned()));
        }
        // The same CHECK the SQL schema has, so the fake is no more forgiving than the real store.
        if let Some(class) = changes
            .classes
            .iter()
            .find(|class| class.committed() > u64::from(class.total))
        {
            return Err(StoreError::Unavailable(format!(
                "CHECK constraint failed: reserved + sold <= total for class {}",
                class.id
            )));
        }
        if let Some(settings) = &changes.settings {
            self.settings = Some(settings.clone());
        }
        for class in &changes.classes {
            self.classes.insert(class.id.clone(), class.clone());
        }
        for hold in &changes.holds {
            self.holds.insert(hold.order_id.clone(), hold.clone());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------

/// Class rows touched by one operation: each loaded once, changed in memory, written together.
#[derive(Default)]
struct ClassEdits {
    /// Rows read ahead (with the hold, in one query) and not touched yet.
    read_ahead: BTreeMap<String, TicketClass>,
    /// Rows handed out for changing: exactly these are written.
    rows: BTreeMap<String, TicketClass>,
}

impl ClassEdits {
    /// Edits that take rows from `classes` before asking the store.
    fn read_ahead(classes: Vec<TicketClass>) -> Self {
        ClassEdits {
            read_ahead: classes
                .into_iter()
                .map(|class| (class.id.clone(), class))
                .collect(),
            rows: BTreeMap::new(),
        }
    }

    /// Edits of rows the caller has already changed.
    fn changed(classes: Vec<TicketClass>) -> Self {
        ClassEdits {
            read_ahead: BTreeMap::new(),
            rows: classes
                .into_iter()
                .map(|class| (class.id.clone(), class))
                .collect(),
        }
    }

    /// The row of a class a stored hold refers to; a missing one means the state is corrupt,
    /// since classes are never deleted.
    fn of_hold<S: LedgerStore + ?Sized>(
        &mut self,
        store: &S,
        ticket_class_id: &str,
    ) -> Result<&mut TicketClass, LedgerError> {
        match self.rows.entry(ticket_class_id.to_owned()) {
            std::collections::btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let class = match self.read_ahead.remove(ticket_class_id) {
                    Some(class) => class,
                    None => store.class(ticket_class_id)?.ok_or_else(|| {
                        corrupt(format!("a hold names missing class {ticket_class_id}"))
                    })?,
                };
                Ok(entry.insert(class))
            }
        }
    }

    /// The changed rows, refusing to hand over any that would break `reserved + sold <= total`.
    fn into_rows(self) -> Result<Vec<TicketClass>, LedgerError> {
        let rows: Vec<TicketClass> = self.rows.into_values().collect();
        if let Some(class) = rows
            .iter()
            .find(|class| class.committed() > u64::from(class.total))
        {
            return Err(corrupt(format!(
                "class {} would have {} held or sold of {}",
                class.id,
                class.committed(),
                class.total
            )));
        }
        Ok(rows)
    }
}

/// The inventory rules of one event over a [`LedgerStore`]. Cheap to build per request.
#[derive(Debug, Clone, Default)]
pub struct Ledger<S> {
    store: S,
}

impl<S: LedgerStore> Ledger<S> {
    pub fn new(store: S) -> Self {
        Ledger { store }
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

    // ----- event-level settings -----

    /// The event's sale settings; a fresh object is CLOSED with no limit.
    pub fn settings(&self) -> Result<SaleSettings, LedgerError> {
        Ok(self.store.settings()?.unwrap_or_default())
    }

    /// Opens, closes or cancels the event's sale. Cancelled is final. Existing holds are left
    /// to expire or be released: cancelling must not touch tens of thousands of rows at once.
    pub fn set_sale_state(&mut self, state: SaleState) -> Result<SaleSettings, LedgerError> {
        let mut settings = self.settings()?;
        if settings.state == SaleState::Cancelled && state != SaleState::Cancelled {
            return Err(LedgerError::SaleCancelled);
        }
        settings.state = state;
        self.commit_settings(settings)
    }

    /// Sets the event's per-user ticket limit (`None`: no limit). Applies to new holds only:
    /// lowering it never takes back tickets already held or sold.
    pub fn set_max_tickets_per_user(
        &mut self,
        limit: Option<u32>,
    ) -> Result<SaleSettings, LedgerError> {
        let mut settings = self.settings()?;
        settings.max_tickets_per_user = limit;
        self.commit_settings(settings)
    }

    /// Sets the whole sale configuration at once (what the event workflow syncs to the object):
    /// state, per-user limit and sale window in one write. Cancelled stays final; a repeat with
    /// the same settings writes the same row again, so syncing is idempotent.
    pub fn configure_sale(&mut self, wanted: SaleSettings) -> Result<SaleSettings, LedgerError> {
        if matches!(
            (wanted.sale_starts_at, wanted.sale_ends_at),
            (Some(start), Some(end)) if end <= start
        ) {
            return Err(invalid("saleEndsAt", "must be after saleStartsAt"));
        }
        let current = self.settings()?;
        if current.state == SaleState::Cancelled && wanted.state != SaleState::Cancelled {
            return Err(LedgerError::SaleCancelled);
        }
        self.commit_settings(wanted)
    }

    fn commit_settings(&mut self, settings: SaleSettings) -> Result<SaleSettings, LedgerError> {
        self.store.commit(&LedgerChanges {
            settings: Some(settings.clone()),
            ..LedgerChanges::default()
        })?;
        Ok(settings)
    }

    // ----- ticket classes -----

    /// Creates a class, or updates its total, status and sale window keeping its counters.
    pub fn upsert_class(&mut self, spec: TicketClassSpec) -> Result<TicketClass, LedgerError> {
        if spec.id.is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        // Both edges given means an empty or inverted window, which would never sell.
        if matches!(
            (spec.sale_start_at, spec.sale_end_at),
            (Some(start), Some(end)) if end <= start
        ) {
            return Err(invalid("saleEndAt", "must be after saleStartAt"));
        }
        let class = match self.store.class(&spec.id)? {
            Some(existing) => TicketClass {
                total: checked_total(&existing, spec.total)?,
                status: spec.status,
                sale_start_at: spec.sale_start_at,
                sale_end_at: spec.sale_end_at,
                ..existing
            },
            None => TicketClass {
                total: parse_total(spec.total)?,
                reserved: 0,
                sold: 0,
                status: spec.status,
                sale_start_at: spec.sale_start_at,
                sale_end_at: spec.sale_end_at,
                id: spec.id,
            },
        };
        self.commit_class(class)
    }

    /// Changes a class's total; refuses one below what is already held or sold.
    pub fn set_total(
        &mut self,
        ticket_class_id: &str,
        total: i64,
    ) -> Result<TicketClass, LedgerError> {
        let mut class = self.known_class(ticket_class_id)?;
        class.total = checked_total(&class, total)?;
        self.commit_class(class)
    }

    /// Pauses or resumes a class. Pausing stops new holds only; existing ones may still be paid.
    pub fn set_class_status(
        &mut self,
        ticket_class_id: &str,
        status: ClassStatus,
    ) -> Result<TicketClass, LedgerError> {
        let mut class = self.known_class(ticket_class_id)?;
        class.status = status;
        self.commit_class(class)
    }

    fn known_class(&self, ticket_class_id: &str) -> Result<TicketClass, LedgerError> {
        self.store
            .class(ticket_class_id)?
            .ok_or_else(|| LedgerError::UnknownTicketClass {
                ticket_class_id: ticket_class_id.to_owned(),
            })
    }

    fn commit_class(&mut self, class: TicketClass) -> Result<TicketClass, LedgerError> {
        self.store.commit(&LedgerChanges {
            classes: vec![class.clone()],
            ..LedgerChanges::default()
        })?;
        Ok(class)
    }

    /// Live counters of every class.
    pub fn availability(&self) -> Result<Vec<ClassAvailability>, LedgerError> {
        Ok(self
            .store
            .classes()?
            .iter()
            .map(ClassAvailability::from)
            .collect())
    }

    /// The hold of an order, if it ever had one.
    pub fn hold(&self, order_id: &str) -> Result<Option<Hold>, LedgerError> {
        Ok(self.store.hold(order_id)?)
    }

    // ----- holds -----

    /// Holds every line of the order or none. Repeating it with the same order id returns the
    /// stored hold (whatever its state) and reserves nothing more.
    pub fn reserve(&mut self, request: &ReserveRequest, now: Millis) -> Result<Hold, LedgerError> {
        let items = validate_items(&request.items)?;
        if request.order_id.is_empty() {
            return Err(invalid("orderId", "must not be empty"));
        }
        if request.user_id.is_empty() {
            return Err(invalid("userId", "must not be empty"));
        }
        let hold_for = request.hold_for_ms.unwrap_or(DEFAULT_HOLD_MS);
        if hold_for <= 0 {
            return Err(invalid("holdForMs", "must be positive"));
        }
        let expires_at = now
            .checked_add(hold_for)
            .ok_or_else(|| invalid("holdForMs", "is too large"))?;

        let class_ids: Vec<&str> = items
            .iter()
            .map(|item| item.ticket_class_id.as_str())
            .collect();
        let reads = self
            .store
            .reserve_reads(&request.order_id, &request.user_id, &class_ids)?;

        // Idempotency comes before any sale rule: a retry after the sale closed or the stock ran
        // out must still get the hold the first attempt made.
        if let Some(existing) = reads.hold {
            if existing.user_id == request.user_id && existing.items == items {
                return Ok(existing);
            }
            return Err(LedgerError::OrderIdConflict {
                order_id: request.order_id.clone(),
            });
        }

        let settings = reads.settings.unwrap_or_default();
        if settings.state != SaleState::Open {
            return Err(LedgerError::SaleNotOpen {
                state: settings.state,
            });
        }
        if !settings.window_contains(now) {
            return Err(LedgerError::OutsideSaleWindow);
        }

        let mut found: BTreeMap<String, TicketClass> = reads
            .classes
            .into_iter()
            .map(|class| (class.id.clone(), class))
            .collect();
        let mut classes = Vec::with_capacity(items.len());
        for item in &items {
            let class = found.remove(&item.ticket_class_id).ok_or_else(|| {
                LedgerError::UnknownTicketClass {
                    ticket_class_id: item.ticket_class_id.clone(),
                }
            })?;
            if class.status != ClassStatus::Active {
                return Err(LedgerError::ClassNotOnSale {
                    ticket_class_id: class.id,
                });
            }
            if !class.window_contains(now) {
                return Err(LedgerError::ClassSaleWindowClosed {
                    ticket_class_id: class.id,
                });
            }
            classes.push(class);
        }

        let requested: u64 = items.iter().map(|item| u64::from(item.quantity)).sum();
        if let Some(limit) = settings.max_tickets_per_user {
            let already_committed = reads.user_committed_quantity;
            if already_committed.saturating_add(requested) > u64::from(limit) {
                return Err(LedgerError::PurchaseLimitExceeded {
                    limit,
                    already_committed,
                    requested,
                });
            }
        }

        for (class, item) in classes.iter_mut().zip(&items) {
            if class.available() < item.quantity {
                return Err(LedgerError::InsufficientInventory {
                    ticket_class_id: class.id.clone(),
                    requested: item.quantity,
                    available: class.available(),
                });
            }
            class.hold_back(item.quantity)?;
        }

        let hold = Hold {
            order_id: request.order_id.clone(),
            user_id: request.user_id.clone(),
            items,
            state: HoldState::Active,
            created_at: now,
            expires_at,
            updated_at: now,
            refused_payment: None,
        };
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: ClassEdits::changed(classes).into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(hold)
    }

    /// Turns a paid order's hold into sold tickets, or says definitely why not. Repeating it
    /// gives the same answer.
    pub fn confirm(&mut self, order_id: &str, now: Millis) -> Result<ConfirmOutcome, LedgerError> {
        let HoldWithClasses { mut hold, classes } = self
            .store
            .hold_with_classes(order_id)?
            .ok_or_else(|| LedgerError::HoldNotFound {
                order_id: order_id.to_owned(),
            })?;
        if let Some(refusal) = hold.refused_payment {
            return Ok(refused(refusal.reason, hold));
        }
        if hold.state == HoldState::Confirmed {
            return Ok(ConfirmOutcome::Confirmed(hold));
        }

        let mut edits = ClassEdits::read_ahead(classes);
        let outcome_reason = if self.settings()?.state == SaleState::Cancelled {
            if hold.state == HoldState::Active {
                for item in &hold.items {
                    edits
                        .of_hold(&self.store, &item.ticket_class_id)?
                        .give_back(item.quantity)?;
                }
                hold.state = HoldState::Released;
                hold.updated_at = now;
            }
            Some(RefusalReason::EventCancelled)
        } else if hold.state == HoldState::Active {
            for item in &hold.items {
                let class = edits.of_hold(&self.store, &item.ticket_class_id)?;
                class.give_back(item.quantity)?;
                class.sell(item.quantity)?;
            }
            None
        } else {
            // Lapsed hold: sell again only if every line still fits, else refuse the payment.
            let mut fits = true;
            for item in &hold.items {
                let class = edits.of_hold(&self.store, &item.ticket_class_id)?;
                if class.available() < item.quantity {
                    fits = false;
                    break;
                }
                class.sell(item.quantity)?;
            }
            if fits {
                None
            } else {
                edits = ClassEdits::default();
                Some(RefusalReason::NoStock)
            }
        };

        match outcome_reason {
            Some(reason) => hold.refused_payment = Some(RefusedPayment { reason, at: now }),
            None => {
                hold.state = HoldState::Confirmed;
                hold.updated_at = now;
            }
        }
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(match outcome_reason {
            Some(reason) => refused(reason, hold),
            None => ConfirmOutcome::Confirmed(hold),
        })
    }

    /// Gives an order's held tickets back. Anything but an ACTIVE hold is a no-op answer.
    pub fn release(&mut self, order_id: &str, now: Millis) -> Result<ReleaseOutcome, LedgerError> {
        let Some(HoldWithClasses { mut hold, classes }) = self.store.hold_with_classes(order_id)?
        else {
            return Ok(ReleaseOutcome::UnknownOrder);
        };
        match hold.state {
            HoldState::Released => return Ok(ReleaseOutcome::AlreadyReleased(hold)),
            HoldState::Expired => return Ok(ReleaseOutcome::AlreadyExpired(hold)),
            HoldState::Confirmed => return Ok(ReleaseOutcome::AlreadyConfirmed(hold)),
            HoldState::Active => {}
        }
        let mut edits = ClassEdits::read_ahead(classes);
        for item in &hold.items {
            edits
                .of_hold(&self.store, &item.ticket_class_id)?
                .give_back(item.quantity)?;
        }
        hold.state = HoldState::Released;
        hold.updated_at = now;
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(ReleaseOutcome::Released(hold))
    }

    /// Expires up to [`EXPIRY_BATCH`] ACTIVE holds with `expiresAt <= now`, earliest first, and
    /// returns them for the saga. If more were due, [`Ledger::next_expiry`] is then `<= now`.
    pub fn expire_due(&mut self, now: Millis) -> Result<Vec<ExpiredHold>, LedgerError> {
        self.expire_due_at_most(now, EXPIRY_BATCH)
    }

    /// [`Ledger::expire_due`] with an explicit batch size.
    pub fn expire_due_at_most(
        &mut self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ExpiredHold>, LedgerError> {
        let due = self.store.due_holds(now, limit)?;
        let mut edits = ClassEdits::default();
        let mut holds = Vec::with_capacity(due.len());
        let mut expired = Vec::with_capacity(due.len());
        for mut hold in due {
            // The store promised only due ACTIVE holds; a stray row must not be expired twice.
            if hold.state != HoldState::Active || hold.expires_at > now {
                continue;
            }
            for item in &hold.items {
                edits
                    .of_hold(&self.store, &item.ticket_class_id)?
                    .give_back(item.quantity)?;
            }
            hold.state = HoldState::Expired;
            hold.updated_at = now;
            expired.push(ExpiredHold {
                order_id: hold.order_id.clone(),
                user_id: hold.user_id.clone(),
                expires_at: hold.expires_at,
            });
            holds.push(hold);
        }
        let changes = LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds,
        };
        if !changes.is_empty() {
            self.store.commit(&changes)?;
        }
        Ok(expired)
    }

    /// The earliest `expiresAt` of an ACTIVE hold: when the object's alarm should fire next.
    pub fn next_expiry(&self) -> Result<Option<Millis>, LedgerError> {
        Ok(self.store.next_expiry()?)
    }
}

fn refused(reason: RefusalReason, hold: Hold) -> ConfirmOutcome {
    match reason {
        RefusalReason::NoStock => ConfirmOutcome::PaidButNoStock(hold),
        RefusalReason::EventCancelled => ConfirmOutcome::PaidButEventCancelled(hold),
    }
}

fn parse_total(total: i64) -> Result<u32, LedgerError> {
    u32::try_from(total).map_err(|_| invalid("total", "must be between 0 and 4294967295"))
}

fn checked_total(class: &TicketClass, total: i64) -> Result<u32, LedgerError> {
    let parsed = parse_total(total)?;
    if u64::from(parsed) < class.committed() {
        return Err(LedgerError::TotalBelowCommitted {
            ticket_class_id: class.id.clone(),
            total,
            committed: class.committed(),
        });
    }
    Ok(parsed)
}

/// Turns requested lines into hold lines: at least one, positive quantities, each class once,
/// sorted by class id so that the same order compares equal however its lines were listed.
fn validate_items(requested: &[RequestedItem]) -> Result<Vec<HoldItem>, LedgerError> {
    if requested.is_empty() {
        return Err(invalid("items", "must list at least one ticket class"));
    }
    let mut items = Vec::with_capacity(requested.len());
    for (index, item) in requested.iter().enumerate() {
        if item.ticket_class_id.is_empty() {
            return Err(invalid(
                format!("items[{index}].ticketClassId"),
                "must not be empty",
            ));
        }
        if item.quantity <= 0 {
            return Err(invalid(
                format!("items[{index}].quantity"),
                "must be at least 1",
            ));
        }
        let quantity = u32::try_from(item.quantity)
            .map_err(|_| invalid(format!("items[{index}].quantity"), "is too large"))?;
        items.push(HoldItem {
            ticket_class_id: item.ticket_class_id.clone(),
            quantity,
        });
    }
    items.sort_by(|a, b| a.ticket_class_id.cmp(&b.ticket_class_id));
    if let Some(pair) = items
        .windows(2)
        .find(|pair| pair[0].ticket_class_id == pair[1].ticket_class_id)
    {
        return Err(invalid(
            "items",
            format!(
                "ticket class {} is listed more than once",
                pair[0].ticket_class_id
            ),
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    const MINUTE: Millis = 60_000;

    type Contents = (
        Option<SaleSettings>,
        BTreeMap<String, TicketClass>,
        BTreeMap<String, Hold>,
    );

    fn contents(store: &MemoryLedgerStore) -> Contents {
        (
            store.settings.clone(),
            store.classes.clone(),
            store.holds.clone(),
        )
    }

    fn spec(id: &str, total: i64) -> TicketClassSpec {
        TicketClassSpec {
            id: id.to_owned(),
            total,
            status: ClassStatus::Active,
            sale_start_at: None,
            sale_end_at: None,
        }
    }

    fn request(order_id: &str, user_id: &str, lines: &[(&str, i64)]) -> ReserveRequest {
        ReserveRequest {
            order_id: order_id.to_owned(),
            user_id: user_id.to_owned(),
            items: lines
                .iter()
                .map(|(class, quantity)| RequestedItem::new(*class, *quantity))
                .collect(),
            hold_for_ms: None,
        }
    }

    /// An event on sale with no per-user limit: 10 GA tickets and 2 VIP tickets.
    fn open_ledger() -> Ledger<MemoryLedgerStore> {
        let mut ledger = Ledger::new(MemoryLedgerStore::new());
        ledger.set_sale_state(SaleState::Open).unwrap();
        ledger.upsert_class(spec("ga", 10)).unwrap();
        ledger.upsert_class(spec("vip", 2)).unwrap();
        ledger
    }

    fn class(ledger: &Ledger<MemoryLedgerStore>, id: &str) -> TicketClass {
        ledger.store().class(id).unwrap().unwrap()
    }

    fn counters(ledger: &Ledger<MemoryLedgerStore>, id: &str) -> (u32, u32, u32) {
        let class = class(ledger, id);
        (class.reserved, class.sold, class.available())
    }

    fn state_of(ledger: &Ledger<MemoryLedgerStore>, order_id: &str) -> HoldState {
        ledger.hold(order_id).unwrap().unwrap().state
    }

    /// Every invariant the ledger promises, recomputed from the holds.
    fn check_invariants(store: &MemoryLedgerStore) -> Result<(), String> {
        for class in store.classes.values() {
            if class.committed() > u64::from(class.total) {
                return Err(format!("{class:?} is oversold"));
            }
            let sum_in = |state: HoldState| -> u64 {
                store
                    .holds
                    .values()
                    .filter(|hold| hold.state == state)
                    .flat_map(|hold| &hold.items)
                    .filter(|item| item.ticket_class_id == class.id)
                    .map(|item| u64::from(item.quantity))
                    .sum()
            };
            if u64::from(class.reserved) != sum_in(HoldState::Active) {
                return Err(format!("{class:?}: reserved != ACTIVE holds"));
            }
            if u64::from(class.sold) != sum_in(HoldState::Confirmed) {
                return Err(format!("{class:?}: sold != CONFIRMED holds"));
            }
        }
        for hold in store.holds.values() {
            let sorted_unique = hold
                .items
                .windows(2)
                .all(|pair| pair[0].ticket_class_id < pair[1].ticket_class_id);
            if hold.items.is_empty() || !sorted_unique || hold.items.iter().any(|i| i.quantity == 0)
            {
                return Err(format!("{hold:?} has malformed lines"));
            }
        }
        let earliest = store
            .holds
            .values()
            .filter(|hold| hold.state == HoldState::Active)
            .map(|hold| hold.expires_at)
            .min();
        if store.next_expiry().map_err(|e| e.to_string())? != earliest {
            return Err("next_expiry is not the earliest ACTIVE expiry".to_owned());
        }
        Ok(())
    }

    // ----- reserve -----

    #[test]
    fn reserve_holds_every_line_and_expires_after_the_default_fifteen_minutes() {
        let mut ledger = open_ledger();

        let hold = ledger
            .reserve(&request("o1", "u1", &[("vip", 1), ("ga", 3)]), T0)
            .unwrap();

        assert_eq!(hold.state, HoldState::Active);
        assert_eq!(hold.expires_at, T0 + 15 * MINUTE);
        assert_eq!(
            hold.items,
            vec![
                HoldItem {
                    ticket_class_id: "ga".into(),
                    quantity: 3
                },
                HoldItem {
                    ticket_class_id: "vip".into(),
                    quantity: 1
                },
            ],
            "lines are sorted by class id"
        );
        assert_eq!(counters(&ledger, "ga"), (3, 0, 7));
        assert_eq!(counters(&ledger, "vip"), (1, 0, 1));
        assert_eq!(ledger.next_expiry().unwrap(), Some(T0 + 15 * MINUTE));
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn reserve_honours_a_custom_hold_duration_and_rejects_a_non_positive_one() {
        let mut ledger = open_ledger();
        let mut short = request("o1", "u1", &[("ga", 1)]);
        short.hold_for_ms = Some(30_000);
        assert_eq!(ledger.reserve(&short, T0).unwrap().expires_at, T0 + 30_000);

        let mut zero = request("o2", "u1", &[("ga", 1)]);
        zero.hold_for_ms = Some(0);
        assert_eq!(
            ledger.reserve(&zero, T0).unwrap_err().code(),
            "VALIDATION_FAILED"
        );
    }

    #[test]
    fn reserve_holds_nothing_when_one_class_of_the_order_is_short() {
        let mut ledger = open_ledger();
        let before = contents(ledger.store());

        let error = ledger
            .reserve(&request("o1", "u1", &[("ga", 2), ("vip", 3)]), T0)
            .unwrap_err();

        assert_eq!(
            error,
            LedgerError::InsufficientInventory {
                ticket_class_id: "vip".into(),
                requested: 3,
                available: 2,
            }
        );
        assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
        assert_eq!(contents(ledger.store()), before);
        assert_eq!(ledger.hold("o1").unwrap(), None);
    }

    #[test]
    fn reserve_can_take_the_last_ticket_but_not_one_more() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("vip", 2)]), T0)
            .unwrap();

        let error = ledger
            .reserve(&request("o2", "u2", &[("vip", 1)]), T0)
            .unwrap_err();

        assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
        assert_eq!(counters(&ledger, "vip"), (2, 0, 0));
    }

    #[test]
    fn repeating_a_reserve_returns_the_same_hold_and_reserves_nothing_more() {
        let mut ledger = open_ledger();
        let first = ledger
            .reserve(&request("o1", "u1", &[("ga", 2), ("vip", 1)]), T0)
            .unwrap();

        let again = ledger
            .reserve(&request("o1", "u1", &[("vip", 1), ("ga", 2)]), T0 + MINUTE)
            .unwrap();

        assert_eq!(again, first);
        assert_eq!(counters(&ledger, "ga"), (2, 0, 8));
        assert_eq!(counters(&ledger, "vip"), (1, 0, 1));
    }

    #[test]
    fn repeating_a_reserve_after_the_hold_expired_returns_the_expired_hold_without_renewing_it() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
            .unwrap();
        ledger.expire_due(T0 + 15 * MINUTE).unwrap();
        ledger.set_sale_state(SaleState::Closed).unwrap();

        let again = ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0 + 20 * MINUTE)
            .unwrap();

        assert_eq!(again.state, HoldState::Expired);
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    }

    #[test]
    fn reusing_an_order_id_for_other_items_or_another_user_is_a_conflict() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
            .unwrap();
        let before = contents(ledger.store());

        let other_items = ledger
            .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
            .unwrap_err();
        let other_user = ledger
            .reserve(&request("o1", "u2", &[("ga", 2)]), T0)
            .unwrap_err();

        assert_eq!(other_items.code(), "ORDER_ID_CONFLICT");
        assert_eq!(other_user.code(), "ORDER_ID_CONFLICT");
        assert_eq!(contents(ledger.store()), before);
    }

    #[test]
    fn reserve_rejects_an_order_that_lists_a_ticket_class_twice() {
        let mut ledger = open_ledger();

        let error = ledger
            .reserve(
                &request("o1", "u1", &[("ga", 1), ("vip", 1), ("ga", 1)]),
                T0,
            )
            .unwrap_err();

        assert!(matches!(&error, LedgerError::Invalid { field, .. } if field == "items"));
        assert_eq!(error.code(), "VALIDATION_FAILED");
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    }

    #[test]
    fn reserve_rejects_zero_negative_and_oversized_quantities_and_empty_orders() {
        let mut ledger = open_ledger();
        let before = contents(ledger.store());

        for lines in [
            vec![("ga", 0)],
            vec![("ga", -2)],
            vec![("vip", 1), ("ga", 0)],
            vec![("ga", i64::from(u32::MAX) + 1)],
            vec![],
        ] {
            let error = ledger
                .reserve(&request("o1", "u1", &lines), T0)
                .unwrap_err();
            assert_eq!(error.code(), "VALIDATION_FAILED", "{lines:?}");
        }
        for (order, user) in [("", "u1"), ("o1", "")] {
            let error = ledger
                .reserve(&request(order, user, &[("ga", 1)]), T0)
                .unwrap_err();
            assert_eq!(error.code(), "VALIDATION_FAILED");
        }
        assert_eq!(contents(ledger.store()), before);
    }

    #[test]
    fn reserve_is_refused_unless_the_event_is_open() {
        let mut ledger = Ledger::new(MemoryLedgerStore::new());
        ledger.upsert_class(spec("ga", 10)).unwrap();

        let fresh = ledger
            .reserve(&request("o1", "u1", &[("ga", 1)]), T0)
            .unwrap_err();
        ledger.set_sale_state(SaleState::Cancelled).unwrap();
        let cancelled = ledger
            .reserve(&request("o1", "u1", &[("ga", 1)]), T0)
            .unwrap_err();

        assert_eq!(
            fresh,
            LedgerError::SaleNotOpen {
                state: SaleState::Closed
            }
        );
        assert_eq!(
            cancelled,
            LedgerError::SaleNotOpen {
                state: SaleState::Cancelled
            }
        );
        assert_eq!(cancelled.code(), "SALE_NOT_OPEN");
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    }

    #[test]
    fn a_cancelled_sale_cannot_be_reopened() {
        let mut ledger = open_ledger();
        ledger.set_sale_state(SaleState::Cancelled).unwrap();

        let error = ledger.set_sale_state(SaleState::Open).unwrap_err();

        assert_eq!(error.code(), "INVALID_STATUS_TRANSITION");
        assert_eq!(ledger.settings().unwrap().state, SaleState::Cancelled);
        assert!(ledger.set_sale_state(SaleState::Cancelled).is_ok());
    }

    #[test]
    fn reserve_respects_the_event_sale_window_start_inclusive_end_exclusive() {
        let mut ledger = open_ledger();
        let start = T0 + 10 * MINUTE;
        let end = T0 + 20 * MINUTE;
        ledger
            .configure_sale(SaleSettings {
                state: SaleState::Open,
                max_tickets_per_user: None,
                sale_starts_at: Some(start),
                sale_ends_at: Some(end),
            })
            .unwrap();

        let too_early = ledger.reserve(&request("o1", "u1", &[("ga", 1)]), start - 1);
        let at_start = ledger.reserve(&request("o2", "u1", &[("ga", 1)]), start);
        let last_moment = ledger.reserve(&request("o3", "u1", &[("ga", 1)]), end - 1);
        let at_end = ledger.reserve(&request("o4", "u1", &[("ga", 1)]), end);

        assert_eq!(too_early.unwrap_err(), LedgerError::OutsideSaleWindow);
        assert!(at_start.is_ok());
        assert!(last_moment.is_ok());
        let at_end = at_end.unwrap_err();
        assert_eq!(at_end, LedgerError::OutsideSaleWindow);
        assert_eq!(at_end.code(), "SALE_NOT_OPEN");
        assert_eq!(counters(&ledger, "ga"), (2, 0, 8));
    }

    #[test]
    fn configure_sale_writes_everything_at_once_and_keeps_a_cancellation_final() {
        let mut ledger = open_ledger();
        let wanted = SaleSettings {
            state: SaleState::Open,
            max_tickets_per_user: Some(4),
            sale_starts_at: Some(T0),
            sale_ends_at: Some(T0 + MINUTE),
        };

        assert_eq!(ledger.configure_sale(wanted.clone()).unwrap(), wanted);
        assert_eq!(ledger.configure_sale(wanted.clone()).unwrap(), wanted);
        assert_eq!(ledger.settings().unwrap(), wanted);

        let inverted = SaleSettings {
            sale_ends_at: Some(T0),
            ..wanted.clone()
        };
        assert_eq!(
            ledger.configure_sale(inverted).unwrap_err().code(),
            "VALIDATION_FAILED"
        );

        let cancelled = SaleSettings {
            state: SaleState::Cancelled,
            ..wanted.clone()
        };
        ledger.configure_sale(cancelled.clone()).unwrap();
        assert_eq!(
            ledger.configure_sale(wanted).unwrap_err(),
            LedgerError::SaleCancelled
        );
        assert_eq!(ledger.configure_sale(cancelled.clone()).unwrap(), cancelled);
    }

    #[test]
    fn reserve_refuses_a_paused_class_and_an_unknown_class() {
        let mut ledger = open_ledger();
        ledger.set_class_status("vip", ClassStatus::Paused).unwrap();

        let paused = ledger
            .reserve(&request("o1", "u1", &[("ga", 1), ("vip", 1)]), T0)
            .unwrap_err();
        let unknown = ledger
            .reserve(&request("o1", "u1", &[("ga", 1), ("balcony", 1)]), T0)
            .unwrap_err();

        assert_eq!(paused.code(), "CLASS_NOT_ON_SALE");
        assert_eq!(unknown.code(), "UNKNOWN_TICKET_CLASS");
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    }

    #[test]
    fn reserve_respects_the_class_sale_window_start_inclusive_end_exclusive() {
        let mut ledger = open_ledger();
        let start = T0 + 10 * MINUTE;
        let end = T0 + 20 * MINUTE;
        ledger
            .upsert_class(TicketClassSpec {
                sale_start_at: Some(start),
                sale_end_at: Some(end),
                ..spec("early", 5)
            })
            .unwrap();

        let too_early = ledger.reserve(&request("o1", "u1", &[("early", 1)]), start - 1);
        let at_start = ledger.reserve(&request("o2", "u1", &[("early", 1)]), start);
        let last_moment = ledger.reserve(&request("o3", "u1", &[("early", 1)]), end - 1);
        let at_end = ledger.reserve(&request("o4", "u1", &[("early", 1)]), end);

        assert_eq!(too_early.unwrap_err().code(), "SALE_NOT_OPEN");
        assert!(at_start.is_ok());
        assert!(last_moment.is_ok());
        assert_eq!(
            at_end.unwrap_err(),
            LedgerError::ClassSaleWindowClosed {
                ticket_class_id: "early".into()
            }
        );
    }

    // ----- per-user limit -----

    #[test]
    fn the_purchase_limit_counts_active_and_confirmed_holds_across_classes() {
        let mut ledger = open_ledger();
        ledger.set_max_tickets_per_user(Some(4)).unwrap();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
            .unwrap();
        ledger.confirm("o1", T0 + MINUTE).unwrap();
        ledger
            .reserve(&request("o2", "u1", &[("vip", 1)]), T0)
            .unwrap();

        let over = ledger
            .reserve(&request("o3", "u1", &[("ga", 2)]), T0)
            .unwrap_err();
        let exactly_at = ledger.reserve(&request("o4", "u1", &[("ga", 1)]), T0);
        let someone_else = ledger.reserve(&request("o5", "u2", &[("ga", 4)]), T0);

        assert_eq!(
            over,
            LedgerError::PurchaseLimitExceeded {
                limit: 4,
                already_committed: 3,
                requested: 2
            }
        );
        assert_eq!(over.code(), "PURCHASE_LIMIT_EXCEEDED");
        assert!(exactly_at.is_ok());
        assert!(someone_else.is_ok(), "the limit is per user");
    }

    #[test]
    fn released_and_expired_holds_no_longer_count_against_the_purchase_limit() {
        let mut ledger = open_ledger();
        ledger.set_max_tickets_per_user(Some(2)).unwrap();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
            .unwrap();
        ledger.release("o1", T0).unwrap();
        let mut brief = request("o2", "u1", &[("ga", 2)]);
        brief.hold_for_ms = Some(MINUTE);
        ledger.reserve(&brief, T0).unwrap();
        ledger.expire_due(T0 + MINUTE).unwrap();

        let again = ledger.reserve(&request("o3", "u1", &[("ga", 2)]), T0 + MINUTE);

        assert!(again.is_ok());
    }

    #[test]
    fn a_single_order_above_the_limit_is_refused() {
        let mut ledger = open_ledger();
        ledger.set_max_tickets_per_user(Some(2)).unwrap();

        let error = ledger
            .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
            .unwrap_err();

        assert_eq!(error.code(), "PURCHASE_LIMIT_EXCEEDED");
    }

    // ----- confirm -----

    #[test]
    fn confirm_moves_held_tickets_to_sold_and_answers_the_same_when_repeated() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 3), ("vip", 1)]), T0)
            .unwrap();

        let first = ledger.confirm("o1", T0 + MINUTE).unwrap();
        let second = ledger.confirm("o1", T0 + 2 * MINUTE).unwrap();

        let ConfirmOutcome::Confirmed(hold) = &first else {
            panic!("expected Confirmed, got {first:?}");
        };
        assert_eq!(hold.state, HoldState::Confirmed);
        assert_eq!(hold.updated_at, T0 + MINUTE);
        assert_eq!(second, first);
        assert_eq!(counters(&ledger, "ga"), (0, 3, 7));
        assert_eq!(counters(&ledger, "vip"), (0, 1, 1));
        assert_eq!(ledger.next_expiry().unwrap(), None);
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn confirm_sells_an_active_hold_past_its_expiry_that_the_alarm_has_not_expired_yet() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("vip", 2)]), T0)
            .unwrap();

        let outcome = ledger.confirm("o1", T0 + 16 * MINUTE).unwrap();

        assert!(matches!(outcome, ConfirmOutcome::Confirmed(_)));
        assert_eq!(counters(&ledger, "vip"), (0, 2, 0));
    }

    #[test]
    fn a_late_payment_for_an_expired_hold_sells_when_the_stock_is_still_there() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 2), ("vip", 1)]), T0)
            .unwrap();
        ledger.expire_due(T0 + 15 * MINUTE).unwrap();
        ledger.set_class_status("vip", ClassStatus::Paused).unwrap();

        let outcome = ledger.confirm("o1", T0 + 17 * MINUTE).unwrap();

        let ConfirmOutcome::Confirmed(hold) = outcome else {
            panic!("expected Confirmed, got {outcome:?}");
        };
        assert_eq!(hold.state, HoldState::Confirmed);
        assert_eq!(counters(&ledger, "ga"), (0, 2, 8));
        assert_eq!(counters(&ledger, "vip"), (0, 1, 1));
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn a_late_payment_for_a_hold_whose_tickets_were_resold_is_paid_but_no_stock_for_good() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 1), ("vip", 2)]), T0)
            .unwrap();
        ledger.release("o1", T0 + MINUTE).unwrap();
        ledger
            .reserve(&request("o2", "u2", &[("vip", 1)]), T0 + 2 * MINUTE)
            .unwrap();
        let before = contents(ledger.store());

        let late = ledger.confirm("o1", T0 + 3 * MINUTE).unwrap();

        let ConfirmOutcome::PaidButNoStock(hold) = &late else {
            panic!("expected PaidButNoStock, got {late:?}");
        };
        assert_eq!(hold.state, HoldState::Released);
        assert_eq!(
            hold.refused_payment,
            Some(RefusedPayment {
                reason: RefusalReason::NoStock,
                at: T0 + 3 * MINUTE
            })
        );
        assert_eq!(
            before.1,
            contents(ledger.store()).1,
            "no counter moved, not even ga's"
        );

        // The saga refunds on that answer, so stock freeing up later must not turn it into a sale.
        ledger.release("o2", T0 + 4 * MINUTE).unwrap();
        assert_eq!(ledger.confirm("o1", T0 + 5 * MINUTE).unwrap(), late);
        assert_eq!(counters(&ledger, "vip"), (0, 0, 2));
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn a_payment_on_a_cancelled_event_is_refused_and_releases_the_hold() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
            .unwrap();
        ledger.set_sale_state(SaleState::Cancelled).unwrap();

        let outcome = ledger.confirm("o1", T0 + MINUTE).unwrap();

        let ConfirmOutcome::PaidButEventCancelled(hold) = &outcome else {
            panic!("expected PaidButEventCancelled, got {outcome:?}");
        };
        assert_eq!(hold.state, HoldState::Released);
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
        assert_eq!(ledger.confirm("o1", T0 + 2 * MINUTE).unwrap(), outcome);
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn confirming_an_order_without_a_hold_is_hold_not_found() {
        let mut ledger = open_ledger();

        let error = ledger.confirm("nope", T0).unwrap_err();

        assert_eq!(error.code(), "HOLD_NOT_FOUND");
    }

    // ----- release -----

    #[test]
    fn release_frees_the_tickets_once_and_is_a_no_op_afterwards() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
            .unwrap();

        let first = ledger.release("o1", T0 + MINUTE).unwrap();
        let before = contents(ledger.store());
        let second = ledger.release("o1", T0 + 2 * MINUTE).unwrap();

        assert!(
            matches!(first, ReleaseOutcome::Released(ref hold) if hold.state == HoldState::Released)
        );
        assert!(matches!(second, ReleaseOutcome::AlreadyReleased(_)));
        assert_eq!(contents(ledger.store()), before);
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    }

    #[test]
    fn release_after_confirm_keeps_the_tickets_sold() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
            .unwrap();
        ledger.confirm("o1", T0).unwrap();

        let outcome = ledger.release("o1", T0 + MINUTE).unwrap();

        assert!(matches!(outcome, ReleaseOutcome::AlreadyConfirmed(_)));
        assert_eq!(counters(&ledger, "ga"), (0, 4, 6));
    }

    #[test]
    fn release_of_an_expired_hold_or_an_unknown_order_is_a_no_op() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 4)]), T0)
            .unwrap();
        ledger.expire_due(T0 + 15 * MINUTE).unwrap();
        let before = contents(ledger.store());

        let expired = ledger.release("o1", T0 + 16 * MINUTE).unwrap();
        let unknown = ledger.release("nope", T0).unwrap();

        assert!(matches!(expired, ReleaseOutcome::AlreadyExpired(_)));
        assert_eq!(unknown, ReleaseOutcome::UnknownOrder);
        assert_eq!(contents(ledger.store()), before);
    }

    // ----- expiry -----

    #[test]
    fn expire_due_expires_only_holds_whose_time_has_come_earliest_first() {
        let mut ledger = open_ledger();
        for (order, hold_for) in [
            ("late", 10 * MINUTE),
            ("b", 5 * MINUTE),
            ("a", 5 * MINUTE),
            ("early", MINUTE),
        ] {
            let mut req = request(order, "u1", &[("ga", 1)]);
            req.hold_for_ms = Some(hold_for);
            ledger.reserve(&req, T0).unwrap();
        }
        ledger
            .reserve(&request("paid", "u2", &[("ga", 1)]), T0)
            .unwrap();
        ledger.confirm("paid", T0).unwrap();

        let nothing = ledger.expire_due(T0 + MINUTE - 1).unwrap();
        let expired = ledger.expire_due(T0 + 5 * MINUTE).unwrap();

        assert!(nothing.is_empty());
        let order_ids: Vec<&str> = expired.iter().map(|e| e.order_id.as_str()).collect();
        assert_eq!(
            order_ids,
            ["early", "a", "b"],
            "by expiresAt, then order id"
        );
        assert_eq!(
            expired[0],
            ExpiredHold {
                order_id: "early".into(),
                user_id: "u1".into(),
                expires_at: T0 + MINUTE
            }
        );
        assert_eq!(state_of(&ledger, "late"), HoldState::Active);
        assert_eq!(state_of(&ledger, "paid"), HoldState::Confirmed);
        assert_eq!(counters(&ledger, "ga"), (1, 1, 8));
        assert_eq!(ledger.next_expiry().unwrap(), Some(T0 + 10 * MINUTE));
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn expire_due_works_in_batches_and_next_expiry_says_when_more_are_due() {
        let mut ledger = open_ledger();
        for order in ["o1", "o2", "o3"] {
            ledger
                .reserve(&request(order, "u1", &[("ga", 1)]), T0)
                .unwrap();
        }
        let now = T0 + 15 * MINUTE;

        let first = ledger.expire_due_at_most(now, 2).unwrap();
        let still_due = ledger.next_expiry().unwrap();
        let rest = ledger.expire_due_at_most(now, 2).unwrap();

        assert_eq!(first.len(), 2);
        assert!(still_due.is_some_and(|at| at <= now));
        assert_eq!(rest.len(), 1);
        assert_eq!(ledger.next_expiry().unwrap(), None);
        assert_eq!(counters(&ledger, "ga"), (0, 0, 10));
    }

    #[test]
    fn expire_due_with_nothing_due_writes_nothing() {
        let mut ledger = open_ledger();
        ledger.store_mut().fail_next_write();

        assert_eq!(ledger.expire_due(T0).unwrap(), vec![]);
    }

    // ----- class management -----

    #[test]
    fn set_total_refuses_a_total_below_what_is_held_or_sold() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
            .unwrap();
        ledger
            .reserve(&request("o2", "u2", &[("ga", 2)]), T0)
            .unwrap();
        ledger.confirm("o2", T0).unwrap();

        let below = ledger.set_total("ga", 4).unwrap_err();
        let at = ledger.set_total("ga", 5).unwrap();

        assert_eq!(
            below,
            LedgerError::TotalBelowCommitted {
                ticket_class_id: "ga".into(),
                total: 4,
                committed: 5
            }
        );
        assert_eq!(below.code(), "TOTAL_BELOW_COMMITTED");
        assert_eq!((at.total, at.available()), (5, 0));
        assert_eq!(
            ledger.set_total("ga", -1).unwrap_err().code(),
            "VALIDATION_FAILED"
        );
        assert_eq!(
            ledger.set_total("nope", 1).unwrap_err().code(),
            "UNKNOWN_TICKET_CLASS"
        );
    }

    #[test]
    fn upsert_class_keeps_the_counters_and_guards_the_total() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
            .unwrap();

        let updated = ledger
            .upsert_class(TicketClassSpec {
                status: ClassStatus::Paused,
                ..spec("ga", 20)
            })
            .unwrap();
        let shrunk = ledger.upsert_class(spec("ga", 2)).unwrap_err();
        let bad_window = ledger
            .upsert_class(TicketClassSpec {
                sale_start_at: Some(T0),
                sale_end_at: Some(T0),
                ..spec("ga", 20)
            })
            .unwrap_err();

        assert_eq!(
            (updated.total, updated.reserved, updated.status),
            (20, 3, ClassStatus::Paused)
        );
        assert_eq!(shrunk.code(), "TOTAL_BELOW_COMMITTED");
        assert_eq!(bad_window.code(), "VALIDATION_FAILED");
        assert_eq!(
            ledger.upsert_class(spec("", 1)).unwrap_err().code(),
            "VALIDATION_FAILED"
        );
        assert_eq!(
            ledger.upsert_class(spec("x", -1)).unwrap_err().code(),
            "VALIDATION_FAILED"
        );
        assert_eq!(class(&ledger, "ga"), updated);
    }

    #[test]
    fn availability_lists_every_class_with_live_counters() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
            .unwrap();
        ledger
            .reserve(&request("o2", "u1", &[("vip", 1)]), T0)
            .unwrap();
        ledger.confirm("o2", T0).unwrap();

        let availability = ledger.availability().unwrap();

        let summary: Vec<(&str, u32, u32, u32, u32)> = availability
            .iter()
            .map(|c| (c.id.as_str(), c.total, c.reserved, c.sold, c.available))
            .collect();
        assert_eq!(summary, [("ga", 10, 3, 0, 7), ("vip", 2, 0, 1, 1)]);
    }

    // ----- failed writes -----

    type Attempt = Box<dyn Fn(&mut Ledger<MemoryLedgerStore>) -> Result<(), LedgerError>>;

    #[test]
    fn a_failed_write_leaves_no_partial_state_behind() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("active", "u1", &[("ga", 1)]), T0)
            .unwrap();
        ledger
            .reserve(&request("to-confirm", "u1", &[("ga", 2), ("vip", 1)]), T0)
            .unwrap();
        let attempts: Vec<(&str, Attempt)> = vec![
            (
                "multi-class reserve",
                Box::new(|l| {
                    l.reserve(&request("new", "u2", &[("ga", 3), ("vip", 1)]), T0)
                        .map(drop)
                }),
            ),
            (
                "confirm",
                Box::new(|l| l.confirm("to-confirm", T0).map(drop)),
            ),
            ("release", Box::new(|l| l.release("active", T0).map(drop))),
            (
                "expire",
                Box::new(|l| l.expire_due(T0 + 15 * MINUTE).map(drop)),
            ),
            ("set_total", Box::new(|l| l.set_total("ga", 50).map(drop))),
            (
                "upsert_class",
                Box::new(|l| l.upsert_class(spec("new", 5)).map(drop)),
            ),
            (
                "set_sale_state",
                Box::new(|l| l.set_sale_state(SaleState::Closed).map(drop)),
            ),
            (
                "set_limit",
                Box::new(|l| l.set_max_tickets_per_user(Some(1)).map(drop)),
            ),
        ];

        for (name, attempt) in attempts {
            let before = contents(ledger.store());
            ledger.store_mut().fail_next_write();

            let result = attempt(&mut ledger);

            assert!(
                matches!(result, Err(LedgerError::Store(StoreError::Unavailable(_)))),
                "{name}: {result:?}"
            );
            assert_eq!(result.unwrap_err().code(), "INTERNAL_ERROR");
            assert_eq!(
                contents(ledger.store()),
                before,
                "{name} left partial state"
            );
        }
        let retried = ledger.confirm("to-confirm", T0).unwrap();
        assert!(
            matches!(retried, ConfirmOutcome::Confirmed(_)),
            "a retry after the failure goes through"
        );
        check_invariants(ledger.store()).unwrap();
    }

    #[test]
    fn a_rejected_reserve_is_decided_before_any_write_is_attempted() {
        let mut ledger = open_ledger();
        ledger.store_mut().fail_next_write();

        let error = ledger
            .reserve(&request("o1", "u1", &[("vip", 3)]), T0)
            .unwrap_err();

        assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
        assert!(
            ledger.store().fail_next_write,
            "the armed failure was never reached"
        );
    }

    #[test]
    fn the_memory_store_refuses_rows_that_oversell_like_the_sql_check_does() {
        let mut store = MemoryLedgerStore::new();
        let oversold = TicketClass {
            id: "ga".into(),
            total: 1,
            reserved: 1,
            sold: 1,
            status: ClassStatus::Active,
            sale_start_at: None,
            sale_end_at: None,
        };

        let result = store.commit(&LedgerChanges {
            classes: vec![oversold],
            ..LedgerChanges::default()
        });

        assert!(result.is_err());
        assert_eq!(store.classes().unwrap(), vec![]);
    }

    #[test]
    fn corrupt_counters_are_reported_instead_of_written() {
        let mut ledger = open_ledger();
        ledger
            .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
            .unwrap();
        // Simulate a row that lost its reservations behind the ledger's back.
        ledger.store_mut().classes.get_mut("ga").unwrap().reserved = 1;
        let before = contents(ledger.store());

        let error = ledger.release("o1", T0).unwrap_err();

        assert_eq!(error.code(), "INTERNAL_ERROR");
        assert!(matches!(error, LedgerError::Corrupt { .. }));
        assert_eq!(contents(ledger.store()), before);
    }

    // ----- wire shapes -----

    #[test]
    fn holds_and_outcomes_travel_as_camel_case_json() {
        let mut ledger = open_ledger();
        let hold = ledger
            .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
            .unwrap();

        let json = serde_json::to_value(ConfirmOutcome::Confirmed(hold.clone())).unwrap();
        let request_json: ReserveRequest = serde_json::from_value(serde_json::json!({
            "orderId": "o1", "userId": "u1", "items": [{"ticketClassId": "ga", "quantity": 2}]
        }))
        .unwrap();

        assert_eq!(json["outcome"], "CONFIRMED");
        assert_eq!(json["hold"]["orderId"], "o1");
        assert_eq!(json["hold"]["state"], "ACTIVE");
        assert_eq!(json["hold"]["expiresAt"], T0 + 15 * MINUTE);
        assert_eq!(json["hold"]["items"][0]["ticketClassId"], "ga");
        assert_eq!(request_json, request("o1", "u1", &[("ga", 2)]));
        assert_eq!(
            serde_json::to_value(ReleaseOutcome::UnknownOrder).unwrap(),
            serde_json::json!({"outcome": "UNKNOWN_ORDER"})
        );
        for outcome in [
            ConfirmOutcome::PaidButNoStock(hold.clone()),
            ConfirmOutcome::PaidButEventCancelled(hold.clone()),
        ] {
            let back: ConfirmOutcome =
                serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
            assert_eq!(back, outcome);
        }
        for outcome in [ReleaseOutcome::Released(hold), ReleaseOutcome::UnknownOrder] {
            let back: ReleaseOutcome =
                serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
            assert_eq!(back, outcome);
        }
        let availability = serde_json::to_value(ledger.availability().unwrap()).unwrap();
        assert_eq!(availability[0]["saleStartAt"], serde_json::Value::Null);
        assert_eq!(availability[0]["available"], 8);
    }

    #[test]
    fn errors_round_trip_through_json_and_keep_their_codes() {
        let errors = [
            LedgerError::InsufficientInventory {
                ticket_class_id: "ga".into(),
                requested: 3,
                available: 1,
            },
            LedgerError::SaleNotOpen {
                state: SaleState::Closed,
            },
            LedgerError::PurchaseLimitExceeded {
                limit: 4,
                already_committed: 3,
                requested: 2,
            },
            LedgerError::TotalBelowCommitted {
                ticket_class_id: "ga".into(),
                total: 1,
                committed: 2,
            },
            LedgerError::Store(StoreError::Unavailable("down".into())),
            LedgerError::SaleCancelled,
        ];
        for error in errors {
            let json = serde_json::to_string(&error).unwrap();
            let back: LedgerError = serde_json::from_str(&json).unwrap();
            assert_eq!(back, error, "{json}");
            assert_eq!(back.code(), error.code());
        }
        let json = serde_json::to_value(LedgerError::InsufficientInventory {
            ticket_class_id: "ga".into(),
            requested: 3,
            available: 1,
        })
        .unwrap();
        assert_eq!(json["error"], "insufficientInventory");
        assert_eq!(json["ticketClassId"], "ga");
    }

    #[test]
    fn a_hold_survives_the_round_trip_through_its_sql_row() {
        let hold = Hold {
            order_id: "o1".into(),
            user_id: "u1".into(),
            items: vec![
                HoldItem {
                    ticket_class_id: "ga".into(),
                    quantity: 2,
                },
                HoldItem {
                    ticket_class_id: "vip".into(),
                    quantity: 1,
                },
            ],
            state: HoldState::Expired,
            created_at: T0,
            expires_at: T0 + 15 * MINUTE,
            updated_at: T0 + 16 * MINUTE,
            refused_payment: Some(RefusedPayment {
                reason: RefusalReason::NoStock,
                at: T0 + 17 * MINUTE,
            }),
        };

        let row = HoldRow::try_from(&hold).unwrap();
        let row_json = serde_json::to_value(&row).unwrap();

        assert_eq!(row.quantity, 3);
        assert_eq!(row_json["refusalReason"], "NO_STOCK");
        assert_eq!(Hold::try_from(row.clone()).unwrap(), hold);
        let half = HoldRow {
            refused_at: None,
            ..row.clone()
        };
        assert!(Hold::try_from(half).is_err());
        let garbled = HoldRow {
            items_json: "[{".into(),
            ..row
        };
        assert!(matches!(
            Hold::try_from(garbled),
            Err(StoreError::Malformed(_))
        ));
    }

    #[test]
    fn the_schema_declares_every_table_and_index_the_store_queries_use() {
        for needle in [
            "CREATE TABLE IF NOT EXISTS ledger_settings",
            "CREATE TABLE IF NOT EXISTS ticket_classes",
            "CREATE TABLE IF NOT EXISTS holds",
            "CHECK (reserved + sold <= total)",
            "holds_by_user ON holds (user_id)",
            "DROP INDEX IF EXISTS holds_by_user_state",
            "holds_active_by_expiry ON holds (expires_at, order_id) WHERE state = 'ACTIVE'",
        ] {
            assert!(LEDGER_SCHEMA.contains(needle), "{needle}");
        }
    }

    // ----- property tests -----

    /// Random interleavings of every operation under a moving clock, each step checked against
    /// an independent model of what it should answer, and every invariant checked after it.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const CLASS_IDS: [&str; 4] = ["c0", "c1", "c2", "unknown"];
        /// Times move in coarse steps so that expiries and sale-window edges land exactly on `now`.
        const STEP_MS: Millis = 500;

        #[derive(Debug, Clone)]
        enum Step {
            Reserve {
                order: u8,
                user: u8,
                lines: Vec<(usize, i64)>,
                hold_for: Millis,
            },
            Confirm {
                order: u8,
            },
            Release {
                order: u8,
            },
            ExpireDue {
                limit: usize,
            },
            SetTotal {
                class: usize,
                total: i64,
            },
            SetClassStatus {
                class: usize,
                status: ClassStatus,
            },
            SetSaleState(SaleState),
            SetLimit(Option<u32>),
            Tick(Millis),
            FailNextWrite,
        }

        fn step() -> impl Strategy<Value = Step> {
            let quantity = prop_oneof![1 => -1i64..=0, 10 => 1i64..4];
            let lines = prop_oneof![
                1 => Just(vec![]),
                15 => prop::collection::vec((0usize..4, quantity), 1..4),
            ];
            prop_oneof![
                8 => (0u8..8, 0u8..3, lines, 1i64..7).prop_map(|(order, user, lines, steps)| {
                    Step::Reserve { order, user, lines, hold_for: steps * STEP_MS }
                }),
                4 => (0u8..8).prop_map(|order| Step::Confirm { order }),
                3 => (0u8..8).prop_map(|order| Step::Release { order }),
                2 => (0usize..4).prop_map(|limit| Step::ExpireDue { limit }),
                1 => (0usize..4, -1i64..10).prop_map(|(class, total)| Step::SetTotal { class, total }),
                1 => (0usize..4, prop_oneof![2 => Just(ClassStatus::Active), 1 => Just(ClassStatus::Paused)])
                    .prop_map(|(class, status)| Step::SetClassStatus { class, status }),
                1 => prop_oneof![
                    6 => Just(SaleState::Open),
                    3 => Just(SaleState::Closed),
                    1 => Just(SaleState::Cancelled),
                ]
                .prop_map(Step::SetSaleState),
                1 => proptest::option::of(0u32..9).prop_map(Step::SetLimit),
                5 => (0i64..5).prop_map(|steps| Step::Tick(steps * STEP_MS)),
                1 => Just(Step::FailNextWrite),
            ]
        }

        fn seeded_ledger() -> Ledger<MemoryLedgerStore> {
            let mut ledger = Ledger::new(MemoryLedgerStore::new());
            ledger.set_sale_state(SaleState::Open).unwrap();
            ledger.set_max_tickets_per_user(Some(6)).unwrap();
            ledger.upsert_class(spec("c0", 5)).unwrap();
            ledger.upsert_class(spec("c1", 3)).unwrap();
            ledger
                .upsert_class(TicketClassSpec {
                    sale_start_at: Some(T0 + 2 * STEP_MS),
                    sale_end_at: Some(T0 + 40 * STEP_MS),
                    ..spec("c2", 4)
                })
                .unwrap();
            ledger
        }

        /// The model's answer: `Ok(())` for success, else the expected error code.
        type Expected = Result<(), &'static str>;

        fn code_of<T>(result: &Result<T, LedgerError>) -> Expected {
            result.as_ref().map(drop).map_err(LedgerError::code)
        }

        fn confirm_tag(outcome: &ConfirmOutcome) -> &'static str {
            match outcome {
                ConfirmOutcome::Confirmed(_) => "CONFIRMED",
                ConfirmOutcome::PaidButNoStock(_) => "PAID_BUT_NO_STOCK",
                ConfirmOutcome::PaidButEventCancelled(_) => "PAID_BUT_EVENT_CANCELLED",
            }
        }

        fn owned_by(holds: &BTreeMap<String, Hold>, user_id: &str) -> u64 {
            holds
                .values()
                .filter(|h| h.user_id == user_id)
                .filter(|h| matches!(h.state, HoldState::Active | HoldState::Confirmed))
                .map(Hold::quantity)
                .sum()
        }

        /// What a fresh reserve should answer, rule by rule, in the ledger's documented order.
        fn expected_reserve(
            before: &Contents,
            req: &ReserveRequest,
            now: Millis,
            armed: bool,
        ) -> Expected {
            let mut lines: Vec<(&str, i64)> = req
                .items
                .iter()
                .map(|i| (i.ticket_class_id.as_str(), i.quantity))
                .collect();
            lines.sort();
            if lines.is_empty()
                || lines.iter().any(|(_, q)| *q <= 0)
                || lines.windows(2).any(|pair| pair[0].0 == pair[1].0)
            {
                return Err("VALIDATION_FAILED");
            }
            if let Some(existing) = before.2.get(&req.order_id) {
                let same_lines: Vec<(&str, i64)> = existing
                    .items
                    .iter()
                    .map(|i| (i.ticket_class_id.as_str(), i64::from(i.quantity)))
                    .collect();
                return if existing.user_id == req.user_id && same_lines == lines {
                    Ok(())
                } else {
                    Err("ORDER_ID_CONFLICT")
                };
            }
            let settings = before.0.clone().unwrap_or_default();
            if settings.state != SaleState::Open {
                return Err("SALE_NOT_OPEN");
            }
            for (id, _) in &lines {
                let Some(class) = before.1.get(*id) else {
                    return Err("UNKNOWN_TICKET_CLASS");
                };
                if class.status == ClassStatus::Paused {
                    return Err("CLASS_NOT_ON_SALE");
                }
                let started = class.sale_start_at.is_none_or(|at| at <= now);
                let not_ended = class.sale_end_at.is_none_or(|at| now < at);
                if !(started && not_ended) {
                    return Err("SALE_NOT_OPEN");
                }
            }
            let requested: i64 = lines.iter().map(|(_, q)| q).sum();
            let over_limit = settings.max_tickets_per_user.is_some_and(|limit| {
                owned_by(&before.2, &req.user_id) + requested as u64 > u64::from(limit)
            });
            if over_limit {
                return Err("PURCHASE_LIMIT_EXCEEDED");
            }
            if lines
                .iter()
                .any(|(id, q)| before.1[*id].available() < *q as u32)
            {
                return Err("INSUFFICIENT_INVENTORY");
            }
            if armed {
                return Err("INTERNAL_ERROR");
            }
            Ok(())
        }

        /// What confirm should answer (an outcome tag, or an error code).
        fn expected_confirm(
            before: &Contents,
            order_id: &str,
            armed: bool,
        ) -> Result<&'static str, &'static str> {
            let Some(hold) = before.2.get(order_id) else {
                return Err("HOLD_NOT_FOUND");
            };
            match hold.refused_payment.map(|r| r.reason) {
                Some(RefusalReason::NoStock) => return Ok("PAID_BUT_NO_STOCK"),
                Some(RefusalReason::EventCancelled) => return Ok("PAID_BUT_EVENT_CANCELLED"),
                None => {}
            }
            if hold.state == HoldState::Confirmed {
                return Ok("CONFIRMED");
            }
            if armed {
                return Err("INTERNAL_ERROR");
            }
            if before.0.as_ref().map(|s| s.state) == Some(SaleState::Cancelled) {
                return Ok("PAID_BUT_EVENT_CANCELLED");
            }
            let fits = hold
                .items
                .iter()
                .all(|i| before.1[&i.ticket_class_id].available() >= i.quantity);
            if hold.state == HoldState::Active || fits {
                Ok("CONFIRMED")
            } else {
                Ok("PAID_BUT_NO_STOCK")
            }
        }

        fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
            condition.then_some(()).ok_or_else(message)
        }

        /// Applies one step and checks its answer against the model; an `Err` describes a breach.
        fn apply(
            ledger: &mut Ledger<MemoryLedgerStore>,
            now: &mut Millis,
            step: &Step,
        ) -> Result<(), String> {
            let before = contents(ledger.store());
            let armed = ledger.store().fail_next_write;
            let answered = |expected: Expected, got: Expected| -> Result<(), String> {
                ensure(expected == got, || {
                    format!("expected {expected:?}, got {got:?}")
                })
            };
            // Whatever was refused, failed, or was a no-op must leave every row as it was.
            let unchanged_unless =
                |ledger: &Ledger<MemoryLedgerStore>, changed: bool| -> Result<(), String> {
                    ensure(changed || contents(ledger.store()) == before, || {
                        "a no-op changed state".into()
                    })
                };
            match step {
                Step::Reserve {
                    order,
                    user,
                    lines,
                    hold_for,
                } => {
                    let req = ReserveRequest {
                        order_id: format!("o{order}"),
                        user_id: format!("u{user}"),
                        items: lines
                            .iter()
                            .map(|(c, q)| RequestedItem::new(CLASS_IDS[*c], *q))
                            .collect(),
                        hold_for_ms: Some(*hold_for),
                    };
                    let repeat = before.2.get(&req.order_id).cloned();
                    let expected = expected_reserve(&before, &req, *now, armed && repeat.is_none());
                    let result = ledger.reserve(&req, *now);
                    answered(expected, code_of(&result))?;
                    unchanged_unless(ledger, result.is_ok() && repeat.is_none())?;
                    if let Ok(hold) = result {
                        match repeat {
                            Some(existing) => ensure(hold == existing, || {
                                "a repeat reserve gave another hold".into()
                            })?,
                            None => ensure(
                                hold.state == HoldState::Active
                                    && hold.expires_at == *now + hold_for,
                                || format!("fresh hold {hold:?}"),
                            )?,
                        }
                        ensure(
                            ledger.hold(&req.order_id).ok().flatten().as_ref() == Some(&hold),
                            || "the answer is not what was stored".into(),
                        )?;
                        let snapshot = contents(ledger.store());
                        let again = ledger.reserve(&req, *now + 1);
                        ensure(
                            again.as_ref() == Ok(&hold) && contents(ledger.store()) == snapshot,
                            || format!("reserve is not idempotent: {again:?}"),
                        )?;
                    }
                }
                Step::Confirm { order } => {
                    let order_id = format!("o{order}");
                    let expected = expected_confirm(&before, &order_id, armed);
                    let result = ledger.confirm(&order_id, *now);
                    let got = result.as_ref().map(confirm_tag).map_err(LedgerError::code);
                    ensure(expected == got, || {
                        format!("expected {expected:?}, got {got:?}")
                    })?;
                    let wrote = before.2.get(&order_id).is_some_and(|h| {
                        h.state != HoldState::Confirmed && h.refused_payment.is_none()
                    });
                    unchanged_unless(ledger, result.is_ok() && wrote)?;
                    if let Ok(outcome) = result {
                        let (ConfirmOutcome::Confirmed(hold)
                        | ConfirmOutcome::PaidButNoStock(hold)
                        | ConfirmOutcome::PaidButEventCancelled(hold)) = &outcome;
                        let was = before.2[&order_id].state;
                        let state_ok = match &outcome {
                            ConfirmOutcome::Confirmed(_) => hold.state == HoldState::Confirmed,
                            ConfirmOutcome::PaidButNoStock(_) => hold.state == was,
                            ConfirmOutcome::PaidButEventCancelled(_) => {
                                hold.state
                                    == if was == HoldState::Active {
                                        HoldState::Released
                                    } else {
                                        was
                                    }
                            }
                        };
                        ensure(state_ok, || format!("{outcome:?} after {was:?}"))?;
                        let snapshot = contents(ledger.store());
                        let again = ledger.confirm(&order_id, *now + 1);
                        ensure(
                            again.as_ref() == Ok(&outcome) && contents(ledger.store()) == snapshot,
                            || format!("confirm is not idempotent: {again:?}"),
                        )?;
                    }
                }
                Step::Release { order } => {
                    let order_id = format!("o{order}");
                    let was = before.2.get(&order_id).map(|h| h.state);
                    let result = ledger.release(&order_id, *now);
                    let got = match &result {
                        Ok(ReleaseOutcome::Released(h)) if h.state == HoldState::Released => {
                            Ok(Some(HoldState::Active))
                        }
                        Ok(ReleaseOutcome::Released(_)) => Err("RELEASED_BUT_NOT"),
                        Ok(ReleaseOutcome::AlreadyReleased(_)) => Ok(Some(HoldState::Released)),
                        Ok(ReleaseOutcome::AlreadyExpired(_)) => Ok(Some(HoldState::Expired)),
                        Ok(ReleaseOutcome::AlreadyConfirmed(_)) => Ok(Some(HoldState::Confirmed)),
                        Ok(ReleaseOutcome::UnknownOrder) => Ok(None),
                        Err(e) => Err(e.code()),
                    };
                    let writes = was == Some(HoldState::Active);
                    let expected = if writes && armed {
                        Err("INTERNAL_ERROR")
                    } else {
                        Ok(was)
                    };
                    ensure(expected == got, || {
                        format!("expected {expected:?}, got {got:?}")
                    })?;
                    unchanged_unless(ledger, writes && result.is_ok())?;
                }
                Step::ExpireDue { limit } => {
                    let mut due: Vec<(Millis, String)> = before
                        .2
                        .values()
                        .filter(|h| h.state == HoldState::Active && h.expires_at <= *now)
                        .map(|h| (h.expires_at, h.order_id.clone()))
                        .collect();
                    due.sort();
                    due.truncate(*limit);
                    let expected = if armed && !due.is_empty() {
                        Err("INTERNAL_ERROR")
                    } else {
                        Ok(due)
                    };
                    let result = ledger.expire_due_at_most(*now, *limit);
                    let got = result
                        .as_ref()
                        .map(|expired| {
                            expired
                                .iter()
                                .map(|e| (e.expires_at, e.order_id.clone()))
                                .collect()
                        })
                        .map_err(LedgerError::code);
                    ensure(expected == got, || {
                        format!("expected {expected:?}, got {got:?}")
                    })?;
                    unchanged_unless(ledger, result.is_ok_and(|expired| !expired.is_empty()))?;
                    if let Ok(expired) = &got {
                        for (_, order_id) in expired {
                            ensure(state_of(ledger, order_id) == HoldState::Expired, || {
                                format!("{order_id} reported but not expired")
                            })?;
                        }
                    }
                }
                Step::SetTotal { class, total } => {
                    let id = CLASS_IDS[*class];
                    let expected = match before.1.get(id) {
                        None => Err("UNKNOWN_TICKET_CLASS"),
                        Some(_) if *total < 0 => Err("VALIDATION_FAILED"),
                        Some(c) if (*total as u64) < c.committed() => Err("TOTAL_BELOW_COMMITTED"),
                        Some(_) if armed => Err("INTERNAL_ERROR"),
                        Some(_) => Ok(()),
                    };
                    let result = ledger.set_total(id, *total);
                    answered(expected, code_of(&result))?;
                    unchanged_unless(ledger, result.is_ok())?;
                }
                Step::SetClassStatus { class, status } => {
                    let id = CLASS_IDS[*class];
                    let expected = match before.1.get(id) {
                        None => Err("UNKNOWN_TICKET_CLASS"),
                        Some(_) if armed => Err("INTERNAL_ERROR"),
                        Some(_) => Ok(()),
                    };
                    let result = ledger.set_class_status(id, *status);
                    answered(expected, code_of(&result))?;
                    unchanged_unless(ledger, result.is_ok())?;
                }
                Step::SetSaleState(state) => {
                    let current = before.0.as_ref().map(|s| s.state).unwrap_or_default();
                    let expected =
                        if current == SaleState::Cancelled && *state != SaleState::Cancelled {
                            Err("INVALID_STATUS_TRANSITION")
                        } else if armed {
                            Err("INTERNAL_ERROR")
                        } else {
                            Ok(())
                        };
                    let result = ledger.set_sale_state(*state);
                    answered(expected, code_of(&result))?;
                    unchanged_unless(ledger, result.is_ok())?;
                }
                Step::SetLimit(limit) => {
                    let result = ledger.set_max_tickets_per_user(*limit);
                    answered(
                        if armed { Err("INTERNAL_ERROR") } else { Ok(()) },
                        code_of(&result),
                    )?;
                    unchanged_unless(ledger, result.is_ok())?;
                }
                Step::Tick(by) => *now += by,
                Step::FailNextWrite => ledger.store_mut().fail_next_write(),
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn every_step_of_any_interleaving_answers_as_modelled_and_keeps_the_invariants(
                steps in prop::collection::vec(step(), 1..60),
            ) {
                let mut ledger = seeded_ledger();
                let mut now = T0;
                for (index, step) in steps.iter().enumerate() {
                    let checked = apply(&mut ledger, &mut now, step)
                        .and_then(|()| check_invariants(ledger.store()));
                    prop_assert!(checked.is_ok(), "step {} {:?}: {}", index, step, checked.unwrap_err());
                }
            }
        }
    }
}
