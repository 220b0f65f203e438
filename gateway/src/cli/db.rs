//! `nfp-gateway db`: the store copied (SQLite to PostgreSQL), backed up
//! while the gateway runs, and restored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every table of a store into a new, empty one (e.g. SQLite to
    /// PostgreSQL), then compare row counts and checksums table by table.
    /// Stop the gateway first. Exit status 1 when anything differs.
    Copy {
        /// The store to copy (`sqlite://PATH` or `postgres://...`).
        #[arg(long)]
        from: String,
        /// The new store (migrated here; it must hold no data).
        #[arg(long)]
        to: String,
    },
    /// A consistent copy of the SQLite store, taken while the gateway runs
    /// (SQLite's VACUUM INTO), into FILE (new, mode 0600), then read back
    /// whole: integrity, schema version, rows per table. Keep it with the
    /// gateway's key: the stored content is encrypted to it.
    Backup {
        /// The backup file to write (it must not exist).
        file: PathBuf,
    },
    /// Put a backup in place of the SQLite store (stop the gateway first);
    /// the store it replaces is kept beside it, renamed.
    Restore {
        /// A file `db backup` wrote.
        file: PathBuf,
    },
}

pub async fn run(config: &Path, command: DbCommand) -> Result<ExitCode> {
    match command {
        DbCommand::Copy { from, to } => {
            use crate::store::redact;
            eprintln!("copying {} to {}", redact(&from), redact(&to));
            let report = crate::store::copy::copy(&from, &to, |table, rows| {
                eprintln!("  {table:<18} {rows} rows copied")
            })
            .await?;
            println!(
                "{:<18} {:>9} {:>9}  checksum (SHA-256 of the rows)",
                "table", "source", "target"
            );
            let mut same = true;
            for t in &report {
                let verdict = if t.same() { "same" } else { "DIFFERENT" };
                same &= t.same();
                println!(
                    "{:<18} {:>9} {:>9}  {} {verdict}",
                    t.name,
                    t.rows.0,
                    t.rows.1,
                    &t.checksums.0[..16]
                );
            }
            Ok(if same {
                println!("every table copied: the same rows in both stores");
                ExitCode::SUCCESS
            } else {
                println!("the stores differ: do not use the copy");
                ExitCode::from(1)
            })
        }
        DbCommand::Backup { file } => {
            let store = super::open_store(config).await?;
            let summary = crate::store::backup::backup(&store, &file).await;
            store.close().await;
            print!("{}", summary?.describe());
            println!(
                "backup written; keep it with the gateway's key (the content is encrypted to it)"
            );
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Restore { file } => {
            let cfg = crate::config::Config::load(config)?;
            let (summary, aside) = crate::store::backup::restore(&cfg.database, &file).await?;
            print!("{}", summary.describe());
            match aside {
                Some(a) => println!("restored; the store it replaced is kept as {}", a.display()),
                None => println!("restored"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
