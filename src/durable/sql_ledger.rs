//! `SqlLedgerStore`: the inventory ledger's storage on the object's SQLite, a transcription of
//! the SQL documented on `LedgerStore`. Atomicity comes from the caller: every ledger operation
//! runs inside `txn::transaction_sync`, so a `commit` that fails half-way is rolled back whole.

use std::sync::LazyLock;

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use super::sqlite::{document, exec, first, int, opt_int, opt_text, rows, text, uint, SqlResult};
use crate::domain::ledger::{
    ClassStatus, Hold, HoldRow, HoldWithClasses, LedgerChanges, LedgerStore, Millis, ReserveReads,
    SaleSettings, SaleState, StoreError, TicketClass,
};

const CLASS_COLUMNS: &str = "id, total, reserved, sold, status, sale_start_at AS saleStartAt, \
     sale_end_at AS saleEndAt";

const HOLD_COLUMNS: &str = "order_id AS orderId, user_id AS userId, items_json AS itemsJson, \
     quantity, state, created_at AS createdAt, expires_at AS expiresAt, updated_at AS updatedAt, \
     refusal_reason AS refusalReason, refused_at AS refusedAt, returned_at AS returnedAt";

/// A class row as a JSON object with [`TicketClass`]'s field names.
const CLASS_JSON: &str = "json_object('id', id, 'total', total, 'reserved', reserved, \
     'sold', sold, 'status', status, 'saleStartAt', sale_start_at, 'saleEndAt', sale_end_at)";

/// A hold row as a JSON object with [`HoldRow`]'s field names.
const HOLD_JSON: &str = "json_object('orderId', order_id, 'userId', user_id, \
     'itemsJson', items_json, 'quantity', quantity, 'state', state, 'createdAt', created_at, \
     'expiresAt', expires_at, 'updatedAt', updated_at, 'refusalReason', refusal_reason, \
     'refusedAt', refused_at, 'returnedAt', returned_at)";

// The one-document queries, built once: they run on every reserve, release and page view.

static RESERVE_READS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT json_object(\
         'hold', json((SELECT {HOLD_JSON} FROM holds WHERE order_id = ?1)), \
         'settings', json((SELECT json_object('state', sale_state, \
           'maxTicketsPerUser', max_tickets_per_user, 'saleStartsAt', sale_starts_at, \
           'saleEndsAt', sale_ends_at) FROM ledger_settings WHERE id = 1)), \
         'userCommittedQuantity', (SELECT COALESCE(SUM(quantity), 0) FROM holds \
           WHERE user_id = ?2 AND state IN ('ACTIVE', 'CONFIRMED') \
             AND returned_at IS NULL), \
         'classes', json((SELECT json_group_array({CLASS_JSON}) FROM ticket_classes \
           WHERE id IN (SELECT value FROM json_each(?3)))))"
    )
});

static HOLD_WITH_CLASSES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT json_object(\
         'hold', json((SELECT {HOLD_JSON} FROM holds WHERE order_id = ?1)), \
         'classes', json((SELECT json_group_array({CLASS_JSON}) FROM ticket_classes \
           WHERE id IN (SELECT line.value ->> '$.ticketClassId' \
             FROM holds, json_each(holds.items_json) AS line \
             WHERE holds.order_id = ?1))))"
    )
});

static ALL_CLASSES: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT json_group_array({CLASS_JSON} ORDER BY id) FROM ticket_classes")
});

/// [`ReserveReads`] as the one query builds it (each part wrapped in `json()` so that SQLite
/// embeds it as JSON, not as text, across the subquery).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReserveDocument {
    hold: Option<HoldRow>,
    settings: Option<SaleSettings>,
    user_committed_quantity: u64,
    classes: Vec<TicketClass>,
}

#[derive(Deserialize)]
struct HoldDocument {
    hold: Option<HoldRow>,
    classes: Vec<TicketClass>,
}

