//! Retention (issue 15, item 9): after the period set for its kind, a
//! message's stored content is deleted in place: the message as received
//! becomes empty, its signed content and the ciphertext of the copies sent
//! are removed, `purged_at` says when. Its metadata (who, when, kind,
//! reference, decision) and the audit trail stay. A message whose mail is
//! still pending, being sent or held keeps its content until that is done.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Tx};

/// Which messages a purge takes: quarantined ones, or accepted ones of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class<'a> {
    Quarantined,
    Accepted(&'a str),
}

/// The messages of `class` received before the cutoff, not purged yet,
/// with no mail pending, being sent or held.
const DUE: &str = "purged_at = '' AND received_at < $1
       AND ((verdict = 'quarantined' AND $2 = '') OR (verdict = 'accepted' AND kind = $2))
       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.inbound_id = inbound.id
                       AND o.state IN ('pending', 'sending', 'held'))";

impl Tx {
    /// How many messages a purge of `class` before `cutoff` would take.
    pub async fn retention_due(&mut self, class: Class<'_>, cutoff: SystemTime) -> Result<i64> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM inbound WHERE {DUE}"
        )))
        .bind(timestamp(cutoff))
        .bind(kind_of(class))
        .fetch_one(&mut *self.tx)
        .await
        .context("Counting the messages past their retention")
    }

    /// Deletes the content of the messages of `class` received before
    /// `cutoff`; returns how many.
    pub async fn purge(
        &mut self,
        class: Class<'_>,
        cutoff: SystemTime,
        now: SystemTime,
    ) -> Result<i64> {
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM inbound WHERE {DUE} ORDER BY id"
        )))
        .bind(timestamp(cutoff))
        .bind(kind_of(class))
        .fetch_all(&mut *self.tx)
        .await
        .context("Finding the messages past their retention")?;
        for id in &ids {
            sqlx::query(
                "UPDATE inbound SET raw_enc = $1, content_enc = NULL, purged_at = $2 WHERE id = $3",
            )
            .bind(Vec::<u8>::new())
            .bind(timestamp(now))
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .context("Deleting a message's content")?;
            sqlx::query(
                "UPDATE outbox SET message = NULL WHERE inbound_id = $1 AND state = 'sent'",
            )
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .context("Deleting the copies sent")?;
        }
        Ok(ids.len() as i64)
    }
}

fn kind_of(class: Class<'_>) -> &str {
    match class {
        Class::Quarantined => "",
        Class::Accepted(kind) => kind,
    }
}
