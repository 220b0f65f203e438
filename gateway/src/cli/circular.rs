//! `nfp-gateway circular`: a circular queued to every NFP and the
//! Secretariat.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::check::Gateway;

#[derive(Debug, Subcommand)]
pub enum CircularCommand {
    /// Queue a circular to every NFP and the Secretariat (a running daemon sends it).
    Send {
        /// The template (templates/<language>/<NAME>.hbs), e.g. circular_announcement.
        #[arg(long)]
        template: String,
        /// A JSON object with the template's fields (circular_announcement: title, text).
        #[arg(long)]
        data: PathBuf,
        /// Only show who would receive what.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(config: &Path, command: CircularCommand) -> Result<ExitCode> {
    let CircularCommand::Send {
        template,
        data,
        dry_run,
    } = command;
    let text =
        std::fs::read_to_string(&data).with_context(|| format!("Reading {}", data.display()))?;
    let data: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("Parsing {}", data.display()))?;
    let (gw, store) = Gateway::load_with_store(config).await?;
    let ctx = std::sync::Arc::new(crate::post::Ctx::new(gw, store).await?);
    let sent = crate::circular::send(&ctx, &template, data, dry_run, SystemTime::now()).await;
    ctx.store.close().await;
    let (id, previews) = sent?;
    for p in &previews {
        println!("{}", p.line());
    }
    match id {
        Some(id) => println!("circular {id} queued for {} recipients", previews.len()),
        None => println!("(dry run: nothing queued)"),
    }
    Ok(ExitCode::SUCCESS)
}
