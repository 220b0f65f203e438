//! `nfp-gateway config`: the configuration as `run` would meet it.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use clap::Subcommand;

use crate::keys::Level;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Find everything `run` would refuse, without running and without
    /// changing anything: the configuration, the mail servers' passwords,
    /// the directory (every certificate read whole), every template rendered
    /// in every language, the rules, the store (reachable, migrated, mode),
    /// and the checks of `keys check`. Exit status 1 on any error (warnings
    /// do not fail it). Run it before the first start.
    Check {
        /// The clock (RFC 3339), to see what a later day will find.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
}

pub fn run(config_path: &Path, command: ConfigCommand) -> Result<ExitCode> {
    match command {
        ConfigCommand::Check { now } => {
            let now = now.unwrap_or_else(SystemTime::now);
            let report = super::runtime()?.block_on(crate::preflight::run(config_path, now));
            print!("{}", report.text());
            Ok(match report.level() {
                Level::Error => {
                    println!("config check: errors found: `run` would fail or lose mail");
                    ExitCode::from(1)
                }
                Level::Warning => {
                    println!("config check: ready, with warnings");
                    ExitCode::SUCCESS
                }
                Level::Ok => {
                    println!("config check: ready");
                    ExitCode::SUCCESS
                }
            })
        }
    }
}
