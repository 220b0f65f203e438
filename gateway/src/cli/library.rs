//! `nfp-gateway library`: the best practices the network has shared
//! (issue 16, item 4): listed, shown with their circulation, and
//! circulated to every NFP. Nothing here shows a practice's words.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use clap::Subcommand;

use crate::post::Ctx;

#[derive(Debug, Subcommand)]
pub enum LibraryCommand {
    /// The accepted best practices, the newest first: reference, date,
    /// State, language, topics, and to how many NFPs each was circulated.
    List {
        /// Only those this party sent (a directory id: FR).
        #[arg(long)]
        party: Option<String>,
        /// Only those on this topic: border_police, customs, migration, anti_drug.
        #[arg(long, value_parser = ["border_police", "customs", "migration", "anti_drug"])]
        topic: Option<String>,
        /// Only those in this language: en, fr, de, it, ru, es.
        #[arg(long, value_parser = ["en", "fr", "de", "it", "ru", "es"])]
        language: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// To whom a practice was circulated, when, by what, and the state of
    /// each mail.
    Show {
        /// The practice's reference (BSM-2026-000042).
        reference: String,
    },
    /// Send a practice to every NFP but the one that sent it, each in its
    /// language with the original attached and the Secretariat's note.
    Circulate {
        /// The practice's reference (BSM-2026-000042).
        reference: String,
        /// The covering note (the Secretariat's words; not stored).
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub async fn run(config_path: &Path, command: LibraryCommand) -> Result<ExitCode> {
    let (gw, store) = crate::check::Gateway::load_with_store(config_path).await?;
    let ctx = Arc::new(Ctx::new(gw, store).await?);
    let result = act(&ctx, command).await;
    ctx.store.close().await;
    result
}

async fn act(ctx: &Arc<Ctx>, command: LibraryCommand) -> Result<ExitCode> {
    match command {
        LibraryCommand::List {
            party,
            topic,
            language,
            json,
        } => {
            let rows = ctx
                .store
                .practices(party.as_deref(), topic.as_deref(), language.as_deref())
                .await?;
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
                }
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("no best practice");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<16} {:<10} {:<12} {:<8} {:<34} circulated to",
                "reference", "received", "from", "language", "topics"
            );
            for r in &rows {
                let topics: Vec<String> = serde_json::from_str(&r.topics).unwrap_or_default();
                println!(
                    "{:<16} {:<10} {:<12} {:<8} {:<34} {}",
                    r.reference,
                    r.received_at.get(..10).unwrap_or(&r.received_at),
                    r.party,
                    r.language,
                    if topics.is_empty() {
                        "-".to_string()
                    } else {
                        topics.join(",")
                    },
                    r.circulated_to
                );
            }
        }
        LibraryCommand::Show { reference } => {
            let rows = ctx.store.circulations(&reference).await?;
            if rows.is_empty() {
                println!("{reference} has not been circulated");
            }
            for r in rows {
                println!(
                    "{}  {:<12} by {:<16} {}",
                    r.circulated_at, r.party, r.circulated_by, r.delivery
                );
            }
        }
        LibraryCommand::Circulate { reference, note } => {
            if ctx.gw.config.role != crate::config::Role::Secretariat {
                eprintln!("circulating is the Secretariat's: this gateway has the national role");
                return Ok(ExitCode::FAILURE);
            }
            let now = SystemTime::now();
            let prepared = match crate::library::prepare(ctx, &reference, &note, now).await? {
                Ok(p) => p,
                Err(refused) => {
                    eprintln!("{}", refused.explain(&reference));
                    return Ok(ExitCode::FAILURE);
                }
            };
            let mut tx = ctx.store.begin().await?;
            match crate::library::commit_in(&mut tx, prepared, "cli", None, now).await? {
                Ok(done) => {
                    tx.commit().await?;
                    ctx.outbox_ready.notify_one();
                    println!(
                        "{} circulated: {} queued, {} held (no usable key)",
                        done.reference, done.sent, done.held
                    );
                }
                Err(refused) => {
                    eprintln!("{}", refused.explain(&reference));
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
