//! The figures of the Secretariat's report (issue 16, item 5): counts over
//! a period, never a message's words. What they mean is `crate::report`'s;
//! this is the SQL.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::{timestamp, Store};

/// A case answered in the period: who owed it, its kind, and when it was
/// opened and answered.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Answered {
    pub debtor: String,
    pub kind: String,
    pub opened_at: String,
    pub answered_at: String,
}

impl Store {
    /// Cases opened, answered and closed in [since, until).
    pub async fn case_activity(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<(i64, i64, i64)> {
        let (since, until) = (timestamp(since), timestamp(until));
        let opened: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM request_case WHERE opened_at >= $1 AND opened_at < $2",
        )
        .bind(&since)
        .bind(&until)
        .fetch_one(&self.pool)
        .await
        .context("Counting the cases opened")?;
        let answered: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM request_case WHERE answered_at >= $1 AND answered_at < $2",
        )
        .bind(&since)
        .bind(&until)
        .fetch_one(&self.pool)
        .await
        .context("Counting the cases answered")?;
        let closed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM case_event WHERE event = 'closed' AND at >= $1 AND at < $2",
        )
        .bind(&since)
        .bind(&until)
        .fetch_one(&self.pool)
        .await
        .context("Counting the cases closed")?;
        Ok((opened, answered, closed))
    }

    /// The cases answered in [since, until).
    pub async fn cases_answered(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<Answered>> {
        sqlx::query_as::<_, Answered>(
            "SELECT debtor, kind, opened_at, answered_at FROM request_case
             WHERE answered_at >= $1 AND answered_at < $2 ORDER BY debtor, kind, answered_at",
        )
        .bind(timestamp(since))
        .bind(timestamp(until))
        .fetch_all(&self.pool)
        .await
        .context("Reading the cases answered")
    }

    /// Messages received in [since, until), by verdict and by kind or
    /// reason: (verdict, kind or reason, count).
    pub async fn received_by(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<(String, String, i64)>> {
        sqlx::query_as::<_, (String, String, i64)>(
            "SELECT verdict, COALESCE(CASE WHEN verdict = 'accepted' THEN kind ELSE reason END, '') AS what, COUNT(*)
             FROM inbound WHERE received_at >= $1 AND received_at < $2
             GROUP BY verdict, what ORDER BY verdict, 3 DESC, what",
        )
        .bind(timestamp(since))
        .bind(timestamp(until))
        .fetch_all(&self.pool)
        .await
        .context("Counting the messages received")
    }

    /// When the gateway first recorded anything (its first audit entry, by
    /// the key: no scan of the trail): no report covers a period that ended
    /// before.
    pub async fn first_recorded(&self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT at FROM audit ORDER BY id LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .context("Reading when the gateway began")
    }

    /// Whether the report of the period ending on `day` has gone out.
    pub async fn report_sent(&self, day: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM report_run WHERE day = $1")
            .bind(day)
            .fetch_one(&self.pool)
            .await
            .context("Reading the reports sent")?;
        Ok(n > 0)
    }
}
