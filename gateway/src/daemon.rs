//! `nfp-gateway run`: the daemon's tasks, signals and shutdown.
//!
//! Two long-running tasks share one [`Ctx`]: the inbox watcher (IMAP ->
//! intake -> file) and the outbox sender (outbox -> SMTP). Each watches the
//! same cancellation token; SIGTERM or SIGINT cancels it, the tasks finish
//! the message in hand, and after `shutdown-timeout` whatever is left is
//! aborted (the store makes that safe).

pub mod http;
pub mod notify;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rand::Rng as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::check::Gateway;
use crate::config::Imap;
use crate::intake::{self, Source};
use crate::mailbox::{Connection, Mailbox, Woken};
use crate::outbound::smtp::{Delivery, Relay};
use crate::post::{self, Ctx};
use crate::store::health::is_store_failure;
use crate::store::outbox::{Attempt, OutboxItem};
use crate::store::Store;

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

/// Live state for health and metrics.
pub struct State {
    ctx: Arc<Ctx>,
    imap_connected: AtomicBool,
    /// Unix seconds of the last sign of life of each loop.
    inbox_alive: AtomicU64,
    outbox_alive: AtomicU64,
    /// Unix seconds since when every round of the outbox sender failed (0:
    /// the last one did not).
    outbox_failing_since: AtomicU64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    /// Ok, or every reason the gateway cannot do its work now.
    async fn health(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(failing) = self.ctx.store.health().failing() {
            problems.push(format!(
                "the store cannot be written (for {} s): {}",
                failing.for_.as_secs(),
                failing.reason
            ));
        }
        // Answered at once, even when the database server is gone and the
        // pool would wait for a connection.
        match tokio::time::timeout(Duration::from_secs(3), self.ctx.store.outbox_depth()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("the store does not answer: {e:#}")),
            Err(_) => problems.push("the store does not answer within 3 s".into()),
        }
        if !self.imap_connected.load(Ordering::Relaxed) {
            problems.push("IMAP is not connected".into());
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems.join("\n")),
        }
    }

    async fn metrics(&self) -> Result<String> {
        use std::fmt::Write as _;
        let mut out = String::new();
        let health = self.ctx.store.health();
        writeln!(out, "# HELP nfp_gateway_store_write_failures_total Write transactions of the store that could not begin or commit.")?;
        writeln!(out, "# TYPE nfp_gateway_store_write_failures_total counter")?;
        writeln!(
            out,
            "nfp_gateway_store_write_failures_total {}",
            health.failures()
        )?;
        writeln!(out, "# HELP nfp_gateway_store_writable Whether the latest write transaction of the store committed.")?;
        writeln!(out, "# TYPE nfp_gateway_store_writable gauge")?;
        writeln!(
            out,
            "nfp_gateway_store_writable {}",
            u8::from(health.failing().is_none())
        )?;
        writeln!(
            out,
            "# HELP nfp_gateway_messages_total Inbound messages stored, by verdict and reason."
        )?;
        writeln!(out, "# TYPE nfp_gateway_messages_total counter")?;
        for (verdict, reason, n) in self.ctx.store.inbound_counts().await? {
            writeln!(
                out,
                "nfp_gateway_messages_total{{verdict=\"{verdict}\",reason=\"{}\"}} {n}",
                reason.unwrap_or_default()
            )?;
        }
        let (depth, oldest) = self.ctx.store.outbox_depth().await?;
        let age = oldest
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0)
            })
            .unwrap_or(0);
        writeln!(
            out,
            "# HELP nfp_gateway_outbox_depth Mail waiting to be sent."
        )?;
        writeln!(out, "# TYPE nfp_gateway_outbox_depth gauge")?;
        writeln!(out, "nfp_gateway_outbox_depth {depth}")?;
        writeln!(out, "# HELP nfp_gateway_outbox_oldest_pending_seconds Age of the oldest mail waiting to be sent.")?;
        writeln!(
            out,
            "# TYPE nfp_gateway_outbox_oldest_pending_seconds gauge"
        )?;
        writeln!(out, "nfp_gateway_outbox_oldest_pending_seconds {age}")?;
        writeln!(
            out,
            "# HELP nfp_gateway_outbox_total Outgoing mail by state."
        )?;
        writeln!(out, "# TYPE nfp_gateway_outbox_total gauge")?;
        for (state, n) in self.ctx.store.outbox_states().await? {
            writeln!(out, "nfp_gateway_outbox_total{{state=\"{state}\"}} {n}")?;
        }
        writeln!(
            out,
            "# HELP nfp_gateway_cases The Secretariat's cases by standing (open: not yet due)."
        )?;
        writeln!(out, "# TYPE nfp_gateway_cases gauge")?;
        let counts = self.ctx.store.case_counts(SystemTime::now()).await?;
        for standing in ["open", "overdue", "answered", "closed"] {
            let n = counts
                .iter()
                .find(|(s, _)| s == standing)
                .map_or(0, |c| c.1);
            writeln!(out, "nfp_gateway_cases{{standing=\"{standing}\"}} {n}")?;
        }
        writeln!(
            out,
            "# HELP nfp_gateway_rollcall The NFPs of the latest roll call by standing."
        )?;
        writeln!(out, "# TYPE nfp_gateway_rollcall gauge")?;
        let members = match self.ctx.store.rounds().await?.first() {
            Some(round) => self.ctx.store.round_members(&round.reference).await?,
            None => Vec::new(),
        };
        for standing in crate::rollcall::STANDINGS {
            let n = members.iter().filter(|m| m.standing() == standing).count();
            writeln!(out, "nfp_gateway_rollcall{{standing=\"{standing}\"}} {n}")?;
        }
        writeln!(
            out,
            "# HELP nfp_gateway_imap_connected Whether the IMAP session is up."
        )?;
        writeln!(out, "# TYPE nfp_gateway_imap_connected gauge")?;
        writeln!(
            out,
            "nfp_gateway_imap_connected {}",
            u8::from(self.imap_connected.load(Ordering::Relaxed))
        )?;
        Ok(out)
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

