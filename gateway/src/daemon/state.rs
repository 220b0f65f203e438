//! The daemon's live state, which health and metrics read: what each task
//! last did, and whether it stalls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::post::Ctx;

/// Live state for health and metrics.
pub struct State {
    pub(super) ctx: Arc<Ctx>,
    pub(super) imap_connected: AtomicBool,
    /// Unix seconds of the last sign of life of each loop.
    pub(super) inbox_alive: AtomicU64,
    pub(super) outbox_alive: AtomicU64,
    /// Unix seconds since when every round of the outbox sender failed (0:
    /// the last one did not).
    pub(super) outbox_failing_since: AtomicU64,
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    /// Ok, or every reason the gateway cannot do its work now.
    pub(super) async fn health(&self) -> Result<(), String> {
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

    /// The metrics as OpenMetrics text, read from the store at each scrape
    /// (several instances sharing a store each report all of it).
    pub(super) async fn metrics(&self) -> Result<String> {
        let mut registry = Registry::with_prefix("nfp_gateway");
        let health = self.ctx.store.health();
        let failures = Counter::<u64>::default();
        failures.inc_by(health.failures());
        registry.register(
            "store_write_failures",
            "Write transactions of the store that could not begin or commit",
            failures,
        );
        registry.register(
            "store_writable",
            "Whether the latest write transaction of the store committed",
            gauge(i64::from(health.failing().is_none())),
        );
        let messages = Family::<Labels, Counter>::default();
        for (verdict, reason, n) in self.ctx.store.inbound_counts().await? {
            messages
                .get_or_create(&labels(&[
                    ("verdict", verdict),
                    ("reason", reason.unwrap_or_default()),
                ]))
                .inc_by(u64::try_from(n).unwrap_or(0));
        }
        registry.register(
            "messages",
            "Inbound messages stored, by verdict and reason",
            messages,
        );
        let (depth, oldest) = self.ctx.store.outbox_depth().await?;
        let age = oldest
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0)
            })
            .unwrap_or(0);
        registry.register("outbox_depth", "Mail waiting to be sent", gauge(depth));
        registry.register(
            "outbox_oldest_pending_seconds",
            "Age of the oldest mail waiting to be sent",
            gauge(age),
        );
        let outbox = Family::<Labels, Gauge>::default();
        for (state, n) in self.ctx.store.outbox_states().await? {
            outbox.get_or_create(&labels(&[("state", state)])).set(n);
        }
        registry.register("outbox_total", "Outgoing mail by state", outbox);
        let cases = Family::<Labels, Gauge>::default();
        let counts = self.ctx.store.case_counts(SystemTime::now()).await?;
        for standing in ["open", "overdue", "answered", "closed"] {
            let n = counts
                .iter()
                .find(|(s, _)| s == standing)
                .map_or(0, |c| c.1);
            cases
                .get_or_create(&labels(&[("standing", standing.to_string())]))
                .set(n);
        }
        registry.register(
            "cases",
            "The Secretariat's cases by standing (open: not yet due)",
            cases,
        );
        let members = match self.ctx.store.rounds().await?.first() {
            Some(round) => self.ctx.store.round_members(&round.reference).await?,
            None => Vec::new(),
        };
        let rollcall = Family::<Labels, Gauge>::default();
        for standing in crate::rollcall::STANDINGS {
            let n = members.iter().filter(|m| m.standing() == standing).count();
            rollcall
                .get_or_create(&labels(&[("standing", standing.to_string())]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        registry.register(
            "rollcall",
            "The NFPs of the latest roll call by standing",
            rollcall,
        );
        registry.register(
            "imap_connected",
            "Whether the IMAP session is up",
            gauge(i64::from(self.imap_connected.load(Ordering::Relaxed))),
        );
        let mut out = String::new();
        encode(&mut out, &registry).context("Encoding the metrics")?;
        Ok(out)
    }
}

impl State {
    /// Why the daemon makes no progress for a bad reason, if it does not:
    /// the store has failed every write for `stalled_after`, or the outbox
    /// sender every round; or a loop has gone silent (it wakes at least
    /// every IDLE timeout, and every 5 min, respectively: silence for
    /// longer means it is stuck). Waiting for mail, or for an unreachable
    /// server, is progress enough.
    pub(super) fn stalled(&self, stalled_after: Duration) -> Option<String> {
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

/// A metric's labels, in the order they are written.
type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}
