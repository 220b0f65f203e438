//! Inbound messages, their decisions, the replay memory and the IMAP position.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store, Tx};
use crate::check::{Decision, Verdict};

/// What is stored of one inbound message.
pub struct NewInbound<'a> {
    /// From [`Tx::next_inbound_id`].
    pub id: i64,
    pub received_at: SystemTime,
    pub folder: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
    pub raw_sha256: &'a str,
    pub raw_size: usize,
    /// The raw message, encrypted to the storage key.
    pub raw_enc: &'a [u8],
    pub message_id: &'a str,
    pub envelope_from: &'a str,
    pub decision: &'a Decision,
    pub reference: Option<&'a str>,
    /// The signed content, encrypted to the storage key.
    pub content_enc: Option<&'a [u8]>,
    /// "mime", "inline", or "" without content.
    pub content_form: &'a str,
    /// How the Secretariat learns of a quarantine (see migration 0004).
    pub notice: &'a str,
}

/// A stored message, as the daemon needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundRef {
    pub id: i64,
    pub verdict: String,
    pub imap_state: String,
    pub reference: Option<String>,
}

/// A stored message, for operators.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboundRow {
    pub id: i64,
    pub received_at: String,
    pub verdict: String,
    pub reason: Option<String>,
    pub detail: String,
    pub envelope_from: String,
    pub message_id: String,
    pub sender_party: Option<String>,
    pub kind: Option<String>,
    pub reference: Option<String>,
    pub raw_size: i64,
    pub decision: String,
    pub imap_state: String,
    /// When retention deleted its content (empty: it is stored).
    pub purged_at: String,
}

fn code<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

impl Tx {
    /// The stored message with exactly these bytes, if any.
    pub async fn inbound_by_sha(&mut self, sha: &str) -> Result<Option<InboundRef>> {
        sqlx::query_as(
            "SELECT id, verdict, imap_state, reference FROM inbound WHERE raw_sha256 = $1",
        )
        .bind(sha)
        .fetch_optional(&mut *self.tx)
        .await
        .context("Looking up a message by hash")
    }

    /// The id the next stored message will have (the write lock is held, so
    /// no one else can take it), so that mail about it can name it.
    pub async fn next_inbound_id(&mut self) -> Result<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM inbound")
            .fetch_one(&mut *self.tx)
            .await
            .context("Numbering a message")
    }

    /// Whether an accepted message with this signature was stored before.
    pub async fn signature_seen(&mut self, digest: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seen_signature WHERE digest = $1")
            .bind(digest)
            .fetch_one(&mut *self.tx)
            .await
            .context("Looking up a signature")?;
        Ok(n > 0)
    }

    /// Stores a message and its decision; returns its id.
    pub async fn insert_inbound(&mut self, m: &NewInbound<'_>) -> Result<i64> {
        let verdict = if m.decision.verdict == Verdict::Accepted {
            "accepted"
        } else {
            "quarantined"
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO inbound (id, received_at, imap_folder, imap_uidvalidity, imap_uid, raw_sha256,
                 raw_size, raw_enc, message_id, envelope_from, verdict, decision, notice)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '{}', $12)
             RETURNING id",
        )
        .bind(m.id)
        .bind(timestamp(m.received_at))
        .bind(m.folder)
        .bind(i64::from(m.uidvalidity))
        .bind(i64::from(m.uid))
        .bind(m.raw_sha256)
        .bind(m.raw_size as i64)
        .bind(m.raw_enc)
        .bind(m.message_id)
        .bind(m.envelope_from)
        .bind(verdict)
        .bind(m.notice)
        .fetch_one(&mut *self.tx)
        .await
        .context("Storing an inbound message")?;
        // The decision's columns are written in one place, for new and released messages alike.
        self.update_decision(id, m.decision, m.reference, m.content_enc, m.content_form)
            .await?;
        Ok(id)
    }

    /// Remembers the signature of an accepted message.
    pub async fn record_signature(
        &mut self,
        digest: &str,
        inbound_id: i64,
        at: SystemTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO seen_signature (digest, inbound_id, first_seen) VALUES ($1, $2, $3)",
        )
        .bind(digest)
        .bind(inbound_id)
        .bind(timestamp(at))
        .execute(&mut *self.tx)
        .await
        .context("Recording a signature")?;
        Ok(())
    }
}

