-- Users, email verification and the mail outbox.
-- Emails are stored lowercased. Uniqueness holds among live accounts only: a soft-deleted
-- user's email may register again as a new account (the old row stays for orders and audit).
CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  email          TEXT NOT NULL,
  password_hash  TEXT NOT NULL,
  first_name     TEXT NOT NULL,
  last_name      TEXT NOT NULL,
  avatar         TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  deleted_at     INTEGER
);
CREATE UNIQUE INDEX users_live_email ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX users_email ON users (email);

-- Only a hash of each token is stored, so a database leak does not verify anyone.
CREATE TABLE email_verifications (
  token_hash TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id),
  expires_at INTEGER NOT NULL,
  used_at    INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);

-- Mail the app has to send. Written in the same batch as the change that causes it; a
-- sender (Cloudflare Email in production) drains it, and development shows it at
-- GET /api/dev/mailbox.
CREATE TABLE mail_outbox (
  id         TEXT PRIMARY KEY,
  to_email   TEXT NOT NULL,
  kind       TEXT NOT NULL,
  subject    TEXT NOT NULL,
  body       TEXT NOT NULL,
  link       TEXT,
  created_at INTEGER NOT NULL,
  sent_at    INTEGER
);
CREATE INDEX mail_outbox_to ON mail_outbox (to_email, created_at);
CREATE INDEX mail_outbox_unsent ON mail_outbox (created_at) WHERE sent_at IS NULL;
