-- nfp-gateway store, version 9: the Secretariat's desk (issue 16). Every
-- accepted assistance request and information request opens a case under
-- its reference: who asked, who owes the answer (the debtor: the
-- Secretariat, or the NFP of the State an information request is for),
-- when it is due. Overdue is not stored: an open case past its due time.
-- reminded_at and escalated_at say when the reminder before the due time
-- and the one after it went out ('' not yet); extending a case clears them.
CREATE TABLE request_case (
    reference     TEXT PRIMARY KEY NOT NULL,
    inbound_id    INTEGER NOT NULL REFERENCES inbound (id),
    kind          TEXT NOT NULL CHECK (kind IN ('assistance_request', 'information_request')),
    asker         TEXT NOT NULL,
    debtor        TEXT NOT NULL,
    topics        TEXT NOT NULL DEFAULT '[]',
    opened_at     TEXT NOT NULL,
    due_at        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'answered', 'closed')),
    -- The reference of the message that answered it ('' none).
    answer        TEXT NOT NULL DEFAULT '',
    answered_at   TEXT NOT NULL DEFAULT '',
    reminded_at   TEXT NOT NULL DEFAULT '',
    escalated_at  TEXT NOT NULL DEFAULT '',
    updated_at    TEXT NOT NULL
);
CREATE INDEX request_case_due ON request_case (state, due_at);
CREATE INDEX request_case_debtor ON request_case (debtor, state);

-- A case's history: opened, answered, a further message, and every change
-- the Secretariat made (closed, reopened, extended, reassigned).
CREATE TABLE case_event (
    id          INTEGER PRIMARY KEY,
    reference   TEXT NOT NULL REFERENCES request_case (reference),
    at          TEXT NOT NULL,
    event       TEXT NOT NULL,
    actor       TEXT NOT NULL,
    inbound_id  INTEGER REFERENCES inbound (id),
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_event_reference ON case_event (reference, id);
