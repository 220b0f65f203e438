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
mod circular;
mod config;
mod db;
mod directory;
mod keys;
mod library;
mod outbox;
mod quarantine;
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
    Db(db::DbCommand),
    /// Quarantined messages.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Outgoing mail.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// The network's directory, as the store holds it.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
    /// Circulars of the Secretariat to every NFP.
    #[command(subcommand)]
    Circular(circular::CircularCommand),
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
        Command::Db(c) => runtime()?.block_on(db::run(&cli.config, c)),
        Command::Quarantine(q) => runtime()?.block_on(quarantine::run(&cli.config, q)),
        Command::Directory(d) => runtime()?.block_on(directory::run(&cli.config, d)),
        Command::Circular(c) => runtime()?.block_on(circular::run(&cli.config, c)),
        Command::Outbox(o) => runtime()?.block_on(outbox::run(&cli.config, o)),
        Command::Keys(k) => keys::run(&cli.config, k),
        Command::Config(c) => config::run(&cli.config, c),
        Command::Audit(a) => runtime()?.block_on(audit::run(&cli.config, a)),
        Command::Retention(r) => runtime()?.block_on(retention::run(&cli.config, r)),
        Command::Cases(c) => runtime()?.block_on(cases::run(&cli.config, c)),
        Command::Rollcall(c) => runtime()?.block_on(rollcall::run(&cli.config, c)),
        Command::Library(c) => runtime()?.block_on(library::run(&cli.config, c)),
        Command::Report(a) => runtime()?.block_on(report::run(&cli.config, a)),
    }
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
