-- Retries span hours: a delivery that fails is tried again over mail.retry_window,
-- measured from its first failure (failing_since, 0 while it has not failed), and
-- refusals on the sender's side (policy, relay, message) are counted apart from
-- temporary failures, toward mail.max_attempts.
ALTER TABLE deliveries ADD COLUMN failing_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
