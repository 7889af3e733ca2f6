-- name: next-fence
UPDATE counters SET value = value + 1 WHERE name = 'fence' RETURNING value

-- name: acquire-lease
-- Racing acquirers cannot both win: the loser's upsert finds the winner's row,
-- live, and its WHERE leaves it as it is.
INSERT INTO leases (name, holder, label, fence, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, label = excluded.label,
       fence = excluded.fence, expires_at = excluded.expires_at
 WHERE leases.expires_at <= ?

-- name: renew-lease
-- Only a live lease is renewed: once expired, another process may have acted on
-- it, so its holder must stop and start afresh.
UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND fence = ? AND expires_at > ?

-- name: release-lease
DELETE FROM leases WHERE name = ? AND holder = ? AND fence = ?

-- name: lease-by-name
SELECT name, holder, label, fence, expires_at FROM leases WHERE name = ?

-- name: check-lease
-- Inside a write transaction: FOR SHARE makes a takeover (an UPDATE of this row)
-- wait until the transaction ends, so nothing is written under a lease that
-- another process took in the meantime.
SELECT 1 FROM leases WHERE name = ? AND fence = ? AND expires_at > ? {{for_share}}

-- name: check-fence
SELECT 1 FROM leases WHERE fence = ? AND expires_at > ? {{for_share}}

-- name: forget-old-leases
-- Each sender on PostgreSQL has a lease of its own; those of processes that
-- died are removed a day after they expired.
DELETE FROM leases WHERE expires_at < ?

-- name: plan-passes
SELECT value FROM counters WHERE name = 'plan_passes'

-- name: count-plan-pass
UPDATE counters SET value = value + 1 WHERE name = 'plan_passes'
