-- Addresses erased on request. Nothing of the person is kept but a keyed hash
-- of the address (HMAC-SHA256, under a random key this database keeps in
-- settings as erasure_key), so that a list file or a sign-up does not add it
-- again. Keyed, because a plain SHA-256 of an address is the identifier
-- advertisers match people by across datasets.
CREATE TABLE erasures (
    email_hash TEXT PRIMARY KEY,
    erased_at  BIGINT NOT NULL
);
