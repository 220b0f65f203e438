//! The command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::check::{self, Gateway, MemoryReplayGuard, Verdict};

mod audit;
mod cases;
mod config;
mod keys;
mod library;
mod report;
mod retention;
mod rollcall;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "nfp-gateway",
    version,
    about = "Secure OpenPGP mail gateway of the NFP network",
    after_long_help = "\
Environment:
  NFP_GATEWAY_CONFIG      the configuration file, instead of --config
  NFP_GATEWAY_LOG         the log filter (info, nfp_gateway=debug; default warn), on standard error
  NFP_GATEWAY_LOG_FORMAT  json: one JSON object per log line

Files:
  /etc/nfp-gateway/gateway.toml                  the configuration (every key: /usr/share/doc/nfp-gateway/examples/gateway.toml)
  /var/lib/nfp-gateway/                          the SQLite store
  /usr/lib/systemd/system/nfp-gateway.service    the service, which runs `config check`, then `run`
  /usr/share/doc/nfp-gateway/README.md           the manual"
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
    /// Run the gateway: watch the mailbox, judge, store, forward (until SIGTERM).
    Run {
        /// Create the SQLite store if it does not exist (mode 0600); without
        /// it a missing store is an error, as a mistyped path would be.
        #[arg(long)]
        create: bool,
    },
    /// Counts, the outbox and the latest errors.
    Status,
    /// Apply the store's schema migrations (a PostgreSQL store is never
    /// migrated by the other commands: its instances are upgraded together).
    Migrate,
    /// The store as a whole.
    #[command(subcommand)]
    Db(DbCommand),
    /// Quarantined messages.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Outgoing mail.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The network's directory, as the store holds it.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Circulars of the Secretariat to every NFP.
    #[command(subcommand)]
    Circular(CircularCommand),
    /// The gateway's own key and every party's certificate.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The configuration, checked as `run` would meet it.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// The store's append-only audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Stored content deleted after the periods of `[retention]`.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// The Secretariat's cases: every accepted assistance and information
    /// request, who owes the answer and by when.
    #[command(subcommand)]
    Cases(cases::CasesCommand),
    /// The roll call: every NFP asked to confirm its directory entry.
    #[command(subcommand)]
    Rollcall(rollcall::RollcallCommand),
    /// The best-practice library: listed, and circulated to every NFP.
    #[command(subcommand)]
    Library(library::LibraryCommand),
    /// The Secretariat's report (cases, response times, roll call, mail,
    /// keys) for a period, as text, a self-contained HTML page or JSON; or
    /// `--send-as-of T`: send the period's report as the daemon does.
    Report(report::ReportArgs),
    /// Man pages (section 1, one per command) and bash, zsh and fish
    /// completions, generated from these definitions: for packagers.
    #[command(hide = true)]
    Generate {
        /// Where the man pages are written.
        #[arg(long)]
        man: PathBuf,
        /// Where the completions are written.
        #[arg(long)]
        completions: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every table of a store into a new, empty one (e.g. SQLite to
    /// PostgreSQL), then compare row counts and checksums table by table.
    /// Stop the gateway first. Exit status 1 when anything differs.
    Copy {
        /// The store to copy (`sqlite://PATH` or `postgres://...`).
        #[arg(long)]
        from: String,
        /// The new store (migrated here; it must hold no data).
        #[arg(long)]
        to: String,
    },
    /// A consistent copy of the SQLite store, taken while the gateway runs
    /// (SQLite's VACUUM INTO), into FILE (new, mode 0600), then read back
    /// whole: integrity, schema version, rows per table. Keep it with the
    /// gateway's key: the stored content is encrypted to it.
    Backup {
        /// The backup file to write (it must not exist).
        file: PathBuf,
    },
    /// Put a backup in place of the SQLite store (stop the gateway first);
    /// the store it replaces is kept beside it, renamed.
    Restore {
        /// A file `db backup` wrote.
        file: PathBuf,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Write a directory file's parties into the store (idempotent).
    Import {
        /// The directory file; the configuration's `directory` when absent.
        file: Option<PathBuf>,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
        /// Also change back entries that contact updates changed since.
        #[arg(long)]
        force: bool,
    },
    /// The directory, or one party's entry and its history.
    Show {
        /// A party's id (FR, secretariat); the whole directory when absent.
        id: Option<String>,
        /// As it was at this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        at: Option<SystemTime>,
    },
    /// The whole directory as json, csv, vcard (one card per contact person) or html; or, with
    /// `--format wkd DIR`, every party's and the gateway's current certificate as a Web Key
    /// Directory under DIR (each domain's web server serves its part as https://openpgpkey.DOMAIN/).
    Export {
        /// json, csv, vcard, html or wkd.
        #[arg(long, value_parser = ["json", "csv", "vcard", "html", "wkd"])]
        format: String,
        /// As it was at this time (RFC 3339); not for wkd, which publishes the current certificates.
        #[arg(long, value_parser = parse_time)]
        at: Option<SystemTime>,
        /// Where the Web Key Directory is written (wkd only; an earlier export there is replaced).
        dir: Option<PathBuf>,
    },
}

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

/// Writes the man pages and completions of `Generate`.
fn generate(man: &std::path::Path, completions: &std::path::Path) -> Result<()> {
    use clap::CommandFactory;
    for dir in [man, completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
    }
    let mut cmd = Cli::command();
    clap_mangen::generate_to(cmd.clone(), man).context("Writing the man pages")?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "nfp-gateway", completions)
            .with_context(|| format!("Writing the {shell} completions"))?;
    }
    Ok(())
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
            let gw = runtime()?.block_on(gateway_for_check(&cli.config))?;
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
        Command::Generate { man, completions } => {
            generate(&man, &completions)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { create } => {
            runtime()?.block_on(crate::daemon::run(&cli.config, create))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => runtime()?.block_on(async {
            let store = open_store(&cli.config).await?;
            let code = status(&store).await;
            store.close().await;
            code
        }),
        Command::Migrate => runtime()?.block_on(async {
            let cfg = crate::config::Config::load(&cli.config)?;
            let (store, applied) = Store::migrate(&cfg.database).await?;
            store.close().await;
            let url = crate::store::redact(&cfg.database);
            match applied.as_slice() {
                [] => println!(
                    "{url}: schema version {} already, nothing to do",
                    crate::store::schema_version()
                ),
                versions => println!("{url}: applied schema version(s) {versions:?}"),
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Db(DbCommand::Copy { from, to }) => runtime()?.block_on(async {
            use crate::store::redact;
            eprintln!("copying {} to {}", redact(&from), redact(&to));
            let report = crate::store::copy::copy(&from, &to, |table, rows| {
                eprintln!("  {table:<18} {rows} rows copied")
            })
            .await?;
            println!(
                "{:<18} {:>9} {:>9}  checksum (SHA-256 of the rows)",
                "table", "source", "target"
            );
            let mut same = true;
            for t in &report {
                let verdict = if t.same() { "same" } else { "DIFFERENT" };
                same &= t.same();
                println!(
                    "{:<18} {:>9} {:>9}  {} {verdict}",
                    t.name,
                    t.rows.0,
                    t.rows.1,
                    &t.checksums.0[..16]
                );
            }
            Ok(if same {
                println!("every table copied: the same rows in both stores");
                ExitCode::SUCCESS
            } else {
                println!("the stores differ: do not use the copy");
                ExitCode::from(1)
            })
        }),
        Command::Db(DbCommand::Backup { file }) => runtime()?.block_on(async {
            let store = open_store(&cli.config).await?;
            let summary = crate::store::backup::backup(&store, &file).await;
            store.close().await;
            print!("{}", summary?.describe());
            println!(
                "backup written; keep it with the gateway's key (the content is encrypted to it)"
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Db(DbCommand::Restore { file }) => runtime()?.block_on(async {
            let cfg = crate::config::Config::load(&cli.config)?;
            let (summary, aside) = crate::store::backup::restore(&cfg.database, &file).await?;
            print!("{}", summary.describe());
            match aside {
                Some(a) => println!("restored; the store it replaced is kept as {}", a.display()),
                None => println!("restored"),
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Quarantine(q) => runtime()?.block_on(quarantine(&cli.config, q)),
        Command::Directory(d) => runtime()?.block_on(directory(&cli.config, d)),
        Command::Circular(CircularCommand::Send {
            template,
            data,
            dry_run,
        }) => runtime()?.block_on(async {
            let text = std::fs::read_to_string(&data)
                .with_context(|| format!("Reading {}", data.display()))?;
            let data: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("Parsing {}", data.display()))?;
            let (gw, store) = Gateway::load_with_store(&cli.config).await?;
            let ctx = std::sync::Arc::new(crate::post::Ctx::new(gw, store).await?);
            let sent =
                crate::circular::send(&ctx, &template, data, dry_run, SystemTime::now()).await;
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
        }),
        Command::Keys(k) => keys::run(&cli.config, k),
        Command::Config(c) => config::run(&cli.config, c),
        Command::Audit(a) => runtime()?.block_on(audit::run(&cli.config, a)),
        Command::Retention(r) => runtime()?.block_on(retention::run(&cli.config, r)),
        Command::Cases(c) => runtime()?.block_on(cases::run(&cli.config, c)),
        Command::Rollcall(c) => runtime()?.block_on(rollcall::run(&cli.config, c)),
        Command::Library(c) => runtime()?.block_on(library::run(&cli.config, c)),
        Command::Report(a) => runtime()?.block_on(report::run(&cli.config, a)),
        Command::Outbox(o) => runtime()?.block_on(async {
            let store = open_store(&cli.config).await?;
            let code = outbox(&store, o).await;
            store.close().await;
            code
        }),
    }
}

async fn directory(config_path: &std::path::Path, command: DirectoryCommand) -> Result<ExitCode> {
    use crate::directory::{export, sync, Directory};
    if let DirectoryCommand::Export { format, at, dir } = &command {
        match (format.as_str(), dir, at) {
            ("wkd", None, _) => anyhow::bail!("--format wkd writes a directory: give its path"),
            ("wkd", _, Some(_)) => anyhow::bail!(
                "--format wkd publishes the current certificates: --at does not apply"
            ),
            ("wkd", Some(dir), None) => return export_wkd(config_path, dir).await,
            (_, Some(_), _) => {
                anyhow::bail!("only --format wkd writes a directory; the other formats print")
            }
            _ => {}
        }
    }
    let config = crate::config::Config::load(config_path)?;
    let store = Store::open(&config.database).await?;
    let result = async {
        match command {
            DirectoryCommand::Import {
                file,
                dry_run,
                force,
            } => {
                let path = file.unwrap_or_else(|| config.directory.clone());
                let parsed = Directory::load(&path)?;
                let actor = format!("import {}", path.display());
                let plan = sync::import(
                    &store,
                    &parsed,
                    &actor,
                    dry_run,
                    force,
                    config.certificate_overlap,
                )
                .await?;
                print!("{}", plan.describe());
                if dry_run && !plan.is_empty() {
                    println!("(dry run: nothing written)");
                }
            }
            DirectoryCommand::Show {
                id: Some(id),
                at: None,
            } => {
                let history = store.entry_history(&id).await?;
                let Some((_, _, _, _, latest)) = history.last() else {
                    if sync::from_store(&store, SystemTime::now()).await?.is_none() {
                        anyhow::bail!(
                            "the store holds no directory yet: `nfp-gateway directory import` \
                             seeds it from {} (the daemon does at its first start)",
                            config.directory.display()
                        )
                    }
                    anyhow::bail!("no party {id} in the directory")
                };
                println!("{}", serde_json::to_string_pretty(latest)?);
                println!("history:");
                let mut previous: Option<&crate::directory::Entry> = None;
                for (version, at, actor, removed, entry) in &history {
                    let what = if *removed {
                        "removed".to_string()
                    } else {
                        let fields: Vec<String> = entry
                            .changes_from(previous)
                            .into_iter()
                            .map(|c| c.field)
                            .collect();
                        fields.join(", ")
                    };
                    println!("  v{version} {at} {actor}: {what}");
                    previous = Some(entry);
                }
            }
            DirectoryCommand::Show { id, at } => {
                let entries = match at {
                    Some(t) => store.entries_at(t).await?,
                    None => store.entries().await?,
                };
                for e in export::ordered(entries)
                    .iter()
                    .filter(|e| id.as_ref().is_none_or(|i| *i == e.id))
                {
                    println!(
                        "{:<14} {:<11} {:<3} {:<40} <{}>",
                        e.id,
                        format!("{:?}", e.kind).to_lowercase(),
                        e.state.as_deref().unwrap_or(""),
                        e.name,
                        e.email
                    );
                }
            }
            DirectoryCommand::Export { format, at, .. } => {
                let entries = export::ordered(match at {
                    Some(t) => store.entries_at(t).await?,
                    None => store.entries().await?,
                });
                let text = match format.as_str() {
                    "json" => export::json(&entries),
                    "csv" => export::csv(&entries),
                    "vcard" => export::vcard(&entries),
                    _ => {
                        let generated = match at {
                            Some(t) => crate::rfc3339(t),
                            None => store.directory_changed_at().await?.unwrap_or_default(),
                        };
                        export::html(&entries, &store.network_info().await?, &generated)
                    }
                };
                print!("{text}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    store.close().await;
    result
}

/// `directory export --format wkd DIR`: the store's directory (the file's
/// before the first start) and the gateway's own certificate. Exit status 1
/// when an address could not be published.
async fn export_wkd(config_path: &std::path::Path, dir: &std::path::Path) -> Result<ExitCode> {
    let config = crate::config::Config::load(config_path)?;
    let directory = current_directory(&config).await?;
    let own = crate::openpgp::GatewayKey::for_config(&config)?;
    let mut certs = vec![(
        "gateway".to_string(),
        config.address.clone(),
        own.cert.clone(),
    )];
    certs.extend(
        directory
            .parties()
            .iter()
            .map(|p| (p.id.clone(), p.email.clone(), p.cert.clone())),
    );
    let published = crate::directory::wkd::export(dir, &certs)?;
    let mut failed = 0;
    for p in &published {
        match &p.outcome {
            Ok(file) => println!("{:<12} {:<40} {file}", p.who, p.email),
            Err(why) => {
                failed += 1;
                println!("{:<12} {:<40} NOT PUBLISHED: {why}", p.who, p.email);
            }
        }
    }
    println!(
        "{} of {} addresses published under {}",
        published.len() - failed,
        published.len(),
        dir.display()
    );
    Ok(match failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// `check` judges with the directory the daemon uses: the store's when the
/// database exists and holds one, the directory file's otherwise. It never
/// creates or changes the database.
async fn gateway_for_check(config_path: &std::path::Path) -> Result<Gateway> {
    let config = crate::config::Config::load(config_path)?;
    let directory = current_directory(&config).await?;
    Gateway::with_directory(config, directory)
}

/// The directory the store holds, or the file's when there is no store yet
/// (before the first start); the store is not created.
async fn current_directory(config: &crate::config::Config) -> Result<crate::directory::Directory> {
    if let Some(store) = Store::open_existing(&config.database).await? {
        let directory = crate::directory::sync::from_store(&store, SystemTime::now()).await;
        store.close().await;
        if let Some(directory) = directory? {
            return Ok(directory);
        }
    }
    crate::directory::Directory::load(&config.directory)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Starting the async runtime")
}

async fn open_store(config: &std::path::Path) -> Result<Store> {
    let cfg = crate::config::Config::load(config)?;
    Store::open(&cfg.database).await
}

async fn status(store: &Store) -> Result<ExitCode> {
    println!("messages:");
    for (verdict, reason, n) in store.inbound_counts().await? {
        println!("  {verdict:<12} {:<18} {n}", reason.unwrap_or_default());
    }
    println!("outbox:");
    for (state, n) in store.outbox_states().await? {
        println!("  {state:<12} {n}");
    }
    let (depth, oldest) = store.outbox_depth().await?;
    let since = oldest
        .map(|t| format!(" (oldest since {t})"))
        .unwrap_or_default();
    println!("  waiting: {depth}{since}");
    let failed = store.outbox_list(Some("failed"), 10).await?;
    if !failed.is_empty() {
        println!("latest failures:");
        for item in failed.iter().rev() {
            println!(
                "  #{} {} to <{}>: {}",
                item.id, item.purpose, item.recipient_email, item.last_error
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn quarantine(config: &std::path::Path, command: QuarantineCommand) -> Result<ExitCode> {
    match command {
        QuarantineCommand::List { limit } => {
            let store = open_store(config).await?;
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
            let store = open_store(config).await?;
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

async fn outbox(store: &Store, command: OutboxCommand) -> Result<ExitCode> {
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
