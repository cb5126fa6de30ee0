//! `SqlHubStore`: the object's own rows on its SQLite (the synced event setup, named values,
//! the outbox's writing side), and the one place that creates every table the object uses.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use worker::SqlStorage;

use super::hub_store::{HubMetaStore, OutboxStore};
use super::outbox::OutboxMessage;
use super::protocol::EventSetup;
use super::sql_outbox;
use super::sqlite::{add_missing_columns, document, exec, first, int, run_script, text, SqlResult};
use crate::domain::admission::hub::{AdmissionHub, Checkout};
use crate::domain::ledger::{StoreError, LEDGER_ADDED_COLUMNS, LEDGER_SCHEMA};
use crate::domain::waitroom::WAITROOM_SCHEMA;

/// The object's own bookkeeping: the synced event setup and small named values.
pub const HUB_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS hub_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_event (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  event_id TEXT NOT NULL,
  setup_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hub_admission (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  state_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hub_checkout (
  user_id TEXT PRIMARY KEY,
  checkout_json TEXT NOT NULL
);
";

/// `hub_meta` key: the waitroom's last `NextWakeUp` (absent: nothing due).
const WAITROOM_WAKE_KEY: &str = "waitroom_wake_at";

/// Creates every table the object uses (idempotent; run when the object starts).
pub fn ensure_schema(sql: &SqlStorage) -> SqlResult<()> {
    run_script(sql, LEDGER_SCHEMA)?;
    add_missing_columns(sql, LEDGER_ADDED_COLUMNS)?;
    run_script(sql, WAITROOM_SCHEMA)?;
    run_script(sql, sql_outbox::OUTBOX_SCHEMA)?;
    run_script(sql, HUB_SCHEMA)
}

/// The admission state as this instance last read or wrote it: the object is its storage's
/// only writer, so the copy stays true as long as every save updates it and every rolled-back
/// transaction drops it ([`forget_admission`]). Saves a read of up to 10,000 checkout rows
/// per operation.
pub type AdmissionCache = Rc<RefCell<Option<AdmissionHub>>>;

/// Drops the cached admission state (after a transaction that may have changed it rolled back).
pub fn forget_admission(cache: &AdmissionCache) {
    cache.borrow_mut().take();
}

/// The object's `hub_event`, `hub_meta`, `hub_admission`/`hub_checkout` and `hub_outbox`
/// tables (a cheap JS handle).
pub struct SqlHubStore {
    sql: SqlStorage,
    cache: Option<AdmissionCache>,
}

impl SqlHubStore {
    pub fn new(sql: SqlStorage) -> Self {
        SqlHubStore { sql, cache: None }
    }

    /// A store that reads and keeps the admission state through `cache`.
    pub fn cached(sql: SqlStorage, cache: AdmissionCache) -> Self {
        SqlHubStore {
            sql,
            cache: Some(cache),
        }
    }
}

impl HubMetaStore for SqlHubStore {
    fn setup(&self) -> Result<Option<EventSetup>, StoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            setup_json: String,
        }
        let row: Option<Row> = first(
            &self.sql,
            "SELECT setup_json AS setupJson FROM hub_event WHERE id = 1",
            Vec::new(),
        )?;
        row.map(|r| {
            serde_json::from_str(&r.setup_json)
                .map_err(|e| StoreError::Malformed(format!("event setup: {e}")))
        })
        .transpose()
    }

    fn save_setup(&mut self, setup: &EventSetup, now: i64) -> Result<(), StoreError> {
        let setup_json = serde_json::to_string(setup)
            .map_err(|e| StoreError::Malformed(format!("event setup: {e}")))?;
        exec(
            &self.sql,
            "INSERT INTO hub_event (id, event_id, setup_json, updated_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, \
             setup_json = excluded.setup_json, updated_at = excluded.updated_at",
            vec![text(setup.event_id.as_str()), text(setup_json), int(now)?],
        )?;
        Ok(())
    }

    fn waitroom_wake_at(&self) -> Result<Option<i64>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            value: i64,
        }
        let row: Option<Row> = first(
            &self.sql,
            "SELECT value FROM hub_meta WHERE key = ?",
            vec![text(WAITROOM_WAKE_KEY)],
        )?;
        Ok(row.map(|r| r.value))
    }

    fn set_waitroom_wake_at(&mut self, at: Option<i64>) -> Result<(), StoreError> {
        match at {
            Some(at) => exec(
                &self.sql,
                "INSERT INTO hub_meta (key, value) VALUES (?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vec![text(WAITROOM_WAKE_KEY), int(at)?],
            ),
            None => exec(
                &self.sql,
                "DELETE FROM hub_meta WHERE key = ?",
                vec![text(WAITROOM_WAKE_KEY)],
            ),
        }?;
        Ok(())
    }

    fn admission(&self) -> Result<Option<AdmissionHub>, StoreError> {
        if let Some(hub) = self.cache.as_ref().and_then(|c| c.borrow().clone()) {
            return Ok(Some(hub));
        }
        let hub = self.admission_row()?;
        if let (Some(cache), Some(hub)) = (&self.cache, &hub) {
            *cache.borrow_mut() = Some(hub.clone());
        }
        Ok(hub)
    }

    fn save_admission(&mut self, hub: &mut AdmissionHub) -> Result<(), StoreError> {
        let state_json = serde_json::to_string(&*hub)
            .map_err(|e| StoreError::Malformed(format!("admission state: {e}")))?;
        exec(
            &self.sql,
            "INSERT INTO hub_admission (id, state_json) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET state_json = excluded.state_json",
            vec![text(state_json)],
        )?;
        for (user_id, checkout) in hub.take_changed_checkouts() {
            match checkout {
                Some(checkout) => {
                    let checkout_json = serde_json::to_string(&checkout)
                        .map_err(|e| StoreError::Malformed(format!("checkout: {e}")))?;
                    exec(
                        &self.sql,
                        "INSERT INTO hub_checkout (user_id, checkout_json) VALUES (?, ?) \
                         ON CONFLICT (user_id) DO UPDATE SET checkout_json = excluded.checkout_json",
                        vec![text(user_id), text(checkout_json)],
                    )?;
                }
                None => {
                    exec(
                        &self.sql,
                        "DELETE FROM hub_checkout WHERE user_id = ?",
                        vec![text(user_id)],
                    )?;
                }
            }
        }
        if let Some(cache) = &self.cache {
            *cache.borrow_mut() = Some(hub.clone());
        }
        Ok(())
    }
}

