//! Whether the store can be written, as this process's write transactions
//! find it. Every write transaction begins and commits through
//! [`super::Store::begin`] and [`super::Tx::commit`], so this is the one
//! place that sees a full disk, an I/O error or a lost PostgreSQL server:
//! it says so once in the log when the store starts failing and once when it
//! is writable again (with how long it was down), counts the failures for
//! `/metrics`, answers `/healthz`, and marks the error so that the daemon's
//! loops back off quietly instead of logging each retry.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The store's write health, shared by every clone of one [`super::Store`].
#[derive(Debug, Default)]
pub struct Health {
    /// Fast path: false while every write transaction succeeds.
    failing: AtomicBool,
    since: Mutex<Option<Outage>>,
    /// Write transactions that could not begin or commit, since the start.
    failures: AtomicU64,
}

#[derive(Debug, Clone)]
struct Outage {
    since: Instant,
    /// The latest failure's error, whole.
    reason: String,
    failures: u64,
}

/// How the store stands now, for `/healthz` and the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// How long every write transaction has failed.
    pub for_: Duration,
    pub reason: String,
}

/// The marker of an error from a write transaction that could not begin or
/// commit: the store, not the message or the peer, is at fault, and trying
/// again later is right. See [`is_store_failure`].
#[derive(Debug)]
pub struct WriteFailed;

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store cannot be written")
    }
}

/// Whether `e` is (or was caused by) the store's being unable to work: a
/// write transaction that could not begin or commit, or any statement that
/// met a full disk, an I/O error or a lost database server.
pub fn is_store_failure(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WriteFailed>().is_some()
        || e.chain()
            .filter_map(|c| c.downcast_ref::<sqlx::Error>())
            .any(is_environmental)
}

/// Whether a database error comes from where the store lives (its disk,
/// its server, the connection to it) rather than from the statement.
fn is_environmental(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if code.len() == 5 {
                // PostgreSQL's SQLSTATE: connection exception (08),
                // insufficient resources (53: disk full, out of memory),
                // operator intervention (57P: shutdown, cannot connect now),
                // system error (58: I/O).
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code.starts_with("58")
            } else {
                // SQLite's result code; the primary code is its low byte:
                // READONLY, IOERR, CORRUPT, FULL, CANTOPEN.
                code.parse::<u32>()
                    .is_ok_and(|c| matches!(c & 0xff, 8 | 10 | 11 | 13 | 14))
            }
        }
        _ => false,
    }
}

impl Health {
    /// Whether `e` is a store failure ([`is_store_failure`]); one that a
    /// statement met (not a begin or commit, which are counted already)
    /// counts as a failed write here.
    pub fn note(&self, e: &anyhow::Error) -> bool {
        if e.downcast_ref::<WriteFailed>().is_some() {
            return true;
        }
        let failure = is_store_failure(e);
        if failure {
            self.failed(e, Instant::now());
        }
        failure
    }

    /// A write transaction could not begin or commit; the attempt started
    /// at `started` (a begin may have waited long for a connection: the
    /// outage counts from then).
    pub(super) fn failed(&self, error: &anyhow::Error, started: Instant) {
        let total = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let reason = format!("{error:#}");
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        match since.as_mut() {
            Some(outage) => {
                outage.reason = reason;
                outage.failures += 1;
            }
            None => {
                tracing::error!(
                    error = %reason,
                    failures_so_far = total,
                    "the store cannot be written: mail stays in the inbox and the outbox until it can; retrying with backoff"
                );
                *since = Some(Outage {
                    since: started,
                    reason,
                    failures: 1,
                });
                self.failing.store(true, Ordering::Release);
            }
        }
    }

    /// A write transaction committed.
    pub(super) fn succeeded(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(outage) = since.take() {
            let down = outage.since.elapsed();
            tracing::warn!(
                down_for = %format!("{:.1}s", down.as_secs_f64()),
                failed_transactions = outage.failures,
                "the store is writable again"
            );
        }
        self.failing.store(false, Ordering::Release);
    }

    /// Some when the latest write transaction failed: since when, and why.
    pub fn failing(&self) -> Option<Failing> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        since.as_ref().map(|o| Failing {
            for_: o.since.elapsed(),
            reason: o.reason.clone(),
        })
    }

    /// Write transactions that could not begin or commit since the start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn an_outage_starts_at_the_first_failure_and_ends_at_the_next_commit() {
        let health = Health::default();
        assert_eq!(health.failing(), None);
        health.succeeded();
        let full = || {
            Err::<(), _>(anyhow::anyhow!("(code: 13) database or disk is full"))
                .context("Committing")
                .unwrap_err()
        };
        health.failed(&full(), Instant::now());
        health.failed(&full(), Instant::now());
        let failing = health.failing().expect("failing");
        assert_eq!(
            failing.reason,
            "Committing: (code: 13) database or disk is full"
        );
        assert_eq!(health.failures(), 2);
        health.succeeded();
        assert_eq!(health.failing(), None);
        assert_eq!(health.failures(), 2, "the count is of all time");
    }

    #[test]
    fn a_write_failure_is_recognised_through_its_context() {
        let e = Err::<(), _>(anyhow::anyhow!("disk full"))
            .context(WriteFailed)
            .context("Storing message 4")
            .unwrap_err();
        assert!(is_store_failure(&e));
        assert!(!is_store_failure(&anyhow::anyhow!(
            "IMAP: connection refused"
        )));
    }
}
