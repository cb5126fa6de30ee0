//! [`Waitroom`]: the state machine, one command at a time over a [`WaitroomStore`].

use super::fenwick::{self, FenwickIndex};
use super::*;

/// The waitroom of one event over its store.
pub struct Waitroom<S> {
    store: S,
}

/// The working copy of one command: loaded once, saved once.
struct Step {
    now: i64,
    config: WaitroomConfig,
    state: WaitroomState,
    loaded: Option<WaitroomState>,
    effects: Vec<WaitroomEffect>,
    head_moved: bool,
}

impl Step {
    fn publish(&mut self, event: WaitroomEvent) {
        self.effects.push(WaitroomEffect::Publish(event));
    }
}

/// What a command decided: the session it concerned and, when refused, why.
struct Handled {
    session: Option<WaitroomSession>,
    rejection: Option<WaitroomRejection>,
}

impl Handled {
    fn accepted(session: Option<WaitroomSession>) -> Self {
        Self {
            session,
            rejection: None,
        }
    }

    fn rejected(rejection: WaitroomRejection, session: Option<WaitroomSession>) -> Self {
        Self {
            session,
            rejection: Some(rejection),
        }
    }
}

type WaitroomResult<T, S> = Result<T, WaitroomError<<S as FenwickNodes>::Error>>;

fn decrement<E: std::error::Error + 'static>(
    counter: &mut u64,
    what: &'static str,
) -> Result<(), WaitroomError<E>> {
    *counter = counter.checked_sub(1).ok_or(WaitroomError::Corrupt(what))?;
    Ok(())
}

