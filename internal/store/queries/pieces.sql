-- name: record-pieces
-- Always updates, so that RETURNING yields every row; first_seen is never in the
-- SET list: it is written once, by the INSERT.
INSERT INTO pieces (id, first_seen, hash, updated_at) VALUES {{values}}
ON CONFLICT (id) DO UPDATE SET
       updated_at = CASE WHEN pieces.hash <> excluded.hash THEN excluded.updated_at ELSE pieces.updated_at END,
       hash = excluded.hash
RETURNING id, first_seen

-- name: first-seen
SELECT id, first_seen FROM pieces

-- name: pieces-summary
-- Rows are only ever added and first_seen is written once, so two equal
-- summaries mean the same rows with the same times.
SELECT count(*), coalesce(max(first_seen), 0) FROM pieces
