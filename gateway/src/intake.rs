//! Intake: one inbound message, from raw bytes to a committed row.
//!
//! The judgement is `check`'s ([`check::judge_full`]); then, in one
//! transaction: the replay memory, a reference number, the message
//! (encrypted to the storage key) with its decision, every mail it causes
//! (already signed and encrypted, in the outbox) and the audit entries.
//! Only after the commit may the caller move the message out of the inbox.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use chrono::Datelike;

use crate::check::{self, Decision, Judgement, ReplayGuard, Verdict};
use crate::classify::Kind;
use crate::directory::Party;
use crate::mime::outer::Form;
use crate::openpgp::seal;
use crate::outbound::compose::{self, Sealed, Sender};
use crate::outbound::render::clean_line;
use crate::outbound::{
    AcknowledgementData, AttachmentView, ForwardData, NoUsableKeyData, PartyView,
    QuarantineNoticeData,
};
use crate::post::{letter, planned, queue, Ctx, Planned};
use crate::reason::{Reason, Rejection};
use crate::rfc3339;
use crate::store::inbound::NewInbound;
use crate::store::{Audit, Tx};

mod letters;
mod limits;
mod release;
mod update;

pub use letters::delivery_failure_alert;
use letters::{
    accepted_mail, acknowledgement_mail, forward_mail, no_key_alert, quarantine_notice,
    unreadable_notice,
};
pub use limits::digest_due;
pub use release::{recompose_held, release};
use update::contact_update;
pub use update::UpdateOutcome;

/// Where a message came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub inbound_id: i64,
    pub accepted: bool,
    /// False when the same bytes were stored before (a re-delivery).
    pub new: bool,
}

/// Replays are decided in the store, inside the transaction.
struct InTransaction;

impl ReplayGuard for InTransaction {
    fn first_time(&mut self, _: &str) -> Result<bool> {
        Ok(true)
    }
}

/// A message judged and not yet stored: what [`judge`] gives [`file`].
pub struct Judged {
    raw: Vec<u8>,
    oversize: Option<usize>,
    judgement: Judgement,
    now: SystemTime,
    /// Composed ahead of the transaction ([`compose_ahead`]).
    ahead: Option<Ahead>,
}

/// The mail of an accepted message, composed before its transaction with
/// the numbers it would most likely get. The transaction uses it only if it
/// allocates exactly those numbers and decides exactly the same; otherwise
/// it composes again. The write lock is then held for the writes alone, and
/// composing (signing, encrypting) runs on every core.
struct Ahead {
    inbound_id: i64,
    reference: String,
    decision: String,
    plan: Plan,
}

/// Judges one message (CPU only, on the blocking pool: the daemon judges a
/// batch at once, on every core); `raw` is what the server holds, or only
/// its header when `oversize` says how large the whole message is.
pub async fn judge(ctx: &Arc<Ctx>, raw: Vec<u8>, oversize: Option<usize>) -> Result<Judged> {
    let now = SystemTime::now();
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let judgement = match oversize {
            Some(size) => Judgement {
                decision: Decision::quarantined(Rejection::new(
                    Reason::Limits,
                    format!(
                        "message of {size} bytes exceeds {} bytes",
                        ctx.gw.config.limits.max_message_size
                    ),
                )),
                content: None,
            },
            None => check::judge_full(&ctx.gw, &raw, now, &mut InTransaction),
        };
        Judged {
            raw,
            oversize,
            judgement,
            now,
            ahead: None,
        }
    })
    .await
    .context("The judgement task failed")
}

