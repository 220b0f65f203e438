-- nfp-gateway store, version 8: the audit trail sealed into a hash chain.
-- Entries are sealed in the order the sealer meets them (by id, a few
-- seconds after they commit): each seal row names its entry and carries the
-- SHA-256 of the previous seal's hash and the entry, so that `audit verify`
-- finds an entry changed, removed, or inserted among sealed ones.
-- audit_seal holds the chain's head (the last seq and hash), from the first seal on.
CREATE TABLE audit_chain (
    seq        BIGINT PRIMARY KEY NOT NULL,
    audit_id   BIGINT NOT NULL UNIQUE,
    hash       TEXT NOT NULL,
    sealed_at  TEXT NOT NULL
);
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TABLE audit_seal (
    id    BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
