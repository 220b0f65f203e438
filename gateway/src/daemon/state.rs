//! The daemon's live state, which health and metrics read: what each task
//! last did, and whether it stalls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;

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

    pub(super) async fn metrics(&self) -> Result<String> {
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
