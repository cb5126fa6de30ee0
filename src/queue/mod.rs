//! Queue consumers and scheduled jobs: where the saga continues after a webhook, and where
//! domain events are recorded. Messages are acknowledged one by one so a poison message is
//! retried (and finally dead-lettered) without holding back the rest of its batch.

use worker::{console_log, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder};

pub async fn consume(batch: MessageBatch<serde_json::Value>, _env: Env) -> worker::Result<()> {
    let queue = batch.queue();
    for message in batch.messages()? {
        let kind = message
            .body()
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_string);
        match kind {
            Some(kind) => {
                console_log!(
                    "{}",
                    serde_json::json!({"level":"info","msg":"queue message","queue":queue,"type":kind,"id":message.id()})
                );
                message.ack();
            }
            None => {
                // Not one of ours: retry with back-off; after max_retries it lands in the DLQ.
                console_log!(
                    "{}",
                    serde_json::json!({"level":"warn","msg":"untyped queue message","queue":queue,"id":message.id()})
                );
                message.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(5)
                        .build(),
                );
            }
        }
    }
    Ok(())
}

pub async fn on_schedule(cron: String, scheduled_at: f64, _env: Env) {
    console_log!(
        "{}",
        serde_json::json!({"level":"info","msg":"scheduled","cron":cron,"scheduledAt":scheduled_at})
    );
}
