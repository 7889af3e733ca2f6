-- What comes back after sending: bounces and complaints read from the bounce
-- mailbox, and the events of email service providers' webhooks. Each is
-- recorded once (source and the source's own id: a webhook retried, a mailbox
-- message read again after a crash), with the delivery and subscriber it was
-- matched to (0: none) and what it did (effect).
CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    recipient     TEXT NOT NULL DEFAULT '',
    message_id    TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT '',
    diagnostic    TEXT NOT NULL DEFAULT '',
    occurred_at   BIGINT NOT NULL DEFAULT 0,
    received_at   BIGINT NOT NULL,
    delivery_id   BIGINT NOT NULL DEFAULT 0,
    subscriber_id BIGINT NOT NULL DEFAULT 0,
    effect        TEXT NOT NULL DEFAULT '',
    UNIQUE (source, event_id)
);

-- One person's events (export, erase), a delivery's (one hard bounce each),
-- and the old ones (retention).
CREATE INDEX events_subscriber ON events (subscriber_id);
CREATE INDEX events_recipient ON events (recipient);
CREATE INDEX events_delivery ON events (delivery_id);
CREATE INDEX events_received ON events (received_at);

-- An event names the digest it is about by our Message-ID; only sent
-- deliveries carry one.
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id <> '';
