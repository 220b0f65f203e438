//! The roll call (issue 16, item 3): its rounds and each NFP's part in
//! them. What a round means is `crate::rollcall`'s; this is the SQL.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store, Tx};

/// A round as stored. Times are the store's text (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct RoundRow {
    pub reference: String,
    pub started_at: String,
    pub due_at: String,
    pub started_by: String,
    pub reminded_at: String,
    pub reported_at: String,
}

/// One NFP in a round, with the state of its request mail in the outbox
/// (`pending`, `sending`, `sent`, `failed`, `held`; '' when it is gone).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct MemberRow {
    pub party: String,
    pub answer: String,
    pub answered_at: String,
    pub answer_reference: String,
    pub delivery: String,
}

impl MemberRow {
    /// Where the NFP stands: `confirmed` or `updated` when it answered;
    /// otherwise `held` (no usable key: it never got the request), `failed`
    /// (its server refused the request) or `silent`.
    pub fn standing(&self) -> &str {
        match (self.answer.as_str(), self.delivery.as_str()) {
            ("", "held") => "held",
            ("", "failed") => "failed",
            ("", _) => "silent",
            (answer, _) => answer,
        }
    }
}

const ROUND: &str = "reference, started_at, due_at, started_by, reminded_at, reported_at";

impl Store {
    /// The round of `reference`, if there is one.
    pub async fn round(&self, reference: &str) -> Result<Option<RoundRow>> {
        sqlx::query_as::<_, RoundRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ROUND} FROM rollcall WHERE reference = $1"
        )))
        .bind(reference)
        .fetch_optional(&self.pool)
        .await
        .context("Reading a roll call")
    }

    /// The rounds, the newest first.
    pub async fn rounds(&self) -> Result<Vec<RoundRow>> {
        sqlx::query_as::<_, RoundRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ROUND} FROM rollcall ORDER BY started_at DESC, reference DESC"
        )))
        .fetch_all(&self.pool)
        .await
        .context("Reading the roll calls")
    }

    /// The rounds not reported yet, the oldest first.
    pub async fn rounds_unreported(&self) -> Result<Vec<RoundRow>> {
        sqlx::query_as::<_, RoundRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ROUND} FROM rollcall WHERE reported_at = '' ORDER BY started_at, reference"
        )))
        .fetch_all(&self.pool)
        .await
        .context("Reading the roll calls under way")
    }

    /// A round's NFPs, by party id, with their request mail's state.
    pub async fn round_members(&self, reference: &str) -> Result<Vec<MemberRow>> {
        sqlx::query_as::<_, MemberRow>(
            "SELECT m.party, m.answer, m.answered_at, m.answer_reference, COALESCE(o.state, '') AS delivery
             FROM rollcall_party m LEFT JOIN outbox o ON o.message_id = m.message_id AND o.recipient_party = m.party
             WHERE m.reference = $1 ORDER BY m.party",
        )
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .context("Reading a roll call's NFPs")
    }
}

impl Tx {
    /// Records a new round; one that `follows` another (the daemon's) is
    /// recorded once: false if another run started it first.
    pub async fn start_round(
        &mut self,
        reference: &str,
        started_at: SystemTime,
        due_at: SystemTime,
        started_by: &str,
        follows: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO rollcall (reference, started_at, due_at, started_by, follows) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (follows) DO NOTHING",
        )
        .bind(reference)
        .bind(timestamp(started_at))
        .bind(timestamp(due_at))
        .bind(started_by)
        .bind(follows)
        .execute(&mut *self.tx)
        .await
        .context("Recording a roll call")?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `party` was asked in a round, by the mail `message_id`.
    pub async fn round_member(
        &mut self,
        reference: &str,
        party: &str,
        message_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO rollcall_party (reference, party, message_id) VALUES ($1, $2, $3)",
        )
        .bind(reference)
        .bind(party)
        .bind(message_id)
        .execute(&mut *self.tx)
        .await
        .context("Recording an NFP of a roll call")?;
        Ok(())
    }

    /// The newest round started before `at`, when one was.
    pub async fn latest_round(&mut self, at: SystemTime) -> Result<Option<RoundRow>> {
        sqlx::query_as::<_, RoundRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ROUND} FROM rollcall WHERE started_at <= $1 ORDER BY started_at DESC, reference DESC LIMIT 1"
        )))
        .bind(timestamp(at))
        .fetch_optional(&mut *self.tx)
        .await
        .context("Reading the latest roll call")
    }

    /// Records `party`'s answer to the round `reference` (`confirmed` or
    /// `updated`) by the message `answer_reference`; a confirmation never
    /// overwrites an update. False if the party was not asked in it or had
    /// answered so already.
    pub async fn answer_round(
        &mut self,
        reference: &str,
        party: &str,
        answer: &str,
        answer_reference: &str,
        inbound_id: i64,
        at: SystemTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE rollcall_party SET answer = $1, answered_at = $2, answer_reference = $3, answer_inbound_id = $4
             WHERE reference = $5 AND party = $6 AND answer <> 'updated' AND answer <> $1",
        )
        .bind(answer)
        .bind(timestamp(at))
        .bind(answer_reference)
        .bind(inbound_id)
        .bind(reference)
        .bind(party)
        .execute(&mut *self.tx)
        .await
        .context("Recording an answer to a roll call")?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a round's reminder (`reminded_at`) or its report
    /// (`reported_at`): false if another run claimed it first.
    pub async fn claim_round(
        &mut self,
        reference: &str,
        report: bool,
        at: SystemTime,
    ) -> Result<bool> {
        let sql = match report {
            false => {
                "UPDATE rollcall SET reminded_at = $1 WHERE reference = $2 AND reminded_at = ''"
            }
            true => {
                "UPDATE rollcall SET reported_at = $1 WHERE reference = $2 AND reported_at = ''"
            }
        };
        let done = sqlx::query(sql)
            .bind(timestamp(at))
            .bind(reference)
            .execute(&mut *self.tx)
            .await
            .context("Claiming a roll call's mail")?;
        Ok(done.rows_affected() == 1)
    }
}
