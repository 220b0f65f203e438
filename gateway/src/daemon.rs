//! `nfp-gateway run`: the daemon's start-up, signals and shutdown.
//!
//! Its tasks share one [`Shared`] context, one task to a file: the inbox
//! watcher (`inbox`: IMAP -> intake -> the store) and the outbox sender
//! (`outbox`: outbox -> SMTP), the directory watcher (`directory`), the
//! scheduled jobs (`jobs`: digests, reminders, reports, the key watch,
//! retention) and systemd's watchdog (`watchdog`); `state` is what
//! health and metrics read ([`http`]). Each task watches the same
//! cancellation token; SIGTERM or SIGINT cancels it, the tasks finish the
//! message in hand, and after `shutdown-timeout` whatever is left is
//! aborted (the store makes that safe).

mod directory;
pub mod http;
mod inbox;
mod jobs;
pub mod notify;
mod outbox;
mod state;
mod watchdog;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rand::Rng as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::check::Gateway;
use crate::intake;
use crate::mailbox::Mailbox;
use crate::outbound::smtp::Relay;
use crate::post::Ctx;
use crate::store::health::is_store_failure;
use crate::store::Store;
use directory::watch_directory;
use inbox::watch_inbox;
use jobs::scheduled_jobs;
use outbox::drain_outbox;
use state::unix_now;
pub use state::State;
use watchdog::watchdog;

/// The context the tasks work with, replaced as a whole when the directory
/// in the store changes (each message and each round of sending takes the
/// context of the moment).
#[derive(Clone)]
pub struct Shared(Arc<std::sync::RwLock<Arc<Ctx>>>);

impl Shared {
    fn new(ctx: Arc<Ctx>) -> Shared {
        Shared(Arc::new(std::sync::RwLock::new(ctx)))
    }

    pub fn get(&self) -> Arc<Ctx> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, ctx: Arc<Ctx>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = ctx;
    }
}

/// The checks of `keys check` at start-up: the gateway's own key must sign
/// and decrypt now (an error stops the start); what will stop working within
/// `key-expiry-warning`, and every party's unusable certificate, are logged
/// as warnings (that party's mail is held or quarantined, the rest flows).
fn check_keys(gw: &Gateway, now: SystemTime) -> Result<()> {
    use crate::keys::{self, Level};
    let rows = keys::check_all(
        Ok(&gw.key),
        &gw.directory,
        &gw.policy,
        now,
        gw.config.key_expiry_warning,
    );
    for r in &rows {
        for (level, what) in r.findings.iter().filter(|(l, _)| *l > Level::Ok) {
            if r.who == "gateway" && *level == Level::Error {
                anyhow::bail!("the gateway's key {}: {what}", r.fingerprint);
            }
            tracing::warn!(key = %r.who, fingerprint = %r.fingerprint, "{what}");
        }
    }
    Ok(())
}

/// Runs the daemon until SIGTERM or SIGINT.
/// With `create`, a SQLite store that does not exist is created first.
pub async fn run(config: &std::path::Path, create: bool) -> Result<()> {
    if create {
        let c = crate::config::Config::load(config)?;
        crate::store::Store::create(&c.database)
            .await?
            .close()
            .await;
    }
    let (gw, store) = Gateway::load_with_store(config).await?;
    check_keys(&gw, SystemTime::now())?;
    let imap = gw
        .config
        .imap
        .clone()
        .context("`run` needs an [imap] section in the configuration")?;
    let smtp = gw
        .config
        .smtp
        .clone()
        .context("`run` needs an [smtp] section in the configuration")?;
    let daemon = gw.config.daemon.clone();
    let mailbox = Mailbox::new(&imap)?;
    let relay = Relay::new(&smtp, &gw.config.address)?;
    let retry: Vec<Duration> = smtp.retry.iter().map(|d| d.0).collect();
    let claimer = Arc::new(Claimer::new(&daemon)?);
    let ctx = Arc::new(Ctx::new(gw, store).await?);
    let in_doubt = ctx
        .store
        .recover_in_doubt(SystemTime::now(), Some(&claimer.own))
        .await?;
    if in_doubt > 0 {
        tracing::warn!(
            count = in_doubt,
            "mail interrupted during SMTP at the last stop will be sent again (same Message-ID)"
        );
    }
    let released = intake::recompose_held(&ctx).await?;
    if released > 0 {
        tracing::info!(
            count = released,
            "held mail composed again: its recipients have usable keys now"
        );
    }
    let state = Arc::new(State {
        ctx: ctx.clone(),
        imap_connected: AtomicBool::new(false),
        inbox_alive: AtomicU64::new(unix_now()),
        outbox_alive: AtomicU64::new(unix_now()),
        outbox_failing_since: AtomicU64::new(0),
    });
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let shared = Shared::new(ctx.clone());
    tasks.spawn(watch_directory(shared.clone(), cancel.clone()));
    tasks.spawn(scheduled_jobs(shared.clone(), cancel.clone()));
    tasks.spawn(watch_inbox(
        shared.clone(),
        mailbox,
        state.clone(),
        claimer.clone(),
        cancel.clone(),
    ));
    tasks.spawn(drain_outbox(
        shared.clone(),
        relay,
        retry,
        state.clone(),
        claimer.clone(),
        cancel.clone(),
    ));
    if let Some(addr) = daemon.listen {
        let (state, cancel) = (state.clone(), cancel.clone());
        tasks.spawn(async move {
            if let Err(e) = http::serve(addr, state, cancel).await {
                tracing::error!(error = %format!("{e:#}"), "the health endpoint stopped");
            }
        });
    }
    if let Some(interval) = notify::watchdog_interval() {
        let (state, cancel) = (state.clone(), cancel.clone());
        tasks.spawn(watchdog(interval, daemon.stalled_after, state, cancel));
    }
    tasks.close();
    notify::notify("READY=1");
    tracing::info!("nfp-gateway running");

    let mut term = signal(SignalKind::terminate()).context("Installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("Installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing the work in hand"),
        _ = int.recv() => tracing::info!("SIGINT: finishing the work in hand"),
    }
    notify::notify("STOPPING=1");
    cancel.cancel();
    if tokio::time::timeout(daemon.shutdown_timeout, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?daemon.shutdown_timeout, "work still in hand at the shutdown timeout: stopping anyway");
    }
    ctx.store.close().await;
    Ok(())
}

