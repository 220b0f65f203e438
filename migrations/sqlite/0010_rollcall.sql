-- nfp-gateway store, version 10: the roll call (issue 16, item 3). The
-- Secretariat asks every NFP to confirm its directory entry, under the
-- round's own reference (numbered as messages are). Each NFP's request mail
-- is found again by its Message-ID in the outbox: held there (no usable key)
-- or failed (delivery refused) is part of the round's result. An answer is
-- a signed message citing the round's reference (confirmed) or a contact
-- update while the round runs (updated). reminded_at and reported_at say
-- when the reminder to the silent ones and the report to the Secretariat
-- were queued ('' not yet): each is claimed once across instances. A round
-- the daemon starts by itself (`[rollcall] every`) names the round it
-- follows, once: two instances cannot both start the next one.
CREATE TABLE rollcall (
    reference    TEXT PRIMARY KEY NOT NULL,
    started_at   TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    started_by   TEXT NOT NULL,
    follows      TEXT UNIQUE,
    reminded_at  TEXT NOT NULL DEFAULT '',
    reported_at  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollcall_started ON rollcall (started_at);

CREATE TABLE rollcall_party (
    reference         TEXT NOT NULL REFERENCES rollcall (reference),
    party             TEXT NOT NULL,
    -- The Message-ID of the request mail in the outbox.
    message_id        TEXT NOT NULL,
    answer            TEXT NOT NULL DEFAULT '' CHECK (answer IN ('', 'confirmed', 'updated')),
    answered_at       TEXT NOT NULL DEFAULT '',
    -- The reference of the message that answered ('' none).
    answer_reference  TEXT NOT NULL DEFAULT '',
    answer_inbound_id INTEGER REFERENCES inbound (id),
    PRIMARY KEY (reference, party)
);
