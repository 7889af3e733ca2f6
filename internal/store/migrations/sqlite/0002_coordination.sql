-- Coordination that trusts neither process ids nor host names: a lease is held by
-- a random token and numbered by a fence drawn from one counter; deliveries are
-- claimed under a fence, and a claim lasts as long as the lease with that fence.
-- Leases of the earlier kind (host/pid holders) are dropped: every process of an
-- earlier version must be stopped before this one runs.
DELETE FROM leases;
ALTER TABLE leases ADD COLUMN label TEXT NOT NULL DEFAULT '';
ALTER TABLE leases ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX leases_fence ON leases (fence);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
-- fence: the last fencing number drawn. plan_passes: planning passes completed,
-- so that replicas that waited while another planned need not plan again.
INSERT INTO counters (name, value) VALUES ('fence', 0), ('plan_passes', 0);

ALTER TABLE deliveries ADD COLUMN claim_fence BIGINT NOT NULL DEFAULT 0;
