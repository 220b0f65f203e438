//! systemd's watchdog, fed while the daemon makes progress.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{notify, State};

/// Feeds systemd's watchdog while [`State::stalled`] finds nothing wrong;
/// says once in the log when it stops feeding it (systemd then restarts the
/// service after `WatchdogSec`) and once if it starts again.
pub(super) async fn watchdog(
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
