//! The object's synchronous core: each protocol operation decoded into domain calls on the
//! object's stores, run inside one transaction by the caller, plus what must happen after
//! commit (socket pushes, the outbox flush). No `await` in here: a whole operation is one
//! atomic step of the object.
//!
//! [`Core`] is generic over its stores (the ledger's, the waitroom's, and the object's own
//! [`HubMetaStore`] + [`OutboxStore`]): the object runs it on SQLite, the host tests below run
//! every command on the memory stores.

use super::hub_store::{HubMetaStore, OutboxStore};
use super::outbox::{
    hold_expired_message, next_alarm, waitroom_message, OutboxMessage, FRESH_RETRY_MS,
};
use super::protocol::{
    shuffle_seed, Ack, ClassReply, ClassesReply, EventSetup, HoldReply, HubFailure, HubRequest,
    HubStatus, SessionReply, SessionView, WaitroomStatus,
};
use crate::domain::ledger::{
    ClassStatus, Hold, HoldState, HoldWithClasses, Ledger, LedgerChanges, LedgerError, LedgerStore,
    Millis, ReserveReads, ReserveRequest, SaleSettings, StoreError, TicketClass, TicketClassSpec,
};
use crate::domain::tokens::TokenKey;
use crate::domain::waitroom::{
    format_rfc3339_millis, CheckoutOutcome, NobodyConnected, Presence, SessionStatus, Waitroom,
    WaitroomCommand, WaitroomEffect, WaitroomError, WaitroomOutcome, WaitroomSession,
    WaitroomStore,
};

pub mod admission;
#[cfg(test)]
mod tests;

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
    /// Messages for a sharded waitroom's shards (checkout ends), sent after commit; the
    /// admission state keeps them until acknowledged, so a lost send is retried.
    pub shard_messages: Vec<crate::domain::admission::hub::Outgoing>,
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

/// The earliest deadline (hold expiry, waitroom wake-up, outbox retry) one operation wrote, so
/// the object knows whether its alarm may now be too late without reading every deadline back.
#[derive(Debug, Clone, Copy, Default)]
struct Deadlines(Option<i64>);

impl Deadlines {
    fn note(&mut self, at: i64) {
        self.0 = Some(self.0.map_or(at, |earliest| earliest.min(at)));
    }

    fn and(self, other: Deadlines) -> Deadlines {
        let mut both = self;
        if let Some(at) = other.0 {
            both.note(at);
        }
        both
    }
}

/// The ledger's store as the core hands it to the rules: it notes the expiry of every ACTIVE
/// hold that a commit writes, whichever rule wrote it.
struct DeadlineNotingStore<L> {
    store: L,
    written: Deadlines,
}

impl<L: LedgerStore> LedgerStore for DeadlineNotingStore<L> {
    fn settings(&self) -> Result<Option<SaleSettings>, StoreError> {
        self.store.settings()
    }
    fn class(&self, ticket_class_id: &str) -> Result<Option<TicketClass>, StoreError> {
        self.store.class(ticket_class_id)
    }
    fn classes(&self) -> Result<Vec<TicketClass>, StoreError> {
        self.store.classes()
    }
    fn hold(&self, order_id: &str) -> Result<Option<Hold>, StoreError> {
        self.store.hold(order_id)
    }
    fn user_committed_quantity(&self, user_id: &str) -> Result<u64, StoreError> {
        self.store.user_committed_quantity(user_id)
    }
    fn due_holds(&self, now: Millis, limit: usize) -> Result<Vec<Hold>, StoreError> {
        self.store.due_holds(now, limit)
    }
    fn next_expiry(&self) -> Result<Option<Millis>, StoreError> {
        self.store.next_expiry()
    }
    fn active_hold_count(&self) -> Result<u64, StoreError> {
        self.store.active_hold_count()
    }
    fn commit(&mut self, changes: &LedgerChanges) -> Result<(), StoreError> {
        self.store.commit(changes)?;
        for hold in changes
            .holds
            .iter()
            .filter(|h| h.state == HoldState::Active)
        {
            self.written.note(hold.expires_at);
        }
        Ok(())
    }
    fn reserve_reads(
        &self,
        order_id: &str,
        user_id: &str,
        ticket_class_ids: &[&str],
    ) -> Result<ReserveReads, StoreError> {
        self.store
            .reserve_reads(order_id, user_id, ticket_class_ids)
    }
    fn hold_with_classes(&self, order_id: &str) -> Result<Option<HoldWithClasses>, StoreError> {
        self.store.hold_with_classes(order_id)
    }
}

