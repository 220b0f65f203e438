//! The scheduled jobs: digests, reminders, roll calls, reports, the key
//! watch and the retention run, each when it is due.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{report, Backoff, Shared};
use crate::store::health::is_store_failure;

/// Sends the quarantine digest when one is due, the case reminders and
/// the roll call's reminders and reports and the period's report that are
/// due, and runs the daily key-expiry watch and retention run
/// (circulars: `watch_directory`).
pub(super) async fn scheduled_jobs(shared: Shared, cancel: CancellationToken) {
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
