//! Where the ledger keeps its rows: the [`LedgerStore`] trait (each method's SQL documented)
//! and the SQLite schema the Durable Object's store transcribes.

use super::*;

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
  returned_at INTEGER CHECK (returned_at IS NULL OR state = 'CONFIRMED'),
  CHECK ((refusal_reason IS NULL) = (refused_at IS NULL))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS holds_by_user ON holds (user_id);
DROP INDEX IF EXISTS holds_by_user_state;
CREATE INDEX IF NOT EXISTS holds_active_by_expiry ON holds (expires_at, order_id) WHERE state = 'ACTIVE';
";

/// Columns added to [`LEDGER_SCHEMA`]'s tables after objects already stored them: `(table,
/// column, statement)`. `CREATE TABLE IF NOT EXISTS` leaves an existing table as it was, so the
/// object runs each statement where `PRAGMA table_info(table)` lacks the column. Only additive
/// changes go here: SQLite cannot alter a CHECK in place, which is why a returned sale is a
/// column beside `state` and not a new state.
pub const LEDGER_ADDED_COLUMNS: &[(&str, &str, &str)] = &[(
    "holds",
    "returned_at",
    "ALTER TABLE holds ADD COLUMN returned_at INTEGER \
     CHECK (returned_at IS NULL OR state = 'CONFIRMED')",
)];

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
    ///  refusal_reason AS refusalReason, refused_at AS refusedAt, returned_at AS returnedAt
    ///  FROM holds WHERE order_id = ?1` — a [`HoldRow`], turned into a [`Hold`] with `TryFrom`.
    fn hold(&self, order_id: &str) -> Result<Option<Hold>, StoreError>;

    /// Tickets the user holds or bought and still has ([`Hold::counts_toward_limit`]):
    /// `SELECT COALESCE(SUM(quantity), 0) AS quantity FROM holds
    ///  WHERE user_id = ?1 AND state IN ('ACTIVE', 'CONFIRMED') AND returned_at IS NULL`
    ///  (through `holds_by_user`).
    fn user_committed_quantity(&self, user_id: &str) -> Result<u64, StoreError>;

    /// ACTIVE holds whose time is up, earliest first:
    /// `SELECT <hold columns> FROM holds WHERE state = 'ACTIVE' AND expires_at <= ?1
    ///  ORDER BY expires_at, order_id LIMIT ?2` (the partial index `holds_active_by_expiry`).
    fn due_holds(&self, now: Millis, limit: usize) -> Result<Vec<Hold>, StoreError>;

    /// `SELECT MIN(expires_at) AS expiresAt FROM holds WHERE state = 'ACTIVE'`
    /// (one step down `holds_active_by_expiry`).
    fn next_expiry(&self) -> Result<Option<Millis>, StoreError>;

    /// ACTIVE holds right now, for the operator view:
    /// `SELECT COUNT(*) AS n FROM holds WHERE state = 'ACTIVE'` (counts `holds_active_by_expiry`).
    fn active_hold_count(&self) -> Result<u64, StoreError>;

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
    ///   quantity, state, created_at, expires_at, updated_at, refusal_reason, refused_at,
    ///   returned_at) VALUES (?1, ..., ?11) ON CONFLICT (order_id) DO UPDATE SET
    ///   state = excluded.state, updated_at = excluded.updated_at,
    ///   refusal_reason = excluded.refusal_reason, refused_at = excluded.refused_at,
    ///   returned_at = excluded.returned_at`
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
    fn active_hold_count(&self) -> Result<u64, StoreError> {
        (**self).active_hold_count()
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
