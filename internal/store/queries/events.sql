-- name: insert-event
-- An event recorded before is left as it is and returns nothing.
INSERT INTO events (source, event_id, kind, recipient, message_id, status, diagnostic, occurred_at, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, event_id) DO NOTHING
RETURNING id

-- name: event-outcome
UPDATE events SET delivery_id = ?, subscriber_id = ?, effect = ? WHERE id = ?

-- name: delivery-bounce-counted
SELECT COUNT(*) FROM events WHERE delivery_id = ? AND effect IN ('counted', 'suppressed')

-- name: person-events
-- Matched to the subscriber, or about the address without a match.
SELECT source, event_id, kind, recipient, message_id, status, diagnostic, occurred_at, received_at, delivery_id, effect
  FROM events WHERE subscriber_id = ? OR recipient = ? ORDER BY id

-- name: erase-events
DELETE FROM events WHERE subscriber_id = ? OR recipient = ?

-- name: purge-events
DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? LIMIT ?)