/// The ledger's tables through the object's `SqlStorage` (a cheap JS handle, built per use).
pub struct SqlLedgerStore {
    sql: SqlStorage,
}

impl SqlLedgerStore {
    pub fn new(sql: SqlStorage) -> Self {
        SqlLedgerStore { sql }
    }
}

fn sale_state_text(state: SaleState) -> &'static str {
    match state {
        SaleState::Closed => "CLOSED",
        SaleState::Open => "OPEN",
        SaleState::Cancelled => "CANCELLED",
    }
}

fn class_status_text(status: ClassStatus) -> &'static str {
    match status {
        ClassStatus::Active => "ACTIVE",
        ClassStatus::Paused => "PAUSED",
    }
}

/// Serde's spelling of a unit enum value (the same text the CHECK constraints list).
fn enum_text<T: serde::Serialize>(value: &T) -> SqlResult<SqlStorageValue> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(text(s)),
        Ok(other) => Err(StoreError::Malformed(format!(
            "expected a text enum, got {other}"
        ))),
        Err(e) => Err(StoreError::Malformed(e.to_string())),
    }
}

#[derive(Deserialize)]
struct Quantity {
    quantity: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expiry {
    expires_at: Option<Millis>,
}

fn holds_from(rows: Vec<HoldRow>) -> SqlResult<Vec<Hold>> {
    rows.into_iter().map(Hold::try_from).collect()
}

impl LedgerStore for SqlLedgerStore {
    fn settings(&self) -> Result<Option<SaleSettings>, StoreError> {
        first(
            &self.sql,
            "SELECT sale_state AS state, max_tickets_per_user AS maxTicketsPerUser, \
             sale_starts_at AS saleStartsAt, sale_ends_at AS saleEndsAt \
             FROM ledger_settings WHERE id = 1",
            Vec::new(),
        )
    }

    fn class(&self, ticket_class_id: &str) -> Result<Option<TicketClass>, StoreError> {
        first(
            &self.sql,
            &format!("SELECT {CLASS_COLUMNS} FROM ticket_classes WHERE id = ?"),
            vec![text(ticket_class_id)],
        )
    }

    fn classes(&self) -> Result<Vec<TicketClass>, StoreError> {
        // Every buyer's page asks for this: one JSON document, not a crossing per field.
        document(&self.sql, &ALL_CLASSES, Vec::new())
    }

    fn hold(&self, order_id: &str) -> Result<Option<Hold>, StoreError> {
        let found: Option<HoldRow> = first(
            &self.sql,
            &format!("SELECT {HOLD_COLUMNS} FROM holds WHERE order_id = ?"),
            vec![text(order_id)],
        )?;
        found.map(Hold::try_from).transpose()
    }

    fn user_committed_quantity(&self, user_id: &str) -> Result<u64, StoreError> {
        let sum: Option<Quantity> = first(
            &self.sql,
            "SELECT COALESCE(SUM(quantity), 0) AS quantity FROM holds \
             WHERE user_id = ? AND state IN ('ACTIVE', 'CONFIRMED') AND returned_at IS NULL",
            vec![text(user_id)],
        )?;
        Ok(sum.map_or(0, |s| s.quantity))
    }

