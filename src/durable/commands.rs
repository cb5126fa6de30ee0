//! The object's synchronous core: each protocol operation decoded into domain calls on the
//! object's SQLite, run inside one transaction by the caller, plus what must happen after
//! commit (socket pushes, the outbox flush). No `await` in here: a whole operation is one
//! atomic step of the object.

use serde::Deserialize;
use worker::SqlStorage;

use super::outbox::{hold_expired_message, next_alarm, waitroom_message, OutboxMessage};
use super::protocol::{
    Ack, ClassReply, ClassesReply, EventSetup, HoldReply, HubFailure, HubStatus, SessionReply,
    SessionView, WaitroomStatus,
};
use super::sql_ledger::{active_hold_count, SqlLedgerStore};
use super::sql_outbox;
use super::sql_waitroom::SqlWaitroomStore;
use super::sqlite::{exec, first, int, run_script, text, DeadlinesWritten, SqlResult};
use crate::domain::ledger::{
    ClassStatus, Ledger, LedgerError, LedgerStore, ReserveRequest, StoreError, TicketClassSpec,
    LEDGER_SCHEMA,
};
use crate::domain::tokens::TokenKey;
use crate::domain::waitroom::{
    CheckoutOutcome, NobodyConnected, Presence, SessionStatus, Waitroom, WaitroomCommand,
    WaitroomEffect, WaitroomError, WaitroomOutcome, WaitroomSession, WaitroomStore,
    WAITROOM_SCHEMA,
};

/// The object's own bookkeeping: the synced event setup and small named values.
pub const HUB_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS hub_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_event (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  event_id TEXT NOT NULL,
  setup_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
";

/// `hub_meta` key: the waitroom's last `NextWakeUp` (absent: nothing due).
const WAITROOM_WAKE_KEY: &str = "waitroom_wake_at";

/// Creates every table the object uses (idempotent; run when the object starts).
pub fn ensure_schema(sql: &SqlStorage) -> SqlResult<()> {
    run_script(sql, LEDGER_SCHEMA)?;
    run_script(sql, WAITROOM_SCHEMA)?;
    run_script(sql, sql_outbox::OUTBOX_SCHEMA)?;
    run_script(sql, HUB_SCHEMA)
}

/// A socket message owed to one fan once the transaction has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    Admitted {
        user_id: String,
        checkout_token: String,
        checkout_expires_at: String,
    },
    Expired {
        user_id: String,
    },
}

/// What the object does after commit.
#[derive(Debug, Default)]
pub struct AfterCommit {
    pub pushes: Vec<Push>,
    /// Positions changed: push every connected fan its own position.
    pub head_moved: bool,
    /// New outbox rows: flush now.
    pub outbox_written: bool,
    /// The earliest deadline the operation stored (see `outbox::alarm_unaffected`).
    pub earliest_deadline: Option<i64>,
}

/// A committed operation: its reply (a refusal can still commit upkeep) and the follow-up.
pub struct Done {
    pub reply: Result<serde_json::Value, HubFailure>,
    pub after: AfterCommit,
}

fn json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, HubFailure> {
    serde_json::to_value(value).map_err(|e| HubFailure::internal(format!("reply: {e}")))
}

