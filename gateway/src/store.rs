//! The durable store (sqlx; SQLite by default): inbound messages and their
//! decisions, reference numbers, the replay and de-duplication memory, the
//! outbox, SMTP attempts and the append-only audit trail.
//!
//! Every SQL statement the gateway runs is in this module and its children,
//! so that a second engine (PostgreSQL) is a change here only. Writes that
//! belong together share one transaction ([`Tx`]): a message, its decision,
//! its outgoing mail and their audit entries are committed at once or not at all.

pub mod directory;
pub mod inbound;
pub mod limits;
pub mod outbox;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The store: a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The writers of this process take turns here, first come first
    /// served, before they ask the database for its write lock. Without it
    /// a writer that finds the lock taken sleeps in SQLite's busy handler
    /// (1, 2, 5, 10 ms...) and the intake, which writes back to back, keeps
    /// the outbox sender from recording anything until it is idle.
    writers: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction (SQLite `BEGIN IMMEDIATE`: the write lock is taken
/// at the start, so a transaction never fails half-way on lock upgrade).
pub struct Tx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Store> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("Parsing the database URL {url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed transaction survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // Another process (the daemon, and a command started beside it) may
        // be opening or migrating the same database: setting up a connection
        // can then meet a lock, and SQLite's migrator takes no lock across
        // processes, so the loser may see a table the winner just created.
        // Waiting and trying again finds the database ready.
        let mut delay = Duration::from_millis(50);
        loop {
            match Store::connect_and_migrate(&options).await {
                Ok(pool) => {
                    return Ok(Store {
                        pool,
                        writers: Arc::default(),
                    })
                }
                Err(e) if transient(&e) && delay < Duration::from_secs(10) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e).with_context(|| format!("Opening the database {url}")),
            }
        }
    }

    async fn connect_and_migrate(options: &SqliteConnectOptions) -> Result<SqlitePool> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("Migrating the database")?;
        Ok(pool)
    }

    /// Opens the database only if it exists already (SQLite: the file is there).
    pub async fn open_existing(url: &str) -> Result<Option<Store>> {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(path).exists() {
            return Ok(None);
        }
        Store::open(url).await.map(Some)
    }

    pub async fn begin(&self) -> Result<Tx> {
        let turn = self.writers.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Starting a transaction")?;
        Ok(Tx { tx, _turn: turn })
    }

    /// Folds the write-ahead log into the database file and closes the pool:
    /// after this the `.db` file alone holds everything (for backups).
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "could not checkpoint the database");
        }
        self.pool.close().await;
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Appends one audit entry on its own.
    pub async fn audit(&self, entry: &Audit<'_>) -> Result<()> {
        entry.insert(&self.pool).await
    }

    /// The audit trail, oldest first (for status and tests).
    pub async fn audit_trail(&self, limit: i64) -> Result<Vec<AuditRow>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, event, inbound_id, outbox_id, party, fingerprint, detail
             FROM audit ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("Reading the audit trail")
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.context("Committing")
    }

    pub async fn audit(&mut self, entry: &Audit<'_>) -> Result<()> {
        entry.insert(&mut *self.tx).await
    }

    /// The next reference number of `year`: `<prefix>-YYYY-NNNNNN` (the
    /// Secretariat's prefix is `BSM`, a national gateway's `BSM-AT`), never reused.
    pub async fn next_reference(&mut self, prefix: &str, year: i32) -> Result<String> {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO reference_counter (year, last) VALUES ($1, 1)
             ON CONFLICT (year) DO UPDATE SET last = last + 1
             RETURNING last",
        )
        .bind(year)
        .fetch_one(&mut *self.tx)
        .await
        .context("Allocating a reference number")?;
        Ok(reference(prefix, year, n))
    }
}

/// Reference number `n` of `year`: `<prefix>-YYYY-NNNNNN`.
pub fn reference(prefix: &str, year: i32, n: i64) -> String {
    format!("{prefix}-{year:04}-{n:06}")
}

/// One audit entry.
#[derive(Debug, Default)]
pub struct Audit<'a> {
    pub at: Option<SystemTime>,
    pub event: &'a str,
    pub inbound_id: Option<i64>,
    pub outbox_id: Option<i64>,
    pub party: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
    pub detail: &'a str,
}

