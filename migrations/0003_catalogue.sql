-- The catalogue: organizers, categories, events with their sale terms, event roles, ticket
-- class definitions and the event search index.
-- Times are unix milliseconds (INTEGER); flags are 0/1. Ticket counters (reserved, sold) are
-- not here: the event's Durable Object owns them; `total` is stored as the definition.

CREATE TABLE organizers (
  id          TEXT PRIMARY KEY,
  owner_id    TEXT NOT NULL REFERENCES users (id),
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  logo_url    TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX organizers_owner ON organizers (owner_id);

CREATE TABLE categories (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  slug       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE events (
  -- A stable integer key for the full-text index (an implicit rowid may change on VACUUM);
  -- the API only ever shows `id`.
  seq            INTEGER PRIMARY KEY,
  id             TEXT NOT NULL UNIQUE,
  name           TEXT NOT NULL,
  description    TEXT NOT NULL,
  location       TEXT NOT NULL,
  thumbnail_url  TEXT,
  start_date     INTEGER NOT NULL,
  end_date       INTEGER NOT NULL CHECK (end_date > start_date),
  status         TEXT NOT NULL DEFAULT 'DRAFT'
                 CHECK (status IN ('DRAFT', 'CONFIGURED', 'APPROVED', 'PUBLISHED', 'CANCELLED')),
  -- Once published, a cancelled event stays visible (buyers need to find out).
  ever_published INTEGER NOT NULL DEFAULT 0 CHECK (ever_published IN (0, 1)),
  -- Mirrors event_config.is_public (written in the same batch) so the public listing is one
  -- index range: status, is_public, then start date order.
  is_public      INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
  organizer_id   TEXT REFERENCES organizers (id),
  created_by     TEXT NOT NULL REFERENCES users (id),
  -- Changes on every write; writes are conditional on the revision they read, so a rule is
  -- never checked against a state that changed underneath it.
  revision       TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
CREATE INDEX events_listing ON events (status, is_public, start_date, id);
CREATE INDEX events_organizer ON events (organizer_id);

CREATE TABLE event_categories (
  event_id    TEXT NOT NULL REFERENCES events (id),
  category_id TEXT NOT NULL REFERENCES categories (id),
  PRIMARY KEY (event_id, category_id)
);
CREATE INDEX event_categories_category ON event_categories (category_id, event_id);

-- The event's sale terms (`eventConfig`); absent until the event is first configured.
CREATE TABLE event_config (
  event_id                 TEXT PRIMARY KEY REFERENCES events (id),
  ticket_sale_start        INTEGER NOT NULL,
  ticket_sale_end          INTEGER NOT NULL CHECK (ticket_sale_end > ticket_sale_start),
  is_free                  INTEGER NOT NULL CHECK (is_free IN (0, 1)),
  max_attendees            INTEGER CHECK (max_attendees IS NULL OR max_attendees >= 1),
  is_public                INTEGER NOT NULL CHECK (is_public IN (0, 1)),
  requires_approval        INTEGER NOT NULL CHECK (requires_approval IN (0, 1)),
  allow_wait_room          INTEGER NOT NULL CHECK (allow_wait_room IN (0, 1)),
  is_new_trending          INTEGER NOT NULL CHECK (is_new_trending IN (0, 1)),
  max_tickets_per_user     INTEGER CHECK (max_tickets_per_user IS NULL OR max_tickets_per_user >= 1),
  max_concurrent_checkouts INTEGER NOT NULL CHECK (max_concurrent_checkouts >= 1),
  checkout_ttl_seconds     INTEGER NOT NULL CHECK (checkout_ttl_seconds >= 1),
  admission_batch          INTEGER NOT NULL CHECK (admission_batch >= 1),
  created_at               INTEGER NOT NULL,
  updated_at               INTEGER NOT NULL
);

CREATE TABLE event_roles (
  event_id   TEXT NOT NULL REFERENCES events (id),
  user_id    TEXT NOT NULL REFERENCES users (id),
  role       TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (event_id, user_id)
);
-- `GET /api/events?mine=true`: the caller's events.
CREATE INDEX event_roles_user ON event_roles (user_id, event_id);

-- Ticket class definitions. The live counters (reserved, sold, available) are the Durable
-- Object's; `total` here is what the organizer set, kept for listings and recovery.
CREATE TABLE ticket_classes (
  id            TEXT PRIMARY KEY,
  event_id      TEXT NOT NULL REFERENCES events (id),
  name          TEXT NOT NULL,
  price_cents   INTEGER NOT NULL CHECK (price_cents >= 0),
  currency      TEXT NOT NULL,
  total         INTEGER NOT NULL CHECK (total >= 1),
  sale_start_at INTEGER,
  sale_end_at   INTEGER,
  status        TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'PAUSED')),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE INDEX ticket_classes_event ON ticket_classes (event_id, created_at, id);

-- Full-text search over name and description. External content (the text lives once, in
-- `events`), kept in sync by the triggers below. `remove_diacritics 2` lets "am nhac" find
-- "Âm nhạc".
CREATE VIRTUAL TABLE events_search USING fts5 (
  name,
  description,
  content = 'events',
  content_rowid = 'seq',
  tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN
  INSERT INTO events_search (rowid, name, description) VALUES (new.seq, new.name, new.description);
END;

CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN
  INSERT INTO events_search (events_search, rowid, name, description)
  VALUES ('delete', old.seq, old.name, old.description);
END;

CREATE TRIGGER events_search_update AFTER UPDATE OF name, description ON events BEGIN
  INSERT INTO events_search (events_search, rowid, name, description)
  VALUES ('delete', old.seq, old.name, old.description);
  INSERT INTO events_search (rowid, name, description) VALUES (new.seq, new.name, new.description);
END;
