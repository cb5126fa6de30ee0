-- Refunds: one row per request to give an order's money back, with its state machine
-- (src/domain/refunds.rs), and the buyer's refund deadline on the event's sale terms.
-- Additive only: older code never reads these.

CREATE TABLE refunds (
  id                 TEXT PRIMARY KEY,
  order_id           TEXT NOT NULL REFERENCES orders (id),
  event_id           TEXT NOT NULL,
  -- The payment that brought the money in (the one refunded).
  payment_id         TEXT NOT NULL,
  provider           TEXT NOT NULL,
  amount_cents       INTEGER NOT NULL CHECK (amount_cents >= 0),
  currency           TEXT NOT NULL,
  status             TEXT NOT NULL CHECK (status IN ('REQUESTED', 'PROCESSING', 'REFUNDED', 'FAILED', 'MANUAL_REQUIRED')),
  reason             TEXT NOT NULL,
  requested_by       TEXT,
  -- Provider errors so far (the retry budget) and "still processing" answers (patience).
  attempts           INTEGER NOT NULL DEFAULT 0,
  status_checks      INTEGER NOT NULL DEFAULT 0,
  -- When the next automatic step is due; NULL while a step runs or once a person must act.
  next_attempt_at    INTEGER,
  provider_refund_id TEXT,
  last_error         TEXT,
  -- What the platform admin who closed it by hand wrote.
  note               TEXT,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL
);
-- A second request for an order finds the refund that is not FAILED; concurrent ones make one.
CREATE UNIQUE INDEX refunds_one_live_per_order ON refunds (order_id) WHERE status <> 'FAILED';
CREATE INDEX refunds_by_status ON refunds (status, updated_at DESC);
CREATE INDEX refunds_by_event ON refunds (event_id, created_at DESC);
-- Refunds whose next step is due (the cron re-sends those whose queue message was lost).
CREATE INDEX refunds_due ON refunds (next_attempt_at) WHERE status IN ('REQUESTED', 'PROCESSING');

-- When reconciliation last asked the provider about a PENDING payment: each run asks about
-- the payments asked least recently, so abandoned ones cannot starve the rest.
ALTER TABLE payments ADD COLUMN reconciled_at INTEGER;
CREATE INDEX payments_to_reconcile ON payments (created_at) WHERE status = 'PENDING';

-- `eventConfig.refundableUntil` (unix ms): buyers may refund until then; NULL = never.
ALTER TABLE event_config ADD COLUMN refundable_until INTEGER;
