-- Orders, their items, payments, the outbox, the saga log, idempotency keys, consumer
-- de-duplication and the per-event domain event log.

CREATE TABLE orders (
  id                  TEXT PRIMARY KEY,
  code                TEXT NOT NULL UNIQUE,
  event_id            TEXT NOT NULL,
  user_id             TEXT NOT NULL,
  status              TEXT NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'CANCELLED', 'FAILED')),
  total_amount_cents  INTEGER NOT NULL CHECK (total_amount_cents >= 0),
  currency            TEXT NOT NULL,
  payment_method      TEXT NOT NULL CHECK (payment_method IN ('payos', 'vnpay', 'zalopay', 'sandbox')),
  waitroom_session_id TEXT,
  expires_at          INTEGER NOT NULL,
  -- Set when money arrived but the tickets could not be delivered (stock gone, event
  -- cancelled): the order is visibly owed a refund, never silently dropped.
  refund_status       TEXT CHECK (refund_status IN ('REFUND_REQUIRED', 'REFUNDED')),
  refund_reason       TEXT,
  failure_code        TEXT,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);
CREATE INDEX orders_by_event ON orders (event_id, created_at DESC);
CREATE INDEX orders_pending_by_expiry ON orders (expires_at) WHERE status = 'PENDING';
CREATE INDEX orders_owing_refund ON orders (updated_at) WHERE refund_status = 'REFUND_REQUIRED';

CREATE TABLE order_items (
  order_id        TEXT NOT NULL REFERENCES orders (id),
  ticket_class_id TEXT NOT NULL,
  quantity        INTEGER NOT NULL CHECK (quantity > 0),
  price_cents     INTEGER NOT NULL CHECK (price_cents >= 0),
  PRIMARY KEY (order_id, ticket_class_id)
);

-- One row per payment attempt. `provider_ref` is what the provider sends back in its
-- notifications (PayOS orderCode, VNPay vnp_TxnRef, ZaloPay app_trans_id, sandbox id).
CREATE TABLE payments (
  id               TEXT PRIMARY KEY,
  order_id         TEXT NOT NULL REFERENCES orders (id),
  provider         TEXT NOT NULL,
  provider_ref     TEXT NOT NULL,
  amount           INTEGER NOT NULL,
  currency         TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  payment_url      TEXT,
  provider_txn_id  TEXT,
  provider_payload TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (provider, provider_ref)
);
CREATE INDEX payments_by_order ON payments (order_id);
-- A provider transaction takes effect once, however often its webhook is delivered.
CREATE UNIQUE INDEX payments_by_txn ON payments (provider, provider_txn_id) WHERE provider_txn_id IS NOT NULL;

-- Transactional outbox: written in the same D1 batch as the change it announces, relayed to
-- a queue right after and by the cron job until published.
CREATE TABLE outbox (
  id             TEXT PRIMARY KEY,
  aggregate_type TEXT NOT NULL,
  aggregate_id   TEXT NOT NULL,
  event_type     TEXT NOT NULL,
  queue          TEXT NOT NULL CHECK (queue IN ('PAYMENT_EVENTS', 'DOMAIN_EVENTS')),
  payload        TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  published_at   INTEGER,
  retry_count    INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT
);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;

-- Each completed saga step, so a crash between steps is found and finished or compensated.
CREATE TABLE saga_steps (
  order_id TEXT NOT NULL,
  step     TEXT NOT NULL,
  status   TEXT NOT NULL CHECK (status IN ('DONE', 'COMPENSATED')),
  detail   TEXT,
  at       INTEGER NOT NULL,
  PRIMARY KEY (order_id, step)
);

CREATE TABLE idempotency_keys (
  user_id         TEXT NOT NULL,
  key             TEXT NOT NULL,
  request_hash    TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('IN_FLIGHT', 'DONE')),
  response_status INTEGER,
  response_body   TEXT,
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Queue messages already applied (delivery is at least once).
CREATE TABLE processed_messages (
  message_id   TEXT PRIMARY KEY,
  processed_at INTEGER NOT NULL
);

-- What happened to an event's sale, readable by its organizers.
CREATE TABLE event_log (
  message_id  TEXT PRIMARY KEY,
  event_id    TEXT NOT NULL,
  type        TEXT NOT NULL,
  payload     TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX event_log_by_event ON event_log (event_id, occurred_at);
