//! The Secretariat's cases (issue 16): one per accepted assistance request
//! and information request, under its reference, with its history. What a
//! case means, and who may change it, is `crate::cases`'s; this is the SQL.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store, Tx};

/// A case as stored. Times are the store's text (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct CaseRow {
    pub reference: String,
    pub inbound_id: i64,
    pub kind: String,
    pub asker: String,
    pub debtor: String,
    /// JSON list of topic codes.
    pub topics: String,
    pub opened_at: String,
    pub due_at: String,
    /// `open`, `answered` or `closed`.
    pub state: String,
    /// The reference of the message that answered it ('' none).
    pub answer: String,
    pub answered_at: String,
    pub reminded_at: String,
    pub escalated_at: String,
    pub updated_at: String,
}

impl CaseRow {
    /// Whether the case is open past its due time at `now`.
    pub fn overdue(&self, now: SystemTime) -> bool {
        self.state == "open" && self.due_at < timestamp(now)
    }

    /// The state as a person reads it: `overdue` for an open case past its
    /// due time.
    pub fn standing(&self, now: SystemTime) -> &str {
        match self.overdue(now) {
            true => "overdue",
            false => &self.state,
        }
    }
}

/// One entry of a case's history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct CaseEvent {
    pub id: i64,
    pub reference: String,
    pub at: String,
    pub event: String,
    pub actor: String,
    pub inbound_id: Option<i64>,
    pub detail: String,
}

/// A new case.
#[derive(Debug)]
pub struct NewCase<'a> {
    pub reference: &'a str,
    pub inbound_id: i64,
    pub kind: &'a str,
    pub asker: &'a str,
    pub debtor: &'a str,
    pub topics: &'a str,
    pub opened_at: SystemTime,
    pub due_at: SystemTime,
}

/// Which cases [`Store::cases`] lists.
#[derive(Debug, Default, Clone)]
pub struct CaseQuery<'a> {
    /// `open`, `answered` or `closed`; None: all.
    pub state: Option<&'a str>,
    /// Only open cases due before this time.
    pub due_before: Option<SystemTime>,
    /// Only cases this party asked or owes.
    pub party: Option<&'a str>,
}

const COLUMNS: &str = "reference, inbound_id, kind, asker, debtor, topics, opened_at, due_at, state, answer, answered_at, reminded_at, escalated_at, updated_at";

impl Store {
    /// The cases `q` selects, the oldest due first.
    pub async fn cases(&self, q: &CaseQuery<'_>) -> Result<Vec<CaseRow>> {
        sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM request_case
             WHERE ($1 = '' OR state = $1)
               AND ($2 = '' OR (state = 'open' AND due_at < $2))
               AND ($3 = '' OR asker = $3 OR debtor = $3)
             ORDER BY due_at, reference"
        )))
        .bind(q.state.unwrap_or_default())
        .bind(q.due_before.map(timestamp).unwrap_or_default())
        .bind(q.party.unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .context("Reading the cases")
    }

    /// The case of `reference`, if there is one.
    pub async fn case(&self, reference: &str) -> Result<Option<CaseRow>> {
        let mut tx = self.begin().await?;
        let row = tx.case(reference).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The open cases that need a reminder: not reminded yet and due
    /// before `horizon`, or not escalated yet and due before `now`.
    pub async fn cases_to_remind(
        &self,
        horizon: SystemTime,
        now: SystemTime,
    ) -> Result<Vec<CaseRow>> {
        sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM request_case
             WHERE state = 'open'
               AND ((reminded_at = '' AND due_at < $1) OR (escalated_at = '' AND due_at < $2))
             ORDER BY due_at, reference"
        )))
        .bind(timestamp(horizon))
        .bind(timestamp(now))
        .fetch_all(&self.pool)
        .await
        .context("Finding the cases to remind")
    }

    /// How many cases stand so at `now`: open (not yet due), overdue,
    /// answered, closed.
    pub async fn case_counts(&self, now: SystemTime) -> Result<Vec<(String, i64)>> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT CASE WHEN state = 'open' AND due_at < $1 THEN 'overdue' ELSE state END AS standing,
                    COUNT(*)
             FROM request_case GROUP BY 1 ORDER BY 1",
        )
        .bind(timestamp(now))
        .fetch_all(&self.pool)
        .await
        .context("Counting the cases")
    }

    /// A case's history, in order.
    pub async fn case_events(&self, reference: &str) -> Result<Vec<CaseEvent>> {
        sqlx::query_as::<_, CaseEvent>(
            "SELECT id, reference, at, event, actor, inbound_id, detail FROM case_event
             WHERE reference = $1 ORDER BY id",
        )
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .context("Reading a case's history")
    }
}

