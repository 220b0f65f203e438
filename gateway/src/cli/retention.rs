//! `nfp-gateway retention`: the periods of `[retention]` applied now.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete the content of every message past the retention period of
    /// its kind (`[retention]` in gateway.toml); its metadata and the audit
    /// trail stay, and each purge is audited. The daemon does it daily.
    Run {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// The clock (RFC 3339).
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
}

pub async fn run(config_path: &Path, command: RetentionCommand) -> Result<ExitCode> {
    let RetentionCommand::Run { dry_run, now } = command;
    let config = crate::config::Config::load(config_path)?;
    let store = crate::store::Store::open(&config.database).await?;
    let now = now.unwrap_or_else(SystemTime::now);
    let report = crate::retention::run(&store, &config.retention, now, dry_run).await;
    store.close().await;
    let report = report?;
    if report.is_empty() {
        println!("no [retention] period is set: every message's content is kept");
    }
    for p in &report {
        println!(
            "{:<20} {:>10}  received before {}: {} message(s) {}",
            p.class,
            humantime::format_duration(p.period).to_string(),
            crate::rfc3339(p.cutoff),
            p.messages,
            if dry_run {
                "would lose their content"
            } else {
                "lost their content"
            }
        );
    }
    if dry_run {
        println!("(dry run: nothing deleted)");
    }
    Ok(ExitCode::SUCCESS)
}
