-- nfp-gateway store, version 8: the audit trail sealed into a hash chain.
-- Entries are sealed in the order the sealer meets them (by id, a few
-- seconds after they commit): each seal row names its entry and carries the
-- SHA-256 of the previous seal's hash and the entry, so that `audit verify`
-- finds an entry changed, removed, or inserted among sealed ones.
-- audit_seal holds the chain's head (the last seq and hash), from the first seal on.
CREATE TABLE audit_chain (
    seq        INTEGER PRIMARY KEY NOT NULL,
    audit_id   INTEGER NOT NULL UNIQUE,
    hash       TEXT NOT NULL,
    sealed_at  TEXT NOT NULL
);
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN
    SELECT RAISE(ABORT, 'the audit chain is append-only');
END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN
    SELECT RAISE(ABORT, 'the audit chain is append-only');
END;
CREATE TABLE audit_seal (
    id    INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
