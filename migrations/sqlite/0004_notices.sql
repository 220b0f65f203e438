-- nfp-gateway store, version 4: how quarantines are announced, and the
-- indexes the hourly rate limits count with.

-- How the Secretariat learnt of a quarantined message: 'notice' (a
-- quarantine notice of its own), 'held' (beyond the hour's notice budget:
-- waiting for the next quarantine digest), 'digested' (listed in one),
-- 'none' (automatic mail, never announced). '' for accepted messages and
-- for rows stored before version 4.
ALTER TABLE inbound ADD COLUMN notice TEXT NOT NULL DEFAULT ''
    CHECK (notice IN ('', 'notice', 'held', 'digested', 'none'));
CREATE INDEX inbound_notice ON inbound (notice, received_at);
CREATE INDEX inbound_notice_from ON inbound (envelope_from, notice, received_at);
CREATE INDEX inbound_sender ON inbound (sender_party, verdict, received_at);

-- Every quarantine digest sent to the Secretariat.
CREATE TABLE quarantine_digest (
    id        INTEGER PRIMARY KEY,
    sent_at   TEXT NOT NULL,
    messages  INTEGER NOT NULL
);
