//! The durable store (sqlx; SQLite by default): inbound messages and their
//! decisions, reference numbers, the replay and de-duplication memory, the
//! outbox, SMTP attempts and the append-only audit trail.
//!
//! Every SQL statement the gateway runs is in this module and its children,
//! so that a second engine (PostgreSQL) is a change here only. Writes that
//! belong together share one transaction ([`Tx`]): a message, its decision,
//! its outgoing mail and their audit entries are committed at once or not at all.

pub mod audit_chain;
pub mod backup;
pub mod cases;
pub mod copy;
pub mod directory;
pub mod health;
pub mod inbound;
pub mod library;
pub mod limits;
pub mod outbox;
pub mod reencrypt;
pub mod report;
pub mod retention;
pub mod rollcall;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection as _, Executor as _, Transaction};

use health::{Health, WriteFailed};

static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");

/// The database engine behind a store: `sqlite://PATH` (the default: one
/// gateway, one file) or `postgres://...` (several gateway instances
/// sharing one database). The SQL is the same text for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of(url: &str) -> Result<Engine> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            bail!("database = {url:?}: want sqlite://PATH or postgres://USER@HOST/DB")
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Engine::Sqlite => &SQLITE,
            Engine::Postgres => &POSTGRES,
        }
    }
}

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    SQLITE.iter().map(|m| m.version).max().unwrap_or(0)
}

/// What [`Store::inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    /// A SQLite file that does not exist.
    Missing,
    /// Every migration of this build applied; the newest version.
    Current(i64),
    /// The versions not applied yet (`nfp-gateway migrate` applies them).
    Behind(Vec<i64>),
    /// Upgraded by a newer release, at this version.
    Newer(i64),
}

/// A SQLite store's file, made empty with mode 0600 where there is none
/// (SQLite gives its WAL and shared-memory files the same mode). Nothing
/// for PostgreSQL.
fn create_sqlite_file(url: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if Engine::of(url)? != Engine::Sqlite {
        return Ok(());
    }
    let path = sqlite_path(url);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .with_context(|| format!("Creating the store {}", path.display()))
}

/// The file of a `sqlite://PATH[?...]` URL.
pub fn sqlite_path(url: &str) -> &std::path::Path {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    std::path::Path::new(path.split('?').next().unwrap_or(path))
}

/// The store: a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// The writers of this process take turns here, first come first
    /// served, before they ask the database for its write lock. Without it
    /// a writer that finds the lock taken sleeps in SQLite's busy handler
    /// (1, 2, 5, 10 ms...) and the intake, which writes back to back, keeps
    /// the outbox sender from recording anything until it is idle.
    writers: Arc<tokio::sync::Mutex<()>>,
    /// Whether write transactions succeed (shared by the clones).
    health: Arc<Health>,
}

/// A write transaction. One at a time per database, whatever the engine:
/// SQLite's `BEGIN IMMEDIATE` takes the write lock at the start (so a
/// transaction never fails half-way on lock upgrade); on PostgreSQL every
/// write transaction of every gateway instance first takes one advisory
/// lock ([`WRITE_LOCK`]), so numbering (messages, references, directory
/// versions) and check-then-write steps (replays, budgets, due circulars)
/// behave exactly as on SQLite.
pub struct Tx {
    tx: Transaction<'static, Any>,
    health: Arc<Health>,
    /// SQLite: the connection's `total_changes()` at the start, to tell a
    /// transaction that wrote from one that only looked.
    changes_at_begin: Option<i64>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// The advisory lock of write transactions on PostgreSQL ("nfpgw" + 1).
const WRITE_LOCK: i64 = 0x6e66_7067_7701;

/// What opening does about migrations the database lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Apply them (SQLite: one gateway owns the file).
    Apply,
    /// Refuse to open (PostgreSQL: several instances share the database,
    /// and an operator upgrades it explicitly with `nfp-gateway migrate`).
    Refuse,
}

