-- A lease on an order request's Idempotency-Key, and the order that request makes.
--
-- A request that dies mid-checkout (the runtime evicts the Worker) leaves its key IN_FLIGHT.
-- Without a lease, every retry with that key got IDEMPOTENCY_KEY_IN_FLIGHT until the key
-- expired, 24 hours later. Now a retry with the same body takes the key over once
-- `lease_expires_at` has passed, and `order_id` tells it what the dead request may have left:
-- a hold in the event's object to give back, or a written order to answer with.
--
-- Safe to apply before the code that uses it: two nullable columns older code never reads.
-- Rows written by older code have neither; a retry treats their lease as run out one minute
-- after `created_at` and looks for no order.

ALTER TABLE idempotency_keys ADD COLUMN order_id TEXT;
ALTER TABLE idempotency_keys ADD COLUMN lease_expires_at INTEGER;
