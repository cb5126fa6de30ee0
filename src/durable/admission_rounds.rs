//! The event hub's admission rounds over its queue shards (`domain::admission` decides; this
//! sends). A round is: hand out what the shards have not acknowledged (settings, checkout
//! ends, unanswered picks), ask every shard for its head, wait for the reports (resending to
//! the silent ones, leaving out a shard that stays silent), decide, send the picks and settle
//! the answers. Every step that changes the admission state is one transaction on the stored
//! state, never a copy held across an `await`: other requests (orders binding checkouts, the
//! saga ending them) run while the shards are asked.

use std::rc::Rc;
use std::time::Duration;

use futures::future::{join_all, select, Either};
use worker::{Delay, Env, SqlStorage, Storage};

use super::client::{HubCallError, QueueShardClient};
use super::commands::admission::ADMISSION_RETRY_MS;
use super::hub_store::HubMetaStore;
use super::protocol::{Ack, HubFailure};
use super::sql_hub::{forget_admission, AdmissionCache, SqlHubStore};
use super::txn::{transaction_sync, TxnFailure};
use crate::domain::admission::hub::{AdmissionHub, AdmissionRound, Outgoing, RESEND_AFTER_MS};
use crate::domain::admission::protocol::{AdmitAnswer, HeadReport, Moving, ToShard};
use crate::domain::ledger::StoreError;

/// How long one shard call may take before the round treats the shard as silent this time.
const SHARD_CALL_TIMEOUT_MS: u64 = 800;
/// Shard calls in flight at once (64 shards at most, and checkout ends in batches, so a round
/// is one or two waves).
const CALLS_AT_ONCE: usize = 64;

/// What a shard answered to one message.
enum ShardAnswer {
    Report(HeadReport),
    Answer(AdmitAnswer),
    Configured,
    EndApplied(Outgoing),
    Moved(Moving),
    Adopted,
}

/// Runs `work` on the stored admission state in one transaction and stores it back with the
/// wake-up it needs. `Ok(None)`: the event has no sharded waitroom.
pub fn with_admission<T: 'static>(
    storage: &Storage,
    sql: &SqlStorage,
    cache: &AdmissionCache,
    now: i64,
    work: impl FnOnce(&mut AdmissionHub) -> T + 'static,
) -> Result<Option<T>, HubFailure> {
    let sql = sql.clone();
    let kept = Rc::clone(cache);
    let result = transaction_sync(storage, move || {
        let mut store = SqlHubStore::cached(sql, kept);
        let Some(mut hub) = store.admission()? else {
            return Ok::<_, StoreError>(None);
        };
        let out = work(&mut hub);
        store.save_admission(&mut hub)?;
        store.set_waitroom_wake_at(hub.wake_at(now, ADMISSION_RETRY_MS))?;
        Ok(Some(out))
    });
    let detail = match result {
        Ok(out) => return Ok(out),
        Err(TxnFailure::RolledBack(e)) => e.to_string(),
        Err(TxnFailure::Runtime(e)) => e,
    };
    forget_admission(cache);
    Err(HubFailure::internal(format!("admission: {detail}")))
}

/// One hub's conversation with its shards.
pub struct Rounds<'a> {
    pub env: &'a Env,
    pub storage: &'a Storage,
    pub sql: &'a SqlStorage,
    pub cache: &'a AdmissionCache,
    /// When this hub instance started: a shard counts as silent only after the hub has been
    /// up and asking for a whole timeout.
    pub awake_since: i64,
    pub now: fn() -> i64,
}

