//! The hourly limits: how many messages a party (and the network) may have
//! accepted, and how many quarantine notices a storm may cause.
//!
//! A quarantined message gets a notice of its own only within the hour's
//! budget (`notices-per-hour`, and `notices-per-sender-per-hour` per claimed
//! envelope sender); beyond it, it is `held` and listed in the next
//! quarantine digest, at most one per `quarantine-digest` period. A storm of
//! a thousand forged messages thus costs the Secretariat a few notices and
//! one digest an hour, and the claimed senders nothing. Automatic mail gets
//! neither (RFC 3834: it is never answered). Everything counts from the
//! store, so the limits hold across restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::config::Limits;
use crate::outbound::{DigestLine, QuarantineDigestData};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

/// The quarantine gets its own notice.
pub(super) const NOTICE: &str = "notice";

/// An accepted message beyond its sender's or the network's hourly limit
/// becomes `rate_limited` (an operator can release it).
pub(super) async fn rate_limit(
    tx: &mut Tx,
    limits: &Limits,
    decision: Decision,
    now: SystemTime,
) -> Result<Decision> {
    let Some(sender) = decision
        .sender
        .as_ref()
        .filter(|_| decision.verdict == Verdict::Accepted)
    else {
        return Ok(decision);
    };
    let since = now - HOUR;
    let mine = tx.accepted_since(Some(&sender.party), since).await?;
    let why = if mine >= i64::from(limits.sender_messages_per_hour) {
        format!(
            "{} had {mine} messages accepted in the last hour (sender-messages-per-hour = {})",
            sender.party, limits.sender_messages_per_hour
        )
    } else {
        let all = tx.accepted_since(None, since).await?;
        if all < i64::from(limits.messages_per_hour) {
            return Ok(decision);
        }
        format!(
            "{all} messages were accepted in the last hour (messages-per-hour = {})",
            limits.messages_per_hour
        )
    };
    tracing::warn!(party = %sender.party, "{why}: rate_limited");
    Ok(decision.into_rate_limited(why))
}

/// How the Secretariat learns of this decision: "" (accepted), "none"
/// (automatic mail), [`NOTICE`] or "held" (for the digest).
pub(super) async fn notice(
    tx: &mut Tx,
    limits: &Limits,
    decision: &Decision,
    envelope_from: &str,
    now: SystemTime,
) -> Result<&'static str> {
    if decision.verdict == Verdict::Accepted {
        return Ok("");
    }
    if decision.reason == Some(Reason::Loop) {
        return Ok("none");
    }
    let since = now - HOUR;
    if tx.notices_since(None, since).await? >= i64::from(limits.notices_per_hour)
        || tx.notices_since(Some(envelope_from), since).await?
            >= i64::from(limits.notices_per_sender_per_hour)
    {
        return Ok("held");
    }
    Ok(NOTICE)
}

/// The party to tell that its mail could not be read: a message refused as
/// `unsupported_encryption` (GnuPG 2.4's OCB) whose envelope From is a
/// party's registered address, if that party got no such notice in the
/// last day. The From is not authenticated, so the notice goes only to the
/// directory's address and key, says nothing of the message, and is
/// rate-limited; anyone can make the gateway send it, to that party alone.
pub(super) async fn sender_notice(
    tx: &mut Tx,
    directory: &crate::directory::Directory,
    decision: &Decision,
    envelope_from: &str,
    now: SystemTime,
) -> Result<Option<String>> {
    if decision.reason != Some(Reason::UnsupportedEncryption) {
        return Ok(None);
    }
    let from = envelope_from.trim().to_ascii_lowercase();
    let Some(party) = directory.parties().iter().find(|p| p.email == from) else {
        return Ok(None);
    };
    if tx.sender_notices_since(&party.id, now - DAY).await? > 0 {
        return Ok(None);
    }
    Ok(Some(party.id.clone()))
}

/// Sends the quarantine digest when messages are held and the last digest
/// (or, for the first, the oldest held message) is a period old. Returns
/// how many messages it listed.
pub async fn digest_due(ctx: &Ctx, now: SystemTime) -> Result<usize> {
    let period = ctx.gw.config.quarantine_digest;
    let Some(oldest) = ctx.store.oldest_held().await? else {
        return Ok(0);
    };
    let mut tx = ctx.store.begin().await?;
    let since = tx.last_digest_at().await?.unwrap_or(oldest);
    let since_t = crate::store::parse_timestamp(&since).context("A digest's time")?;
    if now.duration_since(since_t).unwrap_or_default() < period {
        return Ok(0);
    }
    let held = tx.held_quarantines().await?;
    if held.is_empty() {
        return Ok(0);
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut senders: BTreeMap<String, usize> = BTreeMap::new();
    for h in &held {
        *reasons
            .entry(h.reason.clone().unwrap_or_default())
            .or_default() += 1;
        *senders.entry(h.envelope_from.clone()).or_default() += 1;
    }
    let mut by_sender: Vec<(String, usize)> = senders.into_iter().collect();
    by_sender.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let secretariat = ctx.gw.directory.secretariat();
    let data = QuarantineDigestData {
        gateway: ctx.gw.config.address.clone(),
        recipient: secretariat.into(),
        since: since.clone(),
        until: rfc3339(now),
        count: held.len(),
        by_reason: reasons
            .into_iter()
            .map(|(code, count)| {
                let text = crate::reason::Reason::ALL
                    .into_iter()
                    .find(|r| r.code() == code)
                    .map(|r| r.description())
                    .unwrap_or("");
                DigestLine {
                    label: code,
                    text: text.to_string(),
                    count,
                }
            })
            .collect(),
        by_sender: by_sender
            .iter()
            .take(DIGEST_SENDERS)
            .map(|(from, count)| DigestLine {
                label: if from.is_empty() {
                    "none".into()
                } else {
                    clean_line(from, 254)
                },
                text: String::new(),
                count: *count,
            })
            .collect(),
        more_senders: by_sender.len().saturating_sub(DIGEST_SENDERS),
        first_id: held[0].id,
        last_id: held[held.len() - 1].id,
    };
    let mail = letter(
        ctx,
        &ctx.sender(now),
        "quarantine_digest",
        "quarantine_digest",
        secretariat,
        &data,
    )?;
    let ids: Vec<i64> = held.iter().map(|h| h.id).collect();
    tx.record_digest(&ids, now).await?;
    let detail = format!(
        "quarantine digest: {} messages (ids {} to {})",
        ids.len(),
        data.first_id,
        data.last_id
    );
    crate::post::queue_and_commit(ctx, tx, &[mail], "quarantine_digest", &detail, now).await?;
    tracing::info!(messages = ids.len(), "quarantine digest queued");
    Ok(ids.len())
}

/// Envelope senders a digest names one by one; the rest are counted.
const DIGEST_SENDERS: usize = 20;
