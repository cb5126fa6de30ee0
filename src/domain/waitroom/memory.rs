//! [`MemoryWaitroomStore`]: the waitroom's tables and indexes as ordered maps, with call counting
//! and failure injection, for host tests and tools (not in the Worker's release build).

use super::*;

/// What the memory store was asked: proves cost bounds by counting, not timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Store method calls: storage round trips (SQL statements).
    pub calls: u64,
    pub session_rows_read: u64,
    pub session_rows_written: u64,
    pub fenwick_nodes_read: u64,
    pub fenwick_nodes_written: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStoreError {
    #[error("injected failure in {0}")]
    Injected(&'static str),
    #[error("unique constraint failed: {0}")]
    UniqueViolation(&'static str),
}

/// The tables and the indexes of [`WAITROOM_SCHEMA`] as ordered maps, so every lookup is a
/// range query exactly like its SQL counterpart (no scans that SQLite would not do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryWaitroomData {
    pub(super) config: Option<WaitroomConfig>,
    pub(super) state: Option<WaitroomState>,
    pub(super) sessions: std::collections::BTreeMap<String, WaitroomSession>,
    pub(super) by_join_no: std::collections::BTreeMap<u64, String>,
    pub(super) by_user: std::collections::BTreeMap<(String, u64), String>,
    pub(super) by_order: std::collections::BTreeMap<String, String>,
    pub(super) queue: std::collections::BTreeMap<u64, String>,
    pub(super) prequeue: std::collections::BTreeMap<u64, String>,
    pub(super) unused_checkouts: std::collections::BTreeSet<(i64, String)>,
    pub(super) fenwick: std::collections::BTreeMap<u64, i64>,
}

/// A [`WaitroomStore`] over ordered maps, with call counting and failure injection.
#[derive(Debug, Clone, Default)]
pub struct MemoryWaitroomStore {
    pub data: MemoryWaitroomData,
    pub stats: StoreStats,
    /// A store method of this name fails (like `StorageMode::Break`): e.g. `"queue_head"`.
    pub fail_on: Option<&'static str>,
}

impl MemoryWaitroomStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// All sessions, for tests that compare against a naive model.
    pub fn sessions(&self) -> impl Iterator<Item = &WaitroomSession> {
        self.data.sessions.values()
    }

    fn call(&mut self, method: &'static str) -> Result<(), MemoryStoreError> {
        self.stats.calls += 1;
        if self.fail_on == Some(method) {
            return Err(MemoryStoreError::Injected(method));
        }
        Ok(())
    }

    fn read_rows(&mut self, ids: Vec<String>) -> Vec<WaitroomSession> {
        let rows: Vec<WaitroomSession> = ids
            .iter()
            .filter_map(|id| self.data.sessions.get(id).cloned())
            .collect();
        self.stats.session_rows_read += rows.len() as u64;
        rows
    }

    fn unindex(&mut self, session: &WaitroomSession) {
        let data = &mut self.data;
        if let Some(order) = &session.order_id {
            data.by_order.remove(order);
        }
        if let Some(seq) = session.seq {
            data.queue.remove(&seq);
        }
        data.prequeue.remove(&session.join_no);
        if let Some(at) = session.checkout_expires_at {
            data.unused_checkouts
                .remove(&(at, session.session_id.clone()));
        }
    }

    fn index(&mut self, session: &WaitroomSession) {
        let data = &mut self.data;
        let id = session.session_id.clone();
        data.by_join_no.insert(session.join_no, id.clone());
        data.by_user
            .insert((session.user_id.clone(), session.join_no), id.clone());
        if let Some(order) = &session.order_id {
            data.by_order.insert(order.clone(), id.clone());
        }
        if session.status == SessionStatus::Queued {
            match session.seq {
                Some(seq) => data.queue.insert(seq, id.clone()),
                None => data.prequeue.insert(session.join_no, id.clone()),
            };
        }
        if session.status == SessionStatus::Admitted && session.order_id.is_none() {
            if let Some(at) = session.checkout_expires_at {
                data.unused_checkouts.insert((at, id));
            }
        }
    }

    fn write_row(&mut self, session: WaitroomSession) -> Result<(), MemoryStoreError> {
        let id = session.session_id.clone();
        if let Some(order) = &session.order_id {
            if self
                .data
                .by_order
                .get(order)
                .is_some_and(|other| *other != id)
            {
                return Err(MemoryStoreError::UniqueViolation(
                    "waitroom_session.order_id",
                ));
            }
        }
        if let Some(owner) = self.data.by_join_no.get(&session.join_no) {
            if *owner != id {
                return Err(MemoryStoreError::UniqueViolation(
                    "waitroom_session.join_no",
                ));
            }
        }
        if let Some(old) = self.data.sessions.get(&id).cloned() {
            self.unindex(&old);
        }
        self.index(&session);
        self.data.sessions.insert(id, session);
        self.stats.session_rows_written += 1;
        Ok(())
    }
}

