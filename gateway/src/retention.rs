//! Retention (issue 15, item 9): the periods of `[retention]` applied to
//! the store. The mandate asks that information is kept and protected under
//! each State's law; that means it is also deleted when the law says. After
//! the period set for its kind, a message's content is deleted (see
//! [`crate::store::retention`]); its metadata and the audit trail stay, and
//! each purge is audited. `nfp-gateway retention run [--dry-run]`, and the
//! daemon once a day, once across instances.

use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::classify::Kind;
use crate::config::Retention;
use crate::store::retention::Class;
use crate::store::{Audit, Store, Tx};

/// One class's part of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// `quarantined`, or a kind code.
    pub class: String,
    pub period: Duration,
    /// Messages received before this lost their content.
    pub cutoff: SystemTime,
    pub messages: i64,
}

/// The classes and their periods (those kept forever left out).
fn classes(r: &Retention) -> Vec<(Class<'static>, &'static str, Duration)> {
    let mut out = Vec::new();
    if let Some(d) = r.quarantined {
        out.push((Class::Quarantined, "quarantined", d));
    }
    for kind in Kind::ALL {
        if let Some(d) = r.for_kind(kind.code()) {
            out.push((Class::Accepted(kind.code()), kind.code(), d));
        }
    }
    out
}

/// Applies `retention` at `now` (with `dry_run`, only counts), in one
/// transaction; each class purged is an audit entry.
pub async fn run(
    store: &Store,
    retention: &Retention,
    now: SystemTime,
    dry_run: bool,
) -> Result<Vec<Purged>> {
    let mut tx = store.begin().await?;
    let report = apply(&mut tx, retention, now, dry_run).await?;
    tx.commit().await?;
    Ok(report)
}

async fn apply(
    tx: &mut Tx,
    retention: &Retention,
    now: SystemTime,
    dry_run: bool,
) -> Result<Vec<Purged>> {
    let mut report = Vec::new();
    for (class, name, period) in classes(retention) {
        let cutoff = now.checked_sub(period).unwrap_or(SystemTime::UNIX_EPOCH);
        let messages = match dry_run {
            true => tx.retention_due(class, cutoff).await?,
            false => tx.purge(class, cutoff, now).await?,
        };
        if messages > 0 && !dry_run {
            let detail = format!(
                "retention: the content of {messages} {name} message(s) received before {} deleted ({} kept)",
                crate::rfc3339(cutoff),
                humantime::format_duration(period)
            );
            tx.audit(&Audit {
                at: Some(now),
                event: "retention_purge",
                detail: &detail,
                ..Audit::default()
            })
            .await?;
        }
        report.push(Purged {
            class: name.to_string(),
            period,
            cutoff,
            messages,
        });
    }
    Ok(report)
}

/// The daemon's daily run: once a day (UTC) across instances. Returns the
/// report when it ran.
pub async fn run_daily(
    store: &Store,
    retention: &Retention,
    now: SystemTime,
) -> Result<Option<Vec<Purged>>> {
    if classes(retention).is_empty() {
        return Ok(None);
    }
    let day = crate::utc_day(now);
    // The claim and the purge commit together: a run that fails is tried
    // again, by this instance or another.
    let mut tx = store.begin().await?;
    if !tx
        .claim_once(crate::store::Once::Retention, &day, now)
        .await?
    {
        return Ok(None);
    }
    let report = apply(&mut tx, retention, now, false).await?;
    tx.commit().await?;
    Ok(Some(report))
}