/// Composes the mail of the accepted messages of a batch ahead of their
/// transactions (in parallel), numbering them as [`file`] will if nothing
/// else is stored in between and nothing changes in their decisions
/// (a replay, a rate limit). Contact updates are left to the transaction.
pub async fn compose_ahead(ctx: &Arc<Ctx>, batch: Vec<Judged>) -> Result<Vec<Judged>> {
    let Some(first) = batch.first() else {
        return Ok(batch);
    };
    let year = chrono::DateTime::<chrono::Utc>::from(first.now).year();
    let (mut inbound_id, mut n) = ctx.store.next_numbers(year).await?;
    let prefix = ctx.gw.config.reference_prefix();
    let mut tasks = Vec::with_capacity(batch.len());
    for mut judged in batch {
        let decision = &mut judged.judgement.decision;
        let now_year = chrono::DateTime::<chrono::Utc>::from(judged.now).year();
        // A contact update's and a command's mail say what the
        // transaction did: they are composed in it.
        let eligible = decision.verdict == Verdict::Accepted
            && decision.kind != Some(Kind::ContactUpdate)
            && decision.kind != Some(Kind::Command)
            && judged.judgement.content.is_some()
            && now_year == year;
        if eligible && decision.kind == Some(Kind::InformationReply) {
            if let Some(cited) = &decision.reference {
                let asked_by = ctx.store.sender_of_reference(cited).await?;
                check::reroute_reply(&ctx.gw, decision, asked_by.as_deref());
            }
        }
        let guess = eligible.then(|| (inbound_id, crate::store::reference(&prefix, year, n)));
        inbound_id += 1;
        n += i64::from(eligible);
        let ctx = ctx.clone();
        tasks.push(tokio::task::spawn_blocking(move || -> Result<Judged> {
            if let Some((inbound_id, reference)) = guess {
                let d = &judged.judgement.decision;
                let plan = plan(
                    &ctx,
                    inbound_id,
                    d,
                    Some(&reference),
                    judged.judgement.content.as_ref(),
                    None,
                    None,
                    false,
                    None,
                    &judged.raw,
                    judged.oversize,
                    judged.now,
                )?;
                judged.ahead = Some(Ahead {
                    inbound_id,
                    reference,
                    decision: fingerprint(d),
                    plan,
                });
            }
            Ok(judged)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.context("The composing task failed")??);
    }
    Ok(out)
}

/// What a decision says, for comparing one with another.
fn fingerprint(d: &Decision) -> String {
    let said = serde_json::to_string(d).unwrap_or_default();
    format!("{said}{:?}", d.signature_digest)
}

/// Stores one judged message, with everything it causes, in one
/// transaction. Messages are filed one at a time, in the inbox's order: the
/// replay memory and the rate limits see every message filed before.
pub async fn file(ctx: &Arc<Ctx>, judged: Judged, source: &Source) -> Result<Filed> {
    let Judged {
        raw,
        oversize,
        judgement,
        now,
        ahead,
    } = judged;
    let sha = sha256_hex(&raw, oversize);
    let envelope = envelope_of(&raw);
    let Judgement {
        mut decision,
        content,
    } = judgement;

    // A circulation is composed before the transaction (it signs and
    // encrypts a copy for every NFP): the write lock is held for the writes.
    let circulation = match decision.verdict {
        Verdict::Accepted => {
            crate::cases::prepare_circulation(ctx, &decision, content.as_ref(), now).await?
        }
        Verdict::Quarantined => None,
    };
    let mut tx = ctx.store.begin().await?;
    // Inside the transaction: another instance may have stored the same bytes.
    if let Some(known) = tx.inbound_by_sha(&sha).await? {
        return Ok(Filed {
            inbound_id: known.id,
            accepted: known.verdict == "accepted",
            new: false,
        });
    }
    decision = withdraw_replay(&mut tx, decision).await?;
    decision = limits::rate_limit(&mut tx, &ctx.gw.config.limits, decision, now).await?;
    let notice =
        limits::notice(&mut tx, &ctx.gw.config.limits, &decision, &envelope.1, now).await?;
    let sender_notice =
        limits::sender_notice(&mut tx, &ctx.gw.directory, &decision, &envelope.1, now).await?;
    let accepted = decision.verdict == Verdict::Accepted;
    let content = content.filter(|_| accepted);
    if accepted && decision.kind == Some(Kind::InformationReply) {
        if let Some(cited) = &decision.reference {
            let asked_by = ctx.store.sender_of_reference(cited).await?;
            check::reroute_reply(&ctx.gw, &mut decision, asked_by.as_deref());
        }
    }
    let inbound_id = tx.next_inbound_id().await?;
    let reference = match accepted {
        true => Some(
            tx.next_reference(
                &ctx.gw.config.reference_prefix(),
                chrono::DateTime::<chrono::Utc>::from(now).year(),
            )
            .await?,
        ),
        false => None,
    };

    let update = match (&content, decision.kind, &decision.sender) {
        (Some(c), Some(Kind::ContactUpdate), Some(sender)) => {
            Some(contact_update(&mut tx, ctx, &sender.party, c, now).await?)
        }
        _ => None,
    };
    let command = match (&decision.command, &reference) {
        (Some(command), Some(reference)) if accepted => Some(
            crate::cases::carry_out(
                &mut tx,
                &ctx.gw.directory,
                command,
                reference,
                inbound_id,
                circulation,
                now,
            )
            .await?,
        ),
        _ => None,
    };

    let plan = match ahead {
        Some(a)
            if a.inbound_id == inbound_id
                && Some(&a.reference) == reference.as_ref()
                && update.is_none()
                && command.is_none()
                && a.decision == fingerprint(&decision) =>
        {
            a.plan
        }
        ahead => {
            if ahead.is_some() {
                tracing::debug!(
                    inbound_id,
                    "composed again: the numbers or the decision changed"
                );
            }
            let ctx = ctx.clone();
            let decision = decision.clone();
            let reference = reference.clone();
            let update = update.clone();
            let command = command.clone();
            tokio::task::spawn_blocking(move || {
                plan(
                    &ctx,
                    inbound_id,
                    &decision,
                    reference.as_deref(),
                    content.as_ref(),
                    update.as_ref(),
                    command.as_ref(),
                    notice == limits::NOTICE,
                    sender_notice.as_deref(),
                    &raw,
                    oversize,
                    now,
                )
            })
            .await
            .context("The composing task failed")??
        }
    };

    tx.insert_inbound(&NewInbound {
        id: inbound_id,
        received_at: now,
        folder: &source.folder,
        uidvalidity: source.uidvalidity,
        uid: source.uid,
        raw_sha256: &sha,
        raw_size: oversize.unwrap_or(plan.raw_len),
        raw_enc: &plan.raw_enc,
        message_id: &envelope.0,
        envelope_from: &envelope.1,
        decision: &decision,
        reference: reference.as_deref(),
        content_enc: plan.content_enc.as_deref(),
        content_form: plan.content_form,
        notice,
    })
    .await?;
    if accepted {
        for digest in decision.signature_digests() {
            tx.record_signature(digest, inbound_id, now).await?;
        }
    }
    if let (
        Some(UpdateOutcome::Applied {
            after,
            new_cert,
            until,
            changes,
        }),
        Some(reference),
    ) = (&update, &reference)
    {
        let actor = format!("update by {} ({reference})", after.id);
        // A refreshed certificate alone changes no field of the entry.
        if changes.iter().any(|c| c.field != "cert expiry") {
            tx.put_entry(after, &actor, Some(inbound_id), now).await?;
        }
        if let Some((fingerprint, armored)) = new_cert {
            tx.put_cert(&after.id, fingerprint, armored, now).await?;
            if let Some(until) = until {
                tx.retire_other_certs(&after.id, fingerprint, *until)
                    .await?;
            }
        }
    }
    let event = if accepted { "accepted" } else { "quarantined" };
    let mut detail = match (&reference, decision.reason) {
        (Some(r), _) => format!(
            "{r}: {}",
            decision.kind.map(|k| format!("{k:?}")).unwrap_or_default()
        ),
        (None, Some(reason)) => format!("{}: {}", reason.code(), decision.detail),
        (None, None) => String::new(),
    };
    // The audit records every repair made before judgement, by its stable
    // name, and every part discarded unread, by type and size.
    if !decision.repairs.is_empty() && reference.is_some() {
        let names = crate::mime::repair::Repair::list(&decision.repairs);
        detail.push_str(&format!("; repaired: {names}"));
        if !decision.discarded_parts.is_empty() {
            let parts = crate::mime::repair::Discarded::list(&decision.discarded_parts);
            detail.push_str(&format!("; discarded unread: {parts}"));
        }
    }
    if let Some(reference) = &reference {
        crate::cases::on_accepted(
            &mut tx,
            &ctx.gw.config,
            &ctx.gw.directory,
            inbound_id,
            &decision,
            reference,
            now,
        )
        .await?;
        crate::rollcall::on_accepted(
            &mut tx,
            &ctx.gw.config,
            inbound_id,
            &decision,
            reference,
            now,
        )
        .await?;
    }
    audit_and_queue(
        &mut tx,
        event,
        inbound_id,
        &decision,
        &detail,
        &plan.mails,
        now,
    )
    .await?;
    tx.commit().await?;
    if !plan.mails.is_empty() {
        ctx.outbox_ready.notify_one();
    }
    Ok(Filed {
        inbound_id,
        accepted,
        new: true,
    })
}

/// The audit entry of a decision on a stored message, and the mail it causes.
async fn audit_and_queue(
    tx: &mut Tx,
    event: &str,
    inbound_id: i64,
    decision: &Decision,
    detail: &str,
    mails: &[Planned],
    now: SystemTime,
) -> Result<()> {
    tx.audit(&Audit {
        at: Some(now),
        event,
        inbound_id: Some(inbound_id),
        party: decision.sender.as_ref().map(|s| s.party.as_str()),
        fingerprint: decision.sender.as_ref().map(|s| s.fingerprint.as_str()),
        detail,
        ..Audit::default()
    })
    .await?;
    queue(tx, Some(inbound_id), mails, now).await
}

/// An accepted decision any of whose signatures (the message's, or a
/// separately signed attachment's) the store has seen before becomes a replay.
async fn withdraw_replay(tx: &mut Tx, decision: Decision) -> Result<Decision> {
    if decision.verdict != Verdict::Accepted {
        return Ok(decision);
    }
    let mut seen = false;
    for digest in decision.signature_digests() {
        seen = seen || tx.signature_seen(digest).await?;
    }
    Ok(if seen {
        decision.into_replay()
    } else {
        decision
    })
}

struct Plan {
    raw_enc: Vec<u8>,
    raw_len: usize,
    content_enc: Option<Vec<u8>>,
    content_form: &'static str,
    mails: Vec<Planned>,
}

/// Encrypts what is stored and composes every mail the decision causes.
#[allow(clippy::too_many_arguments)]
fn plan(
    ctx: &Ctx,
    inbound_id: i64,
    decision: &Decision,
    reference: Option<&str>,
    content: Option<&check::SignedContent>,
    update: Option<&UpdateOutcome>,
    command: Option<&crate::cases::CommandOutcome>,
    notify: bool,
    sender_notice: Option<&str>,
    raw: &[u8],
    oversize: Option<usize>,
    now: SystemTime,
) -> Result<Plan> {
    let gw = &ctx.gw;
    let raw_enc = seal::encrypt_for_storage(&ctx.storage, &gw.policy, now, raw)
        .context("Encrypting the message for storage")?;
    let content_enc = match &content {
        Some(c) => Some(
            seal::encrypt_for_storage(&ctx.storage, &gw.policy, now, &c.bytes)
                .context("Encrypting the content for storage")?,
        ),
        None => None,
    };
    let content_form = match &content {
        Some(c) if c.form == Form::Inline => "inline",
        Some(_) => "mime",
        None => "",
    };
    let sender = ctx.sender(now);
    let mut mails = Vec::new();
    match (decision.verdict, reference, content) {
        (Verdict::Accepted, Some(reference), Some(content)) => {
            mails = accepted_mail(
                ctx, &sender, decision, reference, content, update, command, now,
            )?;
        }
        // Within the hour's notice budget (limits::notice); beyond it, the
        // quarantine waits for the digest, and automatic mail never gets one.
        _ if notify => {
            mails.push(quarantine_notice(
                ctx, &sender, inbound_id, decision, raw, oversize, now,
            )?);
        }
        _ => {}
    }
    if let Some(party) = sender_notice.and_then(|id| gw.directory.get(id)) {
        mails.push(unreadable_notice(ctx, &sender, inbound_id, party, now)?);
    }
    let mut alerts = Vec::new();
    for m in &mails {
        if let Err(no_key) = &m.sealed.message {
            if let Some(alert) = no_key_alert(ctx, &sender, reference, &m.party, &no_key.0)? {
                alerts.push(alert);
            }
        }
    }
    mails.extend(alerts);
    Ok(Plan {
        raw_enc,
        raw_len: raw.len(),
        content_enc,
        content_form,
        mails,
    })
}

/// (Message-ID, From address) as the envelope states them, unauthenticated.
pub(crate) fn envelope_of(raw: &[u8]) -> (String, String) {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return Default::default();
    };
    let message_id = clean_line(msg.message_id().unwrap_or(""), 250);
    let from = crate::mime::addresses(msg.from())
        .into_iter()
        .next()
        .unwrap_or_default();
    (message_id, clean_line(&from, 254))
}

/// SHA-256 of the bytes (and of the size, for a message known only by its header).
fn sha256_hex(raw: &[u8], oversize: Option<usize>) -> String {
    use sequoia_openpgp::types::HashAlgorithm;
    let mut h = HashAlgorithm::SHA256
        .context()
        .expect("SHA-256 is available")
        .for_digest();
    h.update(raw);
    if let Some(size) = oversize {
        h.update(format!("\0oversize:{size}").as_bytes());
    }
    sequoia_openpgp::fmt::hex::encode(h.into_digest().unwrap_or_default())
}
