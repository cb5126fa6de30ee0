-- Tickets (one per unit of a COMPLETED order) and the event role `staff` (the door team).
--
-- Expand only: a new table, and event_roles rebuilt with a wider CHECK (SQLite cannot alter
-- one) holding the same columns and rows, so the code before this release runs unchanged.

-- A ticket's id and code are derived from (order, class, unit): issuing again inserts
-- nothing (ON CONFLICT (id) DO NOTHING), while a code collision with another ticket fails
-- loudly on the UNIQUE index instead of silently dropping a ticket.
-- `status`, `checked_in_at`, `gate`, `voided_at` follow the event's door object (the source of
-- truth for check-in) through the domain-events queue.
CREATE TABLE tickets (
  id                TEXT PRIMARY KEY,
  code              TEXT NOT NULL UNIQUE,
  order_id          TEXT NOT NULL REFERENCES orders (id),
  event_id          TEXT NOT NULL,
  user_id           TEXT NOT NULL,
  ticket_class_id   TEXT NOT NULL,
  ticket_class_name TEXT NOT NULL,
  unit              INTEGER NOT NULL CHECK (unit >= 0),
  status            TEXT NOT NULL DEFAULT 'VALID' CHECK (status IN ('VALID', 'CHECKED_IN', 'VOID')),
  checked_in_at     INTEGER,
  gate              TEXT,
  voided_at         INTEGER,
  qr                TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);
CREATE INDEX tickets_by_user ON tickets (user_id, created_at DESC, id);
CREATE INDEX tickets_by_order ON tickets (order_id, ticket_class_id, unit);
CREATE INDEX tickets_by_event_class ON tickets (event_id, ticket_class_id);

PRAGMA defer_foreign_keys = true;

CREATE TABLE event_roles_0007 (
  event_id   TEXT NOT NULL REFERENCES events (id),
  user_id    TEXT NOT NULL REFERENCES users (id),
  role       TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer', 'staff')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (event_id, user_id)
);
INSERT INTO event_roles_0007 (event_id, user_id, role, created_at, updated_at)
SELECT event_id, user_id, role, created_at, updated_at FROM event_roles;
DROP TABLE event_roles;
ALTER TABLE event_roles_0007 RENAME TO event_roles;
CREATE INDEX event_roles_user ON event_roles (user_id, event_id);
