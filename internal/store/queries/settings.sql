-- name: setting
SELECT value FROM settings WHERE name = ?

-- name: set-setting
INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at

-- name: keep-setting
-- A first value: one recorded before stays, so two processes recording a
-- first value at once agree on one.
INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING
