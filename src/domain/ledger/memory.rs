//! [`MemoryLedgerStore`]: the ledger's rows in ordered maps, for host tests and tools (not in
//! the Worker's release build).

use std::collections::BTreeMap;

use super::*;

/// An in-memory [`LedgerStore`] for tests and host tools, which can be told to fail its next
/// write. Reads scan, which is fine at test sizes; the SQL store answers them from indexes.
#[derive(Debug, Clone, Default)]
pub struct MemoryLedgerStore {
    pub(super) settings: Option<SaleSettings>,
    pub(super) classes: BTreeMap<String, TicketClass>,
    pub(super) holds: BTreeMap<String, Hold>,
    pub(super) fail_next_write: bool,
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
            .filter(|hold| hold.counts_toward_limit())
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

    fn active_hold_count(&self) -> Result<u64, StoreError> {
        let active = self.holds.values().filter(|h| h.state == HoldState::Active);
        Ok(active.count() as u64)
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
        if let Some(hold) = changes
            .holds
            .iter()
            .find(|hold| hold.returned_at.is_some() && hold.state != HoldState::Confirmed)
        {
            return Err(StoreError::Unavailable(format!(
                "CHECK constraint failed: returned_at IS NULL OR state = 'CONFIRMED' for hold {}",
                hold.order_id
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
