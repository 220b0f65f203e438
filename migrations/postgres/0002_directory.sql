-- The network's directory, kept in the store: current entries, their
-- certificates and organigram documents, and every version of every entry
-- (so "what did the list say on date X" has an answer).
-- (PostgreSQL; the twin of migrations/sqlite/0002_directory.sql. Flags such
-- as `removed` and `retired` are BIGINT 0/1, as in SQLite.)

-- One row per party: its current entry (the JSON form of the directory file's [[party]]).
CREATE TABLE party (
    id          TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('secretariat', 'nfp', 'service')),
    email       TEXT NOT NULL UNIQUE,
    entry       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Every version of every entry: valid from `valid_from` until the next
-- version's `valid_from`; a removed party's last version has `removed` = 1.
CREATE TABLE party_version (
    party_id    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    valid_from  TEXT NOT NULL,
    entry       TEXT NOT NULL,
    removed     BIGINT NOT NULL DEFAULT 0,
    -- Who made the change: "import <file>", "update by <party> (<reference>)", ...
    actor       TEXT NOT NULL,
    inbound_id  BIGINT,
    PRIMARY KEY (party_id, version)
);
CREATE INDEX party_version_time ON party_version (valid_from);

-- Certificates: the current one of each party, and earlier ones kept for
-- an overlap after a rotation (verification of mail in flight), then retired.
CREATE TABLE party_cert (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    party_id     TEXT NOT NULL,
    cert         BYTEA NOT NULL,
    added_at     TEXT NOT NULL,
    -- When the stored certificate last changed (a refresh: new self-signatures).
    updated_at   TEXT NOT NULL,
    retire_at    TEXT,
    retired      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX party_cert_party ON party_cert (party_id, retired);

-- Organigram documents, stored by content (any format, size-limited).
CREATE TABLE document (
    sha256        TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    data          BYTEA NOT NULL,
    added_at      TEXT NOT NULL
);

-- The directory file's [network] table (name, description).
CREATE TABLE network_info (
    key    TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);