impl Rounds<'_> {
    fn with<T: 'static>(
        &self,
        work: impl FnOnce(&mut AdmissionHub) -> T + 'static,
    ) -> Result<Option<T>, HubFailure> {
        with_admission(self.storage, self.sql, self.cache, (self.now)(), work)
    }

    /// Sends one message to its shard, with a timeout.
    async fn send(&self, event_id: &str, out: Outgoing) -> Result<ShardAnswer, String> {
        let client =
            QueueShardClient::new(self.env, event_id, out.to).map_err(|e| e.to_string())?;
        let call = async {
            match &out.message {
                ToShard::Heads { .. } => client
                    .admission::<HeadReport>(&out.message)
                    .await
                    .map(ShardAnswer::Report),
                ToShard::Admit { .. } => client
                    .admission::<AdmitAnswer>(&out.message)
                    .await
                    .map(ShardAnswer::Answer),
                ToShard::Configure { .. } => client
                    .admission::<Ack>(&out.message)
                    .await
                    .map(|_| ShardAnswer::Configured),
                ToShard::CheckoutEnded { .. } | ToShard::CheckoutsEnded { .. } => client
                    .admission::<Ack>(&out.message)
                    .await
                    .map(|_| ShardAnswer::EndApplied(out.clone())),
                ToShard::HandOver { .. } => client
                    .admission::<Moving>(&out.message)
                    .await
                    .map(ShardAnswer::Moved),
                ToShard::Adopt { .. } => client
                    .admission::<Ack>(&out.message)
                    .await
                    .map(|_| ShardAnswer::Adopted),
            }
        };
        let timeout = Delay::from(Duration::from_millis(SHARD_CALL_TIMEOUT_MS));
        let answer = match select(Box::pin(call), timeout).await {
            Either::Left((answer, _)) => answer.map_err(|e: HubCallError| e.to_string()),
            Either::Right(_) => Err(format!("shard {} did not answer in time", out.to.0)),
        };
        answer
    }

    /// Sends every message concurrently and settles every answer in one transaction. Returns
    /// the round (the reports are kept in it) and how many shards acknowledged settings.
    async fn exchange(
        &self,
        event_id: &str,
        out: Vec<Outgoing>,
        round: Option<AdmissionRound>,
        settings: Option<u64>,
    ) -> Result<Option<AdmissionRound>, HubFailure> {
        if out.is_empty() {
            return Ok(round);
        }
        // A few at a time: each call holds a timer, and the runtime caps active timers.
        let mut answers: Vec<Result<ShardAnswer, String>> = Vec::with_capacity(out.len());
        for wave in out.chunks(CALLS_AT_ONCE) {
            answers.extend(join_all(wave.iter().map(|o| self.send(event_id, o.clone()))).await);
        }
        let mut failures = Vec::new();
        let mut good = Vec::new();
        for answer in answers {
            match answer {
                Ok(answer) => good.push(answer),
                Err(detail) => failures.push(detail),
            }
        }
        if !failures.is_empty() {
            crate::log::warn(
                "queue shard unanswered",
                None,
                serde_json::json!({"code": "SHARD_UNANSWERED", "eventId": event_id,
                    "count": failures.len(), "detail": failures.first()}),
            );
        }
        let settled = self.with(move |hub| {
            let mut round = round;
            let mut configured = 0usize;
            let mut refused = 0usize;
            for answer in good {
                let accepted = match answer {
                    ShardAnswer::Report(report) => match round.as_mut() {
                        Some(round) => hub.accept_report(round, report),
                        None => Ok(()),
                    },
                    ShardAnswer::Answer(answer) => hub.accept_answer(&answer),
                    ShardAnswer::Configured => {
                        configured += 1;
                        Ok(())
                    }
                    ShardAnswer::EndApplied(out) => {
                        match &out.message {
                            ToShard::CheckoutEnded { place, .. } => {
                                hub.end_acknowledged(out.to, place)
                            }
                            ToShard::CheckoutsEnded { ends, .. } => {
                                for end in ends {
                                    hub.end_acknowledged(out.to, &end.place);
                                }
                            }
                            _ => {}
                        }
                        Ok(())
                    }
                    // The hand-over's answers are read by `hand_over`, not settled here.
                    ShardAnswer::Moved(_) | ShardAnswer::Adopted => Ok(()),
                };
                refused += usize::from(accepted.is_err());
            }
            if let Some(version) = settings {
                if configured == usize::from(hub.shards().get()) {
                    hub.settings_acknowledged(version);
                }
            }
            (round, refused)
        })?;
        let Some((round, refused)) = settled else {
            return Ok(None);
        };
        if refused > 0 {
            crate::log::error(
                "shard message refused",
                None,
                serde_json::json!({"code": "SHARD_MISMATCH", "eventId": event_id, "count": refused}),
            );
        }
        Ok(round)
    }

    /// Delivers checkout ends owed after a commit (the admission keeps them until applied,
    /// so one that is lost here goes again with the next round).
    pub async fn deliver(&self, out: Vec<Outgoing>) -> Result<(), HubFailure> {
        let event_id = match out.first().map(|o| &o.message) {
            Some(
                ToShard::CheckoutEnded { event_id, .. } | ToShard::CheckoutsEnded { event_id, .. },
            ) => event_id.clone(),
            _ => return Ok(()),
        };
        self.exchange(&event_id, out, None, None).await.map(|_| ())
    }

    /// A raised count's hand-over: every old shard reports its fans that now belong
    /// elsewhere, each new home adopts them, and only then is it done (the new settings,
    /// sent next, drop them from the old shards). Any shard not answering: tried again from
    /// the next alarm, from the start (each step is idempotent). `Ok(true)`: nothing is due
    /// any more.
    async fn hand_over(&self, event_id: &str) -> Result<bool, HubFailure> {
        let Some(Some(requests)) = self.with(|hub| hub.handover_requests())? else {
            return Ok(true);
        };
        let mut moving = Vec::new();
        for answer in join_all(requests.into_iter().map(|o| self.send(event_id, o))).await {
            match answer {
                Ok(ShardAnswer::Moved(Moving { fans })) => moving.extend(fans),
                _ => return Ok(false),
            }
        }
        let Some(adoptions) = self.with(move |hub| hub.adoptions(moving))? else {
            return Ok(true);
        };
        for answer in join_all(adoptions.into_iter().map(|o| self.send(event_id, o))).await {
            if !matches!(answer, Ok(ShardAnswer::Adopted)) {
                return Ok(false);
            }
        }
        self.with(|hub| hub.handover_done())?;
        Ok(true)
    }

    /// One alarm's admission work. `Ok(false)`: the event's waitroom is not sharded.
    pub async fn run(&self) -> Result<bool, HubFailure> {
        // First what the shards have not acknowledged: the settings (a shard asked for its
        // head before it has them could not answer) and checkout ends.
        let now = (self.now)();
        let owed = self.with(move |hub| {
            hub.expire_checkouts(now);
            let mut out = hub.unacknowledged_ends();
            let settings = hub.unsent_settings().map(|(version, configure)| {
                out.extend(configure);
                version
            });
            (hub.event_id().to_owned(), out, settings)
        })?;
        let Some((event_id, out, settings)) = owed else {
            return Ok(false);
        };
        // A raised count's fans move before the new settings go out (those drop them from
        // their old shards).
        if !self.hand_over(&event_id).await? {
            let ends: Vec<Outgoing> = out
                .into_iter()
                .filter(|o| matches!(o.message, ToShard::CheckoutsEnded { .. }))
                .collect();
            self.exchange(&event_id, ends, None, None).await?;
            return Ok(true);
        }
        self.exchange(&event_id, out, None, settings).await?;
        let now = (self.now)();
        let awake_since = self.awake_since;
        let started = self.with(move |hub| {
            let due = hub.next_round_at(now).is_some_and(|at| at <= now);
            due.then(|| hub.start_round(awake_since, now))
        })?;
        let Some(Some((round, out))) = started else {
            return Ok(true);
        };
        let mut round = self.exchange(&event_id, out, Some(round), None).await?;
        // Wait for the silent shards (resending), until every report is in or the silent ones
        // are left out by the straggler timeout.
        while let Some(current) = round.take() {
            let now = (self.now)();
            let ready_round = current.clone();
            let ready = self
                .with(move |hub| hub.round_ready(&ready_round, now))?
                .unwrap_or(true);
            if ready {
                round = Some(current);
                break;
            }
            Delay::from(Duration::from_millis(RESEND_AFTER_MS as u64)).await;
            let now = (self.now)();
            let mut resent = current;
            let again = self.with(move |hub| {
                let out = hub.resend(&mut resent, now);
                (resent, out)
            })?;
            let Some((resent, out)) = again else {
                return Ok(true);
            };
            round = self.exchange(&event_id, out, Some(resent), None).await?;
        }
        let Some(round) = round else {
            return Ok(true);
        };
        let now = (self.now)();
        let picks = self
            .with(move |hub| hub.decide(round, now))?
            .unwrap_or_default();
        self.exchange(&event_id, picks, None, None).await?;
        Ok(true)
    }
}
