//! The directory watcher: reloads the shared context when the store's
//! directory changes, and hourly.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{report, Shared};
use crate::intake;

/// Reloads the directory when the store's changes (an import, a contact
/// update), and every hour (a rotated certificate's overlap may have ended).
pub(super) async fn watch_directory(shared: Shared, cancel: CancellationToken) {
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
pub(super) async fn reload_directory(shared: &Shared) {
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
