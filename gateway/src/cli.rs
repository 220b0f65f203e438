//! The command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::check::{self, Gateway, MemoryReplayGuard, Verdict};

#[derive(Debug, Parser)]
#[command(
    name = "nfp-gateway",
    version,
    about = "Secure OpenPGP mail gateway of the NFP network"
)]
pub struct Cli {
    /// The gateway's configuration file.
    #[arg(
        long,
        env = "NFP_GATEWAY_CONFIG",
        default_value = "/etc/nfp-gateway/gateway.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge messages as the daemon would, print one JSON decision per message.
    ///
    /// Exit status: 0 when every message is accepted, 1 when any is
    /// quarantined, 2 when the command could not run. Messages given together
    /// share one replay memory: a second copy of the same signed content is
    /// `replay`.
    Check {
        /// The clock for every time-dependent rule (RFC 3339), for reproducible decisions.
        #[arg(long, value_parser = parse_time)]
        now: Option<SystemTime>,
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
        /// The messages (.eml files); `-` reads standard input.
        #[arg(required = true)]
        messages: Vec<PathBuf>,
    },
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).into())
        .map_err(|e| format!("not an RFC 3339 time ({e})"))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check {
            now,
            pretty,
            messages,
        } => {
            let gw = Gateway::load(&cli.config)?;
            let now = now.unwrap_or_else(SystemTime::now);
            let mut replays = MemoryReplayGuard::default();
            let mut all_accepted = true;
            let mut out = std::io::stdout().lock();
            for path in &messages {
                let raw = check::read_message(path, gw.config.limits.max_message_size)?;
                let decision = check::judge(&gw, &raw, now, &mut replays);
                all_accepted &= decision.verdict == Verdict::Accepted;
                let json = if pretty {
                    serde_json::to_string_pretty(&decision)
                } else {
                    serde_json::to_string(&decision)
                }
                .context("Serialising the decision")?;
                writeln!(out, "{json}").context("Writing the decision")?;
            }
            Ok(if all_accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