impl Tx {
    /// Writes the decision of a message (a new one, or one released from quarantine).
    pub async fn update_decision(
        &mut self,
        id: i64,
        decision: &Decision,
        reference: Option<&str>,
        content_enc: Option<&[u8]>,
        content_form: &str,
    ) -> Result<()> {
        let d = decision;
        sqlx::query(
            "UPDATE inbound SET verdict = $2, reason = $3, detail = $4, sender_party = $5,
                 sender_fingerprint = $6, signed_at = $7, kind = $8, topics = $9, language = $10,
                 target = $11, cited_reference = $12, reference = $13, signature_digest = $14,
                 content_enc = $15, decision = $16, content_form = $17
             WHERE id = $1",
        )
        .bind(id)
        .bind(if d.verdict == Verdict::Accepted {
            "accepted"
        } else {
            "quarantined"
        })
        .bind(d.reason.map(|r| r.code()))
        .bind(&d.detail)
        .bind(d.sender.as_ref().map(|s| s.party.as_str()))
        .bind(d.sender.as_ref().map(|s| s.fingerprint.as_str()))
        .bind(d.signed_at.as_deref())
        .bind(d.kind.as_ref().and_then(code))
        .bind(serde_json::to_string(&d.topics).context("Serialising topics")?)
        .bind(d.language.as_ref().and_then(code))
        .bind(d.target.as_deref())
        .bind(d.reference.as_deref())
        .bind(reference)
        .bind(d.signature_digest.as_deref())
        .bind(content_enc)
        .bind(serde_json::to_string(d).context("Serialising the decision")?)
        .bind(content_form)
        .execute(&mut *self.tx)
        .await
        .context("Updating a decision")?;
        Ok(())
    }
}

/// What is needed to compose mail about an accepted message again.
#[derive(Debug, Clone)]
pub struct AcceptedContent {
    pub decision: String,
    pub reference: String,
    pub content_enc: Vec<u8>,
    /// The content is the text of an inline message, not a MIME entity.
    pub inline: bool,
}

impl Store {
    /// The decision, reference and stored content of an accepted message.
    pub async fn accepted_content(&self, id: i64) -> Result<Option<AcceptedContent>> {
        type Row = (String, Option<String>, Option<Vec<u8>>, String);
        let row: Option<Row> = sqlx::query_as(
            "SELECT decision, reference, content_enc, content_form FROM inbound WHERE id = $1 AND verdict = 'accepted'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("Reading an accepted message")?;
        Ok(row.and_then(|(decision, reference, content_enc, form)| {
            Some(AcceptedContent {
                decision,
                reference: reference?,
                content_enc: content_enc?,
                inline: form == "inline",
            })
        }))
    }

    /// The stored (encrypted) raw message and its verdict.
    pub async fn raw_enc(&self, id: i64) -> Result<Option<(Vec<u8>, String)>> {
        sqlx::query_as("SELECT raw_enc, verdict FROM inbound WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("Reading a stored message")
    }

    /// The number the next stored message would get, and the next reference
    /// number of `year`, as the store stands (a guess: only a transaction
    /// allocates them).
    pub async fn next_numbers(&self, year: i32) -> Result<(i64, i64)> {
        sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM inbound),
                    (SELECT COALESCE(MAX(last), 0) + 1 FROM reference_counter WHERE year = $1)",
        )
        .bind(i64::from(year))
        .fetch_one(&self.pool)
        .await
        .context("Reading the next numbers")
    }

    /// Claims messages of a watched folder for this instance's intake,
    /// under `claim` until `lease_until`: a message is this instance's when
    /// no other claim holds it, or the one that does has expired at `now`
    /// or was made under this instance's name `own` (`<instance>/`: at a
    /// start, that process is gone). Returns the UIDs now claimed.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_inbox(
        &self,
        folder: &str,
        uidvalidity: u32,
        uids: &[u32],
        claim: &str,
        own: &str,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Vec<u32>> {
        let mut tx = self.begin().await?;
        let mut mine = Vec::with_capacity(uids.len());
        for &uid in uids {
            let got: Option<i64> = sqlx::query_scalar(
                "INSERT INTO inbox_claim (folder, uidvalidity, uid, claim, lease_until)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (folder, uidvalidity, uid) DO UPDATE
                     SET claim = excluded.claim, lease_until = excluded.lease_until
                     WHERE inbox_claim.lease_until < $6 OR substr(inbox_claim.claim, 1, CAST($7 AS INTEGER)) = $8
                 RETURNING uid",
            )
            .bind(folder)
            .bind(i64::from(uidvalidity))
            .bind(i64::from(uid))
            .bind(claim)
            .bind(timestamp(lease_until))
            .bind(timestamp(now))
            .bind(i64::try_from(own.chars().count()).unwrap_or(i64::MAX))
            .bind(own)
            .fetch_optional(&mut *tx.tx)
            .await
            .context("Claiming an inbox message")?;
            if got.is_some() {
                mine.push(uid);
            }
        }
        tx.commit().await?;
        Ok(mine)
    }

