//! `nfp-gateway rollcall`: the Secretariat's confirmation rounds (issue
//! 16, item 3): started, followed and reported.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::post::Ctx;

#[derive(Debug, Subcommand)]
pub enum RollcallCommand {
    /// Ask every NFP to confirm its directory entry: each gets it in its
    /// language, to confirm by a signed reply citing the round's reference
    /// or to correct by a contact update, within `[rollcall] answer-within`.
    Start,
    /// A round's NFPs and where each stands: confirmed, updated, silent,
    /// held (no usable key: never asked) or failed (delivery refused).
    Status {
        /// The round's reference; the latest round when left out.
        reference: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue what the rounds under way need now (the daemon does it by
    /// itself): the reminder to the silent NFPs before a round's end, the
    /// report to the Secretariat after it.
    Run {
        /// Read the rounds' ends as of this time (RFC 3339) instead of now;
        /// the mail is queued, signed and recorded now.
        #[arg(long, value_parser = super::parse_time)]
        as_of: Option<SystemTime>,
    },
}

pub async fn run(config_path: &Path, command: RollcallCommand) -> Result<ExitCode> {
    let (gw, store) = crate::check::Gateway::load_with_store(config_path).await?;
    let ctx = Arc::new(Ctx::new(gw, store).await?);
    let result = act(&ctx, command).await;
    ctx.store.close().await;
    result
}

async fn act(ctx: &Arc<Ctx>, command: RollcallCommand) -> Result<ExitCode> {
    let now = SystemTime::now();
    match command {
        RollcallCommand::Start => {
            let reference = crate::rollcall::start(ctx, "cli", None, now)
                .await?
                .context("a roll call started from the command line is never a duplicate")?;
            let asked = ctx.store.round_members(&reference).await?.len();
            println!("roll call {reference} started: {asked} NFPs asked");
        }
        RollcallCommand::Run { as_of } => {
            let done = crate::rollcall::run(ctx, as_of.unwrap_or(now), now).await?;
            println!(
                "roll call reminders: {}, reports: {}",
                done.reminded, done.reported
            );
        }
        RollcallCommand::Status { reference, json } => {
            let round = match reference {
                Some(r) => ctx.store.round(&r).await?,
                None => ctx.store.rounds().await?.into_iter().next(),
            };
            let Some(round) = round else {
                eprintln!("no roll call");
                return Ok(ExitCode::FAILURE);
            };
            let members = ctx.store.round_members(&round.reference).await?;
            if json {
                for m in &members {
                    let mut v = serde_json::to_value(m)?;
                    v["reference"] = round.reference.clone().into();
                    v["standing"] = m.standing().into();
                    println!("{v}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "roll call {}: started {}, ends {}{}",
                round.reference,
                round.started_at,
                round.due_at,
                match round.reported_at.as_str() {
                    "" => String::new(),
                    at => format!(", reported {at}"),
                }
            );
            for standing in crate::rollcall::STANDINGS {
                let ids: Vec<&str> = members
                    .iter()
                    .filter(|m| m.standing() == standing)
                    .map(|m| m.party.as_str())
                    .collect();
                println!("{standing:<10} {:>3}  {}", ids.len(), ids.join(" "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