impl Store {
    /// Opens the store at `url`. A SQLite store must exist (a mistyped path
    /// would otherwise start an empty store, as if nothing had ever been
    /// processed) and is migrated; a PostgreSQL store must be migrated
    /// already (`nfp-gateway migrate`). Either is refused when its schema is
    /// newer than this build.
    pub async fn open(url: &str) -> Result<Store> {
        let engine = Engine::of(url)?;
        if engine == Engine::Sqlite && !sqlite_path(url).exists() {
            bail!(
                "the store {} does not exist: `nfp-gateway migrate` creates it (or `run --create`); \
                 is `database` in the configuration right?",
                sqlite_path(url).display()
            );
        }
        let pending = match engine {
            Engine::Sqlite => Pending::Apply,
            Engine::Postgres => Pending::Refuse,
        };
        Store::open_with(url, pending).await
    }

    /// Opens the store at `url`, creating a SQLite store that does not exist
    /// (mode 0600: only the gateway's user reads the archive).
    pub async fn create(url: &str) -> Result<Store> {
        create_sqlite_file(url)?;
        Store::open(url).await
    }

    /// `nfp-gateway migrate`: opens the store at `url` (a SQLite store is
    /// created, mode 0600), applying every migration it lacks; returns the
    /// versions applied.
    pub async fn migrate(url: &str) -> Result<(Store, Vec<i64>)> {
        create_sqlite_file(url)?;
        let store = Store::connect(url).await?;
        let before = store.applied().await?;
        store.check_not_newer(&before)?;
        store
            .engine
            .migrator()
            .run(&store.pool)
            .await
            .context("Migrating the database")?;
        let after = store.applied().await?;
        let new = after.into_iter().filter(|v| !before.contains(v)).collect();
        Ok((store, new))
    }

