-- name: plan-deliveries
-- {{values}}: one (?, ?, 'pending', ?, 0, 0, ?) per delivery. A subscriber
-- already planned in this digest is left alone, and not returned.
INSERT INTO deliveries (digest_id, subscriber_id, status, piece_ids, attempts, next_attempt, created_at)
VALUES {{values}}
ON CONFLICT (digest_id, subscriber_id) DO NOTHING
RETURNING subscriber_id

-- name: claim-deliveries
-- A row is free to claim when nobody claimed it, this fence did, or the lease
-- that claimed it is no longer live. SKIP LOCKED lets several senders claim side
-- by side on PostgreSQL, each passing over the rows another is claiming. The
-- rows are joined by id (not "id IN (…)", which PostgreSQL answered with a scan
-- of the whole table for every page).
UPDATE deliveries SET claim_fence = ?
  FROM (SELECT d.id FROM deliveries d
         WHERE d.status = 'pending' AND d.id > ? AND d.next_attempt <= ?
           AND (d.claim_fence = 0 OR d.claim_fence = ?
                OR NOT EXISTS (SELECT 1 FROM leases l WHERE l.fence = d.claim_fence AND l.expires_at > ?))
         ORDER BY d.id
         LIMIT ?
         {{skip_locked}}) AS c
 WHERE deliveries.id = c.id
RETURNING deliveries.id

-- name: claimed-deliveries
-- The caller appends the list of ids claimed: "(?, ?, ...)".
SELECT d.id, d.digest_id, d.subscriber_id, s.email, s.name, s.status,
       d.piece_ids, d.attempts, d.failing_since, d.refusals, d.created_at
  FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
 WHERE d.claim_fence = ? AND d.status = 'pending' AND d.id IN

-- Every outcome is written only to a row still pending and still claimed under
-- the writer's fence: a row that was sent (or failed) never goes back, a replayed
-- outcome changes nothing, and a sender whose claim was taken over writes nothing.

-- name: outcome-sent
UPDATE deliveries SET status = 'sent', message_id = ?, sent_at = ?, attempts = attempts + 1, last_error = ''
 WHERE id = ? AND status = 'pending' AND claim_fence = ?

-- name: outcomes-sent
-- Many at once, filled by the caller: {{ids}} is one "?" per delivery,
-- {{message_ids}} one "WHEN ? THEN ?" (its id, its Message-ID) and {{sent_ats}}
-- one "WHEN ? THEN CAST(? AS BIGINT)" (its id, when it was accepted); the rows
-- are found by id, through the primary key. The rows written are returned: the
-- others were fenced.
UPDATE deliveries SET status = 'sent', message_id = CASE id {{message_ids}} END,
       sent_at = CASE id {{sent_ats}} END, attempts = attempts + 1, last_error = ''
 WHERE id IN ({{ids}}) AND status = 'pending' AND claim_fence = ?
RETURNING id

-- name: outcome-retry
-- The claim stays: the sender takes the row again when it comes due, and gives
-- it up (ReleaseClaims, or its lease ending) when it stops. The message id is
-- the one the next attempt will carry too, so a late bounce of this attempt
-- still finds the row.
UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt = ?, message_id = ?,
       failing_since = CASE WHEN failing_since = 0 THEN ? ELSE failing_since END,
       refusals = refusals + ?
 WHERE id = ? AND status = 'pending' AND claim_fence = ?

-- name: outcome-failed
UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ?, message_id = ?,
       refusals = refusals + ?
 WHERE id = ? AND status = 'pending' AND claim_fence = ?

-- name: outcome-skipped
UPDATE deliveries SET status = 'skipped', last_error = ?
 WHERE id = ? AND status = 'pending' AND claim_fence = ?

-- name: release-claims
UPDATE deliveries SET claim_fence = 0 WHERE claim_fence = ? AND status = 'pending'

-- name: count-deliveries
-- With the time of the last message accepted (the largest sent_at of 'sent').
SELECT status, COUNT(*), MAX(sent_at) FROM deliveries GROUP BY status

-- name: pending-state
-- Open: rows this fence may claim; elsewhere: rows held under other live leases.
SELECT COALESCE(SUM(CASE WHEN l.fence IS NULL THEN 1 ELSE 0 END), 0),
       COALESCE(MIN(CASE WHEN l.fence IS NULL THEN d.next_attempt END), 0),
       COALESCE(SUM(CASE WHEN l.fence IS NOT NULL THEN 1 ELSE 0 END), 0),
       COALESCE(MIN(l.expires_at), 0)
  FROM deliveries d
  LEFT JOIN leases l ON l.fence = d.claim_fence AND d.claim_fence <> 0 AND d.claim_fence <> ? AND l.expires_at > ?
 WHERE d.status = 'pending'

-- name: delivery-by-message-id
SELECT id, subscriber_id FROM deliveries WHERE message_id = ? ORDER BY id DESC LIMIT 1

-- name: person-deliveries
SELECT id, digest_id, status, piece_ids, attempts, next_attempt, last_error, message_id, sent_at, created_at
  FROM deliveries WHERE subscriber_id = ? ORDER BY id

-- name: erase-held
-- Pending deliveries to the subscriber that a live sender holds: it would find
-- them gone when it records their outcome, and take that for a lost claim.
SELECT COUNT(*) FROM deliveries d JOIN leases l ON l.fence = d.claim_fence
 WHERE d.subscriber_id = ? AND d.status = 'pending' AND d.claim_fence <> 0 AND l.expires_at > ?

-- name: erase-deliveries
DELETE FROM deliveries WHERE subscriber_id = ?

-- name: purge-deliveries
-- Finished deliveries of digests planned before the cutoff, a batch at a time,
-- found through the (digest_id, subscriber_id) index. Pending ones stay until
-- they are sent or given up.
DELETE FROM deliveries WHERE id IN (
       SELECT d.id FROM deliveries d JOIN digests g ON g.id = d.digest_id
        WHERE g.created_at < ? AND d.status <> 'pending'
        LIMIT ?)
