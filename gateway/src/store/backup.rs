//! `nfp-gateway db backup FILE` and `db restore FILE` (issue 15, item 7): a
//! consistent copy of a SQLite store taken while the gateway runs (SQLite's
//! `VACUUM INTO` reads one snapshot of the database, as any reader does,
//! and writes it compacted into a new file), and the way back. The stored
//! content is encrypted to the gateway's key: a backup is worth nothing
//! without the key, and the key without the store loses the archive (the
//! README says what to keep). A PostgreSQL store is backed up with the
//! server's own tools (pg_dump, or the cluster's base backups).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};

use super::{schema_version, sqlite_path, Engine, Store};

/// What a backup file holds, read back from it.
#[derive(Debug)]
pub struct Summary {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema: i64,
    /// Each table and its rows, by name.
    pub tables: Vec<(String, i64)>,
}

impl Summary {
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{}: {} bytes, schema version {}, integrity ok\n",
            self.path.display(),
            self.bytes,
            self.schema
        );
        for (table, rows) in &self.tables {
            out.push_str(&format!("  {table:<22} {rows:>9} rows\n"));
        }
        out
    }
}

fn sqlite_only(store: Engine) -> Result<()> {
    if store != Engine::Sqlite {
        bail!(
            "a PostgreSQL store is backed up and restored with the server's tools (pg_dump and \
             pg_restore, or the cluster's base backups); `db backup` copies a SQLite store"
        );
    }
    Ok(())
}

/// Writes a consistent copy of `store` to `to` (which must not exist; mode
/// 0600), then reads it back whole.
pub async fn backup(store: &Store, to: &Path) -> Result<Summary> {
    use std::os::unix::fs::OpenOptionsExt;
    sqlite_only(store.engine)?;
    // VACUUM INTO writes into a file that does not exist or is empty: made
    // empty here, so that its mode is the store's, never the umask's.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("Creating the backup {}", to.display()))?;
    let target = to
        .to_str()
        .context("the backup's path is not UTF-8")?
        .to_string();
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&store.pool)
        .await
        .context("Copying the store (VACUUM INTO)");
    let summary = match copied {
        Ok(_) => summary(to).await,
        Err(e) => Err(e),
    };
    if summary.is_err() {
        let _ = std::fs::remove_file(to);
    }
    summary
}

/// Reads a SQLite store file whole, read-only: its integrity, schema
/// version and rows per table.
pub async fn summary(path: &Path) -> Result<Summary> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("Reading {}", path.display()))?
        .len();
    let mut conn: SqliteConnection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("Opening {}", path.display()))?;
    let result = async {
        let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await
            .context("Checking its integrity")?;
        if check != ["ok"] {
            bail!(
                "it is damaged (SQLite's integrity check: {})",
                check.join("; ")
            );
        }
        let schema: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut conn)
                .await
                .context("Reading its schema version (is it a gateway's store?)")?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await?;
        let mut tables = Vec::new();
        for name in names {
            // The names come from sqlite_master, quoted as identifiers.
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await?;
            tables.push((name, row.try_get::<i64, _>(0)?));
        }
        Ok((schema.unwrap_or(0), tables))
    }
    .await;
    let _ = conn.close().await;
    let (schema, tables) = result.with_context(|| format!("Reading {}", path.display()))?;
    Ok(Summary {
        path: path.to_path_buf(),
        bytes,
        schema,
        tables,
    })
}

/// Puts the backup `from` in place of the SQLite store at `url`, which must
/// not be open (stop the gateway first). The store it replaces is kept
/// beside it, renamed; returns the backup's summary and that name.
pub async fn restore(url: &str, from: &Path) -> Result<(Summary, Option<PathBuf>)> {
    sqlite_only(Engine::of(url)?)?;
    let summary = summary(from).await?;
    if summary.schema > schema_version() {
        bail!(
            "{} is at schema version {}, newer than this release knows ({}): restore it with that release",
            from.display(),
            summary.schema,
            schema_version()
        );
    }
    let target = sqlite_path(url).to_path_buf();
    let suffixed = |s: &str| {
        let mut p = target.clone().into_os_string();
        p.push(s);
        PathBuf::from(p)
    };
    let wal = suffixed("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        bail!(
            "the store {} is open (its write-ahead log {} is there): stop the gateway first. If it \
             is stopped, a crash left the log: run `nfp-gateway status` once (it folds the log into \
             the store) and restore again",
            target.display(),
            wal.display()
        );
    }
    let aside = if target.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = suffixed(&format!(".before-restore-{stamp}"));
        std::fs::rename(&target, &aside)
            .with_context(|| format!("Moving {} aside", target.display()))?;
        for s in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(suffixed(s));
        }
        Some(aside)
    } else {
        None
    };
    let partial = suffixed(".restoring");
    let copied = (|| -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&partial);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        std::io::copy(&mut std::fs::File::open(from)?, &mut out)?;
        out.sync_all()?;
        std::fs::rename(&partial, &target)?;
        if let Some(dir) = target.parent() {
            std::fs::File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })?
            .sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        if let Some(a) = &aside {
            let _ = std::fs::rename(a, &target);
        }
        return Err(e)
            .with_context(|| format!("Restoring {} to {}", from.display(), target.display()));
    }
    Ok((summary, aside))
}