    async fn open_with(url: &str, pending: Pending) -> Result<Store> {
        // Another process (the daemon, and a command started beside it) may
        // be opening or migrating the same database: setting up a connection
        // can then meet a lock, and SQLite's migrator takes no lock across
        // processes, so the loser may see a table the winner just created.
        // Waiting and trying again finds the database ready.
        let mut delay = Duration::from_millis(50);
        loop {
            let attempt = async {
                let store = Store::connect(url).await?;
                store.prepare(pending).await?;
                Ok::<_, anyhow::Error>(store)
            };
            match attempt.await {
                Ok(store) => return Ok(store),
                Err(e) if transient(&e) && delay < Duration::from_secs(10) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("Opening the database {}", redact(url)))
                }
            }
        }
    }

    async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(url)?;
        let connect_url = match engine {
            // Created if missing.
            Engine::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            // A statement waits this long for a connection before it fails
            // (sqlx's default is 30 s): a lost PostgreSQL server is noticed,
            // reported and retried with backoff sooner.
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // FULL: a committed transaction survives power loss, not only a crash.
                        for pragma in [
                            "PRAGMA busy_timeout = 30000",
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            // A connection goes back to the pool only in a clean state. A
            // transaction whose COMMIT failed is rolled back when dropped;
            // but SQLite rolls back by itself on a full disk or an I/O
            // error, so that ROLLBACK fails and sqlx would still count the
            // connection as inside a transaction: every later BEGIN on it
            // would fail ("non-zero transaction depth") until a restart.
            // Such a connection is closed here instead (closing ends
            // whatever the database still has open), and the pool opens a
            // fresh one. `ping` first: it waits until the queued rollback
            // has run. This holds for every transaction of every caller.
            .after_release(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::debug!("a connection left inside a failed transaction is closed");
                    }
                    Ok(clean)
                })
            })
            .connect(&connect_url)
            .await
            .with_context(|| format!("Connecting to {}", redact(url)))?;
        Ok(Store {
            pool,
            engine,
            writers: Arc::default(),
            health: Arc::default(),
        })
    }

    /// Checks (and on SQLite brings up to date) the schema.
    async fn prepare(&self, pending: Pending) -> Result<()> {
        let applied = self.applied().await?;
        self.check_not_newer(&applied)?;
        let missing = self.missing(&applied);
        match (missing.is_empty(), pending) {
            (true, _) => Ok(()),
            (false, Pending::Apply) => match self.engine.migrator().run(&self.pool).await {
                Ok(()) => Ok(()),
                // SQLite's migrator takes no lock across processes: another
                // one may have applied a migration between our reading the
                // versions and applying it. Ours then failed inside its own
                // transaction (each migration and its version row commit
                // together, so nothing is applied twice); if the versions
                // moved meanwhile, the database is being brought up to date
                // by someone else, and opening again finds it ready.
                Err(e) => {
                    let now = self.applied().await?;
                    if now != applied {
                        Err(anyhow::Error::new(Busy)).context(e.to_string())
                    } else {
                        Err(e).context("Migrating the database")
                    }
                }
            },
            (false, Pending::Refuse) => bail!(
                "the database lacks schema version(s) {missing:?}: run `nfp-gateway migrate` first"
            ),
        }
    }

    /// This build's schema versions that `applied` lacks.
    fn missing(&self, applied: &[i64]) -> Vec<i64> {
        self.engine
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect()
    }

    fn check_not_newer(&self, applied: &[i64]) -> Result<()> {
        let known = schema_version();
        match applied.iter().max() {
            Some(&newest) if newest > known => bail!(
                "the database's schema is version {newest}, newer than this nfp-gateway knows ({known}): \
                 it was upgraded by a newer release; run that release"
            ),
            _ => Ok(()),
        }
    }

    /// The schema versions applied to the database (none when it is new).
    async fn applied(&self) -> Result<Vec<i64>> {
        let exists = match self.engine {
            Engine::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Engine::Postgres => "SELECT COUNT(*) FROM information_schema.tables
                 WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()",
        };
        let n: i64 = sqlx::query_scalar(exists)
            .fetch_one(&self.pool)
            .await
            .context("Reading the schema version")?;
        if n == 0 {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .context("Reading the schema version")
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The state of the database at `url`, changing nothing (`config
    /// check`): a SQLite file that does not exist is not created.
    pub async fn inspect(url: &str) -> Result<Schema> {
        if Engine::of(url)? == Engine::Sqlite && !sqlite_path(url).exists() {
            return Ok(Schema::Missing);
        }
        let store = Store::connect(url)
            .await
            .with_context(|| format!("Connecting to the database {}", redact(url)))?;
        let applied = store.applied().await;
        store.close().await;
        let applied = applied?;
        let newest = applied.iter().max().copied().unwrap_or(0);
        let missing = store.missing(&applied);
        Ok(match (newest > schema_version(), missing.is_empty()) {
            (true, _) => Schema::Newer(newest),
            (false, true) => Schema::Current(newest),
            (false, false) => Schema::Behind(missing),
        })
    }

    /// Opens the database only if it exists already (SQLite: the file is
    /// there; PostgreSQL: always, the server holds it).
    pub async fn open_existing(url: &str) -> Result<Option<Store>> {
        if Engine::of(url)? == Engine::Sqlite && !sqlite_path(url).exists() {
            return Ok(None);
        }
        Store::open(url).await.map(Some)
    }

    /// Begins a write transaction. An error here is a [`WriteFailed`], and
    /// the store's [`Health`] knows of it.
    pub async fn begin(&self) -> Result<Tx> {
        let turn = self.writers.clone().lock_owned().await;
        let started = std::time::Instant::now();
        let begun = async {
            let mut tx = match self.engine {
                Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                Engine::Postgres => self.pool.begin().await,
            }
            .context("Starting a transaction")?;
            if self.engine == Engine::Postgres {
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await
                    .context("Taking the write lock")?;
            }
            let changes_at_begin = match self.engine {
                Engine::Sqlite => Some(
                    sqlx::query_scalar::<_, i64>("SELECT total_changes()")
                        .fetch_one(&mut *tx)
                        .await
                        .context("Starting a transaction")?,
                ),
                Engine::Postgres => None,
            };
            Ok::<_, anyhow::Error>((tx, changes_at_begin))
        };
        match begun.await {
            Ok((tx, changes_at_begin)) => Ok(Tx {
                tx,
                health: self.health.clone(),
                changes_at_begin,
                _turn: turn,
            }),
            Err(e) => {
                self.health.failed(&e, started);
                Err(e.context(WriteFailed))
            }
        }
    }

    /// Whether write transactions succeed now.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Closes the pool; on SQLite, first folds the write-ahead log into the
    /// database file: after this the `.db` file alone holds everything (for
    /// backups).
    pub async fn close(&self) {
        if self.engine == Engine::Sqlite {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "could not checkpoint the database");
            }
        }
        self.pool.close().await;
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Appends one audit entry on its own.
    pub async fn audit(&self, entry: &Audit<'_>) -> Result<()> {
        entry.insert(&self.pool).await
    }

    /// The audit entries from `since` (inclusive) to `until` (exclusive),
    /// RFC 3339 times, of `event` and `party` when given (empty: any),
    /// oldest first, at most `limit`, after the entry `after_id` (paging).
    pub async fn audit_range(&self, q: &AuditQuery<'_>) -> Result<Vec<AuditRow>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, event, inbound_id, outbox_id, party, fingerprint, detail
             FROM audit
             WHERE id > $1 AND at >= $2 AND at < $3
               AND ($4 = '' OR event = $4) AND ($5 = '' OR party = $5)
               AND ($7 = ''
                    OR inbound_id IN (SELECT id FROM inbound WHERE reference = $7 OR cited_reference = $7)
                    OR outbox_id IN (SELECT o.id FROM outbox o JOIN inbound i ON o.inbound_id = i.id
                                     WHERE i.reference = $7 OR i.cited_reference = $7))
             ORDER BY id LIMIT $6",
        )
        .bind(q.after_id)
        .bind(q.since)
        .bind(q.until)
        .bind(q.event)
        .bind(q.party)
        .bind(q.limit)
        .bind(q.reference)
        .fetch_all(&self.pool)
        .await
        .context("Reading the audit trail")
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

/// A job done once a day (or once a period) across instances and
/// restarts: whoever claims its day first does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// The key-expiry watch.
    KeyWatch,
    /// The retention run.
    Retention,
    /// The Secretariat's periodic report, by the day its period ends.
    Report,
}

