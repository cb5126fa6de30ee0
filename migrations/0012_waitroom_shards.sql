-- `eventConfig.waitroom.shards`: how many queue shards an event's queue is spread over (one
-- Durable Object each). It only rises, and only until the sale starts
-- (src/domain/event_workflow.rs); events configured before this column read 1, one queue.
ALTER TABLE event_config ADD COLUMN waitroom_shards INTEGER NOT NULL DEFAULT 1
  CHECK (waitroom_shards BETWEEN 1 AND 64);
