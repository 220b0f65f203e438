-- nfp-gateway store, version 1.
-- Times are RFC 3339 UTC text with milliseconds ("2026-11-26T10:00:00.000Z"):
-- they sort as they compare. A column never changes meaning; later
-- migrations only add.

-- Where the IMAP watcher stands in each folder.
CREATE TABLE mailbox_state (
    folder       TEXT PRIMARY KEY NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL
);

-- Every message the gateway took from its inbox, with its decision.
CREATE TABLE inbound (
    id                  INTEGER PRIMARY KEY,
    received_at         TEXT NOT NULL,
    imap_folder         TEXT NOT NULL DEFAULT '',
    imap_uidvalidity    INTEGER NOT NULL DEFAULT 0,
    imap_uid            INTEGER NOT NULL DEFAULT 0,
    -- The same bytes delivered again are a no-op.
    raw_sha256          TEXT NOT NULL UNIQUE,
    raw_size            INTEGER NOT NULL,
    -- The message as received, encrypted to the storage key.
    raw_enc             BLOB NOT NULL,
    -- Unauthenticated envelope metadata, for operators.
    message_id          TEXT NOT NULL DEFAULT '',
    envelope_from       TEXT NOT NULL DEFAULT '',
    verdict             TEXT NOT NULL CHECK (verdict IN ('accepted', 'quarantined')),
    reason              TEXT,
    detail              TEXT NOT NULL DEFAULT '',
    sender_party        TEXT,
    sender_fingerprint  TEXT,
    signed_at           TEXT,
    kind                TEXT,
    topics              TEXT NOT NULL DEFAULT '[]',
    language            TEXT,
    target              TEXT,
    cited_reference     TEXT,
    -- BSM-YYYY-NNNNNN, for accepted messages; never reused.
    reference           TEXT UNIQUE,
    signature_digest    TEXT,
    -- The signed content (decrypted), encrypted to the storage key, and
    -- whether it is a MIME entity (PGP/MIME) or the text of an inline message.
    content_enc         BLOB,
    content_form        TEXT NOT NULL DEFAULT '' CHECK (content_form IN ('', 'mime', 'inline')),
    -- The decision as `check` prints it.
    decision            TEXT NOT NULL,
    -- 'stored' until the message left the inbox folder, then 'filed'.
    imap_state          TEXT NOT NULL DEFAULT 'stored' CHECK (imap_state IN ('stored', 'filed'))
);
CREATE INDEX inbound_verdict ON inbound (verdict, received_at);
CREATE INDEX inbound_uid ON inbound (imap_folder, imap_uidvalidity, imap_uid);

-- Signatures of accepted messages: the same signed content again is a replay.
CREATE TABLE seen_signature (
    digest      TEXT PRIMARY KEY NOT NULL,
    inbound_id  INTEGER NOT NULL REFERENCES inbound (id),
    first_seen  TEXT NOT NULL
);

-- The last reference number handed out, per year.
CREATE TABLE reference_counter (
    year  INTEGER PRIMARY KEY NOT NULL,
    last  INTEGER NOT NULL
);

-- Every mail the gateway sends, signed and encrypted, before SMTP sees it.
CREATE TABLE outbox (
    id                     INTEGER PRIMARY KEY,
    inbound_id             INTEGER REFERENCES inbound (id),
    purpose                TEXT NOT NULL,
    template               TEXT NOT NULL,
    recipient_party        TEXT NOT NULL,
    recipient_email        TEXT NOT NULL,
    -- The certificate the message was encrypted to; '' while held.
    recipient_fingerprint  TEXT NOT NULL DEFAULT '',
    message_id             TEXT NOT NULL UNIQUE,
    -- The RFC 5322 message as it goes to SMTP (PGP/MIME); NULL while held.
    message                BLOB,
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'held')),
    attempts               INTEGER NOT NULL DEFAULT 0,
    next_attempt_at        TEXT NOT NULL,
    last_error             TEXT NOT NULL DEFAULT '',
    created_at             TEXT NOT NULL,
    sent_at                TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);

-- Every SMTP attempt.
CREATE TABLE smtp_attempt (
    id         INTEGER PRIMARY KEY,
    outbox_id  INTEGER NOT NULL REFERENCES outbox (id),
    at         TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('sent', 'transient', 'permanent', 'in_doubt')),
    code       INTEGER,
    response   TEXT NOT NULL DEFAULT ''
);

-- The audit trail: every decision and every transfer. Append-only.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    event        TEXT NOT NULL,
    inbound_id   INTEGER,
    outbox_id    INTEGER,
    party        TEXT,
    fingerprint  TEXT,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
