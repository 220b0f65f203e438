//! The durable outbox: every mail the gateway sends is here, signed and
//! encrypted, before SMTP sees it; every attempt is recorded.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Audit, Store, Tx};

/// A mail to queue.
pub struct NewOutbox<'a> {
    pub inbound_id: Option<i64>,
    pub purpose: &'a str,
    pub template: &'a str,
    pub recipient_party: &'a str,
    pub recipient_email: &'a str,
    /// The certificate it is encrypted to; "" when held.
    pub recipient_fingerprint: &'a str,
    pub message_id: &'a str,
    /// The PGP/MIME message; None when held for want of a usable key.
    pub message: Option<&'a [u8]>,
    pub created_at: SystemTime,
}

/// A queued mail.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxItem {
    pub id: i64,
    pub inbound_id: Option<i64>,
    pub purpose: String,
    pub template: String,
    pub recipient_party: String,
    pub recipient_email: String,
    pub recipient_fingerprint: String,
    pub message_id: String,
    pub message: Option<Vec<u8>>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// The claim sending it ('' when none has).
    pub claim: String,
}

const COLUMNS: &str =
    "id, inbound_id, purpose, template, recipient_party, recipient_email, recipient_fingerprint,
    message_id, message, state, attempts, next_attempt_at, last_error, created_at, sent_at, claim";

/// The outcome of one SMTP attempt.
#[derive(Debug, Clone)]
pub enum Attempt {
    Sent {
        code: u16,
        response: String,
    },
    /// 4xx or a connection problem: try again at `next`.
    Transient {
        code: Option<u16>,
        response: String,
        next: SystemTime,
    },
    /// 5xx, or retries exhausted: give up.
    Permanent {
        code: Option<u16>,
        response: String,
    },
}

impl Tx {
    async fn unclaim(&mut self, ids: &[i64]) -> Result<()> {
        for id in ids {
            sqlx::query(
                "UPDATE outbox SET state = 'pending', claim = '', lease_until = '', attempts = attempts - 1
                 WHERE id = $1 AND state = 'sending'",
            )
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .context("Giving back a claimed mail")?;
        }
        Ok(())
    }

    pub async fn insert_outbox(&mut self, o: &NewOutbox<'_>) -> Result<i64> {
        let state = if o.message.is_some() {
            "pending"
        } else {
            "held"
        };
        sqlx::query_scalar(
            "INSERT INTO outbox (inbound_id, purpose, template, recipient_party, recipient_email,
                 recipient_fingerprint, message_id, message, state, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
             RETURNING id",
        )
        .bind(o.inbound_id)
        .bind(o.purpose)
        .bind(o.template)
        .bind(o.recipient_party)
        .bind(o.recipient_email)
        .bind(o.recipient_fingerprint)
        .bind(o.message_id)
        .bind(o.message)
        .bind(state)
        .bind(timestamp(o.created_at))
        .fetch_one(&mut *self.tx)
        .await
        .context("Queueing a mail")
    }
}