impl SqlHubStore {
    fn admission_row(&self) -> Result<Option<AdmissionHub>, StoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            state_json: String,
        }
        let row: Option<Row> = first(
            &self.sql,
            "SELECT state_json AS stateJson FROM hub_admission WHERE id = 1",
            Vec::new(),
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut hub: AdmissionHub = serde_json::from_str(&row.state_json)
            .map_err(|e| StoreError::Malformed(format!("admission state: {e}")))?;
        // Every checkout in one JSON text built inside SQLite: one crossing, not one per row.
        let checkouts: Vec<(String, Checkout)> = document(
            &self.sql,
            "SELECT COALESCE(json_group_array(json_array(user_id, json(checkout_json))), '[]') \
             FROM hub_checkout",
            Vec::new(),
        )?;
        hub.restore_checkouts(checkouts);
        Ok(Some(hub))
    }
}

impl OutboxStore for SqlHubStore {
    fn insert(
        &mut self,
        message: &OutboxMessage,
        created_at: i64,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        sql_outbox::insert(&self.sql, message, created_at, next_attempt_at)
    }

    fn next_attempt_at(&self) -> Result<Option<i64>, StoreError> {
        sql_outbox::next_attempt_at(&self.sql)
    }

    fn backlog(&self) -> Result<u64, StoreError> {
        sql_outbox::backlog(&self.sql)
    }
}