impl FenwickNodes for MemoryWaitroomStore {
    type Error = MemoryStoreError;

    fn sum_nodes(&mut self, nodes: &[u64]) -> Result<i64, Self::Error> {
        self.call("sum_nodes")?;
        self.stats.fenwick_nodes_read += nodes.len() as u64;
        Ok(nodes
            .iter()
            .map(|n| self.data.fenwick.get(n).copied().unwrap_or(0))
            .sum())
    }

    fn add_to_nodes(&mut self, nodes: &[u64], delta: i64) -> Result<(), Self::Error> {
        self.call("add_to_nodes")?;
        self.stats.fenwick_nodes_written += nodes.len() as u64;
        for node in nodes {
            *self.data.fenwick.entry(*node).or_insert(0) += delta;
        }
        Ok(())
    }
}

impl WaitroomStore for MemoryWaitroomStore {
    fn load_config(&mut self) -> Result<Option<WaitroomConfig>, Self::Error> {
        self.call("load_config")?;
        Ok(self.data.config.clone())
    }

    fn save_config(&mut self, config: &WaitroomConfig) -> Result<(), Self::Error> {
        self.call("save_config")?;
        self.data.config = Some(config.clone());
        Ok(())
    }

    fn load_state(&mut self) -> Result<Option<WaitroomState>, Self::Error> {
        self.call("load_state")?;
        Ok(self.data.state.clone())
    }

    fn save_state(&mut self, state: &WaitroomState) -> Result<(), Self::Error> {
        self.call("save_state")?;
        self.data.state = Some(state.clone());
        Ok(())
    }

    fn session(&mut self, session_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        self.call("session")?;
        Ok(self.read_rows(vec![session_id.to_owned()]).pop())
    }

    fn latest_session_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<WaitroomSession>, Self::Error> {
        self.call("latest_session_of_user")?;
        let range = (user_id.to_owned(), 0)..=(user_id.to_owned(), u64::MAX);
        let id = self
            .data
            .by_user
            .range(range)
            .next_back()
            .map(|(_, id)| id.clone());
        Ok(self.read_rows(id.into_iter().collect()).pop())
    }

    fn session_by_order(&mut self, order_id: &str) -> Result<Option<WaitroomSession>, Self::Error> {
        self.call("session_by_order")?;
        let id = self.data.by_order.get(order_id).cloned();
        Ok(self.read_rows(id.into_iter().collect()).pop())
    }

    fn put_session(&mut self, session: &WaitroomSession) -> Result<(), Self::Error> {
        self.call("put_session")?;
        self.write_row(session.clone())
    }

    fn queue_head(
        &mut self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        self.call("queue_head")?;
        let ids = self
            .data
            .queue
            .range(after_seq.saturating_add(1)..)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, id)| id.clone())
            .collect();
        Ok(self.read_rows(ids))
    }

    fn prequeued_sessions(&mut self, limit: u64) -> Result<Vec<WaitroomSession>, Self::Error> {
        self.call("prequeued_sessions")?;
        let ids = self
            .data
            .prequeue
            .values()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(self.read_rows(ids))
    }

    fn prequeue_join_numbers(&mut self) -> Result<Vec<u64>, Self::Error> {
        self.call("prequeue_join_numbers")?;
        let numbers: Vec<u64> = self.data.prequeue.keys().copied().collect();
        self.stats.session_rows_read += numbers.len() as u64;
        Ok(numbers)
    }

    fn assign_seqs(&mut self, assignments: &[SeqAssignment]) -> Result<(), Self::Error> {
        self.call("assign_seqs")?;
        for assignment in assignments {
            let Some(id) = self.data.by_join_no.get(&assignment.join_no).cloned() else {
                continue;
            };
            if let Some(mut session) = self.data.sessions.get(&id).cloned() {
                session.seq = Some(assignment.seq);
                self.write_row(session)?;
            }
        }
        Ok(())
    }

    fn overdue_checkouts(
        &mut self,
        now: i64,
        limit: u64,
    ) -> Result<Vec<WaitroomSession>, Self::Error> {
        self.call("overdue_checkouts")?;
        let ids = self
            .data
            .unused_checkouts
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, id)| id.clone())
            .collect();
        Ok(self.read_rows(ids))
    }

    fn earliest_checkout_expiry(&mut self) -> Result<Option<i64>, Self::Error> {
        self.call("earliest_checkout_expiry")?;
        Ok(self.data.unused_checkouts.first().map(|(at, _)| *at))
    }

    fn admitted_since(&mut self, since: i64) -> Result<u64, Self::Error> {
        self.call("admitted_since")?;
        Ok(self
            .data
            .sessions
            .values()
            .filter(|session| session.admitted_at.is_some_and(|at| at >= since))
            .count() as u64)
    }
}