impl Store {
    /// Claims up to `limit` pending mails due at `now` for sending, under
    /// the name `claim` (unique to this claim) until `lease_until`: one
    /// statement, the attempt counted, oldest first.
    pub async fn claim_due(
        &self,
        now: SystemTime,
        limit: i64,
        claim: &str,
        lease_until: SystemTime,
    ) -> Result<Vec<OutboxItem>> {
        let sql = format!(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claim = $3, lease_until = $4
             WHERE state = 'pending'
               AND id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1
                          ORDER BY id LIMIT $2)
             RETURNING {COLUMNS}"
        );
        let mut tx = self.begin().await?;
        let mut items: Vec<OutboxItem> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(timestamp(now))
            .bind(limit)
            .bind(claim)
            .bind(timestamp(lease_until))
            .fetch_all(&mut *tx.tx)
            .await
            .context("Claiming due mail")?;
        tx.commit().await?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Gives back claimed mail that was not tried (the sender stopped, or
    /// the server was unreachable): pending again, the attempt not counted.
    pub async fn unclaim(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        tx.unclaim(ids).await?;
        tx.commit().await
    }

    /// When the next pending mail is due, if any.
    pub async fn next_due(&self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .context("Reading the outbox")
    }

    /// Records an attempt's outcome, with its audit entry, in one
    /// transaction, and renews the lease of the rest of the item's claim
    /// until `lease_until`.
    pub async fn finish(
        &self,
        item: &OutboxItem,
        at: SystemTime,
        attempt: &Attempt,
        lease_until: SystemTime,
    ) -> Result<()> {
        self.finish_and_give_back(item, at, attempt, lease_until, &[])
            .await
    }

    /// [`Store::finish`], and in the same transaction gives back the rest
    /// of the claim, untried ([`Store::unclaim`]): the server was unreachable.
    pub async fn finish_and_give_back(
        &self,
        item: &OutboxItem,
        at: SystemTime,
        attempt: &Attempt,
        lease_until: SystemTime,
        untried: &[i64],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.unclaim(untried).await?;
        sqlx::query("UPDATE outbox SET lease_until = $2 WHERE claim = $1 AND state = 'sending'")
            .bind(&item.claim)
            .bind(timestamp(lease_until))
            .execute(&mut *tx.tx)
            .await
            .context("Renewing a claim")?;
        let (outcome, code, response) = match attempt {
            Attempt::Sent { code, response } => ("sent", Some(*code), response),
            Attempt::Transient { code, response, .. } => ("transient", *code, response),
            Attempt::Permanent { code, response } => ("permanent", *code, response),
        };
        sqlx::query("INSERT INTO smtp_attempt (outbox_id, at, outcome, code, response) VALUES ($1, $2, $3, $4, $5)")
            .bind(item.id)
            .bind(timestamp(at))
            .bind(outcome)
            .bind(code.map(i64::from))
            .bind(response)
            .execute(&mut *tx.tx)
            .await
            .context("Recording an SMTP attempt")?;
        let update = match attempt {
            Attempt::Sent { .. } => sqlx::query(
                "UPDATE outbox SET state = 'sent', sent_at = $2, last_error = '' WHERE id = $1",
            )
            .bind(item.id)
            .bind(timestamp(at)),
            Attempt::Transient { next, .. } => sqlx::query(
                "UPDATE outbox SET state = 'pending', next_attempt_at = $2, last_error = $3 WHERE id = $1",
            )
            .bind(item.id)
            .bind(timestamp(*next))
            .bind(response),
            Attempt::Permanent { .. } => {
                sqlx::query("UPDATE outbox SET state = 'failed', last_error = $2 WHERE id = $1")
                    .bind(item.id)
                    .bind(response)
            }
        };
        update
            .execute(&mut *tx.tx)
            .await
            .context("Updating the outbox")?;
        let event = match attempt {
            Attempt::Sent { .. } => "transfer",
            Attempt::Transient { .. } => "transfer_deferred",
            Attempt::Permanent { .. } => "transfer_failed",
        };
        let detail = format!(
            "{} to <{}>: {}",
            item.purpose, item.recipient_email, response
        );
        tx.audit(&Audit {
            at: Some(at),
            event,
            inbound_id: item.inbound_id,
            outbox_id: Some(item.id),
            party: Some(&item.recipient_party),
            fingerprint: Some(&item.recipient_fingerprint),
            detail: &detail,
        })
        .await?;
        tx.commit().await
    }

    /// Mail claimed and without an outcome whose claim is over: the first
    /// of each claim may have reached the server (it is in doubt: sent
    /// again, same Message-ID, the attempt recorded as in doubt); the rest
    /// of the claim was never tried and is pending again, uncounted.
    /// A claim is over when its lease has expired, or (at a start) when it
    /// was made under this instance's name `own` (`<instance>/`): that
    /// process is gone. Returns the number in doubt.
    pub async fn recover_in_doubt(&self, now: SystemTime, own: Option<&str>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let expired = "SELECT id, claim FROM outbox WHERE state = 'sending' AND lease_until < $1
                       ORDER BY claim, id";
        let expired_or_own = "SELECT id, claim FROM outbox WHERE state = 'sending'
                                AND (lease_until < $1 OR substr(claim, 1, CAST($2 AS INTEGER)) = $3)
                              ORDER BY claim, id";
        let claimed: Vec<(i64, String)> = match own {
            None => sqlx::query_as(expired).bind(timestamp(now)),
            Some(prefix) => sqlx::query_as(expired_or_own)
                .bind(timestamp(now))
                .bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
                .bind(prefix),
        }
        .fetch_all(&mut *tx.tx)
        .await
        .context("Reading interrupted mail")?;
        let mut in_doubt = 0;
        for (i, (id, claim)) in claimed.iter().enumerate() {
            let first = i == 0 || claimed[i - 1].1 != *claim;
            if first {
                sqlx::query(
                    "INSERT INTO smtp_attempt (outbox_id, at, outcome, response)
                     VALUES ($1, $2, 'in_doubt', 'interrupted: the gateway stopped during this attempt')",
                )
                .bind(id)
                .bind(timestamp(now))
                .execute(&mut *tx.tx)
                .await
                .context("Recording an interrupted attempt")?;
                in_doubt += 1;
            }
            let untried = if first { 0_i64 } else { 1 };
            sqlx::query(
                "UPDATE outbox SET state = 'pending', claim = '', lease_until = '', attempts = attempts - $2
                 WHERE id = $1",
            )
            .bind(id)
            .bind(untried)
            .execute(&mut *tx.tx)
            .await
            .context("Requeueing interrupted mail")?;
        }
        tx.commit().await?;
        Ok(in_doubt)
    }

    /// Mail in a state, oldest first.
    pub async fn outbox_list(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxItem>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE ($1 IS NULL OR state = $1) ORDER BY id LIMIT $2"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .context("Listing the outbox")
    }

    /// (pending count, oldest pending creation time).
    pub async fn outbox_depth(&self) -> Result<(i64, Option<String>)> {
        sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await
        .context("Measuring the outbox")
    }

    /// A held mail, composed again for a recipient that has a usable key now.
    pub async fn release_held(
        &self,
        item: &OutboxItem,
        message_id: &str,
        message: &[u8],
        fingerprint: &str,
        now: SystemTime,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', message = $2, message_id = $3, recipient_fingerprint = $4,
                 next_attempt_at = $5
             WHERE id = $1 AND state = 'held'",
        )
        .bind(item.id)
        .bind(message)
        .bind(message_id)
        .bind(fingerprint)
        .bind(timestamp(now))
        .execute(&mut *tx.tx)
        .await
        .context("Releasing a held mail")?;
        let detail = format!(
            "{} to <{}>: a usable key is known now",
            item.purpose, item.recipient_email
        );
        tx.audit(&Audit {
            at: Some(now),
            event: "released_from_hold",
            inbound_id: item.inbound_id,
            outbox_id: Some(item.id),
            party: Some(&item.recipient_party),
            fingerprint: Some(fingerprint),
            detail: &detail,
        })
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// (state, count) over the whole outbox.
    pub async fn outbox_states(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
            .context("Counting the outbox")
    }

    /// Makes a failed or pending mail due now.
    pub async fn retry_now(&self, id: i64, now: SystemTime) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $2
             WHERE id = $1 AND state IN ('pending', 'failed') AND message IS NOT NULL",
        )
        .bind(id)
        .bind(timestamp(now))
        .execute(&self.pool)
        .await
        .context("Rescheduling a mail")?;
        Ok(done.rows_affected() == 1)
    }
}
