-- name: subscriber-by-email
SELECT id, email, name, topics, cadence, source, status, joined_at, confirmed_at,
       consent_ip, consent_source, watermark, last_digest_at, hard_bounces, updated_at
  FROM subscribers WHERE email = ?

-- name: subscriber-by-id
SELECT id, email, name, topics, cadence, source, status, joined_at, confirmed_at,
       consent_ip, consent_source, watermark, last_digest_at, hard_bounces, updated_at
  FROM subscribers WHERE id = ?

-- name: subscribers-page
-- The caller appends "AND status IN (...)" when it filters, then the order and limit.
SELECT id, email, name, topics, cadence, source, status, joined_at, confirmed_at,
       consent_ip, consent_source, watermark, last_digest_at, hard_bounces, updated_at
  FROM subscribers WHERE id > ?

-- name: subscriber-status-for-update
SELECT id, status FROM subscribers WHERE email = ? {{for_update}}

-- name: insert-subscriber
INSERT INTO subscribers
       (email, name, topics, cadence, source, status, joined_at, confirmed_at, consent_ip, consent_source, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (email) DO NOTHING
RETURNING id

-- name: return-subscriber
-- A gone address coming back starts afresh: joined now, no watermark.
UPDATE subscribers SET name = ?, topics = ?, cadence = ?, source = ?, status = ?,
       joined_at = ?, watermark = 0, updated_at = ?
 WHERE id = ?

-- name: update-subscriber
UPDATE subscribers SET name = ?, topics = ?, cadence = ?, updated_at = ? WHERE id = ?

-- name: set-status
-- Setting active records the confirmation time when there was none and clears
-- the hard-bounce count: a person lifting a bounce suppression means to give the
-- address a fresh start.
UPDATE subscribers SET status = ?, updated_at = ?,
       confirmed_at = CASE WHEN ? = 'active' AND confirmed_at = 0 THEN ? ELSE confirmed_at END,
       hard_bounces = CASE WHEN ? = 'active' THEN 0 ELSE hard_bounces END
 WHERE id = ?

-- name: unsuppress-subject
SELECT id, status, source, confirmed_at FROM subscribers WHERE email = ? {{for_update}}

-- name: unsuppress
UPDATE subscribers SET status = ?, hard_bounces = 0, updated_at = ? WHERE id = ?

-- name: erase-subscriber
DELETE FROM subscribers WHERE id = ?

-- name: set-preferences
UPDATE subscribers SET topics = ?, cadence = ?, updated_at = ? WHERE id = ?

-- name: advance-watermarks
-- {{values}}: one (CAST(? AS BIGINT), CAST(? AS BIGINT)) per subscriber: its id
-- and new watermark (typed, since PostgreSQL cannot tell a bare parameter's type
-- inside VALUES). Watermarks only move forward.
UPDATE subscribers SET watermark = CASE WHEN subscribers.watermark < v.column2 THEN v.column2 ELSE subscribers.watermark END,
       last_digest_at = ?, updated_at = ?
  FROM (VALUES {{values}}) AS v
 WHERE subscribers.id = v.column1

-- name: subscriber-for-update
SELECT status FROM subscribers WHERE id = ? {{for_update}}

-- name: delivery-subscriber-for-update
-- The subscriber a delivery went to, locked for the bounce count that follows:
-- taken from the delivery row, not from the caller.
SELECT s.id, s.status FROM subscribers s
 WHERE s.id = (SELECT subscriber_id FROM deliveries WHERE id = ?) {{for_update}}

-- name: count-hard-bounce
-- All right-hand sides see the old row, so hard_bounces + 1 is the new count.
-- A suppression already in force stays as it is.
UPDATE subscribers SET hard_bounces = hard_bounces + 1,
       status = CASE WHEN hard_bounces + 1 >= ? AND status IN ('active', 'pending', 'gone')
                     THEN 'bounced' ELSE status END,
       updated_at = ?
 WHERE id = ?
RETURNING status, hard_bounces

-- The list-file sync: rows are streamed into a staging table, then merged with
-- set-based statements in the same transaction.

-- name: sync-staging-create
-- hash: the address's erasure hash (see erasures).
CREATE TEMP TABLE IF NOT EXISTS sync_rows (seq BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL,
       topics TEXT NOT NULL, cadence TEXT NOT NULL, origin TEXT NOT NULL, hash TEXT NOT NULL)

-- name: sync-want-create
CREATE TEMP TABLE IF NOT EXISTS sync_want (email TEXT PRIMARY KEY, name TEXT NOT NULL, topics TEXT NOT NULL,
       cadence TEXT NOT NULL, origin TEXT NOT NULL, seq BIGINT NOT NULL, hash TEXT NOT NULL)

-- name: sync-staging-clear
DELETE FROM sync_rows

-- name: sync-want-clear
DELETE FROM sync_want

-- name: sync-staging-insert
INSERT INTO sync_rows (seq, email, name, topics, cadence, origin, hash) VALUES {{values}}

-- name: sync-want-fill
-- The winning row per address: the last one given.
INSERT INTO sync_want (email, name, topics, cadence, origin, seq, hash)
SELECT email, name, topics, cadence, origin, seq, hash FROM sync_rows
 WHERE seq IN (SELECT MAX(seq) FROM sync_rows GROUP BY email)

-- name: sync-duplicate-count
SELECT COUNT(*) - COUNT(DISTINCT email) FROM sync_rows

-- name: sync-duplicate-examples
SELECT email, string_agg(origin, ', ' ORDER BY seq) FROM sync_rows
 GROUP BY email HAVING COUNT(*) > 1 ORDER BY MIN(seq) LIMIT ?

-- name: sync-kept-suppressed
SELECT COUNT(*) FROM subscribers s JOIN sync_want w ON w.email = s.email
 WHERE s.status IN ('unsubscribed', 'bounced', 'complained', 'removed')

-- name: sync-gone
UPDATE subscribers SET status = 'gone', updated_at = ?
 WHERE source = 'file' AND status IN ('active', 'pending')
   AND NOT EXISTS (SELECT 1 FROM sync_want w WHERE w.email = subscribers.email)

-- name: sync-reactivate
UPDATE subscribers SET name = w.name, topics = w.topics, cadence = w.cadence, updated_at = ?,
       status = 'active', joined_at = ?, watermark = 0
  FROM sync_want w
 WHERE w.email = subscribers.email AND subscribers.source = 'file' AND subscribers.status = 'gone'

-- name: sync-update
UPDATE subscribers SET name = w.name, topics = w.topics, cadence = w.cadence, updated_at = ?
  FROM sync_want w
 WHERE w.email = subscribers.email AND subscribers.source = 'file' AND subscribers.status IN ('active', 'pending')
   AND (subscribers.name <> w.name OR subscribers.topics <> w.topics OR subscribers.cadence <> w.cadence)

-- name: sync-add
-- In the files' order, so ids follow the list. An address erased on request
-- is not added again.
INSERT INTO subscribers
       (email, name, topics, cadence, source, status, joined_at, consent_ip, consent_source, updated_at)
SELECT w.email, w.name, w.topics, w.cadence, 'file', 'active', ?, '', w.origin, ?
  FROM sync_want w
 WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email = w.email)
   AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.email_hash = w.hash)
 ORDER BY w.seq

-- name: sync-erased
-- Where the list files give addresses erased on request (file and line, never
-- the address).
SELECT w.origin FROM sync_want w JOIN erasures e ON e.email_hash = w.hash
 WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email = w.email)
 ORDER BY w.seq
