//! The best-practice library (issue 16, item 4): the accepted best
//! practices, and which went to whom. What circulating means is
//! `crate::library`'s; this is the SQL.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store, Tx};

/// A best practice of the library. No word of its content: the reference,
/// who sent it, when, in which language, on which topics.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct PracticeRow {
    pub reference: String,
    pub received_at: String,
    pub party: String,
    pub language: String,
    /// JSON list of topic codes.
    pub topics: String,
    /// To how many parties it has been circulated.
    pub circulated_to: i64,
}

/// One circulation of a practice to one party.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct CirculationRow {
    pub party: String,
    pub circulated_at: String,
    pub circulated_by: String,
    /// The state of the mail in the outbox ('' when it is gone).
    pub delivery: String,
}

/// A practice to circulate: its message and its stored content.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PracticeContent {
    pub inbound_id: i64,
    pub party: String,
    pub received_at: String,
    pub topics: String,
    pub language: String,
    /// The signed content, encrypted to the gateway (None: deleted by retention).
    pub content_enc: Option<Vec<u8>>,
    pub content_form: String,
}

impl Store {
    /// The library, the newest first; with `party`, `topic` or `language`
    /// only those practices.
    pub async fn practices(
        &self,
        party: Option<&str>,
        topic: Option<&str>,
        language: Option<&str>,
    ) -> Result<Vec<PracticeRow>> {
        sqlx::query_as::<_, PracticeRow>(
            "SELECT i.reference, i.received_at, COALESCE(i.sender_party, '') AS party, COALESCE(i.language, '') AS language, i.topics,
                    (SELECT COUNT(DISTINCT c.party) FROM library_circulation c WHERE c.reference = i.reference) AS circulated_to
             FROM inbound i
             WHERE i.verdict = 'accepted' AND i.kind = 'best_practice' AND i.reference IS NOT NULL
               AND ($1 = '' OR i.sender_party = $1) AND ($2 = '' OR i.topics LIKE $2) AND ($3 = '' OR i.language = $3)
             ORDER BY i.received_at DESC, i.id DESC",
        )
        .bind(party.unwrap_or_default())
        .bind(topic.map(|t| format!("%\"{t}\"%")).unwrap_or_default())
        .bind(language.unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .context("Reading the library")
    }

    /// To whom a practice went, in order.
    pub async fn circulations(&self, reference: &str) -> Result<Vec<CirculationRow>> {
        sqlx::query_as::<_, CirculationRow>(
            "SELECT c.party, c.circulated_at, c.circulated_by, COALESCE(o.state, '') AS delivery
             FROM library_circulation c LEFT JOIN outbox o ON o.message_id = c.message_id
             WHERE c.reference = $1 ORDER BY c.id",
        )
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .context("Reading a practice's circulation")
    }
}

const PRACTICE: &str = "SELECT id AS inbound_id, COALESCE(sender_party, '') AS party, received_at, topics, COALESCE(language, '') AS language, content_enc, content_form FROM inbound WHERE reference = $1 AND verdict = 'accepted' AND kind = 'best_practice'";

impl Store {
    /// The accepted best practice of `reference`, if there is one (read
    /// without the write lock: composing its circulation takes a while).
    pub async fn practice(&self, reference: &str) -> Result<Option<PracticeContent>> {
        sqlx::query_as::<_, PracticeContent>(PRACTICE)
            .bind(reference)
            .fetch_optional(&self.pool)
            .await
            .context("Reading a best practice")
    }
}

impl Tx {
    /// The same, inside the transaction that records its circulation.
    pub async fn practice(&mut self, reference: &str) -> Result<Option<PracticeContent>> {
        sqlx::query_as::<_, PracticeContent>(PRACTICE)
            .bind(reference)
            .fetch_optional(&mut *self.tx)
            .await
            .context("Reading a best practice")
    }

    /// Records that `reference` went to `party` by the mail `message_id`.
    pub async fn record_circulation(
        &mut self,
        reference: &str,
        party: &str,
        at: SystemTime,
        by: &str,
        message_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO library_circulation (reference, party, circulated_at, circulated_by, message_id)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(reference)
        .bind(party)
        .bind(timestamp(at))
        .bind(by)
        .bind(message_id)
        .execute(&mut *self.tx)
        .await
        .context("Recording a circulation")?;
        Ok(())
    }
}