/// Crash injection for the crash-safety tests: `NFP_GATEWAY_CRASH_AT=<stage>`
/// makes the process abort (like kill -9: no cleanup, no flush) when it
/// reaches that stage. Stages: after_fetch, after_store, after_move,
/// before_smtp, after_smtp. Without the variable it does nothing.
fn crash_point(stage: &str) {
    if std::env::var("NFP_GATEWAY_CRASH_AT").is_ok_and(|s| s == stage) {
        eprintln!("nfp-gateway: crash injected at {stage}");
        std::process::abort();
    }
}

/// How this instance claims work in a store that other instances may share.
pub struct Claimer {
    /// `<instance>/`: every claim this instance ever made starts so; at a
    /// start, whatever is still claimed under it was the previous process's.
    own: String,
    /// `<instance>/<pid>/<start>`: this process.
    process: String,
    count: AtomicU64,
    lease: Duration,
}

impl Claimer {
    fn new(daemon: &crate::config::Daemon) -> Result<Claimer> {
        let instance = daemon.instance()?;
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(Claimer {
            own: format!("{instance}/"),
            process: format!("{instance}/{}/{start}", std::process::id()),
            count: AtomicU64::new(0),
            lease: daemon.lease,
        })
    }

    /// A name for a new claim of outgoing mail.
    fn next(&self) -> String {
        format!(
            "{}/{}",
            self.process,
            self.count.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The end of a lease taken or renewed now.
    fn lease_from(&self, now: SystemTime) -> SystemTime {
        now + self.lease
    }
}

/// Capped exponential backoff with jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    /// For an unreachable server: it comes back when it comes back.
    const CAP: Duration = Duration::from_secs(300);
    /// For a store that cannot be written: the gateway's own work waits on
    /// it, so it is tried again at least this often (mail flows again at
    /// most this long after space is freed or the server is back).
    const STORE_CAP: Duration = Duration::from_secs(30);
    /// For an unreachable submission server: mail that another process
    /// queued (which no notification announces) waits at most this long
    /// after the server is back.
    const SENDER_CAP: Duration = Duration::from_secs(60);

    fn new() -> Backoff {
        Backoff {
            next: Backoff::FIRST,
        }
    }

    fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }

    fn step(&mut self) -> Duration {
        self.step_to(Backoff::CAP)
    }

    /// The pause after `e`: a store failure is tried again sooner.
    fn step_after(&mut self, e: &anyhow::Error) -> Duration {
        match is_store_failure(e) {
            true => self.step_to(Backoff::STORE_CAP),
            false => self.step(),
        }
    }

    fn step_to(&mut self, cap: Duration) -> Duration {
        let base = self.next.min(cap);
        self.next = (base * 2).min(cap);
        let jitter = rand::thread_rng().gen_range(0.5..1.0);
        base.mul_f64(jitter)
    }
}

/// Logs a loop's error, unless it is the store's: the store's health has
/// said once that it cannot be written and will say when it can, so each
/// retry meanwhile is logged at debug level only.
fn report(store: &Store, e: &anyhow::Error, what: &str) {
    let error = format!("{e:#}");
    match store.health().note(e) {
        true => tracing::debug!(%error, "{what}"),
        false => tracing::error!(%error, "{what}"),
    }
}
