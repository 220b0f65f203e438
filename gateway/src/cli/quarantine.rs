//! `nfp-gateway quarantine`: quarantined messages listed, shown (their
//! decision and envelope, never their content) and judged again.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::check::{Gateway, Verdict};

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// The latest quarantined messages.
    List {
        /// At most this many, the latest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One quarantined message: its decision and envelope (no content).
    Show {
        /// Its id, as `quarantine list` shows it.
        id: i64,
    },
    /// Judge a quarantined message again, now; forward it if it is accepted.
    Release {
        /// Its id, as `quarantine list` shows it.
        id: i64,
    },
}

pub async fn run(config: &Path, command: QuarantineCommand) -> Result<ExitCode> {
    match command {
        QuarantineCommand::List { limit } => {
            let store = super::open_store(config).await?;
            let rows = store.inbound_list("quarantined", limit).await;
            store.close().await;
            for m in rows? {
                let reason = m.reason.unwrap_or_default();
                println!(
                    "{:>6}  {}  {reason:<18} {}  {}",
                    m.id, m.received_at, m.envelope_from, m.detail
                );
            }
        }
        QuarantineCommand::Show { id } => {
            let store = super::open_store(config).await?;
            let row = store.inbound(id).await;
            store.close().await;
            let m = row?.with_context(|| format!("No stored message {id}"))?;
            println!("id:            {}", m.id);
            println!("received:      {}", m.received_at);
            println!(
                "verdict:       {} {}",
                m.verdict,
                m.reason.unwrap_or_default()
            );
            println!("detail:        {}", m.detail);
            println!("envelope from: {} (unverified)", m.envelope_from);
            println!("message-id:    {} (unverified)", m.message_id);
            println!("size:          {} bytes", m.raw_size);
            println!("inbox state:   {}", m.imap_state);
            match m.purged_at.as_str() {
                "" => println!("content:       stored, encrypted to the gateway's key"),
                at => println!("content:       deleted on {at} (retention); the record stays"),
            }
        }
        QuarantineCommand::Release { id } => {
            let (gw, store) = Gateway::load_with_store(config).await?;
            let ctx = std::sync::Arc::new(crate::post::Ctx::new(gw, store).await?);
            let released = crate::intake::release(&ctx, id).await;
            ctx.store.close().await;
            let decision = released?;
            println!("{}", serde_json::to_string(&decision)?);
            if decision.verdict != Verdict::Accepted {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
