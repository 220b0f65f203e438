-- nfp-gateway store, version 7: retention. After the period set for its
-- kind in gateway.toml ([retention]), a message's stored content (the
-- message as received and its signed content, both encrypted to the
-- gateway's key, and the sent copies' ciphertext) is deleted; its metadata
-- and the audit trail stay. purged_at says when ('' never).
ALTER TABLE inbound ADD COLUMN purged_at TEXT NOT NULL DEFAULT '';

-- One retention run per day across instances.
CREATE TABLE retention_run (
    day  TEXT PRIMARY KEY NOT NULL,
    at   TEXT NOT NULL
);
