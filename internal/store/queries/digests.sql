-- name: create-digest
INSERT INTO digests (created_at) VALUES (?) RETURNING id

-- name: purge-digests
-- Digests planned before the cutoff whose deliveries are all gone.
DELETE FROM digests WHERE id IN (
       SELECT g.id FROM digests g
        WHERE g.created_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = g.id)
        LIMIT ?)
