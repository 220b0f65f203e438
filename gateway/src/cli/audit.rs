//! `nfp-gateway audit`: the store's append-only audit trail, shown and
//! exported.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::store::{timestamp, AuditQuery, AuditRow, Store};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The audit entries, oldest first, as a table.
    List {
        #[command(flatten)]
        filter: Filter,
        /// At most this many entries (the oldest that match).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// The audit entries as JSON Lines, oldest first, each with `chain`: the
    /// SHA-256 of the previous line's chain and this entry, so that a later
    /// change to an exported file shows. The last chain is printed on
    /// standard error: note it with the export.
    Export {
        #[command(flatten)]
        filter: Filter,
        /// The file to write (new); standard output without it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check the store's sealed chain (an entry changed, removed, or
    /// inserted among sealed ones), or with FILE an export's chain line by
    /// line (no store needed). Exit status 1 at the first break.
    Verify {
        /// An export (`audit export`) to check instead of the store.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct Filter {
    /// From this time (RFC 3339), inclusive.
    #[arg(long, value_parser = super::parse_time)]
    since: Option<SystemTime>,
    /// Until this time (RFC 3339), exclusive.
    #[arg(long, value_parser = super::parse_time)]
    until: Option<SystemTime>,
    /// Only this event (e.g. `quarantine_release`, `directory_import`).
    #[arg(long)]
    event: Option<String>,
    /// Only entries about this party.
    #[arg(long)]
    party: Option<String>,
    /// Only entries about the message with this reference (BSM-2026-000042)
    /// and the replies that cite it, and the mail sent about them.
    #[arg(long)]
    reference: Option<String>,
}

/// Entries read per statement.
const PAGE: i64 = 1000;

pub async fn run(config_path: &Path, command: AuditCommand) -> Result<ExitCode> {
    if let AuditCommand::Verify { file: Some(file) } = &command {
        return verify(file);
    }
    let store = super::open_store(config_path).await?;
    // What the daemon has not sealed yet (or every entry, when it is not
    // running) is sealed first: what is shown is what is sealed.
    let sealed = store.seal_audit(SystemTime::now()).await;
    let result = match sealed {
        Err(e) => Err(e),
        Ok(_) => run_sealed(&store, command).await,
    };
    store.close().await;
    result
}

async fn verify_store(store: &Store) -> Result<ExitCode> {
    let v = store.verify_audit().await?;
    match v.broken {
        Some(why) => {
            println!(
                "the audit chain breaks after {} sealed entries: {why}",
                v.sealed
            );
            Ok(ExitCode::from(1))
        }
        None => {
            println!(
                "{} entries sealed, chain intact ({} not sealed yet); head {}",
                v.sealed, v.unsealed, v.head
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_sealed(store: &Store, command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::List { filter, limit } => list(store, &filter, limit).await,
        AuditCommand::Export { filter, out } => export(store, &filter, out.as_deref()).await,
        AuditCommand::Verify { .. } => verify_store(store).await,
    }
}

/// Every entry that matches, page by page, to `each`; stops after `limit`.
async fn each_entry(
    store: &Store,
    filter: &Filter,
    limit: i64,
    mut each: impl FnMut(&AuditRow) -> Result<()>,
) -> Result<i64> {
    let since = filter.since.map(timestamp).unwrap_or_default();
    let until = filter
        .until
        .map(timestamp)
        .unwrap_or_else(|| "9999".to_string());
    let mut query = AuditQuery {
        since: &since,
        until: &until,
        event: filter.event.as_deref().unwrap_or(""),
        party: filter.party.as_deref().unwrap_or(""),
        reference: filter.reference.as_deref().unwrap_or(""),
        ..AuditQuery::default()
    };
    let mut seen = 0;
    while seen < limit {
        query.limit = PAGE.min(limit - seen);
        let rows = store.audit_range(&query).await?;
        for row in &rows {
            each(row)?;
        }
        seen += rows.len() as i64;
        match rows.last() {
            Some(last) if rows.len() as i64 == query.limit => query.after_id = last.id,
            _ => break,
        }
    }
    Ok(seen)
}

async fn list(store: &Store, filter: &Filter, limit: i64) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>7}  {:<24}  {:<24}  {:<12}  {:>7}  {:>7}  detail",
        "id", "at", "event", "party", "inbound", "outbox"
    )?;
    let dash = || "-".to_string();
    let n = each_entry(store, filter, limit, |r| {
        writeln!(
            out,
            "{:>7}  {:<24}  {:<24}  {:<12}  {:>7}  {:>7}  {}",
            r.id,
            r.at,
            r.event,
            r.party.clone().unwrap_or_else(dash),
            r.inbound_id.map(|i| i.to_string()).unwrap_or_else(dash),
            r.outbox_id.map(|i| i.to_string()).unwrap_or_else(dash),
            crate::outbound::render::clean_line(&r.detail, 160)
        )?;
        Ok(())
    })
    .await?;
    writeln!(out, "{n} entries")?;
    Ok(ExitCode::SUCCESS)
}

/// One exported line: the entry and its chain.
#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    entry: &'a AuditRow,
    chain: String,
}

async fn export(store: &Store, filter: &Filter, to: Option<&Path>) -> Result<ExitCode> {
    let mut out: Box<dyn Write> = match to {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("Creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut chain = String::new();
    let mut ids = (None, None);
    let n = each_entry(store, filter, i64::MAX, |r| {
        chain = crate::store::audit_chain::next(&chain, r)?;
        ids = (ids.0.or(Some(r.id)), Some(r.id));
        let line = serde_json::to_string(&Line {
            entry: r,
            chain: chain.clone(),
        })?;
        writeln!(out, "{line}")?;
        Ok(())
    })
    .await?;
    out.flush().context("Writing the export")?;
    match ids {
        (Some(first), Some(last)) => {
            eprintln!("{n} audit entries exported (ids {first} to {last}); last chain {chain}")
        }
        _ => eprintln!("no audit entry matches"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit verify FILE`.
fn verify(file: &Path) -> Result<ExitCode> {
    #[derive(serde::Deserialize)]
    struct Read {
        #[serde(flatten)]
        entry: AuditRow,
        chain: String,
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("Reading {}", file.display()))?;
    let mut chain = String::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let read: Read = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                println!("line {}: not an audit entry ({e})", i + 1);
                return Ok(ExitCode::from(1));
            }
        };
        let want = crate::store::audit_chain::next(&chain, &read.entry)?;
        if want != read.chain {
            println!(
                "line {} (id {}): the chain breaks: this line or one before it was changed, removed or inserted",
                i + 1,
                read.entry.id
            );
            return Ok(ExitCode::from(1));
        }
        chain = want;
        n += 1;
    }
    println!("{n} entries, chain intact; last chain {chain}");
    Ok(ExitCode::SUCCESS)
}
