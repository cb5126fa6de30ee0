//! A queue shard's rows on its object's SQLite: the meta row, one row per fan (their latest
//! stay, as `domain::admission::shard::FanRecord` JSON), and the fan events waiting to go out
//! in batches. The object keeps a `ShardQueue` in memory as a cache of exactly these rows: it
//! is rebuilt from them on wake-up, and every change is written here before it is answered.

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use super::outbox::FanEvent;
use super::sqlite::{
    document, exec, first, int, opt_text, rows, run_script, text, uint, SqlResult,
};
use crate::domain::admission::shard::{FanRecord, ShardChanges, ShardMeta, ShardQueue};
use crate::domain::ledger::StoreError;

pub const SHARD_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS shard_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  meta_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shard_fan (
  user_id TEXT PRIMARY KEY,
  record_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shard_event (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  user_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  arrival_key TEXT,
  tick_id INTEGER
);
CREATE VIEW IF NOT EXISTS shard_fan_change AS
  SELECT NULL AS user_id, NULL AS record_json, NULL AS kind, NULL AS session_id,
         NULL AS at, NULL AS arrival_key, NULL AS tick_id WHERE 0;
";

/// One fan's change with the event it causes, written by one statement into the view above
/// (a join: the fan's row and its QUEUE_JOINED), so the hottest write of a sale needs neither
/// a second statement nor an explicit transaction: a statement and the trigger it fires are
/// atomic in SQLite. Its own statement: `run_script` splits on `;`.
const FAN_CHANGE_TRIGGER: &str = "\
CREATE TRIGGER IF NOT EXISTS shard_fan_change_insert INSTEAD OF INSERT ON shard_fan_change
BEGIN
  INSERT OR REPLACE INTO shard_fan (user_id, record_json) VALUES (NEW.user_id, NEW.record_json);
  INSERT INTO shard_event (kind, user_id, session_id, at, arrival_key, tick_id)
    SELECT NEW.kind, NEW.user_id, NEW.session_id, NEW.at, NEW.arrival_key, NEW.tick_id
     WHERE NEW.kind IS NOT NULL;
END";

pub fn ensure_schema(sql: &SqlStorage) -> SqlResult<()> {
    run_script(sql, SHARD_SCHEMA)?;
    exec(sql, FAN_CHANGE_TRIGGER, Vec::new())?;
    Ok(())
}

fn malformed(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(format!("{what}: {error}"))
}

/// The shard as stored, or `None` before its first configuration or join.
pub fn load(sql: &SqlStorage) -> SqlResult<Option<ShardQueue>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MetaRow {
        meta_json: String,
    }
    let Some(row) = first::<MetaRow>(
        sql,
        "SELECT meta_json AS metaJson FROM shard_meta WHERE id = 1",
        Vec::new(),
    )?
    else {
        return Ok(None);
    };
    let meta: ShardMeta =
        serde_json::from_str(&row.meta_json).map_err(|e| malformed("shard meta", e))?;
    // Every fan in one JSON text built inside SQLite: one crossing, not one per row.
    let fans: Vec<FanRecord> = document(
        sql,
        "SELECT COALESCE(json_group_array(json(record_json)), '[]') FROM shard_fan",
        Vec::new(),
    )?;
    Ok(Some(ShardQueue::restore(meta, fans)))
}

/// Writes what one operation changed (the caller runs it inside the operation's transaction).
pub fn write(sql: &SqlStorage, changes: &ShardChanges) -> SqlResult<()> {
    if let Some(meta) = &changes.meta {
        let meta_json = serde_json::to_string(meta).map_err(|e| malformed("shard meta", e))?;
        exec(
            sql,
            "INSERT INTO shard_meta (id, meta_json) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET meta_json = excluded.meta_json",
            vec![text(meta_json)],
        )?;
    }
    for (user_id, record) in &changes.fans {
        match record {
            Some(record) => {
                let record_json =
                    serde_json::to_string(record).map_err(|e| malformed("fan record", e))?;
                exec(
                    sql,
                    "INSERT INTO shard_fan (user_id, record_json) VALUES (?, ?) \
                     ON CONFLICT (user_id) DO UPDATE SET record_json = excluded.record_json",
                    vec![text(user_id.as_str()), text(record_json)],
                )?;
            }
            None => {
                exec(
                    sql,
                    "DELETE FROM shard_fan WHERE user_id = ?",
                    vec![text(user_id.as_str())],
                )?;
            }
        }
    }
    Ok(())
}

