//! The object-local outbox table: messages are inserted in the same transaction as the state
//! change they report, then sent after commit; rows stay until a queue accepted them.

use serde::Deserialize;
use worker::SqlStorage;

use super::outbox::{retry_delay_ms, Destination, OutboxMessage};
use super::sqlite::{exec, first, int, rows, text, SqlResult};
use crate::domain::ledger::StoreError;

pub const OUTBOX_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS hub_outbox (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  queue TEXT NOT NULL CHECK (queue IN ('DOMAIN_EVENTS', 'PAYMENT_EVENTS')),
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hub_outbox_due ON hub_outbox (next_attempt_at);
";

/// A stored message waiting for its queue.
#[derive(Debug, Clone, Deserialize)]
pub struct PendingMessage {
    pub seq: i64,
    pub queue: String,
    pub body: String,
}

impl PendingMessage {
    pub fn destination(&self) -> Option<Destination> {
        Destination::parse(&self.queue)
    }
}

/// Writes one message (call inside the transaction that makes the change it reports).
pub fn insert(
    sql: &SqlStorage,
    message: &OutboxMessage,
    created_at: i64,
    next_attempt_at: i64,
) -> SqlResult<()> {
    let body = serde_json::to_string(&message.body)
        .map_err(|e| StoreError::Malformed(format!("outbox body: {e}")))?;
    exec(
        sql,
        "INSERT INTO hub_outbox (id, queue, body, created_at, attempts, next_attempt_at) \
         VALUES (?, ?, ?, ?, 0, ?)",
        vec![
            text(message.id.as_str()),
            text(message.destination.binding()),
            text(body),
            int(created_at)?,
            int(next_attempt_at)?,
        ],
    )?;
    Ok(())
}

/// Messages to send now, oldest first: never tried yet, or whose retry time has come.
pub fn due(sql: &SqlStorage, now: i64, limit: usize) -> SqlResult<Vec<PendingMessage>> {
    rows(
        sql,
        "SELECT seq, queue, body FROM hub_outbox \
         WHERE attempts = 0 OR next_attempt_at <= ? ORDER BY seq LIMIT ?",
        vec![int(now)?, int(i64::try_from(limit).unwrap_or(1_000))?],
    )
}

fn seq_list(seqs: &[i64]) -> SqlResult<String> {
    serde_json::to_string(seqs).map_err(|e| StoreError::Malformed(e.to_string()))
}

/// The queue accepted these: forget them.
pub fn delete(sql: &SqlStorage, seqs: &[i64]) -> SqlResult<()> {
    exec(
        sql,
        "DELETE FROM hub_outbox WHERE seq IN (SELECT value FROM json_each(?))",
        vec![text(seq_list(seqs)?)],
    )?;
    Ok(())
}

/// The queue refused these: count the attempt and back off.
pub fn postpone(sql: &SqlStorage, seqs: &[i64], now: i64) -> SqlResult<()> {
    #[derive(Deserialize)]
    struct Attempts {
        attempts: u32,
    }
    for seq in seqs {
        let current: Option<Attempts> = first(
            sql,
            "SELECT attempts FROM hub_outbox WHERE seq = ?",
            vec![int(*seq)?],
        )?;
        let attempts = current.map_or(0, |c| c.attempts).saturating_add(1);
        exec(
            sql,
            "UPDATE hub_outbox SET attempts = ?, next_attempt_at = ? WHERE seq = ?",
            vec![
                int(i64::from(attempts))?,
                int(now.saturating_add(retry_delay_ms(attempts)))?,
                int(*seq)?,
            ],
        )?;
    }
    Ok(())
}

/// When the alarm must retry the outbox.
pub fn next_attempt_at(sql: &SqlStorage) -> SqlResult<Option<i64>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Next {
        next_attempt_at: Option<i64>,
    }
    let found: Option<Next> = first(
        sql,
        "SELECT MIN(next_attempt_at) AS nextAttemptAt FROM hub_outbox",
        Vec::new(),
    )?;
    Ok(found.and_then(|n| n.next_attempt_at))
}

pub fn backlog(sql: &SqlStorage) -> SqlResult<u64> {
    #[derive(Deserialize)]
    struct Count {
        n: u64,
    }
    let found: Option<Count> = first(sql, "SELECT COUNT(*) AS n FROM hub_outbox", Vec::new())?;
    Ok(found.map_or(0, |c| c.n))
}
