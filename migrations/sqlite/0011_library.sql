-- nfp-gateway store, version 11: the best-practice library (issue 16,
-- item 4). The library is the accepted best practices themselves (inbound,
-- kind best_practice); this records which practice the Secretariat
-- circulated to whom, when, and by what (`cli` or its command mail's
-- reference). The mail is found again in the outbox by its Message-ID.
CREATE TABLE library_circulation (
    id            INTEGER PRIMARY KEY,
    reference     TEXT NOT NULL,
    party         TEXT NOT NULL,
    circulated_at TEXT NOT NULL,
    circulated_by TEXT NOT NULL,
    message_id    TEXT NOT NULL
);
CREATE INDEX library_circulation_reference ON library_circulation (reference, party);
