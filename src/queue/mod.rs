//! Queue consumers and the cron job. Messages are acknowledged one by one, so a poison
//! message is retried with back-off (and finally dead-lettered by the queue's `max_retries`)
//! without holding back the rest of its batch.

mod event_log;
pub mod saga;

use serde_json::json;
use worker::{console_log, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder};

use crate::store::{d1, outbox};

pub async fn consume(batch: MessageBatch<serde_json::Value>, env: Env) -> worker::Result<()> {
    let queue = batch.queue();
    for message in batch.messages()? {
        let body = message.body();
        let outcome = if queue.starts_with("tb-payment-events") {
            saga::handle(&env, body).await
        } else if queue.starts_with("tb-domain-events") {
            event_log::record(&env, body).await
        } else {
            Err(crate::http::ApiError::internal(format!(
                "no consumer for queue {queue}"
            )))
        };
        match outcome {
            Ok(()) => message.ack(),
            Err(e) => {
                console_log!(
                    "{}",
                    json!({
                        "level": "error", "msg": "queue message failed", "queue": queue,
                        "messageId": message.id(), "type": body.get("type"), "orderId": body.get("orderId"),
                        "code": e.code(), "error": e.to_string(),
                    })
                );
                message.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(2)
                        .build(),
                );
            }
        }
    }
    Ok(())
}

/// Every minute: relay what the outbox still holds, then sweep stuck checkouts.
pub async fn on_schedule(cron: String, scheduled_at: f64, env: Env) {
    let now = scheduled_at as i64;
    let relayed = match d1::db(&env) {
        Ok(db) => outbox::relay(&env, &db, now, 200, None).await,
        Err(e) => Err(e),
    };
    let swept = match saga::sweep_stuck_checkouts(&env, now).await {
        Ok(n) => saga::sweep_expired_holds(&env, now).await.map(|m| n + m),
        Err(e) => Err(e),
    };
    console_log!(
        "{}",
        json!({
            "level": if relayed.is_ok() && swept.is_ok() { "info" } else { "error" },
            "msg": "scheduled", "cron": cron,
            "relayed": relayed.as_ref().ok(), "relayError": relayed.as_ref().err().map(|e| e.to_string()),
            "swept": swept.as_ref().ok(), "sweepError": swept.as_ref().err().map(|e| e.to_string()),
        })
    );
}
