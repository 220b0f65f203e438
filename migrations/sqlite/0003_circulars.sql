-- Circulars: every change of the directory is announced to every NFP and
-- the Secretariat. Changes close together share one circular; a change is
-- announced once (its version names the circular that announced it).

CREATE TABLE circular (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- What it announced, for operators (JSON).
    summary     TEXT NOT NULL
);

ALTER TABLE party_version ADD COLUMN circular_id INTEGER REFERENCES circular (id);
-- 1: announced already or needs no announcement (the seed of the directory).
ALTER TABLE party_version ADD COLUMN announced INTEGER NOT NULL DEFAULT 0;

-- The key-expiry watch runs once per day (UTC), whichever instance runs it.
CREATE TABLE key_watch_run (
    day  TEXT PRIMARY KEY NOT NULL,
    at   TEXT NOT NULL
);
