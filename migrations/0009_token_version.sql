-- Revocable sessions: access tokens carry the account's token version; raising it (password
-- change, account deletion, logout-all) ends every token signed before.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
