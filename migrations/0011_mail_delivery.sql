-- Delivery of mail_outbox through the mail API by the cron (src/domain/mail.rs): the sends
-- tried so far, when the next may run, a claim (lease) that keeps two cron runs from sending
-- one mail at once, and mails given up after the last attempt or refused for good.
ALTER TABLE mail_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN claimed_until INTEGER;
ALTER TABLE mail_outbox ADD COLUMN failed_at INTEGER;
ALTER TABLE mail_outbox ADD COLUMN last_error TEXT;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
  WHERE sent_at IS NULL AND failed_at IS NULL;
