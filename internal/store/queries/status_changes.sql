-- name: record-status-change
INSERT INTO status_changes (subscriber_id, from_status, to_status, changed_by, reason, changed_at)
VALUES (?, ?, ?, ?, ?, ?)

-- name: status-history
SELECT subscriber_id, from_status, to_status, changed_by, reason, changed_at
  FROM status_changes WHERE subscriber_id = ? ORDER BY id

-- The list-file sync changes statuses with set-based statements; each of these
-- writes the history of one of them, in the same transaction, from the same
-- rows: gone and reactivated before their UPDATE, added after its INSERT.

-- name: sync-gone-history
INSERT INTO status_changes (subscriber_id, from_status, to_status, changed_by, reason, changed_at)
SELECT id, status, 'gone', 'sync', 'no longer in the list files', ? FROM subscribers
 WHERE source = 'file' AND status IN ('active', 'pending')
   AND NOT EXISTS (SELECT 1 FROM sync_want w WHERE w.email = subscribers.email)

-- name: sync-reactivate-history
INSERT INTO status_changes (subscriber_id, from_status, to_status, changed_by, reason, changed_at)
SELECT s.id, 'gone', 'active', 'sync', 'back in the list files: ' || w.origin, ?
  FROM subscribers s JOIN sync_want w ON w.email = s.email
 WHERE s.source = 'file' AND s.status = 'gone'

-- name: sync-add-history
-- The rows sync-add inserted: file-sourced, above the largest id before it
-- (syncs take turns, and nothing else inserts file-sourced rows).
INSERT INTO status_changes (subscriber_id, from_status, to_status, changed_by, reason, changed_at)
SELECT s.id, '', 'active', 'sync', w.origin, ?
  FROM subscribers s JOIN sync_want w ON w.email = s.email
 WHERE s.id > ? AND s.source = 'file'

-- name: max-subscriber-id
SELECT COALESCE(MAX(id), 0) FROM subscribers

-- name: erase-history
DELETE FROM status_changes WHERE subscriber_id = ?
