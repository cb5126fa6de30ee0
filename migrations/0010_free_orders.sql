-- Free orders: `orders.payment_method` takes 'free' (an order of an isFree event, COMPLETED in
-- the request that places it, with no payment row). SQLite changes a CHECK only by rebuilding
-- the table: same columns, the one CHECK widened, data copied, indexes made again.
-- order_items, payments and tickets reference orders (id) by name, so they point at the new
-- table once it is renamed. Dropping the old table deletes its rows first, and with foreign
-- keys enforced (D1 always enforces them) each row a child still references counts as a
-- violation. Deferring the checks lets the drop happen: the rows are all back, copied as they
-- were, before the transaction ends, but SQLite never takes a counted violation back, so the
-- count is cleared by switching the deferral off again at the end (SQLite resets it then).
-- Without that last line the migration passes on an empty database and fails on a real one.

PRAGMA defer_foreign_keys = true;

CREATE TABLE orders_0010 (
  id                  TEXT PRIMARY KEY,
  code                TEXT NOT NULL UNIQUE,
  event_id            TEXT NOT NULL,
  user_id             TEXT NOT NULL,
  status              TEXT NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'CANCELLED', 'FAILED')),
  total_amount_cents  INTEGER NOT NULL CHECK (total_amount_cents >= 0),
  currency            TEXT NOT NULL,
  payment_method      TEXT NOT NULL CHECK (payment_method IN ('payos', 'vnpay', 'zalopay', 'sandbox', 'free')),
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
INSERT INTO orders_0010 (id, code, event_id, user_id, status, total_amount_cents, currency,
                         payment_method, waitroom_session_id, expires_at, refund_status,
                         refund_reason, failure_code, created_at, updated_at)
SELECT id, code, event_id, user_id, status, total_amount_cents, currency,
       payment_method, waitroom_session_id, expires_at, refund_status,
       refund_reason, failure_code, created_at, updated_at
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_0010 RENAME TO orders;
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);
CREATE INDEX orders_by_event ON orders (event_id, created_at DESC);
CREATE INDEX orders_pending_by_expiry ON orders (expires_at) WHERE status = 'PENDING';
CREATE INDEX orders_owing_refund ON orders (updated_at) WHERE refund_status = 'REFUND_REQUIRED';
-- Every orders row was copied with its id: nothing a child references is missing.
PRAGMA defer_foreign_keys = false;
