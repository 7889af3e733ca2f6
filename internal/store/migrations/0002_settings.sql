-- Values the program records once and keeps across runs, by name: the first
-- site.base_url (feed entry ids are made on it, so they survive a move).
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
