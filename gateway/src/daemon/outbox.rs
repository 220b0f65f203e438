//! The outbox sender: claims due mail, sends it over SMTP one at a time,
//! records each outcome, and retries on its schedule.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use super::state::unix_now;
use super::{crash_point, report, Backoff, Claimer, Shared, State};
use crate::intake;
use crate::outbound::smtp::{Delivery, Relay};
use crate::post::{self, Ctx};
use crate::store::outbox::{Attempt, OutboxItem};

pub(super) async fn drain_outbox(
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

/// How long until the next pending mail is due (at most 5 s: mail queued by
/// another process, such as `quarantine release`, is seen within that).
pub(super) async fn until_next_due(ctx: &Ctx) -> Duration {
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
pub(super) const SEND_BATCH: i64 = 32;

/// How often the sender looks for mail whose claim expired.
pub(super) const SWEEP: Duration = Duration::from_secs(10);

/// Sends what is due, oldest first. False when the server was unreachable
/// (the rest waits, so that order is kept).
///
/// A batch is claimed at once; its mails are sent one at a time, and each
/// outcome is committed before the next mail starts, so only the first
/// unrecorded mail of a claim can be in doubt after a crash
/// ([`crate::store::Store::recover_in_doubt`]).
pub(super) async fn send_due(
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
pub(super) async fn record(
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
pub(super) fn next_attempt(
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
pub(super) async fn alert_failure(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_counts_from_creation() {
        let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
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
