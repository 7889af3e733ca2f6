-- Times are BIGINT unix microseconds in UTC; 0 stands for "never" (a zero time.Time).
-- Lists (topics, piece ids) are JSON arrays in TEXT columns.
-- Everything here is plain SQL that PostgreSQL also accepts, except the
-- INTEGER PRIMARY KEY AUTOINCREMENT ids, which become
-- BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY there.

CREATE TABLE pieces (
    id         TEXT PRIMARY KEY,
    first_seen BIGINT NOT NULL,
    hash       TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

CREATE TABLE subscribers (
    -- AUTOINCREMENT: ids are never reused, because unsubscribe tokens sign the id.
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL DEFAULT '',
    topics         TEXT NOT NULL DEFAULT '[]',
    cadence        TEXT NOT NULL DEFAULT '',
    source         TEXT NOT NULL,
    status         TEXT NOT NULL,
    joined_at      BIGINT NOT NULL,
    confirmed_at   BIGINT NOT NULL DEFAULT 0,
    consent_ip     TEXT NOT NULL DEFAULT '',
    consent_source TEXT NOT NULL DEFAULT '',
    watermark      BIGINT NOT NULL DEFAULT 0,
    last_digest_at BIGINT NOT NULL DEFAULT 0,
    hard_bounces   INTEGER NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL
);

-- Serves EachSubscriber filtered by status, paged by id.
CREATE INDEX subscribers_status_id ON subscribers (status, id);

CREATE TABLE digests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest_id     BIGINT NOT NULL REFERENCES digests (id),
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id),
    status        TEXT NOT NULL,
    piece_ids     TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    message_id    TEXT NOT NULL DEFAULT '',
    sent_at       BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    UNIQUE (digest_id, subscriber_id)
);

-- Serves PendingDeliveries: status = 'pending' AND id > ? ORDER BY id.
CREATE INDEX deliveries_status_id ON deliveries (status, id);
-- Foreign-key lookups from subscribers (history of one address).
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL DEFAULT 0,
    ok          INTEGER NOT NULL DEFAULT 0,
    summary     TEXT NOT NULL DEFAULT ''
);
