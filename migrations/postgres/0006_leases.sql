-- nfp-gateway store, version 6: several gateway instances may share one
-- (PostgreSQL) store. Work is taken with leases: the instance holding an
-- unexpired lease does the work; a lease left to expire (its instance died)
-- lets another instance take the work over.

-- Until when the claim sending a mail holds it, renewed with each outcome
-- the claim records ('' when no claim holds the mail).
ALTER TABLE outbox ADD COLUMN lease_until TEXT NOT NULL DEFAULT '';

-- Messages of a watched folder that an instance is taking through intake,
-- from before it fetches them until it has moved them out of the folder.
CREATE TABLE inbox_claim (
    folder      TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uid         BIGINT NOT NULL,
    claim       TEXT NOT NULL,
    lease_until TEXT NOT NULL,
    PRIMARY KEY (folder, uidvalidity, uid)
);
