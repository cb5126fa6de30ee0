//! Queue consumers and the cron job. Messages are acknowledged one by one, so a poison
//! message is retried with back-off (and finally dead-lettered by the queue's `max_retries`)
//! without holding back the rest of its batch.
//!
//! Queue names carry the environment (`tb-payment-events-production`); a name ending in `-dlq`
//! is a dead-letter queue, whose messages are recorded in D1 (`dead_letters`) for operators.

mod dead_letters;
mod event_log;
mod mail;
mod refunded;
pub mod refunds;
mod saga;

use serde_json::{json, Value};
use worker::{Date, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder};

use crate::config::Settings;
use crate::error::ApiError;
use crate::log::{self, Trace};
use crate::store::{d1, outbox};

/// What a queue's messages are for, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    PaymentEvents,
    DomainEvents,
}

impl QueueKind {
    /// The kind and whether the queue is its dead-letter queue.
    pub fn of(queue: &str) -> Option<(QueueKind, bool)> {
        let (base, dead) = match queue.strip_suffix("-dlq") {
            Some(base) => (base, true),
            None => (queue, false),
        };
        if base.starts_with("tb-payment-events") {
            Some((QueueKind::PaymentEvents, dead))
        } else if base.starts_with("tb-domain-events") {
            Some((QueueKind::DomainEvents, dead))
        } else {
            None
        }
    }

    /// The producer binding (and the `outbox.queue` value) of this kind.
    pub fn binding(self) -> &'static str {
        match self {
            QueueKind::PaymentEvents => "PAYMENT_EVENTS",
            QueueKind::DomainEvents => "DOMAIN_EVENTS",
        }
    }
}

pub async fn consume(batch: MessageBatch<Value>, env: Env) -> worker::Result<()> {
    let queue = batch.queue();
    let kind = QueueKind::of(&queue);
    for message in batch.messages()? {
        let started = Date::now().as_millis();
        let body = message.body();
        let trace = Trace::message(&queue, &message.id());
        let outcome = match kind {
            Some((kind, true)) => {
                dead_letters::record(&env, kind, &queue, &message.id(), body).await
            }
            Some((QueueKind::PaymentEvents, false)) if refunds::handles(body) => {
                refunds::handle(&env, body, &trace).await
            }
            Some((QueueKind::PaymentEvents, false)) => saga::handle(&env, body, &trace).await,
            // Recorded first: a redelivery after a failed take-back records nothing twice.
            Some((QueueKind::DomainEvents, false)) => match event_log::record(&env, body).await {
                Ok(()) if refunded::handles(body) => refunded::take_back(&env, body, &trace).await,
                recorded => recorded,
            },
            None => Err(ApiError::internal(format!("no consumer for queue {queue}"))),
        };
        let fields = json!({
            "type": body.get("type"),
            "eventId": body.get("eventId"),
            "orderId": body.get("orderId"),
            "provider": body.get("provider"),
            "durationMs": Date::now().as_millis().saturating_sub(started),
        });
        match outcome {
            Ok(()) => {
                if matches!(kind, Some((_, true))) {
                    log::error(
                        "message dead-lettered",
                        Some(&trace),
                        with_code(fields, "DEAD_LETTERED"),
                    );
                }
                message.ack()
            }
            Err(e) => {
                let mut fields = with_code(fields, e.code());
                fields["error"] = e.to_string().into();
                log::error("queue message failed", Some(&trace), fields);
                // A dead letter that cannot be recorded waits longer: D1 is likely down, and
                // a dead-letter queue has nowhere further to send it.
                let delay = if matches!(kind, Some((_, true))) {
                    30
                } else {
                    2
                };
                message.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(delay)
                        .build(),
                );
            }
        }
    }
    Ok(())
}

fn with_code(mut fields: Value, code: &str) -> Value {
    fields["code"] = code.into();
    fields
}

/// Every minute: relay what the outbox still holds, then sweep stuck checkouts. A
/// misconfigured deployment is named here too, so it shows in the logs without traffic.
pub async fn on_schedule(cron: String, scheduled_at: f64, env: Env) {
    let started = Date::now().as_millis();
    let now = scheduled_at as i64;
    let trace = Trace::cron(&cron);
    let settings = Settings::from_env(&env);
    if !settings.misconfiguration.is_empty() {
        log::error(
            "service misconfigured",
            Some(&trace),
            json!({
                "code": "SERVICE_MISCONFIGURED",
                "environment": settings.environment.as_str(),
                "misconfiguration": settings.misconfiguration,
            }),
        );
    }
    let relayed = match d1::db(&env) {
        Ok(db) => outbox::relay(&env, &db, now, 200, None).await,
        Err(e) => Err(e),
    };
    let swept = saga::sweep(&env, now, &trace).await;
    let money_back = refunds::on_schedule(&env, now, &trace).await;
    // Mail only where a mail API is configured; development keeps it in the dev mailbox.
    let mailed = match &settings.mail_api {
        Some(api) => match d1::db(&env) {
            Ok(db) => Some(mail::deliver_due(&db, api, now, &trace).await),
            Err(e) => Some(Err(e)),
        },
        None => None,
    };
    let mail_error = mailed.as_ref().and_then(|m| m.as_ref().err());
    let failed = relayed
        .as_ref()
        .err()
        .or(swept.as_ref().err())
        .or(money_back.as_ref().err())
        .or(mail_error);
    log::emit(
        if failed.is_some() {
            log::Level::Error
        } else {
            log::Level::Info
        },
        "scheduled",
        Some(&trace),
        json!({
            "relayed": relayed.as_ref().ok(),
            "relayError": relayed.as_ref().err().map(|e| e.to_string()),
            "swept": swept.as_ref().ok(),
            "sweepError": swept.as_ref().err().map(|e| e.to_string()),
            "refunds": money_back.as_ref().ok(),
            "refundsError": money_back.as_ref().err().map(|e| e.to_string()),
            "mail": mailed.as_ref().and_then(|m| m.as_ref().ok()),
            "mailError": mail_error.map(|e| e.to_string()),
            "code": failed.map(|e| e.code()),
            "durationMs": Date::now().as_millis().saturating_sub(started),
        }),
    );
}