impl Tx {
    /// Opens a case; false if `reference` has one already.
    pub async fn open_case(&mut self, c: &NewCase<'_>) -> Result<bool> {
        let at = timestamp(c.opened_at);
        let done = sqlx::query(
            "INSERT INTO request_case (reference, inbound_id, kind, asker, debtor, topics,
                                       opened_at, due_at, state, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $7)
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(c.reference)
        .bind(c.inbound_id)
        .bind(c.kind)
        .bind(c.asker)
        .bind(c.debtor)
        .bind(c.topics)
        .bind(&at)
        .bind(timestamp(c.due_at))
        .execute(&mut *self.tx)
        .await
        .context("Opening a case")?;
        Ok(done.rows_affected() == 1)
    }

    /// The case of `reference`, read inside the transaction.
    pub async fn case(&mut self, reference: &str) -> Result<Option<CaseRow>> {
        sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM request_case WHERE reference = $1"
        )))
        .bind(reference)
        .fetch_optional(&mut *self.tx)
        .await
        .context("Reading a case")
    }

    /// Appends to a case's history.
    pub async fn case_event(
        &mut self,
        reference: &str,
        at: SystemTime,
        event: &str,
        actor: &str,
        inbound_id: Option<i64>,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO case_event (reference, at, event, actor, inbound_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(reference)
        .bind(timestamp(at))
        .bind(event)
        .bind(actor)
        .bind(inbound_id)
        .bind(detail)
        .execute(&mut *self.tx)
        .await
        .context("Recording a case's history")?;
        Ok(())
    }

    /// Marks an open case answered by the message `answer`; false if it
    /// was not open.
    pub async fn answer_case(
        &mut self,
        reference: &str,
        answer: &str,
        at: SystemTime,
    ) -> Result<bool> {
        let at = timestamp(at);
        let done = sqlx::query(
            "UPDATE request_case SET state = 'answered', answer = $1, answered_at = $2, updated_at = $2
             WHERE reference = $3 AND state = 'open'",
        )
        .bind(answer)
        .bind(&at)
        .bind(reference)
        .execute(&mut *self.tx)
        .await
        .context("Answering a case")?;
        Ok(done.rows_affected() == 1)
    }

    /// Reminder mails queued since `since`.
    pub async fn reminders_since(&mut self, since: SystemTime) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE purpose = 'reminder' AND created_at >= $1",
        )
        .bind(timestamp(since))
        .fetch_one(&mut *self.tx)
        .await
        .context("Counting the reminders sent")
    }

    /// Claims a case's reminder: the one before its due time, or with
    /// `overdue` the one after it (which stands for both when the first
    /// never went out). False if it is not open or another run claimed it.
    pub async fn claim_reminder(
        &mut self,
        reference: &str,
        overdue: bool,
        at: SystemTime,
    ) -> Result<bool> {
        let sql = match overdue {
            false => {
                "UPDATE request_case SET reminded_at = $1, updated_at = $1
                 WHERE reference = $2 AND state = 'open' AND reminded_at = ''"
            }
            true => {
                "UPDATE request_case SET escalated_at = $1, updated_at = $1,
                     reminded_at = CASE WHEN reminded_at = '' THEN $1 ELSE reminded_at END
                 WHERE reference = $2 AND state = 'open' AND escalated_at = ''"
            }
        };
        let done = sqlx::query(sql)
            .bind(timestamp(at))
            .bind(reference)
            .execute(&mut *self.tx)
            .await
            .context("Claiming a case's reminder")?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a case's state (`open` or `closed`), its debtor and its due
    /// time; a new due time re-arms its reminders.
    pub async fn update_case(&mut self, c: &CaseRow, at: SystemTime) -> Result<()> {
        sqlx::query(
            "UPDATE request_case SET state = $1, debtor = $2, due_at = $3,
                 reminded_at = CASE WHEN due_at = $3 THEN reminded_at ELSE '' END,
                 escalated_at = CASE WHEN due_at = $3 THEN escalated_at ELSE '' END,
                 updated_at = $4
             WHERE reference = $5",
        )
        .bind(&c.state)
        .bind(&c.debtor)
        .bind(&c.due_at)
        .bind(timestamp(at))
        .bind(&c.reference)
        .execute(&mut *self.tx)
        .await
        .context("Changing a case")?;
        Ok(())
    }
}
