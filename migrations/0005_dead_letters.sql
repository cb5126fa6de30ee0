-- Dead-lettered queue messages. Cloudflare Queues offer no depth or browse API a Worker can
-- reach, so each dead-letter queue has a consumer (this Worker) that records every message
-- here and acknowledges it: this table is the DLQ's durable, queryable contents.
--
-- Safe to apply before the code that uses it: a new table that older code never touches.
-- Replay: insert the row's body into `outbox` (README, "Operating an on-sale"); the cron
-- relay publishes it to its queue again and consumers skip ids they already processed.

CREATE TABLE dead_letters (
  -- The queue message id: a redelivered dead letter is recorded once.
  message_id  TEXT PRIMARY KEY,
  -- The dead-letter queue it arrived on (tb-payment-events-production-dlq, ...).
  queue       TEXT NOT NULL,
  -- The producer binding of the queue it was meant for; what `outbox.queue` takes on replay.
  source      TEXT NOT NULL CHECK (source IN ('PAYMENT_EVENTS', 'DOMAIN_EVENTS')),
  -- From the body, when present: the envelope's id, type, event and order.
  body_id     TEXT,
  type        TEXT,
  event_id    TEXT,
  order_id    TEXT,
  body        TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  -- Set by the operator who replayed or dismissed it.
  resolved_at INTEGER
);
CREATE INDEX dead_letters_open ON dead_letters (recorded_at) WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_open_by_event ON dead_letters (event_id) WHERE resolved_at IS NULL;