impl Tx {
    /// Claims `job` for `day`: false if it was claimed before (by this or
    /// another instance).
    pub async fn claim_once(&mut self, job: Once, day: &str, at: SystemTime) -> Result<bool> {
        let (sql, what) = match job {
            Once::KeyWatch => (
                "INSERT INTO key_watch_run (day, at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
                "Claiming the key-expiry watch",
            ),
            Once::Retention => (
                "INSERT INTO retention_run (day, at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
                "Claiming the retention run",
            ),
            Once::Report => (
                "INSERT INTO report_run (day, at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
                "Claiming the report",
            ),
        };
        let done = sqlx::query(sql)
            .bind(day)
            .bind(timestamp(at))
            .execute(&mut *self.tx)
            .await
            .context(what)?;
        Ok(done.rows_affected() == 1)
    }
}

impl Tx {
    /// Commits. An error here is a [`WriteFailed`]: nothing of the
    /// transaction is stored, and the connection does not go back to the
    /// pool unless it is clean again (see `after_release` in `connect`).
    pub async fn commit(mut self) -> Result<()> {
        // Only a commit that wrote something shows the store writable: on
        // a full disk a transaction that changed nothing still commits.
        let wrote = self.wrote().await;
        let started = std::time::Instant::now();
        match self.tx.commit().await.context("Committing") {
            Ok(()) => {
                if wrote {
                    self.health.succeeded();
                }
                Ok(())
            }
            Err(e) => {
                self.health.failed(&e, started);
                Err(e.context(WriteFailed))
            }
        }
    }