async fn watch_inbox(
    shared: Shared,
    mailbox: Mailbox,
    state: Arc<State>,
    claimer: Arc<Claimer>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new();
    while !cancel.is_cancelled() {
        let result = session(&shared, &mailbox, &state, &claimer, &cancel, &mut backoff).await;
        state.imap_connected.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(e) => {
                let wait = backoff.step_after(&e);
                match shared.get().store.health().note(&e) {
                    true => {
                        tracing::debug!(error = %format!("{e:#}"), retry_in = ?wait, "IMAP session ended")
                    }
                    false => {
                        tracing::warn!(error = %format!("{e:#}"), retry_in = ?wait, "IMAP session ended")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }
}

/// One IMAP session: connect, file everything in the inbox, wait, repeat.
async fn session(
    shared: &Shared,
    mailbox: &Mailbox,
    state: &State,
    claimer: &Claimer,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
) -> Result<()> {
    let cfg = mailbox.config();
    let mut conn = mailbox.connect().await?;
    state.imap_connected.store(true, Ordering::Relaxed);
    let store = shared.get().store.clone();
    match store.uidvalidity(&cfg.folder).await? {
        Some(v) if v != conn.uidvalidity => tracing::warn!(
            folder = %cfg.folder, old = v, new = conn.uidvalidity,
            "UIDVALIDITY changed: every message still in the folder is looked at again (stored ones are recognised)"
        ),
        _ => {}
    }
    store
        .set_mailbox_state(&cfg.folder, conn.uidvalidity, 0)
        .await?;
    loop {
        let others = file_all(shared, &mut conn, cfg, state, claimer, cancel).await?;
        // The backoff starts again only after the folder was worked through:
        // a session that connects and then fails to store (a full disk)
        // waits longer each time.
        backoff.reset();
        if cancel.is_cancelled() {
            conn.logout().await;
            return Ok(());
        }
        if others {
            // Another instance is taking messages of the folder through
            // intake: look again shortly (it may die and leave them).
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = cancel.cancelled() => {}
            }
            continue;
        }
        let (c, woken) = conn.wait(cfg, cancel).await?;
        conn = c;
        state.inbox_alive.store(unix_now(), Ordering::Relaxed);
        if let Woken::Cancelled = woken {
            conn.logout().await;
            return Ok(());
        }
    }
}

/// Messages taken from the inbox per round: fetched with one command,
/// judged at once on every core, moved with one command per folder...
const BATCH: usize = 16;
/// ... and no more bytes than this per round (but always one message):
/// a batch is in memory several times over (raw, decrypted, stored, sent).
/// With 300 KiB messages the daemon peaked at 218 MiB with 8 MiB batches,
/// 182 MiB with 4 MiB and 150 MiB with 2 MiB, at 57.6, 54.0 and 51.9
/// mails/s (bench/RESULTS.md).
const BATCH_BYTES: usize = 4 << 20;

/// Takes every message in the inbox folder through intake, then files it,
/// a batch at a time: claim, fetch, judge (in parallel), store (one
/// transaction per message, in order), and only then move them out of the
/// folder. True when messages claimed by another instance were left to it.
async fn file_all(
    shared: &Shared,
    conn: &mut Connection,
    cfg: &Imap,
    state: &State,
    claimer: &Claimer,
    cancel: &CancellationToken,
) -> Result<bool> {
    let mut others = false;
    let waiting = conn.uids().await?;
    let mut next = 0;
    while next < waiting.len() {
        if cancel.is_cancelled() {
            return Ok(others);
        }
        let ctx = &shared.get();
        state.inbox_alive.store(unix_now(), Ordering::Relaxed);
        let max = ctx.gw.config.limits.max_message_size;
        let window = &waiting[next..waiting.len().min(next + BATCH)];
        let sizes = conn.sizes(window).await?;
        let (mut taken, mut bytes) = (0, 0);
        for uid in window {
            // Only the header of a message over the size limit is fetched.
            let size = sizes.get(uid).map_or(0, |&s| s as usize);
            let size = if size > max { 0 } else { size };
            if taken > 0 && bytes + size > BATCH_BYTES {
                break;
            }
            (taken, bytes) = (taken + 1, bytes + size);
        }
        next += taken;
        // Other instances may watch the same folder: each message is taken
        // through intake by the one instance that claimed it.
        let now = SystemTime::now();
        let batch = ctx
            .store
            .claim_inbox(
                &cfg.folder,
                conn.uidvalidity,
                &window[..taken],
                &claimer.process,
                &claimer.own,
                now,
                claimer.lease_from(now),
            )
            .await?;
        others |= batch.len() < taken;
        if batch.is_empty() {
            continue;
        }
        let batch = batch.as_slice();
        let (whole, oversize): (Vec<u32>, Vec<u32>) = batch
            .iter()
            .filter(|uid| sizes.contains_key(uid))
            .partition(|uid| sizes[uid] as usize <= max);
        let mut raws = conn.fetch(&whole, false).await?;
        raws.extend(conn.fetch(&oversize, true).await?);
        crash_point("after_fetch");
        let uids: Vec<u32> = batch
            .iter()
            .copied()
            .filter(|uid| raws.contains_key(uid))
            .collect();
        let judged = futures::future::try_join_all(uids.iter().map(|uid| {
            let raw = raws.remove(uid).unwrap_or_default();
            let over = oversize.contains(uid).then(|| sizes[uid] as usize);
            intake::judge(ctx, raw, over)
        }))
        .await?;
        let judged = intake::compose_ahead(ctx, judged).await?;
        let (mut processed, mut quarantined, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for (uid, judged) in uids.iter().copied().zip(judged) {
            let source = Source {
                folder: cfg.folder.clone(),
                uidvalidity: conn.uidvalidity,
                uid,
            };
            let filed = intake::file(ctx, judged, &source).await?;
            crash_point("after_store");
            let folder = if filed.accepted {
                processed.push(uid);
                &cfg.processed_folder
            } else {
                quarantined.push(uid);
                &cfg.quarantine_folder
            };
            ids.push(filed.inbound_id);
            tracing::info!(uid, inbound_id = filed.inbound_id, accepted = filed.accepted, new = filed.new, folder = %folder, "stored");
        }
        conn.file(&processed, &cfg.processed_folder).await?;
        conn.file(&quarantined, &cfg.quarantine_folder).await?;
        crash_point("after_move");
        if let Some(&last) = uids.last() {
            ctx.store
                .mark_filed(&ids, &cfg.folder, conn.uidvalidity, &uids)
                .await?;
            tracing::info!(
                processed = processed.len(),
                quarantined = quarantined.len(),
                last_uid = last,
                "filed"
            );
        }
    }
    // With the folder empty, every message stored from it has left it, even
    // one whose move was not recorded because the process died in between.
    if conn.uids().await?.is_empty() {
        shared
            .get()
            .store
            .mark_all_filed(&cfg.folder, SystemTime::now())
            .await?;
    }
    Ok(others)
}

async fn drain_outbox(
    shared: Shared,
    relay: Relay,
    retry: Vec<Duration>,
    state: Arc<State>,
    claimer: Arc<Claimer>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new();
    let mut swept = std::time::Instant::now();
    while !cancel.is_cancelled() {
        state.outbox_alive.store(unix_now(), Ordering::Relaxed);
        let ctx = shared.get();
        // Mail claimed by an instance that stopped renewing its lease.
        if swept.elapsed() >= SWEEP {
            swept = std::time::Instant::now();
            match ctx.store.recover_in_doubt(SystemTime::now(), None).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    count = n,
                    "mail left by an instance whose lease expired will be sent again (same Message-ID)"
                ),
                Err(e) => report(&ctx.store, &e, "expired claims could not be taken over"),
            }
        }
        let pause = match send_due(&ctx, &relay, &retry, &claimer, &cancel).await {
            Ok(true) => {
                state.outbox_failing_since.store(0, Ordering::Relaxed);
                backoff.reset();
                None
            }
            // The server is unreachable: a good reason to wait, though not
            // long (mail queued by another process, `circular send`, is
            // seen only when the pause ends).
            Ok(false) => {
                state.outbox_failing_since.store(0, Ordering::Relaxed);
                Some(backoff.step_to(Backoff::SENDER_CAP))
            }
            Err(e) => {
                report(&ctx.store, &e, "the outbox sender failed");
                let _ = state.outbox_failing_since.compare_exchange(
                    0,
                    unix_now(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                Some(backoff.step_after(&e))
            }
        };
        let wait = match pause {
            Some(p) => p,
            None => until_next_due(&ctx).await,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // New mail is tried at once, during a pause too: the server may
            // be back. If it is not, the pause goes on, doubled (the
            // backoff is reset only by a round that reached the server).
            _ = ctx.outbox_ready.notified() => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Reloads the directory when the store's changes (an import, a contact
/// update), and every hour (a rotated certificate's overlap may have ended).
async fn watch_directory(shared: Shared, cancel: CancellationToken) {
    let mut seen = shared
        .get()
        .store
        .directory_changed_at()
        .await
        .ok()
        .flatten();
    let mut loaded = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = cancel.cancelled() => return,
        }
        let ctx = shared.get();
        let Ok(changed) = ctx.store.directory_changed_at().await else {
            continue;
        };
        if changed != seen || loaded.elapsed() >= Duration::from_secs(3600) {
            reload_directory(&shared).await;
            seen = changed;
            loaded = std::time::Instant::now();
        }
        // Circulars are announced here, after the reload and only while the
        // loaded directory is the store's: a circular goes to the parties of
        // the directory it announces (an NFP just added gets it too).
        let ctx = shared.get();
        if ctx.store.directory_changed_at().await.ok() == Some(seen.clone()) {
            if let Err(e) = crate::circular::announce_due(&ctx, SystemTime::now()).await {
                report(&ctx.store, &e, "a directory circular could not be queued");
            }
        }
    }
}

/// Replaces the shared context with one holding the store's directory, and
/// composes again the mail held for want of a key.
async fn reload_directory(shared: &Shared) {
    let ctx = shared.get();
    let reloaded = async {
        let directory = crate::directory::sync::from_store(&ctx.store, SystemTime::now())
            .await?
            .context("The store holds no directory")?;
        ctx.with_directory(directory)
    };
    match reloaded.await {
        Ok(new) => {
            let parties = new.gw.directory.parties().len();
            shared.set(Arc::new(new));
            tracing::info!(parties, "directory reloaded from the store");
            let released = intake::recompose_held(&shared.get()).await;
            if let Err(e) = released {
                tracing::warn!(error = %format!("{e:#}"), "held mail could not be composed again");
            }
        }
        Err(e) => report(
            &ctx.store,
            &e,
            "the changed directory could not be loaded: keeping the previous one",
        ),
    }
}

/// Sends the quarantine digest when one is due, the case reminders and
/// the roll call's reminders and reports and the period's report that are
/// due, and runs the daily key-expiry watch and retention run
/// (circulars: `watch_directory`).
async fn scheduled_jobs(shared: Shared, cancel: CancellationToken) {
    let mut pause = Duration::from_secs(2);
    let mut backoff = Backoff::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => return,
        }
        let ctx = shared.get();
        let mut failed = None;
        if let Err(e) = crate::intake::digest_due(&ctx, SystemTime::now()).await {
            report(&ctx.store, &e, "a quarantine digest could not be queued");
            failed = Some(e);
        }
        match crate::keywatch::run_daily(&ctx, SystemTime::now()).await {
            Ok(true) => tracing::info!("key-expiry watch done for today"),
            Ok(false) => {}
            Err(e) => {
                report(&ctx.store, &e, "the key-expiry watch failed");
                failed = Some(e);
            }
        }
        let now = SystemTime::now();
        match crate::cases::remind(&ctx, now, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cases = n, "case reminders queued"),
            Err(e) => {
                report(&ctx.store, &e, "case reminders could not be queued");
                failed = Some(e);
            }
        }
        match crate::rollcall::run(&ctx, now, now).await {
            Ok(done) if done == Default::default() => {}
            Ok(done) => tracing::info!(
                reminded = done.reminded,
                reported = done.reported,
                "roll call mail queued"
            ),
            Err(e) => {
                report(&ctx.store, &e, "the roll call's mail could not be queued");
                failed = Some(e);
            }
        }
        match crate::report::run(&ctx, now, now).await {
            Ok(true) => tracing::info!("the period's report queued"),
            Ok(false) => {}
            Err(e) => {
                report(&ctx.store, &e, "the period's report could not be queued");
                failed = Some(e);
            }
        }
        if let Err(e) = ctx.store.seal_audit(SystemTime::now()).await {
            report(&ctx.store, &e, "the audit trail could not be sealed");
            failed = Some(e);
        }
        let retention = &ctx.gw.config.retention;
        match crate::retention::run_daily(&ctx.store, retention, SystemTime::now()).await {
            Ok(Some(purged)) => {
                let n: i64 = purged.iter().map(|p| p.messages).sum();
                tracing::info!(messages = n, "retention run done for today");
            }
            Ok(None) => {}
            Err(e) => {
                report(&ctx.store, &e, "the retention run failed");
                failed = Some(e);
            }
        }
        pause = match failed {
            Some(e) if is_store_failure(&e) => backoff.step_after(&e),
            _ => {
                backoff.reset();
                Duration::from_secs(2)
            }
        };
    }
}

/// How long until the next pending mail is due (at most 5 s: mail queued by
/// another process, such as `quarantine release`, is seen within that).
async fn until_next_due(ctx: &Ctx) -> Duration {
    let cap = Duration::from_secs(5);
    let Ok(Some(next)) = ctx.store.next_due().await else {
        return cap;
    };
    let Ok(next) = chrono::DateTime::parse_from_rfc3339(&next) else {
        return cap;
    };
    (next.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO)
        .min(cap)
}

/// Mails claimed per round of sending (one statement claims them all).
const SEND_BATCH: i64 = 32;

/// How often the sender looks for mail whose claim expired.
const SWEEP: Duration = Duration::from_secs(10);

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

/// Sends what is due, oldest first. False when the server was unreachable
/// (the rest waits, so that order is kept).
///
/// A batch is claimed at once; its mails are sent one at a time, and each
/// outcome is committed before the next mail starts, so only the first
/// unrecorded mail of a claim can be in doubt after a crash
/// ([`crate::store::Store::recover_in_doubt`]).
async fn send_due(
    ctx: &Arc<Ctx>,
    relay: &Relay,
    retry: &[Duration],
    claimer: &Claimer,
    cancel: &CancellationToken,
) -> Result<bool> {
    let now = SystemTime::now();
    let claimed = ctx
        .store
        .claim_due(now, SEND_BATCH, &claimer.next(), claimer.lease_from(now))
        .await?;
    let ids: Vec<i64> = claimed.iter().map(|i| i.id).collect();
    for (i, item) in claimed.into_iter().enumerate() {
        if cancel.is_cancelled() {
            ctx.store.unclaim(&ids[i..]).await?;
            return Ok(true);
        }
        let Some(message) = &item.message else {
            continue;
        };
        crash_point("before_smtp");
        let delivery = relay.send(&item.recipient_email, message).await;
        crash_point("after_smtp");
        let now = SystemTime::now();
        let created = chrono::DateTime::parse_from_rfc3339(&item.created_at)
            .map(SystemTime::from)
            .unwrap_or(now);
        let later = |code, response: String, unreachable| match next_attempt(
            created,
            now,
            retry,
            unreachable,
        ) {
            Some(next) => Attempt::Transient {
                code,
                response,
                next,
            },
            None => Attempt::Permanent {
                code,
                response: format!("gave up after {} attempts: {response}", item.attempts),
            },
        };
        let unreachable = matches!(delivery, Delivery::Unreachable { .. });
        let attempt = match delivery {
            Delivery::Sent { code, response } => Attempt::Sent { code, response },
            Delivery::Deferred { code, response } => later(code, response, false),
            Delivery::Unreachable { response } => later(None, response, true),
            Delivery::Rejected { code, response } => Attempt::Permanent { code, response },
        };
        // An unreachable server ends the round: the rest of the claim is
        // given back, untried, with this outcome (one transaction).
        let untried = if unreachable { &ids[i + 1..] } else { &[] };
        record(ctx, &item, now, attempt, claimer, untried, cancel).await?;
        if unreachable {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Commits one attempt's outcome (giving back `untried` mail of its claim
/// in the same transaction), logs it, and alerts the Secretariat when a
/// mail is given up.
///
/// The SMTP server has answered: forgetting its answer would send the mail
/// again. So while the store cannot be written, the outcome is kept here
/// and its commit tried again with backoff (renewing the claim each time),
/// until it is stored or the daemon stops; only then is the mail in doubt.
async fn record(
    ctx: &Arc<Ctx>,
    item: &OutboxItem,
    now: SystemTime,
    attempt: Attempt,
    claimer: &Claimer,
    untried: &[i64],
    cancel: &CancellationToken,
) -> Result<()> {
    let mut backoff = Backoff::new();
    loop {
        let lease_until = claimer.lease_from(SystemTime::now());
        match ctx
            .store
            .finish_and_give_back(item, now, &attempt, lease_until, untried)
            .await
        {
            Ok(()) => break,
            Err(e) if ctx.store.health().note(&e) && !cancel.is_cancelled() => {
                tracing::debug!(error = %format!("{e:#}"), outbox_id = item.id, "the outcome waits for the store");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.step_after(&e)) => {}
                    _ = cancel.cancelled() => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    match &attempt {
        Attempt::Sent { .. } => {
            tracing::info!(outbox_id = item.id, party = %item.recipient_party, purpose = %item.purpose, "sent")
        }
        Attempt::Transient { response, .. } => {
            tracing::warn!(outbox_id = item.id, %response, "deferred")
        }
        Attempt::Permanent { response, .. } => {
            tracing::error!(outbox_id = item.id, party = %item.recipient_party, %response, "delivery failed");
            let attempts = usize::try_from(item.attempts).unwrap_or(usize::MAX);
            alert_failure(ctx, item, attempts, response).await?;
        }
    }
    Ok(())
}

/// When to try a mail again. The retry schedule counts from the mail's
/// creation (a schedule of 1m, 5m means: at 1 min, then at 6 min of age).
/// A deferral (4xx) waits for the next step; an unreachable server does not
/// move the mail back in the queue (it stays due, and the sender pauses with
/// its own backoff), so order is kept. None once the schedule is over.
fn next_attempt(
    created: SystemTime,
    now: SystemTime,
    schedule: &[Duration],
    unreachable: bool,
) -> Option<SystemTime> {
    let mut step = created;
    for wait in schedule {
        step += *wait;
        if step > now {
            return Some(if unreachable { now } else { step });
        }
    }
    None
}

/// Tells the Secretariat that a mail could not be delivered (unless that
/// mail was itself to the Secretariat: then only the log and audit know).
async fn alert_failure(
    ctx: &Arc<Ctx>,
    item: &OutboxItem,
    attempts: usize,
    response: &str,
) -> Result<()> {
    let secretariat = ctx.gw.directory.secretariat();
    if item.recipient_party == secretariat.id {
        return Ok(());
    }
    let (ctx2, item2, response) = (ctx.clone(), item.clone(), response.to_string());
    let now = SystemTime::now();
    let planned = tokio::task::spawn_blocking(move || {
        intake::delivery_failure_alert(&ctx2, &item2, attempts, &response, now)
    })
    .await
    .context("The alert task failed")??;
    let mut tx = ctx.store.begin().await?;
    post::queue(&mut tx, item.inbound_id, &planned, now).await?;
    tx.commit().await?;
    ctx.outbox_ready.notify_one();
    Ok(())
}

/// Feeds systemd's watchdog while [`State::stalled`] finds nothing wrong;
/// says once in the log when it stops feeding it (systemd then restarts the
/// service after `WatchdogSec`) and once if it starts again.
async fn watchdog(
    interval: Duration,
    stalled_after: Duration,
    state: Arc<State>,
    cancel: CancellationToken,
) {
    let beat = interval / 2;
    let mut withheld = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(beat) => {}
            _ = cancel.cancelled() => return,
        }
        match state.stalled(stalled_after) {
            None => {
                if withheld {
                    tracing::warn!("progress again: the systemd watchdog is fed again");
                    withheld = false;
                }
                notify::notify("WATCHDOG=1");
            }
            Some(why) if !withheld => {
                tracing::error!(%why, "no progress: the systemd watchdog is no longer fed, so systemd restarts the gateway");
                withheld = true;
            }
            Some(_) => {}
        }
    }
}

impl State {
    /// Why the daemon makes no progress for a bad reason, if it does not:
    /// the store has failed every write for `stalled_after`, or the outbox
    /// sender every round; or a loop has gone silent (it wakes at least
    /// every IDLE timeout, and every 5 min, respectively: silence for
    /// longer means it is stuck). Waiting for mail, or for an unreachable
    /// server, is progress enough.
    fn stalled(&self, stalled_after: Duration) -> Option<String> {
        let now = unix_now();
        let since = |t: &AtomicU64| now.saturating_sub(t.load(Ordering::Relaxed));
        if let Some(failing) = self.ctx.store.health().failing() {
            if failing.for_ >= stalled_after {
                return Some(format!(
                    "the store has not been writable for {} s: {}",
                    failing.for_.as_secs(),
                    failing.reason
                ));
            }
        }
        let failing = self.outbox_failing_since.load(Ordering::Relaxed);
        if failing != 0 && now.saturating_sub(failing) >= stalled_after.as_secs() {
            return Some(format!(
                "every round of the outbox sender has failed for {} s",
                now.saturating_sub(failing)
            ));
        }
        if since(&self.inbox_alive) >= 3600 {
            return Some(format!(
                "the inbox watcher has been silent for {} s",
                since(&self.inbox_alive)
            ));
        }
        if since(&self.outbox_alive) >= 600 {
            return Some(format!(
                "the outbox sender has been silent for {} s",
                since(&self.outbox_alive)
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_counts_from_creation() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let m = |s: u64| Duration::from_secs(60 * s);
        let schedule = [m(1), m(5), m(30)];
        assert_eq!(
            next_attempt(t0, t0 + Duration::from_secs(5), &schedule, false),
            Some(t0 + m(1))
        );
        assert_eq!(
            next_attempt(t0, t0 + m(2), &schedule, false),
            Some(t0 + m(6))
        );
        assert_eq!(
            next_attempt(t0, t0 + m(10), &schedule, false),
            Some(t0 + m(36))
        );
        assert_eq!(next_attempt(t0, t0 + m(36), &schedule, false), None);
        // Unreachable: due again at once (the sender paces itself), until the schedule is over.
        assert_eq!(
            next_attempt(t0, t0 + m(2), &schedule, true),
            Some(t0 + m(2))
        );
        assert_eq!(next_attempt(t0, t0 + m(40), &schedule, true), None);
    }
}
