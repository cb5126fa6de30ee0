//! The object's own rows beside the ledger's and the waitroom's: the synced event setup, the
//! waitroom's stored wake-up time ([`HubMetaStore`]) and the outbox ([`OutboxStore`]). Small
//! traits so that [`super::commands::Core`] runs on the object's SQLite (`sql_hub`) and, in
//! host tests, on [`MemoryHubStore`].

use super::outbox::OutboxMessage;
use super::protocol::EventSetup;
use crate::domain::admission::hub::AdmissionHub;
use crate::domain::ledger::StoreError;

/// The object's bookkeeping (`hub_event`, `hub_meta`).
pub trait HubMetaStore {
    /// `SELECT setup_json FROM hub_event WHERE id = 1`: the event as last synced.
    fn setup(&self) -> Result<Option<EventSetup>, StoreError>;

    /// `INSERT INTO hub_event (id, event_id, setup_json, updated_at) VALUES (1, ?, ?, ?)
    /// ON CONFLICT (id) DO UPDATE SET ...`
    fn save_setup(&mut self, setup: &EventSetup, now: i64) -> Result<(), StoreError>;

    /// The waitroom's last `NextWakeUp` (`hub_meta`, key `waitroom_wake_at`; absent: none due).
    fn waitroom_wake_at(&self) -> Result<Option<i64>, StoreError>;

    /// Stores the waitroom's wake-up time, or deletes it when nothing is due.
    fn set_waitroom_wake_at(&mut self, at: Option<i64>) -> Result<(), StoreError>;

    /// `SELECT state_json FROM hub_admission WHERE id = 1`: the admission of a sharded
    /// waitroom (absent: the event's queue lives in this object, or it has no waitroom).
    fn admission(&self) -> Result<Option<AdmissionHub>, StoreError>;

    /// Stores the admission state: its document and the checkouts it changed (the caller's
    /// transaction makes the two one write).
    fn save_admission(&mut self, hub: &mut AdmissionHub) -> Result<(), StoreError>;
}

/// The writing side of the outbox (`hub_outbox`): rows are inserted in the transaction that
/// makes the change they report. Sending, deleting and backing off belong to the shell's flush.
pub trait OutboxStore {
    /// Stores a message that the alarm hands on at `next_attempt_at` unless the flush right
    /// after commit sends it first.
    fn insert(
        &mut self,
        message: &OutboxMessage,
        created_at: i64,
        next_attempt_at: i64,
    ) -> Result<(), StoreError>;

    /// `SELECT MIN(next_attempt_at) FROM hub_outbox`: when the alarm must try again.
    fn next_attempt_at(&self) -> Result<Option<i64>, StoreError>;

    /// `SELECT COUNT(*) FROM hub_outbox`: messages no queue has accepted yet.
    fn backlog(&self) -> Result<u64, StoreError>;
}

impl<S: HubMetaStore + ?Sized> HubMetaStore for &mut S {
    fn setup(&self) -> Result<Option<EventSetup>, StoreError> {
        (**self).setup()
    }
    fn save_setup(&mut self, setup: &EventSetup, now: i64) -> Result<(), StoreError> {
        (**self).save_setup(setup, now)
    }
    fn waitroom_wake_at(&self) -> Result<Option<i64>, StoreError> {
        (**self).waitroom_wake_at()
    }
    fn set_waitroom_wake_at(&mut self, at: Option<i64>) -> Result<(), StoreError> {
        (**self).set_waitroom_wake_at(at)
    }
    fn admission(&self) -> Result<Option<AdmissionHub>, StoreError> {
        (**self).admission()
    }
    fn save_admission(&mut self, hub: &mut AdmissionHub) -> Result<(), StoreError> {
        (**self).save_admission(hub)
    }
}

impl<S: OutboxStore + ?Sized> OutboxStore for &mut S {
    fn insert(
        &mut self,
        message: &OutboxMessage,
        created_at: i64,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        (**self).insert(message, created_at, next_attempt_at)
    }
    fn next_attempt_at(&self) -> Result<Option<i64>, StoreError> {
        (**self).next_attempt_at()
    }
    fn backlog(&self) -> Result<u64, StoreError> {
        (**self).backlog()
    }
}

/// One stored outbox row of [`MemoryHubStore`].
#[cfg(any(test, feature = "memory-stores"))]
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub message: OutboxMessage,
    pub created_at: i64,
    pub next_attempt_at: i64,
}

/// [`HubMetaStore`] and [`OutboxStore`] in memory, for host tests and tools; can be told to
/// fail its next write, like the ledger's memory store.
#[cfg(any(test, feature = "memory-stores"))]
#[derive(Debug, Clone, Default)]
pub struct MemoryHubStore {
    pub setup: Option<EventSetup>,
    pub setup_updated_at: Option<i64>,
    pub waitroom_wake_at: Option<i64>,
    pub admission: Option<AdmissionHub>,
    /// The outbox in insertion order (the SQL table's `seq`).
    pub outbox: Vec<StoredMessage>,
    pub fail_next_write: bool,
}

#[cfg(any(test, feature = "memory-stores"))]
impl MemoryHubStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&mut self) -> Result<(), StoreError> {
        if std::mem::take(&mut self.fail_next_write) {
            return Err(StoreError::Unavailable("injected write failure".to_owned()));
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "memory-stores"))]
impl HubMetaStore for MemoryHubStore {
    fn setup(&self) -> Result<Option<EventSetup>, StoreError> {
        Ok(self.setup.clone())
    }

    fn save_setup(&mut self, setup: &EventSetup, now: i64) -> Result<(), StoreError> {
        self.write()?;
        self.setup = Some(setup.clone());
        self.setup_updated_at = Some(now);
        Ok(())
    }

    fn waitroom_wake_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.waitroom_wake_at)
    }

    fn set_waitroom_wake_at(&mut self, at: Option<i64>) -> Result<(), StoreError> {
        self.write()?;
        self.waitroom_wake_at = at;
        Ok(())
    }

    fn admission(&self) -> Result<Option<AdmissionHub>, StoreError> {
        Ok(self.admission.clone())
    }

    fn save_admission(&mut self, hub: &mut AdmissionHub) -> Result<(), StoreError> {
        self.write()?;
        hub.take_changed_checkouts();
        self.admission = Some(hub.clone());
        Ok(())
    }
}

#[cfg(any(test, feature = "memory-stores"))]
impl OutboxStore for MemoryHubStore {
    fn insert(
        &mut self,
        message: &OutboxMessage,
        created_at: i64,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        self.write()?;
        // The SQL table's `id` is UNIQUE: a second message with one id fails the write.
        if self.outbox.iter().any(|m| m.message.id == message.id) {
            return Err(StoreError::Unavailable(format!(
                "UNIQUE constraint failed: hub_outbox.id ({})",
                message.id
            )));
        }
        self.outbox.push(StoredMessage {
            message: message.clone(),
            created_at,
            next_attempt_at,
        });
        Ok(())
    }

    fn next_attempt_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.outbox.iter().map(|m| m.next_attempt_at).min())
    }

    fn backlog(&self) -> Result<u64, StoreError> {
        Ok(self.outbox.len() as u64)
    }
}