    pub async fn audit(&mut self, entry: &Audit<'_>) -> Result<()> {
        entry.insert(&mut *self.tx).await
    }

    /// Whether this transaction changed anything (true when that cannot be
    /// told: the commit will say what the store can do).
    async fn wrote(&mut self) -> bool {
        let changed = match self.changes_at_begin {
            Some(before) => sqlx::query_scalar::<_, i64>("SELECT total_changes()")
                .fetch_one(&mut *self.tx)
                .await
                .map(|now| now > before),
            // A PostgreSQL transaction has an id once it writes.
            None => sqlx::query_scalar::<_, i64>("SELECT COUNT(txid_current_if_assigned())")
                .fetch_one(&mut *self.tx)
                .await
                .map(|n| n > 0),
        };
        changed.unwrap_or(true)
    }

    /// The next reference number of `year`: `<prefix>-YYYY-NNNNNN` (the
    /// Secretariat's prefix is `BSM`, a national gateway's `BSM-AT`), never reused.
    pub async fn next_reference(&mut self, prefix: &str, year: i32) -> Result<String> {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO reference_counter (year, last) VALUES ($1, 1)
             ON CONFLICT (year) DO UPDATE SET last = reference_counter.last + 1
             RETURNING last",
        )
        .bind(i64::from(year))
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
    async fn insert<'e, E: sqlx::Executor<'e, Database = Any>>(&self, executor: E) -> Result<()> {
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

/// Which audit entries [`Store::audit_range`] reads. Times compare as the
/// store writes them (RFC 3339, UTC, `Z`).
#[derive(Debug, Clone)]
pub struct AuditQuery<'a> {
    pub after_id: i64,
    pub since: &'a str,
    pub until: &'a str,
    pub event: &'a str,
    pub party: &'a str,
    /// Only entries about the message with this reference, or the replies
    /// that cite it (empty: any).
    pub reference: &'a str,
    pub limit: i64,
}

impl Default for AuditQuery<'_> {
    fn default() -> Self {
        AuditQuery {
            after_id: 0,
            since: "",
            until: "9999",
            event: "",
            party: "",
            reference: "",
            limit: i64::MAX,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
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
/// Another process is migrating the same database at the same moment.
#[derive(Debug)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("another process is migrating the database")
    }
}

impl std::error::Error for Busy {}

fn transient(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    e.downcast_ref::<Busy>().is_some()
        || text.contains("database is locked")
        || text.contains("already exists")
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or(user);
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
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

/// A time the store wrote ([`timestamp`]), read back.
pub fn parse_timestamp(t: &str) -> Result<SystemTime> {
    Ok(chrono::DateTime::parse_from_rfc3339(t)
        .with_context(|| format!("{t:?} is not an RFC 3339 time"))?
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_printed_without_their_password() {
        assert_eq!(
            redact("postgres://gw:s3cret@db.example:5432/nfp?sslmode=verify-full"),
            "postgres://gw@db.example:5432/nfp?sslmode=verify-full"
        );
        assert_eq!(redact("postgres://gw@db/nfp"), "postgres://gw@db/nfp");
        assert_eq!(
            redact("sqlite:///var/lib/nfp/gw.db"),
            "sqlite:///var/lib/nfp/gw.db"
        );
    }

    #[test]
    fn the_engine_is_named_by_the_url() {
        assert_eq!(Engine::of("sqlite:///x.db").unwrap(), Engine::Sqlite);
        assert_eq!(Engine::of("postgres://a@b/c").unwrap(), Engine::Postgres);
        assert_eq!(Engine::of("postgresql://a@b/c").unwrap(), Engine::Postgres);
        assert!(Engine::of("mysql://a@b/c").is_err());
    }
}
