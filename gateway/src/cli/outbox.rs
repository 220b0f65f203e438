//! `nfp-gateway outbox`: outgoing mail listed, and made due again.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use clap::Subcommand;

use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Outgoing mail, oldest first.
    List {
        /// pending, sending, sent, failed or held.
        #[arg(long, value_parser = ["pending", "sending", "sent", "failed", "held"])]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Make a pending or failed mail due now (a running daemon sends it).
    Retry {
        /// Its id, as `outbox list` shows it.
        id: i64,
    },
}

pub async fn run(config: &Path, command: OutboxCommand) -> Result<ExitCode> {
    let store = super::open_store(config).await?;
    let code = list_or_retry(&store, command).await;
    store.close().await;
    code
}

async fn list_or_retry(store: &Store, command: OutboxCommand) -> Result<ExitCode> {
    match command {
        OutboxCommand::List { state, limit } => {
            for item in store.outbox_list(state.as_deref(), limit).await? {
                println!(
                    "{:>6}  {:<8} {:<18} {:<12} <{}>  attempts={} next={} {}",
                    item.id,
                    item.state,
                    item.purpose,
                    item.recipient_party,
                    item.recipient_email,
                    item.attempts,
                    item.next_attempt_at,
                    item.last_error
                );
            }
        }
        OutboxCommand::Retry { id } => {
            if !store.retry_now(id, SystemTime::now()).await? {
                anyhow::bail!(
                    "mail {id} is not pending or failed (or holds no message: waiting for a key)"
                );
            }
            println!("mail {id} is due now");
        }
    }
    Ok(ExitCode::SUCCESS)
}
