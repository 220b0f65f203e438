//! The key-expiry watch: once a day, every party whose certificate expires
//! within `key-expiry-warning` is told so (while mail can still reach it),
//! and the Secretariat receives the list, with the parties whose
//! certificates are unusable already (they receive nothing, never plaintext)
//! and the gateway's own key when it cannot sign or decrypt by the end of
//! the warning period.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::keys::expiry;
use crate::openpgp::seal;
use crate::outbound::{KeyExpiryReportData, KeyExpiryWarningData, KeyStatus, OwnKeyStatus};
use crate::post::{self, Ctx};

/// Runs the watch if it has not run today (UTC). Returns whether it ran.
pub async fn run_daily(ctx: &Arc<Ctx>, now: SystemTime) -> Result<bool> {
    if !ctx.gw.config.key_expiry_watch {
        return Ok(false);
    }
    let day = crate::utc_day(now);
    let mut tx = ctx.store.begin().await?;
    if !tx
        .claim_once(crate::store::Once::KeyWatch, &day, now)
        .await?
    {
        return Ok(false);
    }
    let mails = {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || compose(&ctx, now))
            .await
            .context("The key watch failed")??
    };
    let detail = format!("key-expiry watch {day}: {} mails", mails.len());
    post::queue_and_commit(ctx, tx, &mails, "key_watch", &detail, now).await?;
    Ok(true)
}

/// The statuses worth reporting, and the mails: a warning to each party
/// that can still be written to, the report to the Secretariat.
fn compose(ctx: &Ctx, now: SystemTime) -> Result<Vec<post::Planned>> {
    let gw = &ctx.gw;
    let (keys, own_key) = statuses(gw, now);
    if let Some(own) = &own_key {
        for finding in &own.findings {
            tracing::warn!("the gateway's own key: {finding}");
        }
    }
    let sender = ctx.sender(now);
    let mut mails = Vec::new();
    for key in keys.iter().filter(|k| !k.unusable) {
        let Some(party) = gw.directory.get(&key.party.id) else {
            continue;
        };
        let data = KeyExpiryWarningData {
            gateway: gw.config.address.clone(),
            recipient: party.into(),
            key: key.clone(),
        };
        mails.push(post::letter(
            ctx,
            &sender,
            "alert",
            "key_expiry_warning",
            party,
            &data,
        )?);
    }
    if !keys.is_empty() || own_key.is_some() {
        let secretariat = gw.directory.secretariat();
        let data = KeyExpiryReportData {
            gateway: gw.config.address.clone(),
            recipient: secretariat.into(),
            generated_at: crate::rfc3339(now),
            warning_days: (gw.config.key_expiry_warning.as_secs() / 86_400) as i64,
            keys,
            own_key,
        };
        mails.push(post::letter(
            ctx,
            &sender,
            "alert",
            "key_expiry_report",
            secretariat,
            &data,
        )?);
    }
    Ok(mails)
}

/// The certificates worth reporting at `now`: those that expire within
/// `key-expiry-warning` or are unusable already; and the gateway's own key,
/// when anything is to be said of it.
pub fn statuses(
    gw: &crate::check::Gateway,
    now: SystemTime,
) -> (Vec<KeyStatus>, Option<OwnKeyStatus>) {
    let horizon = now + gw.config.key_expiry_warning;
    let mut keys = Vec::new();
    for party in gw.directory.parties() {
        let expires = expiry(&party.cert, &gw.policy, now);
        let usable = seal::transport_keys(&party.cert, &gw.policy, now);
        let days_left = expires.map(|t| match t.duration_since(now) {
            Ok(d) => (d.as_secs() / 86_400) as i64,
            Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
        });
        let status = KeyStatus {
            party: party.into(),
            fingerprint: party.cert.fingerprint().to_hex(),
            expires_at: expires.map(crate::rfc3339),
            days_left,
            unusable: usable.is_err(),
            why: usable
                .err()
                .map(|e| crate::outbound::render::clean_line(&e.0, 300))
                .unwrap_or_default(),
        };
        if status.unusable || expires.is_some_and(|t| t <= horizon) {
            keys.push(status);
        }
    }
    let own = crate::keys::check_gateway(&gw.key, &gw.policy, now, gw.config.key_expiry_warning);
    let own_key = (!own.findings.is_empty()).then(|| OwnKeyStatus {
        fingerprint: own.fingerprint.clone(),
        expires_at: own.expires.map(crate::rfc3339),
        findings: own.findings.iter().map(|(_, f)| f.clone()).collect(),
    });
    (keys, own_key)
}
