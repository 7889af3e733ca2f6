-- name: start-run
INSERT INTO runs (started_at) VALUES (?) RETURNING id

-- name: finish-run
UPDATE runs SET finished_at = ?, ok = ?, summary = ? WHERE id = ?

-- name: last-run
SELECT id, started_at, finished_at, ok, summary FROM runs
 WHERE finished_at <> 0 ORDER BY finished_at DESC, id DESC LIMIT 1
