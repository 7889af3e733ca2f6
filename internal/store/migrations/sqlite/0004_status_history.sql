-- Every change of a subscriber's status, written in the same transaction as the
-- change: who or what made it (changed_by: sync, web, cli, send, mailbox,
-- webhook), from which status to which, and why. from_status is '' for an
-- address that was new. Rows go when the subscriber is erased.
CREATE TABLE status_changes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id),
    from_status   TEXT NOT NULL,
    to_status     TEXT NOT NULL,
    changed_by    TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    changed_at    BIGINT NOT NULL
);

-- One subscriber's history, in order.
CREATE INDEX status_changes_subscriber ON status_changes (subscriber_id, id);

-- Subscribers from before the history began start it with the status they have.
INSERT INTO status_changes (subscriber_id, from_status, to_status, changed_by, reason, changed_at)
SELECT id, '', status, 'migration', 'the status when the history began', updated_at FROM subscribers;