    fn due_holds(&self, now: Millis, limit: usize) -> Result<Vec<Hold>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX).min(1_000_000);
        holds_from(rows(
            &self.sql,
            &format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE state = 'ACTIVE' AND expires_at <= ? \
                 ORDER BY expires_at, order_id LIMIT ?"
            ),
            vec![int(now)?, int(limit)?],
        )?)
    }

    fn next_expiry(&self) -> Result<Option<Millis>, StoreError> {
        let found: Option<Expiry> = first(
            &self.sql,
            "SELECT MIN(expires_at) AS expiresAt FROM holds WHERE state = 'ACTIVE'",
            Vec::new(),
        )?;
        Ok(found.and_then(|e| e.expires_at))
    }

    fn reserve_reads(
        &self,
        order_id: &str,
        user_id: &str,
        ticket_class_ids: &[&str],
    ) -> Result<ReserveReads, StoreError> {
        let ids = serde_json::to_string(ticket_class_ids)
            .map_err(|e| StoreError::Malformed(format!("ticket class ids: {e}")))?;
        let found: ReserveDocument = document(
            &self.sql,
            &RESERVE_READS,
            vec![text(order_id), text(user_id), text(ids)],
        )?;
        Ok(ReserveReads {
            hold: found.hold.map(Hold::try_from).transpose()?,
            settings: found.settings,
            user_committed_quantity: found.user_committed_quantity,
            classes: found.classes,
        })
    }

    fn hold_with_classes(&self, order_id: &str) -> Result<Option<HoldWithClasses>, StoreError> {
        let found: HoldDocument = document(&self.sql, &HOLD_WITH_CLASSES, vec![text(order_id)])?;
        let Some(row) = found.hold else {
            return Ok(None);
        };
        Ok(Some(HoldWithClasses {
            hold: Hold::try_from(row)?,
            classes: found.classes,
        }))
    }

    fn active_hold_count(&self) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Count {
            n: u64,
        }
        let found: Option<Count> = first(
            &self.sql,
            "SELECT COUNT(*) AS n FROM holds WHERE state = 'ACTIVE'",
            Vec::new(),
        )?;
        Ok(found.map_or(0, |c| c.n))
    }

    fn commit(&mut self, changes: &LedgerChanges) -> Result<(), StoreError> {
        if let Some(settings) = &changes.settings {
            exec(
                &self.sql,
                "INSERT INTO ledger_settings (id, sale_state, max_tickets_per_user, \
                 sale_starts_at, sale_ends_at) VALUES (1, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET sale_state = excluded.sale_state, \
                 max_tickets_per_user = excluded.max_tickets_per_user, \
                 sale_starts_at = excluded.sale_starts_at, sale_ends_at = excluded.sale_ends_at",
                vec![
                    text(sale_state_text(settings.state)),
                    opt_int(settings.max_tickets_per_user.map(i64::from))?,
                    opt_int(settings.sale_starts_at)?,
                    opt_int(settings.sale_ends_at)?,
                ],
            )?;
        }
        for class in &changes.classes {
            exec(
                &self.sql,
                "INSERT INTO ticket_classes (id, total, reserved, sold, status, sale_start_at, \
                 sale_end_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
                 total = excluded.total, reserved = excluded.reserved, sold = excluded.sold, \
                 status = excluded.status, sale_start_at = excluded.sale_start_at, \
                 sale_end_at = excluded.sale_end_at",
                vec![
                    text(class.id.as_str()),
                    int(i64::from(class.total))?,
                    int(i64::from(class.reserved))?,
                    int(i64::from(class.sold))?,
                    text(class_status_text(class.status)),
                    opt_int(class.sale_start_at)?,
                    opt_int(class.sale_end_at)?,
                ],
            )?;
        }
        for hold in &changes.holds {
            let row = HoldRow::try_from(hold)?;
            exec(
                &self.sql,
                "INSERT INTO holds (order_id, user_id, items_json, quantity, state, created_at, \
                 expires_at, updated_at, refusal_reason, refused_at, returned_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET \
                 state = excluded.state, updated_at = excluded.updated_at, \
                 refusal_reason = excluded.refusal_reason, refused_at = excluded.refused_at, \
                 returned_at = excluded.returned_at",
                vec![
                    text(row.order_id),
                    text(row.user_id),
                    text(row.items_json),
                    uint(row.quantity)?,
                    enum_text(&row.state)?,
                    int(row.created_at)?,
                    int(row.expires_at)?,
                    int(row.updated_at)?,
                    match &row.refusal_reason {
                        Some(reason) => enum_text(reason)?,
                        None => opt_text(None::<String>),
                    },
                    opt_int(row.refused_at)?,
                    opt_int(row.returned_at)?,
                ],
            )?;
        }
        Ok(())
    }
}
