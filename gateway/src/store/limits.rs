//! What the hourly limits count, and the quarantine digests.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store, Tx};

/// A quarantined message waiting for the next digest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Held {
    pub id: i64,
    pub received_at: String,
    pub reason: Option<String>,
    pub envelope_from: String,
    pub raw_size: i64,
}

impl Tx {
    /// Accepted messages since `since`, of one party or of all.
    ///
    /// Two statements, not one with `$2 IS NULL OR ...`: each must be able
    /// to use its index (the store holds years of messages).
    pub async fn accepted_since(&mut self, party: Option<&str>, since: SystemTime) -> Result<i64> {
        let query = match party {
            Some(party) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbound
                 WHERE sender_party = $2 AND verdict = 'accepted' AND received_at >= $1",
            )
            .bind(timestamp(since))
            .bind(party),
            None => sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbound WHERE verdict = 'accepted' AND received_at >= $1",
            )
            .bind(timestamp(since)),
        };
        query
            .fetch_one(&mut *self.tx)
            .await
            .context("Counting accepted messages")
    }

    /// Notices of unreadable mail (`sender_notice`) queued for a party since `since`.
    pub async fn sender_notices_since(&mut self, party: &str, since: SystemTime) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox
             WHERE purpose = 'sender_notice' AND recipient_party = $1 AND created_at >= $2",
        )
        .bind(party)
        .bind(timestamp(since))
        .fetch_one(&mut *self.tx)
        .await
        .context("Counting notices of unreadable mail")
    }

    /// Quarantine notices sent since `since`, about mail claiming one
    /// envelope sender or about any.
    pub async fn notices_since(
        &mut self,
        envelope_from: Option<&str>,
        since: SystemTime,
    ) -> Result<i64> {
        let query = match envelope_from {
            Some(from) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbound
                 WHERE envelope_from = $2 AND notice = 'notice' AND received_at >= $1",
            )
            .bind(timestamp(since))
            .bind(from),
            None => sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbound WHERE notice = 'notice' AND received_at >= $1",
            )
            .bind(timestamp(since)),
        };
        query
            .fetch_one(&mut *self.tx)
            .await
            .context("Counting quarantine notices")
    }

    /// Marks held messages as listed in a digest, and records the digest.
    pub async fn record_digest(&mut self, ids: &[i64], now: SystemTime) -> Result<()> {
        for id in ids {
            sqlx::query("UPDATE inbound SET notice = 'digested' WHERE id = $1 AND notice = 'held'")
                .bind(id)
                .execute(&mut *self.tx)
                .await
                .context("Marking a message digested")?;
        }
        sqlx::query("INSERT INTO quarantine_digest (sent_at, messages) VALUES ($1, $2)")
            .bind(timestamp(now))
            .bind(ids.len() as i64)
            .execute(&mut *self.tx)
            .await
            .context("Recording a quarantine digest")?;
        Ok(())
    }

    /// The quarantined messages that wait for a digest, oldest first.
    pub async fn held_quarantines(&mut self) -> Result<Vec<Held>> {
        sqlx::query_as(
            "SELECT id, received_at, reason, envelope_from, raw_size FROM inbound
             WHERE notice = 'held' AND verdict = 'quarantined' ORDER BY id",
        )
        .fetch_all(&mut *self.tx)
        .await
        .context("Reading the messages held for a digest")
    }

    /// When the last quarantine digest was sent.
    pub async fn last_digest_at(&mut self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT MAX(sent_at) FROM quarantine_digest")
            .fetch_one(&mut *self.tx)
            .await
            .context("Reading the last quarantine digest")
    }
}

impl Store {
    /// Whether any quarantined message waits for a digest, and since when.
    pub async fn oldest_held(&self) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT MIN(received_at) FROM inbound WHERE notice = 'held' AND verdict = 'quarantined'",
        )
        .fetch_one(self.pool())
        .await
        .context("Looking for messages held for a digest")
    }
}