    /// Messages left the inbox folder `folder`, the last of them with UID
    /// `last_uid`: one transaction records that, and ends their claims.
    pub async fn mark_filed(
        &self,
        ids: &[i64],
        folder: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("UPDATE inbound SET imap_state = 'filed' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx.tx)
                .await
                .context("Marking a message filed")?;
        }
        for uid in uids {
            sqlx::query(
                "DELETE FROM inbox_claim WHERE folder = $1 AND uidvalidity = $2 AND uid = $3",
            )
            .bind(folder)
            .bind(i64::from(uidvalidity))
            .bind(i64::from(*uid))
            .execute(&mut *tx.tx)
            .await
            .context("Ending a claim")?;
        }
        let last_uid = uids.iter().copied().max().unwrap_or(0);
        mailbox_state(&mut tx.tx, folder, uidvalidity, last_uid).await?;
        tx.commit().await
    }

    /// Every message stored from `folder` has left it (the folder is
    /// empty); claims on its messages that expired are forgotten.
    pub async fn mark_all_filed(&self, folder: &str, now: SystemTime) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE inbound SET imap_state = 'filed' WHERE imap_folder = $1 AND imap_state = 'stored'")
            .bind(folder)
            .execute(&mut *tx.tx)
            .await
            .context("Marking messages filed")?;
        sqlx::query("DELETE FROM inbox_claim WHERE folder = $1 AND lease_until < $2")
            .bind(folder)
            .bind(timestamp(now))
            .execute(&mut *tx.tx)
            .await
            .context("Ending claims")?;
        tx.commit().await
    }

    /// The party that sent the accepted message with this reference.
    pub async fn sender_of_reference(&self, reference: &str) -> Result<Option<String>> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT sender_party FROM inbound WHERE reference = $1")
                .bind(reference)
                .fetch_optional(&self.pool)
                .await
                .context("Looking up a reference")?;
        Ok(row.flatten())
    }

    pub async fn inbound(&self, id: i64) -> Result<Option<InboundRow>> {
        sqlx::query_as(
            "SELECT id, received_at, verdict, reason, detail, envelope_from, message_id, sender_party,
                 kind, reference, raw_size, decision, imap_state, purged_at
             FROM inbound WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("Reading a message")
    }

    /// Messages by verdict, newest first.
    pub async fn inbound_list(&self, verdict: &str, limit: i64) -> Result<Vec<InboundRow>> {
        sqlx::query_as(
            "SELECT id, received_at, verdict, reason, detail, envelope_from, message_id, sender_party,
                 kind, reference, raw_size, decision, imap_state, purged_at
             FROM inbound WHERE verdict = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(verdict)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("Listing messages")
    }

    /// (verdict, reason, count) over all stored messages.
    pub async fn inbound_counts(&self) -> Result<Vec<(String, Option<String>, i64)>> {
        sqlx::query_as(
            "SELECT verdict, reason, COUNT(*) FROM inbound GROUP BY verdict, reason ORDER BY 1, 2 NULLS FIRST",
        )
        .fetch_all(&self.pool)
        .await
        .context("Counting messages")
    }

    /// The UIDVALIDITY last seen for a folder.
    pub async fn uidvalidity(&self, folder: &str) -> Result<Option<u32>> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT uidvalidity FROM mailbox_state WHERE folder = $1")
                .bind(folder)
                .fetch_optional(&self.pool)
                .await
                .context("Reading the mailbox state")?;
        Ok(v.and_then(|v| u32::try_from(v).ok()))
    }

    pub async fn set_mailbox_state(
        &self,
        folder: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await.context("Opening a connection")?;
        mailbox_state(&mut conn, folder, uidvalidity, last_uid).await
    }
}

async fn mailbox_state(
    conn: &mut sqlx::AnyConnection,
    folder: &str,
    uidvalidity: u32,
    last_uid: u32,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mailbox_state (folder, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
             last_uid = excluded.last_uid, updated_at = excluded.updated_at",
    )
    .bind(folder)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(last_uid))
    .bind(timestamp(SystemTime::now()))
    .execute(conn)
    .await
    .context("Writing the mailbox state")?;
    Ok(())
}
