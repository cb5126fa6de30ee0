//! The core's side of a sharded waitroom (`eventConfig.waitroom.shards` above 1): the
//! admission state (`domain::admission::hub`) lives in this object beside the ledger, and the
//! operations that touch both (an order binding its checkout and holding its tickets, the
//! saga resolving it, a hold expiring) change both in one transaction. The rounds themselves
//! talk to the shards, so the shell runs them between transactions (`event_hub`).

use super::{json, store_failure, AfterCommit, Core, Done};
use crate::domain::admission::hub::{AdmissionHub, HubRejection, Outgoing};
use crate::domain::admission::place::ShardCount;
use crate::domain::ledger::{LedgerStore, ReserveRequest};
use crate::domain::waitroom::{CheckoutOutcome, ClosedReason, SessionEndReason, WaitroomStore};
use crate::durable::hub_store::{HubMetaStore, OutboxStore};
use crate::durable::protocol::{Ack, EventSetup, HoldReply, HubFailure, WaitroomStatus};

/// How soon the hub sends again what a shard has not acknowledged (settings, checkout ends).
pub const ADMISSION_RETRY_MS: i64 = 1_000;

fn refused(rejection: HubRejection) -> HubFailure {
    match rejection {
        HubRejection::InvalidConfig(why) => HubFailure::validation(why),
        HubRejection::CheckoutInProgress => {
            HubFailure::new("CHECKOUT_IN_PROGRESS", rejection.to_string())
        }
        HubRejection::Mismatch | HubRejection::ShardCountLocked => {
            HubFailure::new("CONFLICT", rejection.to_string())
        }
    }
}

/// The end reason a fan's shard shows for the saga's outcome of their order.
pub fn end_reason(outcome: CheckoutOutcome) -> SessionEndReason {
    match outcome {
        CheckoutOutcome::Completed => SessionEndReason::Completed,
        CheckoutOutcome::Failed => SessionEndReason::OrderFailed,
        CheckoutOutcome::Cancelled => SessionEndReason::OrderCancelled,
        CheckoutOutcome::Expired => SessionEndReason::OrderExpired,
    }
}

/// The operator view's waitroom counters from the admission state.
pub fn admission_status(hub: &AdmissionHub, now: i64) -> WaitroomStatus {
    let config = hub.config();
    let status = hub.status(now, false);
    let closed = if config.cancelled {
        Some(ClosedReason::EventCancelled)
    } else if now >= config.sale_ends_at {
        Some(ClosedReason::SaleEnded)
    } else {
        None
    };
    let prequeue = now < config.sale_starts_at;
    WaitroomStatus {
        queue_length: if prequeue { 0 } else { status.queue_length },
        prequeued: if prequeue { status.queue_length } else { 0 },
        admitted: hub.checkouts().len() as u64,
        slots_in_use: hub.slots_in_use(),
        max_slots: config.max_concurrent_checkouts,
        sale_opened: !prequeue,
        closed,
        admissions_per_second: hub.admission_rate(),
        admitted_last_minute: status.admitted_last_minute,
    }
}