/// An event's columns after `user_id`: kind, session, time, arrival key, tick (all `NULL`
/// without an event).
fn event_values(event: Option<(&str, &FanEvent)>) -> SqlResult<Vec<SqlStorageValue>> {
    let Some((kind, fan)) = event else {
        return Ok(vec![SqlStorageValue::Null; 5]);
    };
    Ok(vec![
        text(kind),
        text(fan.session_id.as_str()),
        int(fan.at)?,
        opt_text(fan.arrival_key.clone()),
        match fan.tick_id {
            Some(tick) => uint(tick)?,
            None => SqlStorageValue::Null,
        },
    ])
}

/// Writes one fan's new record and, if any, the one event it causes for that fan, in one
/// statement (atomic on its own: no transaction needed).
pub fn write_fan_change(
    sql: &SqlStorage,
    user_id: &str,
    record: &FanRecord,
    event: Option<(&str, &FanEvent)>,
) -> SqlResult<()> {
    let record_json = serde_json::to_string(record).map_err(|e| malformed("fan record", e))?;
    let mut values = vec![text(user_id), text(record_json)];
    values.extend(event_values(event)?);
    exec(
        sql,
        "INSERT INTO shard_fan_change \
         (user_id, record_json, kind, session_id, at, arrival_key, tick_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        values,
    )?;
    Ok(())
}

/// Records a fan event for the next batch.
pub fn add_event(sql: &SqlStorage, kind: &str, fan: &FanEvent) -> SqlResult<()> {
    let mut values = vec![text(fan.user_id.as_str())];
    values.extend(event_values(Some((kind, fan)))?);
    exec(
        sql,
        "INSERT INTO shard_event (user_id, kind, session_id, at, arrival_key, tick_id) \
         VALUES (?, ?, ?, ?, ?, ?)",
        values,
    )?;
    Ok(())
}

/// Up to `limit` waiting events of the oldest kind, oldest first, with their last seq.
pub fn next_batch(
    sql: &SqlStorage,
    limit: usize,
) -> SqlResult<Option<(String, i64, Vec<FanEvent>)>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Row {
        seq: i64,
        kind: String,
        user_id: String,
        session_id: String,
        at: i64,
        arrival_key: Option<String>,
        tick_id: Option<u64>,
    }
    let Some(oldest) = first::<Row>(
        sql,
        "SELECT seq, kind, user_id AS userId, session_id AS sessionId, at, \
         arrival_key AS arrivalKey, tick_id AS tickId FROM shard_event ORDER BY seq LIMIT 1",
        Vec::new(),
    )?
    else {
        return Ok(None);
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let batch: Vec<Row> = rows(
        sql,
        "SELECT seq, kind, user_id AS userId, session_id AS sessionId, at, \
         arrival_key AS arrivalKey, tick_id AS tickId FROM shard_event \
         WHERE kind = ? ORDER BY seq LIMIT ?",
        vec![text(oldest.kind.as_str()), int(limit)?],
    )?;
    let last = batch.last().map_or(oldest.seq, |r| r.seq);
    let fans = batch
        .into_iter()
        .map(|r| FanEvent {
            user_id: r.user_id,
            session_id: r.session_id,
            at: r.at,
            arrival_key: r.arrival_key,
            tick_id: r.tick_id,
        })
        .collect();
    Ok(Some((oldest.kind, last, fans)))
}

/// Drops a sent batch: the events of `kind` up to `last_seq`.
pub fn drop_batch(sql: &SqlStorage, kind: &str, last_seq: i64) -> SqlResult<()> {
    exec(
        sql,
        "DELETE FROM shard_event WHERE kind = ? AND seq <= ?",
        vec![text(kind), int(last_seq)?],
    )?;
    Ok(())
}

/// Whether any event waits to be sent.
pub fn has_events(sql: &SqlStorage) -> SqlResult<bool> {
    #[derive(Deserialize)]
    struct Row {
        present: i64,
    }
    let row: Option<Row> = first(
        sql,
        "SELECT EXISTS (SELECT 1 FROM shard_event) AS present",
        Vec::new(),
    )?;
    Ok(row.is_some_and(|r| r.present != 0))
}
