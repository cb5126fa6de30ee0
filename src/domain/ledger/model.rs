//! The ledger's vocabulary: sale settings, ticket classes, holds, outcomes and errors, with
//! their wire and row shapes.

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type Millis = i64;

/// How long tickets stay held for an order when the caller does not say (the API's 15 minutes).
pub const DEFAULT_HOLD_MS: Millis = 15 * 60 * 1000;

/// Most holds expired by one [`Ledger::expire_due`] call, so one alarm stays well inside the
/// object's CPU budget even after a wave of abandoned checkouts; the rest are picked up by the
/// next alarm, which [`Ledger::next_expiry`] then puts in the past (that is, at once).
pub const EXPIRY_BATCH: usize = 500;

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

    pub(super) fn window_contains(&self, now: Millis) -> bool {
        self.sale_start_at.is_none_or(|start| start <= now)
            && self.sale_end_at.is_none_or(|end| now < end)
    }

    pub(super) fn hold_back(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.reserved = self
            .reserved
            .checked_add(quantity)
            .ok_or_else(|| corrupt(format!("reserved counter of class {} overflows", self.id)))?;
        Ok(())
    }

    pub(super) fn give_back(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.reserved = self.reserved.checked_sub(quantity).ok_or_else(|| {
            corrupt(format!(
                "class {} has {} reserved, fewer than a hold's {quantity}",
                self.id, self.reserved
            ))
        })?;
        Ok(())
    }

    pub(super) fn sell(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.sold = self
            .sold
            .checked_add(quantity)
            .ok_or_else(|| corrupt(format!("sold counter of class {} overflows", self.id)))?;
        Ok(())
    }

    pub(super) fn take_back_sold(&mut self, quantity: u32) -> Result<(), LedgerError> {
        self.sold = self.sold.checked_sub(quantity).ok_or_else(|| {
            corrupt(format!(
                "class {} has {} sold, fewer than a hold's {quantity}",
                self.id, self.sold
            ))
        })?;
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

/// Where a hold is in its life. Only ACTIVE holds count in `reserved`, only CONFIRMED ones in
/// `sold`, and only until their tickets are returned ([`Hold::returned_at`]).
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
    /// When a CONFIRMED hold's tickets went back on sale after a refund. A fact added to the
    /// CONFIRMED state rather than a state of its own: the tickets were paid for and sold, and
    /// the `holds.state` CHECK of live objects cannot be widened in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_at: Option<Millis>,
}

impl Hold {
    /// Tickets across all lines, as counted against `maxTicketsPerUser`.
    pub fn quantity(&self) -> u64 {
        self.items.iter().map(|item| u64::from(item.quantity)).sum()
    }

    /// Whether the hold's tickets count in `sold` (CONFIRMED and not returned).
    pub fn holds_sold_tickets(&self) -> bool {
        self.state == HoldState::Confirmed && self.returned_at.is_none()
    }

    /// Whether the hold's tickets count against its user's `maxTicketsPerUser`: held or sold,
    /// and not handed back by a refund (the buyer no longer has them).
    pub fn counts_toward_limit(&self) -> bool {
        self.state == HoldState::Active || self.holds_sold_tickets()
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
    #[serde(default)]
    pub returned_at: Option<Millis>,
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
            returned_at: hold.returned_at,
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
            returned_at: row.returned_at,
        })
    }
}

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

/// The answer to returning a refunded order's tickets to sale; only `Returned` changed anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "hold", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReturnOutcome {
    /// The hold's units left `sold`: they are available again.
    Returned(Hold),
    /// An earlier return already gave them back (a redelivered refund message).
    AlreadyReturned(Hold),
    /// The hold never sold tickets (still ACTIVE, lapsed, released or its payment refused):
    /// nothing to give back.
    NotSold(Hold),
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

pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> LedgerError {
    LedgerError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

pub(super) fn corrupt(detail: String) -> LedgerError {
    LedgerError::Corrupt { detail }
}