/// One operation's working context over the object's stores: the ledger's (`L`), the
/// waitroom's (`W`) and the object's own (`H`). Owned, so it can run inside the transaction
/// callback; consumed by the operation it runs.
pub struct Core<L, W, H> {
    ledger: DeadlineNotingStore<L>,
    waitroom: W,
    hub: H,
    now: i64,
    /// `JWT_SECRET`: checkout tokens are minted only when someone is admitted.
    jwt_secret: Option<Vec<u8>>,
    /// The synced event's id, read once per operation (an admission tick mints many tokens).
    event_id: std::cell::OnceCell<String>,
    after: AfterCommit,
    /// Deadlines written outside the ledger: the waitroom's wake-up and outbox hand-ons.
    deadlines: Deadlines,
}

impl<L, W, H> Core<L, W, H>
where
    L: LedgerStore,
    W: WaitroomStore,
    H: HubMetaStore + OutboxStore,
{
    pub fn new(ledger: L, waitroom: W, hub: H, now: i64, jwt_secret: Option<Vec<u8>>) -> Self {
        Core {
            ledger: DeadlineNotingStore {
                store: ledger,
                written: Deadlines::default(),
            },
            waitroom,
            hub,
            now,
            jwt_secret,
            event_id: std::cell::OnceCell::new(),
            after: AfterCommit::default(),
            deadlines: Deadlines::default(),
        }
    }

    fn done(mut self, reply: Result<serde_json::Value, HubFailure>) -> Result<Done, HubFailure> {
        self.after.earliest_deadline = self.deadlines.and(self.ledger.written).0;
        Ok(Done {
            reply,
            after: self.after,
        })
    }

    fn ledger(&mut self) -> Ledger<&mut DeadlineNotingStore<L>> {
        Ledger::new(&mut self.ledger)
    }

    fn waitroom(&mut self) -> Waitroom<&mut W> {
        Waitroom::new(&mut self.waitroom)
    }

    fn waitroom_failure(error: W::Error) -> HubFailure {
        HubFailure::internal(format!("waitroom storage: {error}"))
    }

    /// Runs one request of the wire protocol. `connected_sockets` is the runtime's count of
    /// open waitroom sockets, which only the operator view reports.
    pub fn handle(self, request: HubRequest, connected_sockets: u64) -> Result<Done, HubFailure> {
        match request {
            HubRequest::SyncEvent(setup) => self.sync_event(setup),
            HubRequest::UpsertClass(spec) => self.upsert_class(spec),
            HubRequest::UpdateClass {
                ticket_class_id,
                total,
                status,
            } => self.update_class(ticket_class_id, total, status),
            HubRequest::Availability => self.availability(),
            HubRequest::Reserve(request) => self.reserve(request),
            HubRequest::ReserveForCheckout {
                session_id,
                reserve,
            } => self.reserve_for_checkout(session_id, reserve),
            HubRequest::Confirm { order_id } => self.confirm(order_id),
            HubRequest::Release { order_id } => self.release(order_id),
            HubRequest::ReturnSold { order_id } => self.return_sold(order_id),
            HubRequest::Join { user_id } => self.join(user_id),
            HubRequest::Session { user_id } => self.touch(user_id),
            HubRequest::Leave { user_id } => self.leave(user_id),
            HubRequest::CheckoutResolved { order_id, outcome } => {
                self.checkout_resolved(order_id, outcome)
            }
            HubRequest::UnbindOrder { order_id } => self.unbind_order(order_id),
            HubRequest::Status => self.status(connected_sockets),
            HubRequest::LeaveCheckout { user_id } => self.leave_checkout(user_id),
            HubRequest::WakeAdmission => self.wake_admission(),
        }
    }

    // ----- the event setup -----

    pub fn setup(&self) -> Result<Option<EventSetup>, HubFailure> {
        self.hub.setup().map_err(store_failure)
    }

    /// The event's id as synced (empty before the first sync, when nothing can be admitted).
    fn event_id(&self) -> Result<&str, HubFailure> {
        if let Some(id) = self.event_id.get() {
            return Ok(id);
        }
        let id = self.setup()?.map(|s| s.event_id).unwrap_or_default();
        Ok(self.event_id.get_or_init(|| id))
    }

    fn waitroom_configured(&mut self) -> Result<bool, HubFailure> {
        let state = self.waitroom.load_state().map_err(Self::waitroom_failure)?;
        Ok(state.is_some())
    }

    /// Applies the event's status, sale window, limit and waitroom settings. The pre-queue's
    /// shuffle seed (from the secret and the event id) is only used the first time the
    /// waitroom is configured.
    pub fn sync_event(mut self, setup: EventSetup) -> Result<Done, HubFailure> {
        setup.validate()?;
        if let Some(stored) = self.setup()? {
            if stored.event_id != setup.event_id {
                return Err(HubFailure::new(
                    "CONFLICT",
                    format!("this object belongs to event {}", stored.event_id),
                ));
            }
        }
        self.ledger().configure_sale(setup.sale_settings())?;
        let now = self.now;
        self.hub.save_setup(&setup, now).map_err(store_failure)?;
        let seed = |secret: Option<&[u8]>| {
            secret
                .map(|secret| shuffle_seed(secret, &setup.event_id))
                .ok_or_else(|| HubFailure::internal("JWT_SECRET is not configured"))
        };
        // Sharded: the admission lives here, the queue in the shards. Once sharded, always
        // (the count never falls), and a cancellation still reaches the shards.
        if (setup.allow_wait_room && setup.shards > 1) || self.admission()?.is_some() {
            let shuffle_seed = seed(self.jwt_secret.as_deref())?;
            self.sync_admission(&setup, shuffle_seed)?;
            return self.done(json(&Ack::OK));
        }
        // A waitroom that exists must hear about a cancellation even if the organiser has
        // switched the waitroom off since.
        if setup.allow_wait_room || self.waitroom_configured()? {
            let shuffle_seed = seed(self.jwt_secret.as_deref())?;
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

    pub fn upsert_class(mut self, spec: TicketClassSpec) -> Result<Done, HubFailure> {
        let class = self.ledger().upsert_class(spec)?;
        let reply = json(&ClassReply {
            ticket_class: (&class).into(),
        });
        self.done(reply)
    }

    pub fn update_class(
        mut self,
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

    pub fn availability(mut self) -> Result<Done, HubFailure> {
        let items = self.ledger().availability()?;
        let reply = json(&ClassesReply { items });
        self.done(reply)
    }

    pub fn reserve(mut self, request: ReserveRequest) -> Result<Done, HubFailure> {
        let now = self.now;
        let hold = self.ledger().reserve(&request, now)?;
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
        if let Some(hub) = self.admission()? {
            return self.reserve_for_admitted(hub, session_id, request);
        }
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
            return self.done(Err(HubFailure::new("CHECKOUT_TOKEN_INVALID", detail)));
        }
        let now = self.now;
        let hold = self.ledger().reserve(&request, now)?;
        let reply = json(&HoldReply { hold });
        self.done(reply)
    }

    pub fn confirm(mut self, order_id: String) -> Result<Done, HubFailure> {
        let now = self.now;
        let outcome = self.ledger().confirm(&order_id, now)?;
        let reply = json(&outcome);
        self.done(reply)
    }

    pub fn release(mut self, order_id: String) -> Result<Done, HubFailure> {
        let now = self.now;
        let outcome = self.ledger().release(&order_id, now)?;
        let reply = json(&outcome);
        self.done(reply)
    }

    /// No announcement: the refund that caused it is already in the event log
    /// (`ORDER_REFUNDED`), and the counters are what the buyers' pages read.
    pub fn return_sold(mut self, order_id: String) -> Result<Done, HubFailure> {
        let now = self.now;
        let outcome = self.ledger().return_sold(&order_id, now)?;
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
        let now = self.now;
        let outcome = match self.waitroom().apply_with_presence(command, now, presence) {
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
                    self.hub.set_waitroom_wake_at(*at).map_err(store_failure)?
                }
            }
        }
        Ok(Some(outcome))
    }

    /// Stores a message for the flush after commit; the alarm hands it on if that flush never
    /// happens (the isolate is evicted first).
    fn write_outbox(&mut self, message: &OutboxMessage) -> Result<(), HubFailure> {
        let hand_on_at = self.now.saturating_add(FRESH_RETRY_MS);
        self.hub
            .insert(message, self.now, hand_on_at)
            .map_err(store_failure)?;
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
        Ok((token, format_rfc3339_millis(expires_at)))
    }

    /// The API view of the outcome's session, with the checkout token when ADMITTED.
    fn session_view(
        &mut self,
        outcome: &WaitroomOutcome,
    ) -> Result<Option<SessionView>, HubFailure> {
        let Some(view) = outcome.session.clone() else {
            return Ok(None);
        };
        let token = if view.status == SessionStatus::Admitted {
            let session = self
                .waitroom
                .session(&view.session_id)
                .map_err(Self::waitroom_failure)?
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
            return Err(HubFailure::new("SALE_NOT_OPEN", "the event is not on sale"));
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

    pub fn checkout_resolved(
        mut self,
        order_id: String,
        outcome: CheckoutOutcome,
    ) -> Result<Done, HubFailure> {
        if let Some(mut hub) = self.admission()? {
            self.resolve_admitted_order(&mut hub, &order_id, outcome)?;
            return self.done(json(&Ack::OK));
        }
        let command = WaitroomCommand::CheckoutResolved { order_id, outcome };
        // An order of an event without a waitroom has no slot to free: nothing to do.
        self.apply_waitroom(command, &NobodyConnected)?;
        self.done(json(&Ack::OK))
    }

    pub fn unbind_order(mut self, order_id: String) -> Result<Done, HubFailure> {
        if let Some(hub) = self.admission()? {
            return self.unbind_admitted_order(hub, order_id);
        }
        let command = WaitroomCommand::UnbindOrder { order_id };
        // An order of an event without a waitroom was never bound: nothing to do.
        self.apply_waitroom(command, &NobodyConnected)?;
        self.done(json(&Ack::OK))
    }

    /// The alarm's work: expire due holds (telling the saga), then an admission tick. An
    /// expired order's checkout ends here only once its token ran out too; with time left on
    /// it, only the saga knows whether the buyer was shown a payment page, which decides
    /// whether it ends or is reopened (`checkout_after_close`).
    pub fn alarm(mut self, presence: &dyn Presence) -> Result<Done, HubFailure> {
        let now = self.now;
        let expired = self.ledger().expire_due(now)?;
        let event_id = self.event_id()?.to_owned();
        for hold in &expired {
            let message = hold_expired_message(&event_id, hold, now, fresh_id())
                .map_err(|e| HubFailure::internal(format!("hold expired: {e}")))?;
            self.write_outbox(&message)?;
        }
        // Sharded: the rounds are the shell's.
        if let Some(mut hub) = self.admission()? {
            self.admitted_holds_expired(&mut hub, expired.iter().map(|h| h.order_id.as_str()))?;
            return self.done(json(&Ack::OK));
        }
        if self.waitroom_configured()? {
            for hold in expired {
                let command = WaitroomCommand::HoldExpired {
                    order_id: hold.order_id,
                };
                self.apply_waitroom(command, presence)?;
            }
            self.apply_waitroom(WaitroomCommand::AdmissionTick, presence)?;
        }
        self.done(json(&Ack::OK))
    }

    /// The operator view (`connected_sockets` comes from the runtime, not from storage).
    pub fn status(mut self, connected_sockets: u64) -> Result<Done, HubFailure> {
        let setup = self.setup()?;
        let ledger = self.ledger();
        let sale = ledger.settings()?;
        let classes = ledger.availability()?;
        let active_holds = ledger.store().active_hold_count().map_err(store_failure)?;
        let admission = self.admission()?;
        let store = &mut self.waitroom;
        let minute_ago = self.now - 60_000;
        let waitroom = match (
            store.load_state().map_err(Self::waitroom_failure)?,
            store.load_config().map_err(Self::waitroom_failure)?,
        ) {
            (Some(state), Some(config)) => Some(WaitroomStatus {
                admitted_last_minute: store
                    .admitted_since(minute_ago)
                    .map_err(Self::waitroom_failure)?,
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
        let waitroom = match admission {
            Some(hub) => Some(admission::admission_status(&hub, self.now)),
            None => waitroom,
        };
        let status = HubStatus {
            event_id: setup.as_ref().map(|s| s.event_id.clone()),
            event_status: setup.as_ref().map(|s| s.status),
            sale_state: sale.state,
            waitroom,
            active_holds,
            classes,
            outbox_backlog: self.hub.backlog().map_err(store_failure)?,
            connected_sockets,
        };
        let reply = json(&status);
        self.done(reply)
    }
}

/// Views of many fans' latest sessions (read-only; for the pushes after the head moved).
pub fn queued_views<'u, W: WaitroomStore>(
    store: W,
    user_ids: impl IntoIterator<Item = &'u str>,
    now: i64,
) -> Result<Vec<(&'u str, SessionView)>, HubFailure> {
    let mut room = Waitroom::new(store);
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

/// When the alarm must fire next, from what is stored: hold expiry, waitroom wake-up, outbox.
pub fn next_alarm_at<L, H>(ledger: L, hub: &H) -> Result<Option<i64>, HubFailure>
where
    L: LedgerStore,
    H: HubMetaStore + OutboxStore,
{
    Ok(next_alarm(
        Ledger::new(ledger).next_expiry()?,
        hub.waitroom_wake_at().map_err(store_failure)?,
        hub.next_attempt_at().map_err(store_failure)?,
    ))
}
