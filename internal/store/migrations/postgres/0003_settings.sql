-- Values the program records once and keeps across runs, by name: the first
-- site.base_url (feed entry ids are made on it, so they survive a move), this
-- installation's id (in every Message-ID, so that ids never repeat across a
-- restored backup, a staging copy or a reinstall).
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