impl Audit<'_> {
    async fn insert<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
        &self,
        executor: E,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, event, inbound_id, outbox_id, party, fingerprint, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(timestamp(self.at.unwrap_or_else(SystemTime::now)))
        .bind(self.event)
        .bind(self.inbound_id)
        .bind(self.outbox_id)
        .bind(self.party)
        .bind(self.fingerprint)
        .bind(self.detail)
        .execute(executor)
        .await
        .context("Appending to the audit trail")?;
        Ok(())
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub inbound_id: Option<i64>,
    pub outbox_id: Option<i64>,
    pub party: Option<String>,
    pub fingerprint: Option<String>,
    pub detail: String,
}

/// A lock or a race with another process opening the same database.
fn transient(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("database is locked") || text.contains("already exists")
}

/// SHA-256 of bytes, in lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sequoia_openpgp::types::HashAlgorithm;
    let mut h = HashAlgorithm::SHA256
        .context()
        .expect("SHA-256 is available")
        .for_digest();
    h.update(data);
    sequoia_openpgp::fmt::hex::encode(h.into_digest().unwrap_or_default()).to_lowercase()
}

/// The store's time format: RFC 3339 UTC with milliseconds; sorts as it compares.
pub fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::outbox::{Attempt, NewOutbox};
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url).await.unwrap())
    }

    #[tokio::test]
    async fn references_count_up_per_year_and_survive_reopening() {
        let (dir, s) = store().await;
        let mut tx = s.begin().await.unwrap();
        assert_eq!(
            tx.next_reference("BSM", 2026).await.unwrap(),
            "BSM-2026-000001"
        );
        assert_eq!(
            tx.next_reference("BSM", 2026).await.unwrap(),
            "BSM-2026-000002"
        );
        assert_eq!(
            tx.next_reference("BSM", 2027).await.unwrap(),
            "BSM-2027-000001"
        );
        assert_eq!(
            tx.next_reference("BSM-AT", 2028).await.unwrap(),
            "BSM-AT-2028-000001"
        );
        tx.commit().await.unwrap();
        // A rolled-back transaction gives its number back; a committed one never.
        let mut tx = s.begin().await.unwrap();
        assert_eq!(
            tx.next_reference("BSM", 2026).await.unwrap(),
            "BSM-2026-000003"
        );
        drop(tx);
        drop(s);
        let s = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        let mut tx = s.begin().await.unwrap();
        assert_eq!(
            tx.next_reference("BSM", 2026).await.unwrap(),
            "BSM-2026-000003"
        );
    }

    #[tokio::test]
    async fn the_audit_trail_is_append_only() {
        let (_dir, s) = store().await;
        s.audit(&Audit {
            event: "test",
            detail: "x",
            ..Audit::default()
        })
        .await
        .unwrap();
        let update = sqlx::query("UPDATE audit SET detail = 'y'")
            .execute(s.pool())
            .await;
        assert!(format!("{:?}", update.unwrap_err()).contains("append-only"));
        let delete = sqlx::query("DELETE FROM audit").execute(s.pool()).await;
        assert!(format!("{:?}", delete.unwrap_err()).contains("append-only"));
        assert_eq!(s.audit_trail(10).await.unwrap().len(), 1);
    }

    async fn queue_one(s: &Store, id: &str) -> i64 {
        let mut tx = s.begin().await.unwrap();
        let n = tx
            .insert_outbox(&NewOutbox {
                inbound_id: None,
                purpose: "forward",
                template: "t",
                recipient_party: "AT",
                recipient_email: "nfp@at.example",
                recipient_fingerprint: "F",
                message_id: id,
                message: Some(b"bytes"),
                created_at: SystemTime::now(),
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n
    }

    #[tokio::test]
    async fn a_mail_is_claimed_once_and_retried_on_schedule() {
        let (_dir, s) = store().await;
        let id = queue_one(&s, "<1@x>").await;
        let now = SystemTime::now();
        let due = s.claim_due(now, 10, "c1").await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].id, due[0].attempts), (id, 1));
        assert!(
            s.claim_due(now, 10, "c1").await.unwrap().is_empty(),
            "a second claim must find nothing"
        );
        let later = now + Duration::from_secs(60);
        let attempt = Attempt::Transient {
            code: Some(451),
            response: "try later".into(),
            next: later,
        };
        s.finish(&due[0], now, &attempt).await.unwrap();
        assert!(
            s.claim_due(now, 10, "c1").await.unwrap().is_empty(),
            "not due before the retry time"
        );
        let again = s.claim_due(later, 10, "c2").await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(again[0].last_error, "try later");
        s.finish(
            &again[0],
            later,
            &Attempt::Sent {
                code: 250,
                response: "ok".into(),
            },
        )
        .await
        .unwrap();
        assert!(s
            .claim_due(later + Duration::from_secs(3600), 10, "c5")
            .await
            .unwrap()
            .is_empty());
        let outcomes: Vec<(String,)> =
            sqlx::query_as("SELECT outcome FROM smtp_attempt ORDER BY id")
                .fetch_all(s.pool())
                .await
                .unwrap();
        assert_eq!(
            outcomes,
            vec![("transient".to_string(),), ("sent".to_string(),)]
        );
    }

    #[tokio::test]
    async fn claimed_mail_not_tried_is_given_back_uncounted() {
        let (_dir, s) = store().await;
        let ids = [queue_one(&s, "<3@x>").await, queue_one(&s, "<4@x>").await];
        let now = SystemTime::now();
        let claimed = s.claim_due(now, 1, "c4").await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, ids[0], "oldest first");
        s.unclaim(&[claimed[0].id]).await.unwrap();
        let again = s.claim_due(now, 10, "c1").await.unwrap();
        assert_eq!(
            again.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
            vec![(ids[0], 1), (ids[1], 1)]
        );
    }

    #[tokio::test]
    async fn after_a_crash_only_the_first_unrecorded_mail_of_a_claim_is_in_doubt() {
        let (_dir, s) = store().await;
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(queue_one(&s, &format!("<c{n}@x>")).await);
        }
        let now = SystemTime::now();
        let first = s.claim_due(now, 3, "a").await.unwrap();
        let second = s.claim_due(now, 3, "b").await.unwrap();
        assert_eq!(first.len() + second.len(), 5);
        // Claim a: its first mail sent and recorded, the second in SMTP at the crash.
        let sent = Attempt::Sent {
            code: 250,
            response: "ok".into(),
        };
        s.finish(&first[0], now, &sent).await.unwrap();
        // The process dies here. At the next start:
        assert_eq!(s.recover_in_doubt(now).await.unwrap(), 2);
        let doubt: Vec<(i64,)> = sqlx::query_as(
            "SELECT outbox_id FROM smtp_attempt WHERE outcome = 'in_doubt' ORDER BY outbox_id",
        )
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(doubt, vec![(ids[1],), (ids[3],)]);
        let again = s.claim_due(now, 10, "c").await.unwrap();
        assert_eq!(
            again.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
            vec![(ids[1], 2), (ids[2], 1), (ids[3], 2), (ids[4], 1)],
            "in doubt: a second attempt; never tried: the first"
        );
    }

    #[tokio::test]
    async fn mail_interrupted_during_smtp_is_in_doubt_and_sent_again() {
        let (_dir, s) = store().await;
        let id = queue_one(&s, "<2@x>").await;
        let claimed = s.claim_due(SystemTime::now(), 10, "c3").await.unwrap();
        assert_eq!(claimed.len(), 1);
        // The process dies here. At the next start:
        assert_eq!(s.recover_in_doubt(SystemTime::now()).await.unwrap(), 1);
        let due = s.claim_due(SystemTime::now(), 10, "c3").await.unwrap();
        assert_eq!((due[0].id, due[0].attempts), (id, 2));
        assert_eq!(due.len(), 1);
        assert_eq!(
            due[0].message_id, "<2@x>",
            "sent again with the same Message-ID"
        );
        let doubt: (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM smtp_attempt WHERE outcome = 'in_doubt'")
                .fetch_one(s.pool())
                .await
                .unwrap();
        assert_eq!(doubt.0, 1);
    }
}
