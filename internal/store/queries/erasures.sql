-- name: record-erasure
INSERT INTO erasures (email_hash, erased_at) VALUES (?, ?)
ON CONFLICT (email_hash) DO NOTHING

-- name: erasure
SELECT erased_at FROM erasures WHERE email_hash = ?

-- name: forget-erasure
DELETE FROM erasures WHERE email_hash = ?