fn store_failure(error: StoreError) -> HubFailure {
    HubFailure::internal(error.to_string())
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One operation's working context: owned, so it can run inside the transaction callback.
pub struct Core {
    sql: SqlStorage,
    now: i64,
    /// `JWT_SECRET`: checkout tokens are minted only when someone is admitted.
    jwt_secret: Option<Vec<u8>>,
    /// The synced event's id, read once per operation (an admission tick mints many tokens).
    event_id: std::cell::OnceCell<String>,
    after: AfterCommit,
    deadlines: DeadlinesWritten,
}

impl Core {
    pub fn new(sql: SqlStorage, now: i64, jwt_secret: Option<Vec<u8>>) -> Self {
        Core {
            sql,
            now,
            jwt_secret,
            event_id: std::cell::OnceCell::new(),
            after: AfterCommit::default(),
            deadlines: DeadlinesWritten::default(),
        }
    }

    fn done(mut self, reply: Result<serde_json::Value, HubFailure>) -> Result<Done, HubFailure> {
        self.after.earliest_deadline = self.deadlines.earliest();
        Ok(Done {
            reply,
            after: self.after,
        })
    }

    fn ledger(&self) -> Ledger<SqlLedgerStore> {
        Ledger::new(SqlLedgerStore::new(
            self.sql.clone(),
            self.deadlines.clone(),
        ))
    }

    fn waitroom(&self) -> Waitroom<SqlWaitroomStore> {
        Waitroom::new(SqlWaitroomStore::new(self.sql.clone()))
    }

    // ----- the event setup -----

    pub fn setup(&self) -> Result<Option<EventSetup>, HubFailure> {
        load_setup(&self.sql).map_err(store_failure)
    }

    /// The event's id as synced (empty before the first sync, when nothing can be admitted).
    fn event_id(&self) -> Result<&str, HubFailure> {
        if let Some(id) = self.event_id.get() {
            return Ok(id);
        }
        let id = self.setup()?.map(|s| s.event_id).unwrap_or_default();
        Ok(self.event_id.get_or_init(|| id))
    }

    fn save_setup(&self, setup: &EventSetup) -> Result<(), HubFailure> {
        let setup_json = serde_json::to_string(setup)
            .map_err(|e| HubFailure::internal(format!("setup: {e}")))?;
        exec(
            &self.sql,
            "INSERT INTO hub_event (id, event_id, setup_json, updated_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, \
             setup_json = excluded.setup_json, updated_at = excluded.updated_at",
            vec![
                text(setup.event_id.as_str()),
                text(setup_json),
                int(self.now).map_err(store_failure)?,
            ],
        )
        .map_err(store_failure)?;
        Ok(())
    }

    fn waitroom_configured(&self) -> Result<bool, HubFailure> {
        Ok(self
            .waitroom()
            .store_mut()
            .load_state()
            .map_err(store_failure)?
            .is_some())
    }

    /// Applies the event's status, sale window, limit and waitroom settings. The shuffle seed
    /// is only used the first time the waitroom is configured.
    pub fn sync_event(
        mut self,
        setup: EventSetup,
        shuffle_seed: Option<u64>,
    ) -> Result<Done, HubFailure> {
        setup.validate()?;
        if let Some(stored) = self.setup()? {
            if stored.event_id != setup.event_id {
                return Err(HubFailure::new(
                    409,
                    "CONFLICT",
                    format!("this object belongs to event {}", stored.event_id),
                ));
            }
        }
        self.ledger().configure_sale(setup.sale_settings())?;
        self.save_setup(&setup)?;
        // A waitroom that exists must hear about a cancellation even if the organiser has
        // switched the waitroom off since.
        if setup.allow_wait_room || self.waitroom_configured()? {
            let shuffle_seed =
                shuffle_seed.ok_or_else(|| HubFailure::internal("JWT_SECRET is not configured"))?;
            let command = WaitroomCommand::Configure {
                event_id: setup.event_id.clone(),
                config: setup.waitroom_config(),
                shuffle_seed,
            };
            self.apply_waitroom(command, &NobodyConnected)?;
        }
        self.done(json(&Ack::OK))
    }

    // ----- inventory -----

    pub fn upsert_class(self, spec: TicketClassSpec) -> Result<Done, HubFailure> {
        let class = self.ledger().upsert_class(spec)?;
        let reply = json(&ClassReply {
            ticket_class: (&class).into(),
        });
        self.done(reply)
    }

    pub fn update_class(
        self,
        ticket_class_id: String,
        total: Option<i64>,
        status: Option<ClassStatus>,
    ) -> Result<Done, HubFailure> {
        let mut ledger = self.ledger();
        // Two ledger commits in this one transaction: a refused total rolls back the status
        // written just before it, so the organiser's PATCH applies whole or not at all.
        let mut class = None;
        if let Some(status) = status {
            class = Some(ledger.set_class_status(&ticket_class_id, status)?);
        }
        if let Some(total) = total {
            class = Some(ledger.set_total(&ticket_class_id, total)?);
        }
        let class = match class {
            Some(class) => class,
            None => ledger
                .store()
                .class(&ticket_class_id)
                .map_err(LedgerError::from)?
                .ok_or(LedgerError::UnknownTicketClass { ticket_class_id })?,
        };
        let reply = json(&ClassReply {
            ticket_class: (&class).into(),
        });
        self.done(reply)
    }

    pub fn availability(self) -> Result<Done, HubFailure> {
        let items = self.ledger().availability()?;
        let reply = json(&ClassesReply { items });
        self.done(reply)
    }

    pub fn reserve(self, request: ReserveRequest) -> Result<Done, HubFailure> {
        let hold = self.ledger().reserve(&request, self.now)?;
        let reply = json(&HoldReply { hold });
        self.done(reply)
    }

    /// Binds the order to the checkout, then holds its tickets, in this one transaction. The
    /// checkout comes first so a dead token never touches stock (and in a sell-out hears that
    /// its token is dead, not that tickets ran out); a hold the ledger refuses returns `Err`,
    /// which rolls the bind back with everything else.
    pub fn reserve_for_checkout(
        mut self,
        session_id: String,
        request: ReserveRequest,
    ) -> Result<Done, HubFailure> {
        let command = WaitroomCommand::BindOrder {
            session_id,
            user_id: request.user_id.clone(),
            order_id: request.order_id.clone(),
        };
        let refusal = match self.apply_waitroom(command, &NobodyConnected)? {
            None => Some("this event has no waitroom".to_owned()),
            Some(outcome) => outcome.rejection.map(|r| r.to_string()),
        };
        if let Some(detail) = refusal {
            // One answer for every dead token (unknown session, someone else's, ended, bound
            // elsewhere): the caller holds a token, not a session. The upkeep commits.
            return self.done(Err(HubFailure::new(403, "CHECKOUT_TOKEN_INVALID", detail)));
        }
        let hold = self.ledger().reserve(&request, self.now)?;
        let reply = json(&HoldReply { hold });
        self.done(reply)
    }

    pub fn confirm(self, order_id: String) -> Result<Done, HubFailure> {
        let outcome = self.ledger().confirm(&order_id, self.now)?;
        let reply = json(&outcome);
        self.done(reply)
    }

    pub fn release(self, order_id: String) -> Result<Done, HubFailure> {
        let outcome = self.ledger().release(&order_id, self.now)?;
        let reply = json(&outcome);
        self.done(reply)
    }

    // ----- waitroom -----

    /// Runs one waitroom command and turns its effects into outbox rows, pending pushes and
    /// the stored wake-up time. `Ok(None)`: this event has no waitroom.
    fn apply_waitroom(
        &mut self,
        command: WaitroomCommand,
        presence: &dyn Presence,
    ) -> Result<Option<WaitroomOutcome>, HubFailure> {
        let mut room = self.waitroom();
        let outcome = match room.apply_with_presence(command, self.now, presence) {
            Ok(outcome) => outcome,
            Err(WaitroomError::NotConfigured) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        for effect in &outcome.effects {
            match effect {
                WaitroomEffect::Publish(event) => {
                    let message = waitroom_message(event, fresh_id())
                        .map_err(|e| HubFailure::internal(format!("domain event: {e}")))?;
                    self.write_outbox(&message)?;
                }
                WaitroomEffect::HeadMoved { .. } => self.after.head_moved = true,
                WaitroomEffect::Admitted { session } => {
                    let (checkout_token, checkout_expires_at) = self.checkout_token(session)?;
                    self.after.pushes.push(Push::Admitted {
                        user_id: session.user_id.clone(),
                        checkout_token,
                        checkout_expires_at,
                    });
                }
                WaitroomEffect::Expired { session } => self.after.pushes.push(Push::Expired {
                    user_id: session.user_id.clone(),
                }),
                WaitroomEffect::NextWakeUp(at) => {
                    if let Some(at) = at {
                        self.deadlines.note(*at);
                    }
                    set_meta(&self.sql, WAITROOM_WAKE_KEY, *at).map_err(store_failure)?
                }
            }
        }
        Ok(Some(outcome))
    }

    fn write_outbox(&mut self, message: &OutboxMessage) -> Result<(), HubFailure> {
        let hand_on_at = sql_outbox::insert(&self.sql, message, self.now).map_err(store_failure)?;
        self.deadlines.note(hand_on_at);
        self.after.outbox_written = true;
        Ok(())
    }

    /// The checkout token of an admitted session and its deadline (RFC 3339). Minted from the
    /// session every time, so it reads the same whenever it is asked for.
    fn checkout_token(&self, session: &WaitroomSession) -> Result<(String, String), HubFailure> {
        let (Some(admitted_at), Some(expires_at)) =
            (session.admitted_at, session.checkout_expires_at)
        else {
            return Err(HubFailure::internal("admitted session without its times"));
        };
        let secret = self
            .jwt_secret
            .as_deref()
            .ok_or_else(|| HubFailure::internal("JWT_SECRET is not configured"))?;
        let token = TokenKey::new(secret)
            .issue_checkout(
                &session.user_id,
                self.event_id()?,
                &session.session_id,
                admitted_at,
                expires_at,
            )
            .map_err(|e| HubFailure::internal(format!("checkout token: {e}")))?;
        Ok((
            token,
            crate::domain::waitroom::format_rfc3339_millis(expires_at),
        ))
    }

    /// The API view of the outcome's session, with the checkout token when ADMITTED.
    fn session_view(&self, outcome: &WaitroomOutcome) -> Result<Option<SessionView>, HubFailure> {
        let Some(view) = outcome.session.clone() else {
            return Ok(None);
        };
        let token = if view.status == SessionStatus::Admitted {
            let session = self
                .waitroom()
                .store_mut()
                .session(&view.session_id)
                .map_err(store_failure)?
                .ok_or_else(|| HubFailure::internal("admitted session vanished"))?;
            Some(self.checkout_token(&session)?.0)
        } else {
            None
        };
        Ok(Some(SessionView::new(view, token)))
    }

    pub fn join(mut self, user_id: String) -> Result<Done, HubFailure> {
        let setup = self.setup()?;
        let Some(setup) = setup.filter(|s| s.allow_wait_room) else {
            return Err(HubFailure::not_found("this event has no waitroom"));
        };
        if !setup.accepts_joins() {
            return Err(HubFailure::new(
                409,
                "SALE_NOT_OPEN",
                "the event is not on sale",
            ));
        }
        let command = WaitroomCommand::Join {
            user_id,
            session_id: fresh_id(),
        };
        let Some(outcome) = self.apply_waitroom(command, &NobodyConnected)? else {
            return Err(HubFailure::not_found("this event has no waitroom"));
        };
        let reply = match outcome.rejection {
            Some(rejection) => Err(rejection.into()),
            None => self
                .session_view(&outcome)
                .and_then(|waitroom_session| json(&SessionReply { waitroom_session })),
        };
        self.done(reply)
    }

    /// The fan's latest session; counts as seen.
    pub fn touch(mut self, user_id: String) -> Result<Done, HubFailure> {
        let command = WaitroomCommand::Touch { user_id };
        let outcome = self.apply_waitroom(command, &NobodyConnected)?;
        let waitroom_session = match &outcome {
            Some(outcome) => self.session_view(outcome)?,
            None => None,
        };
        let reply = json(&SessionReply { waitroom_session });
        self.done(reply)
    }

    pub fn leave(mut self, user_id: String) -> Result<Done, HubFailure> {
        let command = WaitroomCommand::Leave { user_id };
        let outcome = self.apply_waitroom(command, &NobodyConnected)?;
        let reply = match outcome.and_then(|o| o.rejection) {
            Some(rejection) => Err(rejection.into()),
            None => json(&Ack::OK),
        };
        self.done(reply)
    }

    pub fn bind_order(
        mut self,
        session_id: String,
        user_id: String,
        order_id: String,
    ) -> Result<Done, HubFailure> {
        let command = WaitroomCommand::BindOrder {
            session_id,
            user_id,
            order_id,
        };
        let outcome = self.apply_waitroom(command, &NobodyConnected)?;
        let reply = match outcome {
            None => Err(HubFailure::not_found("this event has no waitroom")),
            Some(outcome) => match outcome.rejection {
                Some(rejection) => Err(rejection.into()),
                None => json(&Ack::OK),
            },
        };
        self.done(reply)
    }

    pub fn checkout_resolved(
        mut self,
        order_id: String,
        outcome: CheckoutOutcome,
    ) -> Result<Done, HubFailure> {
        let command = WaitroomCommand::CheckoutResolved { order_id, outcome };
        // An order of an event without a waitroom has no slot to free: nothing to do.
        self.apply_waitroom(command, &NobodyConnected)?;
        self.done(json(&Ack::OK))
    }

    pub fn unbind_order(mut self, order_id: String) -> Result<Done, HubFailure> {
        let command = WaitroomCommand::UnbindOrder { order_id };
        // An order of an event without a waitroom was never bound: nothing to do.
        self.apply_waitroom(command, &NobodyConnected)?;
        self.done(json(&Ack::OK))
    }

    /// The alarm's work: expire due holds (telling the saga and freeing their checkout slots),
    /// then an admission tick.
    pub fn alarm(mut self, presence: &dyn Presence) -> Result<Done, HubFailure> {
        let expired = self.ledger().expire_due(self.now)?;
        let event_id = self.event_id()?.to_owned();
        for hold in &expired {
            let message = hold_expired_message(&event_id, hold, self.now, fresh_id())
                .map_err(|e| HubFailure::internal(format!("hold expired: {e}")))?;
            self.write_outbox(&message)?;
        }
        if self.waitroom_configured()? {
            for hold in expired {
                let command = WaitroomCommand::CheckoutResolved {
                    order_id: hold.order_id,
                    outcome: CheckoutOutcome::Expired,
                };
                self.apply_waitroom(command, presence)?;
            }
            self.apply_waitroom(WaitroomCommand::AdmissionTick, presence)?;
        }
        self.done(json(&Ack::OK))
    }

    /// The operator view (`connected_sockets` comes from the runtime, not from storage).
    pub fn status(self, connected_sockets: u64) -> Result<Done, HubFailure> {
        let setup = self.setup()?;
        let ledger = self.ledger();
        let sale = ledger.settings()?;
        let classes = ledger.availability()?;
        let mut room = self.waitroom();
        let store = room.store_mut();
        let waitroom = match (
            store.load_state().map_err(store_failure)?,
            store.load_config().map_err(store_failure)?,
        ) {
            (Some(state), Some(config)) => Some(WaitroomStatus {
                queue_length: state.queued,
                prequeued: state.prequeued,
                admitted: state.slots_in_use,
                slots_in_use: state.slots_in_use,
                max_slots: config.max_concurrent_checkouts,
                sale_opened: state.sale_opened,
                closed: state.closed,
                admissions_per_second: state.admission_rate,
            }),
            _ => None,
        };
        let status = HubStatus {
            event_id: setup.as_ref().map(|s| s.event_id.clone()),
            event_status: setup.as_ref().map(|s| s.status),
            sale_state: sale.state,
            waitroom,
            active_holds: active_hold_count(&self.sql).map_err(store_failure)?,
            classes,
            outbox_backlog: sql_outbox::backlog(&self.sql).map_err(store_failure)?,
            connected_sockets,
        };
        let reply = json(&status);
        self.done(reply)
    }
}

/// Views of many fans' latest sessions (read-only; for the pushes after the head moved).
pub fn queued_views<'u>(
    sql: &SqlStorage,
    user_ids: impl IntoIterator<Item = &'u str>,
    now: i64,
) -> Result<Vec<(&'u str, SessionView)>, HubFailure> {
    let mut room = Waitroom::new(SqlWaitroomStore::new(sql.clone()));
    let views = match room.views_of_users(user_ids, now) {
        Ok(views) => views,
        Err(WaitroomError::NotConfigured) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(views
        .into_iter()
        .filter_map(|(user, view)| view.map(|v| (user, SessionView::new(v, None))))
        .filter(|(_, view)| view.status == SessionStatus::Queued)
        .collect())
}

pub fn load_setup(sql: &SqlStorage) -> SqlResult<Option<EventSetup>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Row {
        setup_json: String,
    }
    let row: Option<Row> = first(
        sql,
        "SELECT setup_json AS setupJson FROM hub_event WHERE id = 1",
        Vec::new(),
    )?;
    row.map(|r| {
        serde_json::from_str(&r.setup_json)
            .map_err(|e| StoreError::Malformed(format!("event setup: {e}")))
    })
    .transpose()
}

fn set_meta(sql: &SqlStorage, key: &str, value: Option<i64>) -> SqlResult<()> {
    match value {
        Some(value) => exec(
            sql,
            "INSERT INTO hub_meta (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![text(key), int(value)?],
        ),
        None => exec(sql, "DELETE FROM hub_meta WHERE key = ?", vec![text(key)]),
    }?;
    Ok(())
}

fn meta(sql: &SqlStorage, key: &str) -> SqlResult<Option<i64>> {
    #[derive(Deserialize)]
    struct Row {
        value: i64,
    }
    let row: Option<Row> = first(
        sql,
        "SELECT value FROM hub_meta WHERE key = ?",
        vec![text(key)],
    )?;
    Ok(row.map(|r| r.value))
}

/// When the alarm must fire next, from what is stored: hold expiry, waitroom wake-up, outbox.
pub fn next_alarm_at(sql: &SqlStorage) -> Result<Option<i64>, HubFailure> {
    let ledger = Ledger::new(SqlLedgerStore::new(
        sql.clone(),
        DeadlinesWritten::default(),
    ));
    Ok(next_alarm(
        ledger.next_expiry()?,
        meta(sql, WAITROOM_WAKE_KEY).map_err(store_failure)?,
        sql_outbox::next_attempt_at(sql).map_err(store_failure)?,
    ))
}
