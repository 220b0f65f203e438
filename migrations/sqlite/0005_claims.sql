-- nfp-gateway store, version 5: mail is claimed for sending in batches.

-- The claim that took a mail for sending ('' until one does). A sender sends
-- a claim's mails one at a time in id order and records each outcome before
-- it starts the next, so after a crash only the first mail of a claim that
-- is still 'sending' can have reached the server: that one is in doubt, the
-- others were never tried.
ALTER TABLE outbox ADD COLUMN claim TEXT NOT NULL DEFAULT '';
