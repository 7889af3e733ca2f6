-- name: create-digest
INSERT INTO digests (created_at) VALUES (?) RETURNING id
