//! `SqlWaitroomStore`: the waitroom's storage on the object's SQLite, a transcription of the SQL
//! documented on `WaitroomStore` and `FenwickNodes`. Every `Waitroom::apply` runs inside
//! `txn::transaction_sync`, which rolls back whatever a failed command wrote.
//!
//! Values cross the JS boundary as f64: the shuffle seed (a full u64) is therefore written and
//! read as decimal text and cast inside SQLite, booleans are 0/1 numbers, and every other
//! integer is checked to lie within ±2^53 when bound.

use serde::Deserialize;
use worker::SqlStorage;

use super::sqlite::{exec, first, int, opt_int, opt_text, rows, text, uint, SqlResult};
use crate::domain::fenwick::FenwickNodes;
use crate::domain::ledger::StoreError;
use crate::domain::waitroom::{
    ClosedReason, SeqAssignment, WaitroomConfig, WaitroomSession, WaitroomState, WaitroomStore,
};

const SESSION_COLUMNS: &str = "session_id AS sessionId, user_id AS userId, join_no AS joinNo, \
     seq, status, joined_at AS joinedAt, last_seen_at AS lastSeenAt, admitted_at AS admittedAt, \
     checkout_expires_at AS checkoutExpiresAt, order_id AS orderId, ended_at AS endedAt, \
     end_reason AS endReason";

pub struct SqlWaitroomStore {
    sql: SqlStorage,
}

impl SqlWaitroomStore {
    pub fn new(sql: SqlStorage) -> Self {
        SqlWaitroomStore { sql }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigRow {
    max_concurrent_checkouts: u32,
    checkout_ttl_seconds: u32,
    admission_batch: u32,
    idle_timeout_seconds: u32,
    sale_starts_at: i64,
    sale_ends_at: i64,
    cancelled: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateRow {
    event_id: String,
    shuffle_seed: String,
    next_seq: u64,
    next_join_no: u64,
    queued: u64,
    prequeued: u64,
    slots_in_use: u64,
    sale_opened: i64,
    closed_reason: Option<String>,
    last_tick_at: Option<i64>,
    last_admission_at: Option<i64>,
    admission_rate: Option<f64>,
}

#[derive(Deserialize)]
struct Sum {
    total: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinNo {
    join_no: u64,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutExpiry {
    checkout_expires_at: i64,
}

fn json_array<T: serde::Serialize>(values: &T) -> SqlResult<String> {
    serde_json::to_string(values).map_err(|e| StoreError::Malformed(e.to_string()))
}

fn limit(value: u64) -> SqlResult<worker::SqlStorageValue> {
    uint(value.min(1_000_000))
}

impl FenwickNodes for SqlWaitroomStore {
    type Error = StoreError;

    fn sum_nodes(&mut self, nodes: &[u64]) -> Result<i64, Self::Error> {
        let sum: Option<Sum> = first(
            &self.sql,
            "SELECT COALESCE(SUM(departed), 0) AS total FROM waitroom_fenwick \
             WHERE node IN (SELECT value FROM json_each(?))",
            vec![text(json_array(&nodes)?)],
        )?;
        Ok(sum.map_or(0, |s| s.total))
    }

    fn add_to_nodes(&mut self, nodes: &[u64], delta: i64) -> Result<(), Self::Error> {
        exec(
            &self.sql,
            "INSERT INTO waitroom_fenwick (node, departed) \
             SELECT value, ? FROM json_each(?) WHERE true \
             ON CONFLICT(node) DO UPDATE SET departed = departed + excluded.departed",
            vec![int(delta)?, text(json_array(&nodes)?)],
        )?;
        Ok(())
    }
}

impl WaitroomStore for SqlWaitroomStore {
    fn load_config(&mut self) -> Result<Option<WaitroomConfig>, Self::Error> {
        let row: Option<ConfigRow> = first(
            &self.sql,
            "SELECT max_concurrent_checkouts AS maxConcurrentCheckouts, \
             checkout_ttl_seconds AS checkoutTtlSeconds, admission_batch AS admissionBatch, \
             idle_timeout_seconds AS idleTimeoutSeconds, sale_starts_at AS saleStartsAt, \
             sale_ends_at AS saleEndsAt, cancelled FROM waitroom_config WHERE id = 1",
            Vec::new(),
        )?;
        Ok(row.map(|r| WaitroomConfig {
            max_concurrent_checkouts: r.max_concurrent_checkouts,
            checkout_ttl_seconds: r.checkout_ttl_seconds,
            admission_batch: r.admission_batch,
            idle_timeout_seconds: r.idle_timeout_seconds,
            sale_starts_at: r.sale_starts_at,
            sale_ends_at: r.sale_ends_at,
            cancelled: r.cancelled != 0,
        }))
    }

    fn save_config(&mut self, config: &WaitroomConfig) -> Result<(), Self::Error> {
        exec(
            &self.sql,
            "INSERT INTO waitroom_config (id, max_concurrent_checkouts, checkout_ttl_seconds, \
             admission_batch, idle_timeout_seconds, sale_starts_at, sale_ends_at, cancelled) \
             VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET \
             max_concurrent_checkouts = excluded.max_concurrent_checkouts, \
             checkout_ttl_seconds = excluded.checkout_ttl_seconds, \
             admission_batch = excluded.admission_batch, \
             idle_timeout_seconds = excluded.idle_timeout_seconds, \
             sale_starts_at = excluded.sale_starts_at, sale_ends_at = excluded.sale_ends_at, \
             cancelled = excluded.cancelled",
            vec![
                int(i64::from(config.max_concurrent_checkouts))?,
                int(i64::from(config.checkout_ttl_seconds))?,
                int(i64::from(config.admission_batch))?,
                int(i64::from(config.idle_timeout_seconds))?,
                int(config.sale_starts_at)?,
                int(config.sale_ends_at)?,
                int(i64::from(config.cancelled))?,
            ],
        )?;
        Ok(())
    }

    fn load_state(&mut self) -> Result<Option<WaitroomState>, Self::Error> {
        let row: Option<StateRow> = first(
            &self.sql,
            "SELECT event_id AS eventId, CAST(shuffle_seed AS TEXT) AS shuffleSeed, \
             next_seq AS nextSeq, next_join_no AS nextJoinNo, queued, prequeued, \
             slots_in_use AS slotsInUse, sale_opened AS saleOpened, \
             closed_reason AS closedReason, last_tick_at AS lastTickAt, \
             last_admission_at AS lastAdmissionAt, admission_rate AS admissionRate \
             FROM waitroom_state WHERE id = 1",
            Vec::new(),
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        // Stored as the seed's two's-complement i64 (the schema's convention).
        let shuffle_seed = row
            .shuffle_seed
            .parse::<i64>()
            .map_err(|_| StoreError::Malformed("waitroom shuffle seed".into()))?
            as u64;
        let closed = match row.closed_reason.as_deref() {
            None => None,
            Some(reason) => Some(ClosedReason::parse(reason).ok_or_else(|| {
                StoreError::Malformed(format!("waitroom closed reason {reason}"))
            })?),
        };
        Ok(Some(WaitroomState {
            event_id: row.event_id,
            shuffle_seed,
            next_seq: row.next_seq,
            next_join_no: row.next_join_no,
            queued: row.queued,
            prequeued: row.prequeued,
            slots_in_use: row.slots_in_use,
            sale_opened: row.sale_opened != 0,
            closed,
            last_tick_at: row.last_tick_at,
            last_admission_at: row.last_admission_at,
            admission_rate: row.admission_rate,
        }))
    }

    fn save_state(&mut self, state: &WaitroomState) -> Result<(), Self::Error> {
        let rate = match state.admission_rate {
            Some(rate) if rate.is_finite() => worker::SqlStorageValue::Float(rate),
            _ => worker::SqlStorageValue::Null,
        };
        exec(
            &self.sql,
            "INSERT INTO waitroom_state (id, event_id, shuffle_seed, next_seq, next_join_no, \
             queued, prequeued, slots_in_use, sale_opened, closed_reason, last_tick_at, \
             last_admission_at, admission_rate) \
             VALUES (1, ?, CAST(? AS INTEGER), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET event_id = excluded.event_id, \
             shuffle_seed = excluded.shuffle_seed, next_seq = excluded.next_seq, \
             next_join_no = excluded.next_join_no, queued = excluded.queued, \
             prequeued = excluded.prequeued, slots_in_use = excluded.slots_in_use, \
             sale_opened = excluded.sale_opened, closed_reason = excluded.closed_reason, \
             last_tick_at = excluded.last_tick_at, last_admission_at = excluded.last_admission_at, \
             admission_rate = excluded.admission_rate",
            vec![
                text(state.event_id.as_str()),
                text((state.shuffle_seed as i64).to_string()),
                uint(state.next_seq)?,
                uint(state.next_join_no)?,
                uint(state.queued)?,
                uint(state.prequeued)?,
                uint(state.slots_in_use)?,
                int(i64::from(state.sale_opened))?,
                opt_text(state.closed.map(ClosedReason::as_str)),
                opt_int(state.last_tick_at)?,
                opt_int(state.last_admission_at)?,
                rate,
            ],
        )?;
        Ok(())
    }

    fn session(&mut self, session_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        first(
            &self.sql,
            &format!("SELECT {SESSION_COLUMNS} FROM waitroom_session WHERE session_id = ?"),
            vec![text(session_id)],
        )
    }

    fn latest_session_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<WaitroomSession>, Self::Error> {
        first(
            &self.sql,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM waitroom_session WHERE user_id = ? \
                 ORDER BY join_no DESC LIMIT 1"
            ),
            vec![text(user_id)],
        )
    }

    fn session_by_order(&mut self, order_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        first(
            &self.sql,
            &format!("SELECT {SESSION_COLUMNS} FROM waitroom_session WHERE order_id = ?"),
            vec![text(order_id)],
        )
    }

    fn put_session(&mut self, session: &WaitroomSession) -> Result<(), Self::Error> {
        exec(
            &self.sql,
            "INSERT INTO waitroom_session (session_id, user_id, join_no, seq, status, joined_at, \
             last_seen_at, admitted_at, checkout_expires_at, order_id, ended_at, end_reason) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET \
             seq = excluded.seq, status = excluded.status, last_seen_at = excluded.last_seen_at, \
             admitted_at = excluded.admitted_at, \
             checkout_expires_at = excluded.checkout_expires_at, order_id = excluded.order_id, \
             ended_at = excluded.ended_at, end_reason = excluded.end_reason",
            vec![
                text(session.session_id.as_str()),
                text(session.user_id.as_str()),
                uint(session.join_no)?,
                match session.seq {
                    Some(seq) => uint(seq)?,
                    None => worker::SqlStorageValue::Null,
                },
                text(session.status.as_str()),
                int(session.joined_at)?,
                int(session.last_seen_at)?,
                opt_int(session.admitted_at)?,
                opt_int(session.checkout_expires_at)?,
                opt_text(session.order_id.as_deref()),
                opt_int(session.ended_at)?,
                opt_text(session.end_reason.map(|r| r.as_str())),
            ],
        )?;
        Ok(())
    }

    fn queue_head(
        &mut self,
        after_seq: u64,
        max: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        rows(
            &self.sql,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM waitroom_session \
                 WHERE status = 'QUEUED' AND seq IS NOT NULL AND seq > ? ORDER BY seq LIMIT ?"
            ),
            vec![uint(after_seq)?, limit(max)?],
        )
    }

    fn prequeued_sessions(&mut self, max: u64) -> Result<Vec<WaitroomSession>, Self::Error> {
        rows(
            &self.sql,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM waitroom_session \
                 WHERE status = 'QUEUED' AND seq IS NULL ORDER BY join_no LIMIT ?"
            ),
            vec![limit(max)?],
        )
    }

    fn prequeue_join_numbers(&mut self) -> Result<Vec<u64>, Self::Error> {
        let found: Vec<JoinNo> = rows(
            &self.sql,
            "SELECT join_no AS joinNo FROM waitroom_session \
             WHERE status = 'QUEUED' AND seq IS NULL ORDER BY join_no",
            Vec::new(),
        )?;
        Ok(found.into_iter().map(|r| r.join_no).collect())
    }

    fn assign_seqs(&mut self, assignments: &[SeqAssignment]) -> Result<(), Self::Error> {
        let pairs: Vec<[u64; 2]> = assignments.iter().map(|a| [a.join_no, a.seq]).collect();
        exec(
            &self.sql,
            "UPDATE waitroom_session SET seq = json_extract(a.value, '$[1]') \
             FROM json_each(?) AS a \
             WHERE waitroom_session.join_no = json_extract(a.value, '$[0]')",
            vec![text(json_array(&pairs)?)],
        )?;
        Ok(())
    }

    fn overdue_checkouts(
        &mut self,
        now: i64,
        max: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        rows(
            &self.sql,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM waitroom_session \
                 WHERE status = 'ADMITTED' AND order_id IS NULL AND checkout_expires_at <= ? \
                 ORDER BY checkout_expires_at LIMIT ?"
            ),
            vec![int(now)?, limit(max)?],
        )
    }

    fn earliest_checkout_expiry(&mut self) -> Result<Option<i64>, Self::Error> {
        let found: Option<CheckoutExpiry> = first(
            &self.sql,
            "SELECT checkout_expires_at AS checkoutExpiresAt FROM waitroom_session \
             WHERE status = 'ADMITTED' AND order_id IS NULL \
             ORDER BY checkout_expires_at LIMIT 1",
            Vec::new(),
        )?;
        Ok(found.map(|f| f.checkout_expires_at))
    }

    fn admitted_since(&mut self, since: i64) -> Result<u64, Self::Error> {
        let found: Option<Count> = first(
            &self.sql,
            "SELECT COUNT(*) AS n FROM waitroom_session WHERE admitted_at >= ?",
            vec![int(since)?],
        )?;
        Ok(found.map_or(0, |c| c.n.max(0) as u64))
    }
}
