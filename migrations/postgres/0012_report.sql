-- nfp-gateway store, version 12: the Secretariat's periodic report (issue
-- 16, item 5). One row per period, by the day the period ends, claimed in
-- the transaction that queues the report: it goes out once across restarts
-- and instances.
CREATE TABLE report_run (
    day  TEXT PRIMARY KEY NOT NULL,
    at   TEXT NOT NULL
);
