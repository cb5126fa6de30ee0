//! Where the waitroom keeps its rows: the [`WaitroomStore`] trait (each method's SQL documented)
//! and the SQLite schema the Durable Object's store transcribes.

use super::*;

/// SQLite DDL for the Durable Object (idempotent: run at object start).
///
/// Integers that are `u64` in Rust (seqs, counters, the seed) are stored as SQLite INTEGER; the
/// seed may exceed `i64::MAX` and is stored as its two's-complement bit pattern (`as i64`, read
/// back `as u64`). Times are unix ms. Booleans are 0/1.
pub const WAITROOM_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS waitroom_config (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  max_concurrent_checkouts INTEGER NOT NULL,
  checkout_ttl_seconds INTEGER NOT NULL,
  admission_batch INTEGER NOT NULL,
  idle_timeout_seconds INTEGER NOT NULL,
  sale_starts_at INTEGER NOT NULL,
  sale_ends_at INTEGER NOT NULL,
  cancelled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS waitroom_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  event_id TEXT NOT NULL,
  shuffle_seed INTEGER NOT NULL,
  next_seq INTEGER NOT NULL,
  next_join_no INTEGER NOT NULL,
  queued INTEGER NOT NULL,
  prequeued INTEGER NOT NULL,
  slots_in_use INTEGER NOT NULL,
  sale_opened INTEGER NOT NULL,
  closed_reason TEXT,
  last_tick_at INTEGER,
  last_admission_at INTEGER,
  admission_rate REAL
);
CREATE TABLE IF NOT EXISTS waitroom_session (
  session_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  join_no INTEGER NOT NULL,
  seq INTEGER,
  status TEXT NOT NULL CHECK (status IN ('QUEUED','ADMITTED','COMPLETED','EXPIRED','LEFT')),
  joined_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  admitted_at INTEGER,
  checkout_expires_at INTEGER,
  order_id TEXT,
  ended_at INTEGER,
  end_reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS waitroom_session_join_no ON waitroom_session (join_no);
CREATE INDEX IF NOT EXISTS waitroom_session_user ON waitroom_session (user_id, join_no);
CREATE UNIQUE INDEX IF NOT EXISTS waitroom_session_order ON waitroom_session (order_id)
  WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS waitroom_session_queue ON waitroom_session (seq)
  WHERE status = 'QUEUED' AND seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS waitroom_session_prequeue ON waitroom_session (join_no)
  WHERE status = 'QUEUED' AND seq IS NULL;
CREATE INDEX IF NOT EXISTS waitroom_session_checkout_expiry
  ON waitroom_session (checkout_expires_at)
  WHERE status = 'ADMITTED' AND order_id IS NULL;
CREATE INDEX IF NOT EXISTS waitroom_session_admitted
  ON waitroom_session (admitted_at) WHERE admitted_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS waitroom_fenwick (
  node INTEGER PRIMARY KEY,
  departed INTEGER NOT NULL
);
";

/// The waitroom's storage: each method is one indexed statement (given in its doc).
///
/// `<session columns>` is `session_id, user_id, join_no, seq, status, joined_at, last_seen_at,
/// admitted_at, checkout_expires_at, order_id, ended_at, end_reason`. The Fenwick nodes come
/// from the [`FenwickNodes`] supertrait (table `waitroom_fenwick`).
pub trait WaitroomStore: FenwickNodes {
    /// `SELECT max_concurrent_checkouts, checkout_ttl_seconds, admission_batch,
    /// idle_timeout_seconds, sale_starts_at, sale_ends_at, cancelled
    /// FROM waitroom_config WHERE id = 1`
    fn load_config(&mut self) -> Result<Option<WaitroomConfig>, Self::Error>;

    /// `INSERT INTO waitroom_config (id, max_concurrent_checkouts, ..., cancelled)
    /// VALUES (1, ?1, ..., ?7) ON CONFLICT(id) DO UPDATE SET
    /// max_concurrent_checkouts = excluded.max_concurrent_checkouts, ...`
    fn save_config(&mut self, config: &WaitroomConfig) -> Result<(), Self::Error>;

    /// `SELECT event_id, shuffle_seed, next_seq, next_join_no, queued, prequeued, slots_in_use,
    /// sale_opened, closed_reason, last_tick_at, last_admission_at, admission_rate
    /// FROM waitroom_state WHERE id = 1`
    fn load_state(&mut self) -> Result<Option<WaitroomState>, Self::Error>;

    /// `INSERT INTO waitroom_state (id, event_id, ...) VALUES (1, ?1, ...)
    /// ON CONFLICT(id) DO UPDATE SET event_id = excluded.event_id, ...`
    fn save_state(&mut self, state: &WaitroomState) -> Result<(), Self::Error>;

    /// `SELECT <session columns> FROM waitroom_session WHERE session_id = ?1`
    fn session(&mut self, session_id: &str) -> Result<Option<WaitroomSession>, Self::Error>;

    /// The user's most recent session (index `waitroom_session_user`):
    /// `SELECT <session columns> FROM waitroom_session WHERE user_id = ?1
    /// ORDER BY join_no DESC LIMIT 1`
    fn latest_session_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<WaitroomSession>, Self::Error>;

    /// (index `waitroom_session_order`):
    /// `SELECT <session columns> FROM waitroom_session WHERE order_id = ?1`
    fn session_by_order(&mut self, order_id: &str) -> Result<Option<WaitroomSession>, Self::Error>;

    /// Insert or update by `session_id`:
    /// `INSERT INTO waitroom_session (<session columns>) VALUES (?1, ..., ?12)
    /// ON CONFLICT(session_id) DO UPDATE SET seq = excluded.seq, status = excluded.status,
    /// last_seen_at = excluded.last_seen_at, admitted_at = excluded.admitted_at,
    /// checkout_expires_at = excluded.checkout_expires_at, order_id = excluded.order_id,
    /// ended_at = excluded.ended_at, end_reason = excluded.end_reason`
    fn put_session(&mut self, session: &WaitroomSession) -> Result<(), Self::Error>;

    /// The lowest-seq queued sessions after `after_seq`, in seq order (index
    /// `waitroom_session_queue`):
    /// `SELECT <session columns> FROM waitroom_session
    /// WHERE status = 'QUEUED' AND seq IS NOT NULL AND seq > ?1 ORDER BY seq LIMIT ?2`
    fn queue_head(
        &mut self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error>;

    /// The pre-queue in join order (index `waitroom_session_prequeue`):
    /// `SELECT <session columns> FROM waitroom_session
    /// WHERE status = 'QUEUED' AND seq IS NULL ORDER BY join_no LIMIT ?1`
    fn prequeued_sessions(&mut self, limit: u64) -> Result<Vec<WaitroomSession>, Self::Error>;

    /// The whole pre-queue's join numbers in join order, for the shuffle at sale start
    /// (covered by index `waitroom_session_prequeue`):
    /// `SELECT join_no FROM waitroom_session WHERE status = 'QUEUED' AND seq IS NULL
    /// ORDER BY join_no`
    fn prequeue_join_numbers(&mut self) -> Result<Vec<u64>, Self::Error>;

    /// Places pre-queued sessions (index `waitroom_session_join_no`), `?1` being the JSON array
    /// `[[join_no, seq], ...]` (at most [`SHUFFLE_WRITE_CHUNK`] pairs):
    /// `UPDATE waitroom_session SET seq = json_extract(a.value, '$[1]')
    /// FROM json_each(?1) AS a WHERE waitroom_session.join_no = json_extract(a.value, '$[0]')`
    fn assign_seqs(&mut self, assignments: &[SeqAssignment]) -> Result<(), Self::Error>;

    /// Admitted sessions with no order whose token has expired (index
    /// `waitroom_session_checkout_expiry`):
    /// `SELECT <session columns> FROM waitroom_session
    /// WHERE status = 'ADMITTED' AND order_id IS NULL AND checkout_expires_at <= ?1
    /// ORDER BY checkout_expires_at LIMIT ?2`
    fn overdue_checkouts(
        &mut self,
        now: i64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error>;

    /// When the next unused checkout expires (same index):
    /// `SELECT checkout_expires_at FROM waitroom_session
    /// WHERE status = 'ADMITTED' AND order_id IS NULL ORDER BY checkout_expires_at LIMIT 1`
    fn earliest_checkout_expiry(&mut self) -> Result<Option<i64>, Self::Error>;

    /// Fans admitted at or after `since` (the public status's admissions of the last minute):
    /// `SELECT COUNT(*) FROM waitroom_session WHERE admitted_at >= ?1` (through
    /// `waitroom_session_admitted`, so it reads one minute's admissions, not the whole room).
    fn admitted_since(&mut self, since: i64) -> Result<u64, Self::Error>;
}

/// A borrowed store is a store: the object's core borrows the store it owns for each command.
impl<S: WaitroomStore + ?Sized> WaitroomStore for &mut S {
    fn admitted_since(&mut self, since: i64) -> Result<u64, Self::Error> {
        (**self).admitted_since(since)
    }
    fn load_config(&mut self) -> Result<Option<WaitroomConfig>, Self::Error> {
        (**self).load_config()
    }
    fn save_config(&mut self, config: &WaitroomConfig) -> Result<(), Self::Error> {
        (**self).save_config(config)
    }
    fn load_state(&mut self) -> Result<Option<WaitroomState>, Self::Error> {
        (**self).load_state()
    }
    fn save_state(&mut self, state: &WaitroomState) -> Result<(), Self::Error> {
        (**self).save_state(state)
    }
    fn session(&mut self, session_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        (**self).session(session_id)
    }
    fn latest_session_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<WaitroomSession>, Self::Error> {
        (**self).latest_session_of_user(user_id)
    }
    fn session_by_order(&mut self, order_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        (**self).session_by_order(order_id)
    }
    fn put_session(&mut self, session: &WaitroomSession) -> Result<(), Self::Error> {
        (**self).put_session(session)
    }
    fn queue_head(
        &mut self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        (**self).queue_head(after_seq, limit)
    }
    fn prequeued_sessions(&mut self, limit: u64) -> Result<Vec<WaitroomSession>, Self::Error> {
        (**self).prequeued_sessions(limit)
    }
    fn prequeue_join_numbers(&mut self) -> Result<Vec<u64>, Self::Error> {
        (**self).prequeue_join_numbers()
    }
    fn assign_seqs(&mut self, assignments: &[SeqAssignment]) -> Result<(), Self::Error> {
        (**self).assign_seqs(assignments)
    }
    fn overdue_checkouts(
        &mut self,
        now: i64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        (**self).overdue_checkouts(now, limit)
    }
    fn earliest_checkout_expiry(&mut self) -> Result<Option<i64>, Self::Error> {
        (**self).earliest_checkout_expiry()
    }
}
