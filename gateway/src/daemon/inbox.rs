//! The inbox watcher: IMAP (IDLE, or polling) -> intake -> the store, and
//! only then out of the inbox folder.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::state::unix_now;
use super::{crash_point, Backoff, Claimer, Shared, State};
use crate::config::Imap;
use crate::intake::{self, Source};
use crate::mailbox::{Connection, Mailbox, Woken};

pub(super) async fn watch_inbox(
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
pub(super) async fn session(
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
pub(super) const BATCH: usize = 16;
/// ... and no more bytes than this per round (but always one message):
/// a batch is in memory several times over (raw, decrypted, stored, sent).
/// With 300 KiB messages the daemon peaked at 218 MiB with 8 MiB batches,
/// 182 MiB with 4 MiB and 150 MiB with 2 MiB, at 57.6, 54.0 and 51.9
/// mails/s (bench/RESULTS.md).
pub(super) const BATCH_BYTES: usize = 4 << 20;

/// Takes every message in the inbox folder through intake, then files it,
/// a batch at a time: claim, fetch, judge (in parallel), store (one
/// transaction per message, in order), and only then move them out of the
/// folder. True when messages claimed by another instance were left to it.
pub(super) async fn file_all(
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
