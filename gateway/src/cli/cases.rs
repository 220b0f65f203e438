//! `nfp-gateway cases`: the Secretariat's cases (issue 16): listed, shown,
//! closed, reopened, extended and reassigned. Nothing here shows a
//! message's content: a case names references, parties, kinds and dates.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Subcommand;

use crate::cases::Change;
use crate::store::cases::{CaseQuery, CaseRow};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// The cases, the oldest due first: reference, kind, who asked, who
    /// owes the answer, opened, due, state (`overdue`: open past its due time).
    List {
        /// Only open cases past their due time.
        #[arg(long)]
        overdue: bool,
        /// Only cases in this state: open, answered or closed.
        #[arg(long, value_parser = ["open", "answered", "closed"])]
        state: Option<String>,
        /// Only cases this party asked or owes (a directory id: FR, secretariat).
        #[arg(long)]
        party: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// The clock (RFC 3339).
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
    /// One case and its history.
    Show {
        /// The case's reference (BSM-2026-000042).
        reference: String,
        /// The clock (RFC 3339): what is overdue as of it.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
    /// Close a case (answered elsewhere, withdrawn, settled).
    Close {
        /// The case's reference (BSM-2026-000042).
        reference: String,
        /// Why, for the history and the audit trail (no message content).
        #[arg(long, default_value = "")]
        note: String,
        /// The clock (RFC 3339), for the history and the audit.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
    /// Open an answered or closed case again; its due time stays.
    Reopen {
        /// The case's reference (BSM-2026-000042).
        reference: String,
        /// Why, for the history and the audit trail (no message content).
        #[arg(long, default_value = "")]
        note: String,
        /// The clock (RFC 3339), for the history and the audit.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
    /// Move a case's due time later by a period ("7d", "2weeks"); its
    /// reminders go out again before the new time.
    Extend {
        /// The case's reference (BSM-2026-000042).
        reference: String,
        /// How much later ("7d", "2weeks").
        #[arg(value_parser = parse_period)]
        by: Duration,
        /// Why, for the history and the audit trail (no message content).
        #[arg(long, default_value = "")]
        note: String,
        /// The clock (RFC 3339), for the history and the audit.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
    /// Queue the reminders due now (the daemon does it by itself): before
    /// a case's due time to the party that owes the answer, after it again
    /// and to the Secretariat.
    Remind {
        /// Read the due dates as of this time (RFC 3339) instead of now;
        /// the mail is queued, signed and recorded now.
        #[arg(long, value_parser = super::parse_time)]
        as_of: Option<SystemTime>,
    },
    /// Make another party owe the answer.
    Reassign {
        /// The case's reference (BSM-2026-000042).
        reference: String,
        /// A directory id (FR, secretariat).
        party: String,
        /// Why, for the history and the audit trail (no message content).
        #[arg(long, default_value = "")]
        note: String,
        /// The clock (RFC 3339), for the history and the audit.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
}

/// `cases remind`: the reminders due as of `as_of`, queued now for a
/// running daemon.
async fn remind(config_path: &Path, as_of: Option<SystemTime>) -> Result<ExitCode> {
    let (gw, store) = crate::check::Gateway::load_with_store(config_path).await?;
    let ctx = std::sync::Arc::new(crate::post::Ctx::new(gw, store).await?);
    let now = SystemTime::now();
    let done = crate::cases::remind(&ctx, as_of.unwrap_or(now), now).await;
    ctx.store.close().await;
    println!("cases reminded: {}", done?);
    Ok(ExitCode::SUCCESS)
}

fn parse_period(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d >= Duration::from_secs(3600) => Ok(d),
        Ok(_) => Err("less than an hour".into()),
        Err(e) => Err(format!("not a period such as 7d or 2weeks ({e})")),
    }
}

pub async fn run(config_path: &Path, command: CasesCommand) -> Result<ExitCode> {
    if let CasesCommand::Remind { as_of } = command {
        return remind(config_path, as_of).await;
    }
    let config = crate::config::Config::load(config_path)?;
    let store = Store::open(&config.database).await?;
    let result = async {
        match command {
            CasesCommand::List {
                overdue,
                state,
                party,
                json,
                now,
            } => {
                let now = now.unwrap_or_else(SystemTime::now);
                let q = CaseQuery {
                    state: state.as_deref(),
                    due_before: overdue.then_some(now),
                    party: party.as_deref(),
                };
                list(&store.cases(&q).await?, json, now)
            }
            CasesCommand::Show { reference, now } => {
                show(&store, &reference, now.unwrap_or_else(SystemTime::now)).await
            }
            CasesCommand::Close {
                reference,
                note,
                now,
            } => apply(&config, &store, &reference, Change::Close, &note, now).await,
            CasesCommand::Reopen {
                reference,
                note,
                now,
            } => apply(&config, &store, &reference, Change::Reopen, &note, now).await,
            CasesCommand::Extend {
                reference,
                by,
                note,
                now,
            } => apply(&config, &store, &reference, Change::Extend(by), &note, now).await,
            CasesCommand::Reassign {
                reference,
                party,
                note,
                now,
            } => {
                let change = Change::Reassign(party);
                apply(&config, &store, &reference, change, &note, now).await
            }
            CasesCommand::Remind { .. } => unreachable!("handled above"),
        }
    }
    .await;
    store.close().await;
    result
}

fn list(cases: &[CaseRow], json: bool, now: SystemTime) -> Result<ExitCode> {
    if json {
        for c in cases {
            let mut v = serde_json::to_value(c)?;
            v["standing"] = c.standing(now).into();
            println!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        println!("no case");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:<20} {:<12} {:<12} {:<10} {:<10} state",
        "reference", "kind", "asked by", "owed by", "opened", "due"
    );
    for c in cases {
        println!(
            "{:<16} {:<20} {:<12} {:<12} {:<10} {:<10} {}",
            c.reference,
            c.kind,
            c.asker,
            c.debtor,
            day(&c.opened_at),
            day(&c.due_at),
            c.standing(now)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The day of a stored time.
fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

async fn show(store: &Store, reference: &str, now: SystemTime) -> Result<ExitCode> {
    let Some(c) = store.case(reference).await? else {
        eprintln!("no case has the reference {reference}");
        return Ok(ExitCode::FAILURE);
    };
    print_case(&c, now);
    println!("history:");
    for e in store.case_events(reference).await? {
        println!("  {}  {:<10} {:<12} {}", e.at, e.event, e.actor, e.detail);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_case(c: &CaseRow, now: SystemTime) {
    let topics: Vec<String> = serde_json::from_str(&c.topics).unwrap_or_default();
    println!("reference  {}", c.reference);
    println!("kind       {}", c.kind);
    println!("asked by   {}", c.asker);
    println!("owed by    {}", c.debtor);
    println!(
        "topics     {}",
        match topics.is_empty() {
            true => "none".to_string(),
            false => topics.join(", "),
        }
    );
    println!("opened     {}", c.opened_at);
    println!("due        {}", c.due_at);
    println!("state      {}", c.standing(now));
    if !c.answer.is_empty() {
        println!("answered   {} by {}", c.answered_at, c.answer);
    }
}

async fn apply(
    config: &crate::config::Config,
    store: &Store,
    reference: &str,
    change: Change,
    note: &str,
    now: Option<SystemTime>,
) -> Result<ExitCode> {
    let now = now.unwrap_or_else(SystemTime::now);
    let directory = super::current_directory(config).await?;
    let c = crate::cases::change(store, &directory, reference, &change, "cli", note, now).await?;
    print_case(&c, now);
    Ok(ExitCode::SUCCESS)
}
