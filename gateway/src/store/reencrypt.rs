//! What the re-encryption after a rotation of the gateway's key reads and
//! writes: each message's stored ciphertexts (the message as received, its
//! signed content), page by page in id order.

use anyhow::{Context, Result};

use super::{Store, Tx};

/// One message's stored ciphertexts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub id: i64,
    pub raw_enc: Vec<u8>,
    pub content_enc: Option<Vec<u8>>,
}

impl Store {
    /// At most `limit` messages after `after`, in id order.
    pub async fn stored_after(&self, after: i64, limit: i64) -> Result<Vec<Stored>> {
        sqlx::query_as::<_, Stored>(
            "SELECT id, raw_enc, content_enc FROM inbound WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("Reading stored messages")
    }
}

impl Tx {
    /// Replaces a message's ciphertexts with `new`, if they are still
    /// `old` (a purge or another instance in between wins). Whether it did.
    pub async fn replace_stored(&mut self, old: &Stored, new: &Stored) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE inbound SET raw_enc = $1, content_enc = $2
             WHERE id = $3 AND raw_enc = $4
               AND (content_enc = $5 OR (content_enc IS NULL AND $6))",
        )
        .bind(&new.raw_enc)
        .bind(&new.content_enc)
        .bind(old.id)
        .bind(&old.raw_enc)
        .bind(old.content_enc.as_deref().unwrap_or_default())
        .bind(old.content_enc.is_none())
        .execute(&mut *self.tx)
        .await
        .context("Re-encrypting a stored message")?;
        Ok(done.rows_affected() == 1)
    }
}