impl<S: WaitroomStore> Waitroom<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// Applies one command at `now` (unix ms) for a shell that knows nothing about sockets.
    pub fn apply(
        &mut self,
        command: WaitroomCommand,
        now: i64,
    ) -> WaitroomResult<WaitroomOutcome, S> {
        self.apply_with_presence(command, now, &NobodyConnected)
    }

    /// Applies one command at `now`; `presence` lets the admission tick keep connected fans.
    ///
    /// Every command first does the time-driven upkeep (observe closure and expire the closed
    /// queue, open the sale and shuffle the pre-queue, expire unused checkouts), so whichever
    /// command arrives first after a deadline sees the same state the alarm would have made.
    pub fn apply_with_presence(
        &mut self,
        command: WaitroomCommand,
        now: i64,
        presence: &dyn Presence,
    ) -> WaitroomResult<WaitroomOutcome, S> {
        let mut step = match &command {
            WaitroomCommand::Configure {
                event_id,
                config,
                shuffle_seed,
            } => self.begin_configure(event_id, config, *shuffle_seed, now)?,
            _ => self.begin(now)?,
        };
        self.upkeep(&mut step)?;
        let handled = match command {
            WaitroomCommand::Configure { .. } => Handled::accepted(None),
            WaitroomCommand::Join {
                user_id,
                session_id,
            } => self.join(&mut step, user_id, session_id)?,
            WaitroomCommand::Leave { user_id } => self.leave(&mut step, &user_id)?,
            WaitroomCommand::Touch { user_id } => self.touch(&mut step, &user_id)?,
            WaitroomCommand::AdmissionTick => {
                self.admission_tick(&mut step, presence)?;
                Handled::accepted(None)
            }
            WaitroomCommand::BindOrder {
                session_id,
                user_id,
                order_id,
            } => self.bind_order(&mut step, &session_id, &user_id, order_id)?,
            WaitroomCommand::CheckoutResolved { order_id, outcome } => {
                self.checkout_resolved(&mut step, &order_id, outcome)?
            }
            WaitroomCommand::UnbindOrder { order_id } => self.unbind_order(&mut step, &order_id)?,
            WaitroomCommand::HoldExpired { order_id } => self.hold_expired(&mut step, &order_id)?,
        };
        self.finish(step, handled)
    }

    /// The user's latest session as the API shows it at `now`, without changing anything.
    pub fn view_of_user(
        &mut self,
        user_id: &str,
        now: i64,
    ) -> WaitroomResult<Option<WaitroomSessionView>, S> {
        let Some(session) = self.store.latest_session_of_user(user_id)? else {
            return Ok(None);
        };
        self.view_at(&session, now).map(Some)
    }

    /// Many fans' latest sessions at `now` (for the pushes after [`WaitroomEffect::HeadMoved`]):
    /// config and state are read once, then each fan costs one session read and one prefix sum.
    pub fn views_of_users<'u>(
        &mut self,
        user_ids: impl IntoIterator<Item = &'u str>,
        now: i64,
    ) -> WaitroomResult<Vec<(&'u str, Option<WaitroomSessionView>)>, S> {
        let config = self
            .store
            .load_config()?
            .ok_or(WaitroomError::NotConfigured)?;
        let state = self
            .store
            .load_state()?
            .ok_or(WaitroomError::NotConfigured)?;
        let mut views = Vec::new();
        for user_id in user_ids {
            let view = match self.store.latest_session_of_user(user_id)? {
                Some(session) => Some(self.view(&session, &config, &state, now)?),
                None => None,
            };
            views.push((user_id, view));
        }
        Ok(views)
    }

    /// A session by id as the API shows it at `now`, without changing anything.
    pub fn view_of_session(
        &mut self,
        session_id: &str,
        now: i64,
    ) -> WaitroomResult<Option<WaitroomSessionView>, S> {
        let Some(session) = self.store.session(session_id)? else {
            return Ok(None);
        };
        self.view_at(&session, now).map(Some)
    }

    fn view_at(
        &mut self,
        session: &WaitroomSession,
        now: i64,
    ) -> WaitroomResult<WaitroomSessionView, S> {
        let config = self
            .store
            .load_config()?
            .ok_or(WaitroomError::NotConfigured)?;
        let state = self
            .store
            .load_state()?
            .ok_or(WaitroomError::NotConfigured)?;
        self.view(session, &config, &state, now)
    }

    fn begin(&mut self, now: i64) -> WaitroomResult<Step, S> {
        let config = self
            .store
            .load_config()?
            .ok_or(WaitroomError::NotConfigured)?;
        let state = self
            .store
            .load_state()?
            .ok_or(WaitroomError::NotConfigured)?;
        Ok(Step {
            now,
            config,
            loaded: Some(state.clone()),
            state,
            effects: Vec::new(),
            head_moved: false,
        })
    }

    fn begin_configure(
        &mut self,
        event_id: &str,
        config: &WaitroomConfig,
        shuffle_seed: u64,
        now: i64,
    ) -> WaitroomResult<Step, S> {
        config.validate().map_err(WaitroomError::InvalidConfig)?;
        let loaded = self.store.load_state()?;
        let state = match &loaded {
            Some(state) if state.event_id != event_id => {
                return Err(WaitroomError::EventMismatch {
                    configured: state.event_id.clone(),
                    requested: event_id.to_owned(),
                });
            }
            Some(state) => state.clone(),
            None => WaitroomState::new(event_id.to_owned(), shuffle_seed),
        };
        self.store.save_config(config)?;
        Ok(Step {
            now,
            config: config.clone(),
            state,
            loaded,
            effects: Vec::new(),
            head_moved: false,
        })
    }

    fn upkeep(&mut self, step: &mut Step) -> WaitroomResult<(), S> {
        if step.state.closed.is_none() {
            if let Some(reason) = step.config.closure_at(step.now) {
                step.state.closed = Some(reason);
                step.publish(WaitroomEvent::QueueClosed {
                    event_id: step.state.event_id.clone(),
                    reason,
                    at: step.now,
                });
            }
        }
        if let Some(reason) = step.state.closed {
            self.drain_closed_queue(step, reason)?;
        } else if !step.state.sale_opened && step.now >= step.config.sale_starts_at {
            self.open_sale(step)?;
        }
        self.expire_unused_checkouts(step)
    }

    /// Places the pre-queue in a uniformly random order: seqs `next_seq..` (1.. in practice).
    fn open_sale(&mut self, step: &mut Step) -> WaitroomResult<(), S> {
        let mut join_numbers = if step.state.prequeued > 0 {
            self.store.prequeue_join_numbers()?
        } else {
            Vec::new()
        };
        if join_numbers.len() as u64 != step.state.prequeued {
            return Err(WaitroomError::Corrupt(
                "pre-queue count differs from its rows",
            ));
        }
        shuffle_prequeue(&mut join_numbers, step.state.shuffle_seed);
        let first_seq = step.state.next_seq;
        let count = join_numbers.len() as u64;
        let next_seq = first_seq
            .checked_add(count)
            .filter(|next| *next - 1 <= fenwick::MAX_INDEX)
            .ok_or(WaitroomError::QueueFull)?;
        let assignments: Vec<SeqAssignment> = join_numbers
            .iter()
            .zip(first_seq..)
            .map(|(join_no, seq)| SeqAssignment {
                join_no: *join_no,
                seq,
            })
            .collect();
        for chunk in assignments.chunks(SHUFFLE_WRITE_CHUNK) {
            self.store.assign_seqs(chunk)?;
        }
        step.state.next_seq = next_seq;
        step.state.queued += count;
        step.state.prequeued = 0;
        step.state.sale_opened = true;
        step.head_moved |= count > 0;
        step.publish(WaitroomEvent::SaleOpened {
            event_id: step.state.event_id.clone(),
            shuffled: count,
            shuffle_seed: step.state.shuffle_seed,
            at: step.now,
        });
        Ok(())
    }

    /// Expires the next batch of sessions still waiting in a closed queue.
    fn drain_closed_queue(
        &mut self,
        step: &mut Step,
        reason: ClosedReason,
    ) -> WaitroomResult<(), S> {
        let mut batch = Vec::new();
        if step.state.prequeued > 0 {
            batch = self.store.prequeued_sessions(CLOSE_DRAIN_BATCH)?;
        }
        let room = CLOSE_DRAIN_BATCH.saturating_sub(batch.len() as u64);
        if room > 0 && step.state.queued > 0 {
            batch.extend(self.store.queue_head(0, room)?);
        }
        for mut session in batch {
            self.remove_from_queue(step, &session)?;
            self.end_as_expired(step, &mut session, reason.into())?;
        }
        Ok(())
    }

    fn expire_unused_checkouts(&mut self, step: &mut Step) -> WaitroomResult<(), S> {
        if step.state.slots_in_use == 0 {
            return Ok(());
        }
        let overdue = self
            .store
            .overdue_checkouts(step.now, CHECKOUT_EXPIRY_BATCH)?;
        for mut session in overdue {
            decrement(
                &mut step.state.slots_in_use,
                "checkout slot count underflow",
            )?;
            self.end_as_expired(step, &mut session, SessionEndReason::CheckoutTokenExpired)?;
        }
        Ok(())
    }

    fn join(
        &mut self,
        step: &mut Step,
        user_id: String,
        session_id: String,
    ) -> WaitroomResult<Handled, S> {
        if step.state.closed.is_some() {
            return Ok(Handled::rejected(WaitroomRejection::SaleNotOpen, None));
        }
        if let Some(mut existing) = self.store.latest_session_of_user(&user_id)? {
            if existing.status.is_live() {
                self.mark_seen(step, &mut existing)?;
                return Ok(Handled::accepted(Some(existing)));
            }
        }
        if self.store.session(&session_id)?.is_some() {
            return Ok(Handled::rejected(
                WaitroomRejection::DuplicateSessionId,
                None,
            ));
        }
        let seq = if step.state.sale_opened {
            let seq = step.state.next_seq;
            FenwickIndex::new(seq).ok_or(WaitroomError::QueueFull)?;
            step.state.next_seq += 1;
            step.state.queued += 1;
            Some(seq)
        } else {
            step.state.prequeued += 1;
            None
        };
        let join_no = step.state.next_join_no;
        step.state.next_join_no += 1;
        let session = WaitroomSession {
            session_id,
            user_id,
            join_no,
            seq,
            status: SessionStatus::Queued,
            joined_at: step.now,
            last_seen_at: step.now,
            admitted_at: None,
            checkout_expires_at: None,
            order_id: None,
            ended_at: None,
            end_reason: None,
        };
        self.store.put_session(&session)?;
        step.publish(WaitroomEvent::QueueJoined {
            event_id: step.state.event_id.clone(),
            session: session.clone(),
            at: step.now,
        });
        Ok(Handled::accepted(Some(session)))
    }

    fn leave(&mut self, step: &mut Step, user_id: &str) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.latest_session_of_user(user_id)? else {
            return Ok(Handled::accepted(None));
        };
        match session.status {
            // A closed queue's sessions are already over; the drain records it.
            SessionStatus::Queued if step.state.closed.is_some() => {}
            SessionStatus::Queued => {
                self.remove_from_queue(step, &session)?;
                self.end_as_left(step, &mut session)?;
            }
            SessionStatus::Admitted if session.order_id.is_some() => {
                // The slot belongs to the pending order until the saga resolves it.
                return Ok(Handled::rejected(
                    WaitroomRejection::CheckoutInProgress,
                    Some(session),
                ));
            }
            SessionStatus::Admitted => {
                decrement(
                    &mut step.state.slots_in_use,
                    "checkout slot count underflow",
                )?;
                self.end_as_left(step, &mut session)?;
            }
            SessionStatus::Completed | SessionStatus::Expired | SessionStatus::Left => {}
        }
        Ok(Handled::accepted(Some(session)))
    }

    fn touch(&mut self, step: &mut Step, user_id: &str) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.latest_session_of_user(user_id)? else {
            return Ok(Handled::accepted(None));
        };
        if step.state.closed.is_none() {
            self.mark_seen(step, &mut session)?;
        }
        Ok(Handled::accepted(Some(session)))
    }

    /// Records a sighting of a queued fan, at most once per [`TOUCH_WRITE_INTERVAL_MS`].
    fn mark_seen(&mut self, step: &Step, session: &mut WaitroomSession) -> WaitroomResult<(), S> {
        if session.status == SessionStatus::Queued
            && step.now.saturating_sub(session.last_seen_at) >= TOUCH_WRITE_INTERVAL_MS
        {
            session.last_seen_at = step.now;
            self.store.put_session(session)?;
        }
        Ok(())
    }

    /// Admits up to `min(free slots, admissionBatch)` fans in seq order, skipping idle ones.
    fn admission_tick(
        &mut self,
        step: &mut Step,
        presence: &dyn Presence,
    ) -> WaitroomResult<(), S> {
        step.state.last_tick_at = Some(step.now);
        if step.state.closed.is_some() || !step.state.sale_opened {
            return Ok(());
        }
        let wanted = step
            .state
            .free_slots(&step.config)
            .min(u64::from(step.config.admission_batch));

        // Plan: read the head until enough fans are found, deciding each; nothing written yet.
        let idle_before = step.now.saturating_sub(step.config.idle_timeout_ms());
        let mut plan: Vec<(WaitroomSession, bool)> = Vec::new();
        let mut admitted = 0u64;
        let mut scanned = 0u64;
        let mut after_seq = 0u64;
        while admitted < wanted && scanned < HEAD_SCAN_LIMIT {
            let limit = (wanted - admitted).min(HEAD_SCAN_LIMIT - scanned);
            let head = self.store.queue_head(after_seq, limit)?;
            if head.is_empty() {
                break;
            }
            for session in head {
                scanned += 1;
                after_seq = session.seq.unwrap_or(after_seq);
                let idle =
                    session.last_seen_at <= idle_before && !presence.is_connected(&session.user_id);
                admitted += u64::from(!idle);
                plan.push((session, !idle));
                if admitted >= wanted {
                    break;
                }
            }
        }

        // Write.
        let expires_at = step.now.saturating_add(step.config.checkout_ttl_ms());
        for (mut session, admit) in plan {
            self.remove_from_queue(step, &session)?;
            if !admit {
                self.end_as_expired(step, &mut session, SessionEndReason::IdleAtHead)?;
                continue;
            }
            session.status = SessionStatus::Admitted;
            session.admitted_at = Some(step.now);
            session.checkout_expires_at = Some(expires_at);
            self.store.put_session(&session)?;
            step.state.slots_in_use += 1;
            step.publish(WaitroomEvent::QueueReady {
                event_id: step.state.event_id.clone(),
                session: session.clone(),
                at: step.now,
            });
            step.effects.push(WaitroomEffect::Admitted { session });
        }
        if admitted > 0 {
            self.record_admissions(step, admitted);
        }
        Ok(())
    }

    /// Smooths admissions per second over the gaps between admitting ticks.
    fn record_admissions(&self, step: &mut Step, admitted: u64) {
        if let Some(previous) = step.state.last_admission_at {
            let gap_ms = step.now.saturating_sub(previous).max(1);
            let measured = admitted as f64 * 1_000.0 / gap_ms as f64;
            step.state.admission_rate = Some(match step.state.admission_rate {
                Some(rate) => rate + RATE_SMOOTHING * (measured - rate),
                None => measured,
            });
        }
        step.state.last_admission_at = Some(step.now);
    }

    fn bind_order(
        &mut self,
        step: &mut Step,
        session_id: &str,
        user_id: &str,
        order_id: String,
    ) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.session(session_id)? else {
            return Ok(Handled::rejected(WaitroomRejection::SessionNotFound, None));
        };
        if session.user_id != user_id {
            // Someone else's session: say nothing about it.
            return Ok(Handled::rejected(
                WaitroomRejection::CheckoutNotActive,
                None,
            ));
        }
        if session.order_id.as_deref() == Some(order_id.as_str()) {
            // A retried order creation: already bound.
            return Ok(Handled::accepted(Some(session)));
        }
        let refusal = if session.status != SessionStatus::Admitted {
            Some(WaitroomRejection::CheckoutNotActive)
        } else if session.order_id.is_some() {
            Some(WaitroomRejection::CheckoutAlreadyBound)
        } else if session.checkout_expires_at.is_none_or(|at| step.now >= at) {
            // The token's own expiry, checked here too: an overdue checkout may not be swept yet.
            Some(WaitroomRejection::CheckoutNotActive)
        } else if self.store.session_by_order(&order_id)?.is_some() {
            Some(WaitroomRejection::OrderAlreadyBound)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Ok(Handled::rejected(refusal, Some(session)));
        }
        session.order_id = Some(order_id);
        self.store.put_session(&session)?;
        Ok(Handled::accepted(Some(session)))
    }

    fn checkout_resolved(
        &mut self,
        step: &mut Step,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.session_by_order(order_id)? else {
            return Ok(Handled::accepted(None));
        };
        if session.status != SessionStatus::Admitted {
            // A redelivery: the slot was freed the first time.
            return Ok(Handled::accepted(Some(session)));
        }
        decrement(
            &mut step.state.slots_in_use,
            "checkout slot count underflow",
        )?;
        let reason = match outcome {
            CheckoutOutcome::Completed => {
                session.status = SessionStatus::Completed;
                session.ended_at = Some(step.now);
                session.end_reason = Some(SessionEndReason::Completed);
                self.store.put_session(&session)?;
                step.publish(WaitroomEvent::CheckoutCompleted {
                    event_id: step.state.event_id.clone(),
                    session: session.clone(),
                    at: step.now,
                });
                return Ok(Handled::accepted(Some(session)));
            }
            CheckoutOutcome::Failed => SessionEndReason::OrderFailed,
            CheckoutOutcome::Cancelled => SessionEndReason::OrderCancelled,
            CheckoutOutcome::Expired => SessionEndReason::OrderExpired,
        };
        self.end_as_expired(step, &mut session, reason)?;
        Ok(Handled::accepted(Some(session)))
    }

    fn hold_expired(&mut self, step: &mut Step, order_id: &str) -> WaitroomResult<Handled, S> {
        let Some(session) = self.store.session_by_order(order_id)? else {
            return Ok(Handled::accepted(None));
        };
        let time_left = session.checkout_expires_at.is_some_and(|at| step.now < at);
        if session.status != SessionStatus::Admitted || time_left {
            return Ok(Handled::accepted(Some(session)));
        }
        self.checkout_resolved(step, order_id, CheckoutOutcome::Expired)
    }

    fn unbind_order(&mut self, step: &mut Step, order_id: &str) -> WaitroomResult<Handled, S> {
        let Some(mut session) = self.store.session_by_order(order_id)? else {
            // Never bound, or already unbound (a redelivery): nothing to give back.
            return Ok(Handled::accepted(None));
        };
        if session.status != SessionStatus::Admitted {
            // The checkout already ended; its record keeps the order it ended with.
            return Ok(Handled::accepted(Some(session)));
        }
        session.order_id = None;
        if session.checkout_expires_at.is_none_or(|at| step.now >= at) {
            // The token ran out while the order held the slot: without the order nothing holds
            // it any more, so it goes now rather than on the next sweep.
            decrement(
                &mut step.state.slots_in_use,
                "checkout slot count underflow",
            )?;
            self.end_as_expired(step, &mut session, SessionEndReason::CheckoutTokenExpired)?;
        } else {
            self.store.put_session(&session)?;
        }
        Ok(Handled::accepted(Some(session)))
    }

    /// Counts a queued session out of the queue: a departure in the Fenwick tree moves every
    /// fan behind it up by one.
    fn remove_from_queue(
        &mut self,
        step: &mut Step,
        session: &WaitroomSession,
    ) -> WaitroomResult<(), S> {
        match session.seq {
            Some(seq) => {
                let index =
                    FenwickIndex::new(seq).ok_or(WaitroomError::Corrupt("seq outside the tree"))?;
                fenwick::add(&mut self.store, index, 1)?;
                decrement(&mut step.state.queued, "queued count underflow")?;
                step.head_moved = true;
            }
            None => decrement(&mut step.state.prequeued, "pre-queue count underflow")?,
        }
        Ok(())
    }

    fn end_as_expired(
        &mut self,
        step: &mut Step,
        session: &mut WaitroomSession,
        reason: SessionEndReason,
    ) -> WaitroomResult<(), S> {
        session.status = SessionStatus::Expired;
        session.ended_at = Some(step.now);
        session.end_reason = Some(reason);
        self.store.put_session(session)?;
        step.publish(WaitroomEvent::SessionExpired {
            event_id: step.state.event_id.clone(),
            session: session.clone(),
            reason,
            at: step.now,
        });
        step.effects.push(WaitroomEffect::Expired {
            session: session.clone(),
        });
        Ok(())
    }

    fn end_as_left(
        &mut self,
        step: &mut Step,
        session: &mut WaitroomSession,
    ) -> WaitroomResult<(), S> {
        session.status = SessionStatus::Left;
        session.ended_at = Some(step.now);
        session.end_reason = Some(SessionEndReason::Left);
        self.store.put_session(session)?;
        step.publish(WaitroomEvent::QueueLeft {
            event_id: step.state.event_id.clone(),
            session: session.clone(),
            at: step.now,
        });
        Ok(())
    }

    fn finish(&mut self, mut step: Step, handled: Handled) -> WaitroomResult<WaitroomOutcome, S> {
        if step.head_moved {
            step.effects.push(WaitroomEffect::HeadMoved {
                queue_length: step.state.queued,
            });
        }
        let wake = self.next_wake_up(&step)?;
        step.effects.push(WaitroomEffect::NextWakeUp(wake));
        if step.loaded.as_ref() != Some(&step.state) {
            self.store.save_state(&step.state)?;
        }
        let view = match handled.session {
            Some(session) => Some(self.view(&session, &step.config, &step.state, step.now)?),
            None => None,
        };
        Ok(WaitroomOutcome {
            session: view,
            rejection: handled.rejection,
            effects: step.effects,
        })
    }

    /// The earliest moment something is due: the closed queue's drain, sale start for a
    /// pre-queue, the next admission tick (only while someone waits and a slot is free; a freed
    /// slot comes with a command that recomputes this), an unused checkout's expiry, sale end.
    fn next_wake_up(&mut self, step: &Step) -> WaitroomResult<Option<i64>, S> {
        let state = &step.state;
        let now = step.now;
        let waiting = state.queued + state.prequeued > 0;
        let mut due: Option<i64> = None;
        let mut consider = |at: i64| due = Some(due.map_or(at, |d: i64| d.min(at)));
        if state.closed.is_some() {
            if waiting {
                consider(now);
            }
        } else {
            if waiting {
                consider(step.config.sale_ends_at);
            }
            if !state.sale_opened {
                if state.prequeued > 0 {
                    consider(step.config.sale_starts_at.max(now));
                }
            } else if state.queued > 0
                && state.free_slots(&step.config) > 0
                && step.config.admission_batch > 0
            {
                // From the last tick, not from now: a stream of joins must not keep pushing the
                // alarm back.
                consider(
                    state
                        .last_tick_at
                        .map_or(now, |t| t.saturating_add(TICK_INTERVAL_MS).max(now)),
                );
            }
        }
        if state.slots_in_use > 0 {
            if let Some(at) = self.store.earliest_checkout_expiry()? {
                consider(at.max(now));
            }
        }
        Ok(due)
    }

    fn view(
        &mut self,
        session: &WaitroomSession,
        config: &WaitroomConfig,
        state: &WaitroomState,
        now: i64,
    ) -> WaitroomResult<WaitroomSessionView, S> {
        let closure = state.closed.or_else(|| config.closure_at(now));
        let (status, end_reason) = match (session.status, closure) {
            (SessionStatus::Queued, Some(reason)) => (SessionStatus::Expired, Some(reason.into())),
            (status, _) => (status, session.end_reason),
        };
        let queue_length = if closure.is_some() {
            0
        } else if state.sale_opened {
            state.queued
        } else {
            state.prequeued
        };
        let position = match (status, session.seq) {
            (SessionStatus::Queued, Some(seq)) => Some(self.position_of(seq)?),
            _ => None,
        };
        Ok(WaitroomSessionView {
            session_id: session.session_id.clone(),
            event_id: state.event_id.clone(),
            status,
            position,
            queue_length,
            estimated_wait_seconds: position
                .and_then(|p| estimated_wait_seconds(p, state.admission_rate)),
            checkout_expires_at: if status == SessionStatus::Admitted {
                session.checkout_expires_at
            } else {
                None
            },
            end_reason,
        })
    }

    /// 1-based place of a queued seq: everyone with a smaller seq who has not departed, plus one.
    fn position_of(&mut self, seq: u64) -> WaitroomResult<u64, S> {
        let departed = fenwick::prefix_sum(&mut self.store, seq.saturating_sub(1))?;
        u64::try_from(departed)
            .ok()
            .and_then(|d| seq.checked_sub(d))
            .filter(|p| *p >= 1)
            .ok_or(WaitroomError::Corrupt(
                "more departures ahead than sessions",
            ))
    }
}

/// Seconds until a fan at `position` is admitted at the measured rate; `None` before a rate.
pub fn estimated_wait_seconds(position: u64, admissions_per_second: Option<f64>) -> Option<u64> {
    let rate = admissions_per_second.filter(|r| r.is_finite() && *r > 0.0)?;
    Some((position as f64 / rate).ceil() as u64)
}
