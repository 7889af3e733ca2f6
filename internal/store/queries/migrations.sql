-- name: migrations-create
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at BIGINT NOT NULL
)

-- name: migration-applied
SELECT COUNT(*) FROM schema_migrations WHERE version = ?

-- name: migration-record
INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)

-- name: migrations-applied
SELECT version FROM schema_migrations