impl<L, W, H> Core<L, W, H>
where
    L: LedgerStore,
    W: WaitroomStore,
    H: HubMetaStore + OutboxStore,
{
    pub(super) fn admission(&self) -> Result<Option<AdmissionHub>, HubFailure> {
        self.hub.admission().map_err(store_failure)
    }

    /// Stores the admission state and the wake-up it needs (the alarm runs the rounds).
    pub(super) fn save_admission(&mut self, hub: &mut AdmissionHub) -> Result<(), HubFailure> {
        self.hub.save_admission(hub).map_err(store_failure)?;
        let wake = hub.wake_at(self.now, ADMISSION_RETRY_MS);
        if let Some(at) = wake {
            self.deadlines.note(at);
        }
        self.hub.set_waitroom_wake_at(wake).map_err(store_failure)
    }

    fn send_to_shards(&mut self, out: impl IntoIterator<Item = Outgoing>) {
        self.after.shard_messages.extend(out);
    }

    /// Creates the admission on the first sync of a sharded waitroom, or applies a change.
    /// The shards hear of it from the alarm, which sends the settings until each acknowledges.
    pub(super) fn sync_admission(
        &mut self,
        setup: &EventSetup,
        shuffle_seed: u64,
    ) -> Result<(), HubFailure> {
        let shards = ShardCount::new(setup.shards)
            .ok_or_else(|| HubFailure::validation("shards must be between 1 and 64"))?;
        let config = setup.waitroom_config();
        let mut hub = match self.admission()? {
            None => {
                AdmissionHub::new(&setup.event_id, shuffle_seed, config, shards).map_err(refused)?
            }
            Some(mut hub) => {
                if hub.config() != &config || hub.shards() != shards {
                    hub.reconfigure(config, shards, self.now).map_err(refused)?;
                }
                hub
            }
        };
        self.save_admission(&mut hub)
    }

    /// [`Core::reserve_for_checkout`] for a sharded waitroom: the bind, then the hold.
    pub(super) fn reserve_for_admitted(
        mut self,
        mut hub: AdmissionHub,
        session_id: String,
        request: ReserveRequest,
    ) -> Result<Done, HubFailure> {
        let now = self.now;
        if let Err(refusal) =
            hub.bind_checkout(&request.user_id, &session_id, &request.order_id, now)
        {
            return self.done(Err(HubFailure::new(
                "CHECKOUT_TOKEN_INVALID",
                refusal.to_string(),
            )));
        }
        self.save_admission(&mut hub)?;
        // A refused hold returns Err, which rolls the bind back with the transaction.
        let hold = self.ledger().reserve(&request, now)?;
        self.done(json(&HoldReply { hold }))
    }

    /// The saga resolved an order: its checkout ends (at-least-once: unknown orders no-op).
    pub(super) fn resolve_admitted_order(
        &mut self,
        hub: &mut AdmissionHub,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> Result<(), HubFailure> {
        let ended = hub.resolve_order(order_id, end_reason(outcome));
        if ended.is_some() {
            self.save_admission(hub)?;
            self.send_to_shards(ended);
        }
        Ok(())
    }

    /// Expired holds of a sharded waitroom: the checkouts whose tokens ran out too end now
    /// (`AdmissionHub::hold_expired`); the saga decides for the others.
    pub(super) fn admitted_holds_expired<'o>(
        &mut self,
        hub: &mut AdmissionHub,
        order_ids: impl Iterator<Item = &'o str>,
    ) -> Result<(), HubFailure> {
        let now = self.now;
        let ended: Vec<Outgoing> = order_ids
            .filter_map(|order_id| hub.hold_expired(order_id, now))
            .collect();
        if !ended.is_empty() {
            self.save_admission(hub)?;
            self.send_to_shards(ended);
        }
        Ok(())
    }

    pub(super) fn unbind_admitted_order(
        mut self,
        mut hub: AdmissionHub,
        order_id: String,
    ) -> Result<Done, HubFailure> {
        let now = self.now;
        let ended = hub.unbind_order(&order_id, now);
        self.save_admission(&mut hub)?;
        self.send_to_shards(ended);
        self.done(json(&Ack::OK))
    }

    /// A shard's first fan after a lull: rounds a second again (no write when already so).
    pub fn wake_admission(mut self) -> Result<Done, HubFailure> {
        if let Some(mut hub) = self.admission()? {
            if hub.wake() {
                self.save_admission(&mut hub)?;
            }
        }
        self.done(json(&Ack::OK))
    }

    /// A fan of a sharded waitroom gives their unused checkout back.
    pub fn leave_checkout(mut self, user_id: String) -> Result<Done, HubFailure> {
        let Some(mut hub) = self.admission()? else {
            return self.done(Err(HubFailure::not_found(
                "this event's waitroom is not sharded",
            )));
        };
        match hub.leave_checkout(&user_id) {
            Ok(ended) => {
                self.save_admission(&mut hub)?;
                self.send_to_shards(ended);
                self.done(json(&Ack::OK))
            }
            Err(rejection) => self.done(Err(refused(rejection))),
        }
    }
}

impl AfterCommit {
    /// Whether anything must reach the shards after commit.
    pub fn has_shard_messages(&self) -> bool {
        !self.shard_messages.is_empty()
    }
}
