//! The waitroom's host tests: the `Room` fixture and helpers; the cases live in the files below.

mod checkout;
mod lifecycle;
mod model;
mod queue;

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const EVENT: &str = "evt-1";
const SALE_START: i64 = 1_700_000_000_000;
const SALE_END: i64 = SALE_START + 6 * 3_600_000;
const SEED: u64 = 0x5EED;

type Error = WaitroomError<MemoryStoreError>;

fn config() -> WaitroomConfig {
    WaitroomConfig {
        max_concurrent_checkouts: 2,
        checkout_ttl_seconds: 60,
        admission_batch: 10,
        idle_timeout_seconds: 600,
        sale_starts_at: SALE_START,
        sale_ends_at: SALE_END,
        cancelled: false,
    }
}

/// A waitroom on a memory store with a test clock.
struct Room {
    room: Waitroom<MemoryWaitroomStore>,
    now: i64,
    config: WaitroomConfig,
    joins: u64,
}

impl Room {
    fn configured_at(now: i64, config: WaitroomConfig) -> Self {
        let mut room = Self {
            room: Waitroom::new(MemoryWaitroomStore::new()),
            now,
            config: config.clone(),
            joins: 0,
        };
        room.apply(WaitroomCommand::Configure {
            event_id: EVENT.into(),
            config,
            shuffle_seed: SEED,
        });
        room
    }

    /// Configured at sale start: joins go straight into the queue.
    fn open(config: WaitroomConfig) -> Self {
        Self::configured_at(SALE_START, config)
    }

    fn try_apply(&mut self, command: WaitroomCommand) -> Result<WaitroomOutcome, Error> {
        let outcome = self.room.apply(command, self.now)?;
        self.assert_invariants();
        Ok(outcome)
    }

    fn apply(&mut self, command: WaitroomCommand) -> WaitroomOutcome {
        self.try_apply(command).expect("command applies")
    }

    fn join(&mut self, user: &str) -> WaitroomSessionView {
        self.joins += 1;
        let session_id = format!("s{}", self.joins);
        self.apply(WaitroomCommand::Join {
            user_id: user.into(),
            session_id,
        })
        .session
        .expect("join returns the session")
    }

    fn join_all(&mut self, users: &[&str]) {
        for user in users {
            self.join(user);
        }
    }

    fn leave(&mut self, user: &str) -> WaitroomOutcome {
        self.apply(WaitroomCommand::Leave {
            user_id: user.into(),
        })
    }

    fn touch(&mut self, user: &str) {
        self.apply(WaitroomCommand::Touch {
            user_id: user.into(),
        });
    }

    fn tick(&mut self) -> WaitroomOutcome {
        self.apply(WaitroomCommand::AdmissionTick)
    }

    fn bind(&mut self, user: &str, order: &str) -> WaitroomOutcome {
        let session_id = self.view(user).map(|v| v.session_id).unwrap_or_default();
        self.apply(WaitroomCommand::BindOrder {
            session_id,
            user_id: user.into(),
            order_id: order.into(),
        })
    }

    fn resolve(&mut self, order: &str, outcome: CheckoutOutcome) -> WaitroomOutcome {
        self.apply(WaitroomCommand::CheckoutResolved {
            order_id: order.into(),
            outcome,
        })
    }

    fn hold_expired(&mut self, order: &str) -> WaitroomOutcome {
        self.apply(WaitroomCommand::HoldExpired {
            order_id: order.into(),
        })
    }

    fn unbind(&mut self, order: &str) -> WaitroomOutcome {
        self.apply(WaitroomCommand::UnbindOrder {
            order_id: order.into(),
        })
    }

    fn reconfigure(&mut self, change: impl FnOnce(&mut WaitroomConfig)) -> WaitroomOutcome {
        change(&mut self.config);
        let config = self.config.clone();
        self.apply(WaitroomCommand::Configure {
            event_id: EVENT.into(),
            config,
            shuffle_seed: SEED,
        })
    }

    fn view(&mut self, user: &str) -> Option<WaitroomSessionView> {
        self.room.view_of_user(user, self.now).expect("view")
    }

    fn status(&mut self, user: &str) -> SessionStatus {
        self.view(user).expect("session").status
    }

    fn position(&mut self, user: &str) -> Option<u64> {
        self.view(user).expect("session").position
    }

    fn state(&self) -> WaitroomState {
        self.room.store().data.state.clone().expect("state")
    }

    fn session_of(&self, user: &str) -> WaitroomSession {
        self.room
            .store()
            .sessions()
            .filter(|s| s.user_id == user)
            .max_by_key(|s| s.join_no)
            .cloned()
            .expect("session")
    }

    /// Slot accounting and the queue counters match the rows after every command.
    fn assert_invariants(&self) {
        let state = self.state();
        let store = self.room.store();
        let count = |wanted: fn(&WaitroomSession) -> bool| -> u64 {
            store.sessions().filter(|s| wanted(s)).count() as u64
        };
        assert_eq!(
            state.slots_in_use,
            count(|s| s.status == SessionStatus::Admitted),
            "slots in use == ADMITTED sessions"
        );
        assert_eq!(
            state.queued,
            count(|s| s.status == SessionStatus::Queued && s.seq.is_some())
        );
        assert_eq!(
            state.prequeued,
            count(|s| s.status == SessionStatus::Queued && s.seq.is_none())
        );
    }
}

fn rejection(outcome: WaitroomOutcome) -> Option<WaitroomRejection> {
    outcome.rejection
}

fn accepted(outcome: WaitroomOutcome) -> WaitroomOutcome {
    assert_eq!(outcome.rejection, None, "command accepted");
    outcome
}

fn admitted_users(outcome: &WaitroomOutcome) -> Vec<String> {
    outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            WaitroomEffect::Admitted { session } => Some(session.user_id.clone()),
            _ => None,
        })
        .collect()
}

fn expired_users(outcome: &WaitroomOutcome) -> Vec<(String, SessionEndReason)> {
    outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            WaitroomEffect::Publish(WaitroomEvent::SessionExpired {
                session, reason, ..
            }) => Some((session.user_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn as_strs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}
