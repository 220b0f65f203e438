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
use sequoia_openpgp::crypto::KeyPair;
use sequoia_openpgp::Cert;
use tokio::sync::Notify;

use crate::check::{self, Decision, Gateway, Judgement, ReplayGuard, Verdict};
use crate::classify::Kind;
use crate::directory::Party;
use crate::mime::outer::Form;
use crate::openpgp::seal;
use crate::outbound::compose::{self, Sealed, Sender};
use crate::outbound::render::{clean_line, Templates};
use crate::outbound::{
    AcknowledgementData, AttachmentView, ForwardData, NoUsableKeyData, PartyView,
    QuarantineNoticeData,
};
use crate::reason::{Reason, Rejection};
use crate::rfc3339;
use crate::store::inbound::NewInbound;
use crate::store::outbox::NewOutbox;
use crate::store::{Audit, Store, Tx};

/// Everything the daemon's tasks share.
pub struct Ctx {
    pub gw: Gateway,
    pub templates: Arc<Templates>,
    pub store: Store,
    pub signer: KeyPair,
    /// The gateway's certificate, which stored content is encrypted to.
    pub storage: Cert,
    /// Wakes the SMTP sender when new mail is queued.
    pub outbox_ready: Arc<Notify>,
}

impl Ctx {
    pub async fn new(gw: Gateway, store: Store) -> Result<Ctx> {
        let templates = Templates::load(gw.config.templates.as_deref())?;
        let signer = seal::signing_keypair(&gw.key.cert, &gw.policy, SystemTime::now())?;
        // Stored content is encrypted to the gateway's own key (its
        // storage-capable subkeys), so only the gateway can read it back.
        let storage = gw.key.cert.clone().strip_secret_key_material();
        seal::encrypt_for_storage(&storage, &gw.policy, SystemTime::now(), b"probe")
            .context("The storage key cannot encrypt")?;
        Ok(Ctx {
            gw,
            templates: Arc::new(templates),
            store,
            signer,
            storage,
            outbox_ready: Arc::new(Notify::new()),
        })
    }

    /// The same context with another directory (after `directory import`
    /// or a contact update): the gateway's key, rules and policy are read
    /// again, the templates, store and outbox wake-up are shared.
    pub fn with_directory(&self, directory: crate::directory::Directory) -> Result<Ctx> {
        let gw = Gateway::with_directory(self.gw.config.clone(), directory)?;
        Ok(Ctx {
            gw,
            templates: self.templates.clone(),
            store: self.store.clone(),
            signer: self.signer.clone(),
            storage: self.storage.clone(),
            outbox_ready: self.outbox_ready.clone(),
        })
    }
}

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

/// Judges and stores one message; `raw` is what the server holds, or only
/// its header when `oversize` says how large the whole message is.
pub async fn intake(
    ctx: &Arc<Ctx>,
    raw: Vec<u8>,
    oversize: Option<usize>,
    source: &Source,
) -> Result<Filed> {
    let sha = sha256_hex(&raw, oversize);
    if let Some(known) = ctx.store.inbound_by_sha(&sha).await? {
        return Ok(Filed {
            inbound_id: known.id,
            accepted: known.verdict == "accepted",
            new: false,
        });
    }
    let now = SystemTime::now();
    let judged = {
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
            (judgement, raw)
        })
    };
    let (judgement, raw) = judged.await.context("The judgement task failed")?;
    let Judgement {
        mut decision,
        content,
    } = judgement;

    let mut tx = ctx.store.begin().await?;
    decision = withdraw_replay(&mut tx, decision).await?;
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

    let planned = {
        let ctx = ctx.clone();
        let decision = decision.clone();
        let reference = reference.clone();
        let update = update.clone();
        tokio::task::spawn_blocking(move || {
            plan(
                &ctx,
                inbound_id,
                &decision,
                reference.as_deref(),
                content,
                update.as_ref(),
                raw,
                oversize,
                now,
            )
        })
    };
    let plan = planned.await.context("The composing task failed")??;

    let envelope = envelope_of(&plan.raw_head);
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
    })
    .await?;
    if accepted {
        if let Some(digest) = &decision.signature_digest {
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
    let detail = match (&reference, decision.reason) {
        (Some(r), _) => format!(
            "{r}: {}",
            decision.kind.map(|k| format!("{k:?}")).unwrap_or_default()
        ),
        (None, Some(reason)) => format!("{}: {}", reason.code(), decision.detail),
        (None, None) => String::new(),
    };
    tx.audit(&Audit {
        at: Some(now),
        event,
        inbound_id: Some(inbound_id),
        party: decision.sender.as_ref().map(|s| s.party.as_str()),
        fingerprint: decision.sender.as_ref().map(|s| s.fingerprint.as_str()),
        detail: &detail,
        ..Audit::default()
    })
    .await?;
    queue(&mut tx, Some(inbound_id), &plan.mails, now).await?;
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

/// An accepted decision whose signature the store has seen before becomes a replay.
async fn withdraw_replay(tx: &mut Tx, decision: Decision) -> Result<Decision> {
    if decision.verdict != Verdict::Accepted {
        return Ok(decision);
    }
    match &decision.signature_digest {
        Some(digest) if tx.signature_seen(digest).await? => Ok(decision.into_replay()),
        _ => Ok(decision),
    }
}

/// Queues mail the gateway decided to send on its own (circulars, watch
/// reports, alerts) with one audit entry, commits, and wakes the sender.
pub async fn queue_and_commit(
    ctx: &Ctx,
    mut tx: Tx,
    mails: &[Planned],
    event: &str,
    detail: &str,
    now: SystemTime,
) -> Result<()> {
    queue(&mut tx, None, mails, now).await?;
    tx.audit(&Audit {
        at: Some(now),
        event,
        detail,
        ..Audit::default()
    })
    .await?;
    tx.commit().await?;
    if !mails.is_empty() {
        ctx.outbox_ready.notify_one();
    }
    Ok(())
}

/// A composed mail for one recipient.
pub struct Planned {
    pub purpose: &'static str,
    pub template: String,
    pub party: String,
    pub email: String,
    pub sealed: Sealed,
}

struct Plan {
    raw_enc: Vec<u8>,
    raw_len: usize,
    raw_head: Vec<u8>,
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
    content: Option<check::SignedContent>,
    update: Option<&UpdateOutcome>,
    raw: Vec<u8>,
    oversize: Option<usize>,
    now: SystemTime,
) -> Result<Plan> {
    let gw = &ctx.gw;
    let raw_enc = seal::encrypt_for_storage(&ctx.storage, &gw.policy, now, &raw)
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
    let sender = Sender {
        address: &gw.config.address,
        signer: &ctx.signer,
        policy: &gw.policy,
        now,
    };
    let mut mails = Vec::new();
    match (decision.verdict, reference, content) {
        (Verdict::Accepted, Some(reference), Some(content)) => {
            mails = accepted_mail(ctx, &sender, decision, reference, &content, update, now)?;
        }
        _ => {
            // Automatic mail is never answered, and never announced one by one:
            // a storm of it must not become a storm of notices.
            if decision.reason != Some(Reason::Loop) {
                mails.push(quarantine_notice(
                    ctx, &sender, inbound_id, decision, &raw, oversize, now,
                )?);
            }
        }
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
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len().min(64 * 1024));
    Ok(Plan {
        raw_enc,
        raw_len: raw.len(),
        raw_head: raw[..head_end].to_vec(),
        content_enc,
        content_form,
        mails,
    })
}

fn accepted_mail(
    ctx: &Ctx,
    sender: &Sender<'_>,
    d: &Decision,
    reference: &str,
    content: &check::SignedContent,
    update: Option<&UpdateOutcome>,
    now: SystemTime,
) -> Result<Vec<Planned>> {
    let mut mails = Vec::new();
    for hop in &d.route {
        if let Some(mail) = forward_mail(ctx, sender, d, reference, content, update, hop, now)? {
            mails.push(mail);
        }
    }
    // A contact update is answered with what was changed (or why nothing
    // could be), which acknowledges it too.
    mails.push(match update {
        Some(u @ (UpdateOutcome::Applied { .. } | UpdateOutcome::Unparseable(_))) => {
            update_answer(ctx, sender, d, reference, u, now)?
        }
        _ => acknowledgement_mail(ctx, sender, d, reference, now)?,
    });
    Ok(mails)
}

/// What became of a contact update.
#[derive(Debug, Clone)]
pub enum UpdateOutcome {
    Applied {
        after: Box<crate::directory::Entry>,
        changes: Vec<crate::directory::Change>,
        /// (fingerprint, armored certificate) of a rotated certificate.
        new_cert: Option<(String, Vec<u8>)>,
        /// Until when the previous certificate verifies.
        until: Option<SystemTime>,
    },
    /// Read, but it changes nothing.
    Unchanged,
    Unparseable(String),
}

/// Reads a contact update and works out the sender's new entry, against the
/// entry the store holds (inside the transaction that will write it).
async fn contact_update(
    tx: &mut Tx,
    ctx: &Ctx,
    party: &str,
    content: &check::SignedContent,
    now: SystemTime,
) -> Result<UpdateOutcome> {
    use crate::directory::update::{self, Parsed};
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::SerializeInto;
    let u = match update::parse(&content.bytes, content.form == Form::PgpMime) {
        Parsed::Unparseable(why) => return Ok(UpdateOutcome::Unparseable(why)),
        Parsed::Update(u) => u,
    };
    let Some((before, _)) = tx.entry(party).await? else {
        return Ok(UpdateOutcome::Unparseable(format!(
            "the directory has no entry {party}"
        )));
    };
    let mut after = update::apply(&before, &u);
    let mut new_cert = None;
    let mut refreshed = None;
    let mut cert = ctx.gw.directory.get(party).map(|p| p.cert.clone());
    if let Some(bytes) = &u.new_cert {
        let c = sequoia_openpgp::Cert::from_bytes(bytes).context("Reading the new certificate")?;
        if seal::transport_keys(&c, &ctx.gw.policy, now).is_err() {
            return Ok(UpdateOutcome::Unparseable(
                "the new certificate has no usable encryption key".into(),
            ));
        }
        let fingerprint = c.fingerprint().to_hex();
        if fingerprint != before.cert {
            after.cert = fingerprint.clone();
            new_cert = Some((
                fingerprint,
                c.armored().to_vec().context("Serialising a certificate")?,
            ));
            cert = Some(c);
        } else if let Some(current) = cert.take() {
            // The same certificate with new self-signatures (its validity
            // extended): merged into the stored one, no overlap needed.
            let merged = current
                .clone()
                .merge_public(c)
                .context("Merging the refreshed certificate")?;
            let expiry = |c: &sequoia_openpgp::Cert| {
                crate::keywatch::expiry(c, &ctx.gw.policy, now)
                    .map(rfc3339)
                    .unwrap_or_else(|| "never".into())
            };
            if merged != current {
                refreshed = Some(crate::directory::Change {
                    field: "cert expiry".into(),
                    before: expiry(&current),
                    after: expiry(&merged),
                });
                new_cert = Some((
                    fingerprint,
                    merged
                        .armored()
                        .to_vec()
                        .context("Serialising a certificate")?,
                ));
            }
            cert = Some(merged);
        }
    }
    let Some(cert) = cert else {
        return Ok(UpdateOutcome::Unparseable(format!(
            "no certificate is known for {party}"
        )));
    };
    if let Err(e) = Party::from_entry(after.clone(), cert, Vec::new()) {
        return Ok(UpdateOutcome::Unparseable(format!(
            "the updated entry is not valid: {e:#}"
        )));
    }
    let mut changes = after.changes_from(Some(&before));
    changes.extend(refreshed.clone());
    if changes.is_empty() {
        return Ok(UpdateOutcome::Unchanged);
    }
    // A new certificate's predecessor verifies during the overlap; a
    // refreshed one replaces itself.
    let until = new_cert
        .as_ref()
        .filter(|_| refreshed.is_none())
        .map(|_| now + ctx.gw.config.certificate_overlap);
    Ok(UpdateOutcome::Applied {
        after: Box::new(after),
        changes,
        new_cert,
        until,
    })
}

/// The answer to a contact update: what changed, or why nothing could.
fn update_answer(
    ctx: &Ctx,
    sender: &Sender<'_>,
    d: &Decision,
    reference: &str,
    outcome: &UpdateOutcome,
    now: SystemTime,
) -> Result<Planned> {
    let (from_party, _) = sender_and_kind(ctx, d)?;
    let gateway = ctx.gw.config.address.clone();
    match outcome {
        UpdateOutcome::Applied {
            changes,
            new_cert,
            until,
            ..
        } => {
            let data = crate::outbound::ContactUpdateAppliedData {
                reference: reference.to_string(),
                gateway,
                recipient: from_party.into(),
                received_at: rfc3339(now),
                changes: changes.clone(),
                new_certificate: new_cert.as_ref().map(|(f, _)| f.clone()),
                previous_certificate_until: until.map(rfc3339),
            };
            letter(
                ctx,
                sender,
                "acknowledgement",
                "contact_update_applied",
                from_party,
                &data,
            )
        }
        _ => {
            let why = match outcome {
                UpdateOutcome::Unparseable(why) => why.clone(),
                _ => String::new(),
            };
            let data = crate::outbound::ContactUpdateUnparsedData {
                reference: reference.to_string(),
                gateway,
                recipient: from_party.into(),
                received_at: rfc3339(now),
                why: clean_line(&why, 300),
            };
            letter(
                ctx,
                sender,
                "acknowledgement",
                "contact_update_unparsed",
                from_party,
                &data,
            )
        }
    }
}

/// The sender's party, and the kind's code, of an accepted decision.
fn sender_and_kind<'a>(ctx: &'a Ctx, d: &Decision) -> Result<(&'a Party, String)> {
    let from = d
        .sender
        .as_ref()
        .context("an accepted decision has a sender")?;
    let party = ctx
        .gw
        .directory
        .get(&from.party)
        .context("the sender is in the directory")?;
    let kind = d.kind.unwrap_or(Kind::Unclassified);
    let code = serde_json::to_value(kind)?
        .as_str()
        .unwrap_or("unclassified")
        .to_string();
    Ok((party, code))
}

/// The forward of an accepted message to one recipient of its route.
#[allow(clippy::too_many_arguments)]
fn forward_mail(
    ctx: &Ctx,
    sender: &Sender<'_>,
    d: &Decision,
    reference: &str,
    content: &check::SignedContent,
    update: Option<&UpdateOutcome>,
    hop: &crate::route::Recipient,
    now: SystemTime,
) -> Result<Option<Planned>> {
    let dir = &ctx.gw.directory;
    let Some(to) = dir.get(&hop.party) else {
        return Ok(None);
    };
    let (from_party, kind_code) = sender_and_kind(ctx, d)?;
    let template = format!("forward_{kind_code}");
    let original_name = format!(
        "original-{reference}.{}",
        if content.form == Form::PgpMime {
            "eml"
        } else {
            "txt"
        }
    );
    let data = ForwardData {
        reference: reference.to_string(),
        gateway: ctx.gw.config.address.clone(),
        recipient: to.into(),
        sender: from_party.into(),
        fingerprint: d
            .sender
            .as_ref()
            .map(|s| s.fingerprint.clone())
            .unwrap_or_default(),
        signed_at: d.signed_at.clone().unwrap_or_default(),
        received_at: rfc3339(now),
        subject: authenticated_subject(d, content),
        kind: kind_code,
        topics: d
            .topics
            .iter()
            .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_string))
            .collect(),
        language: d.language.map(|l| l.code().to_string()).unwrap_or_default(),
        target: d
            .target
            .as_deref()
            .and_then(|t| dir.get(t))
            .map(PartyView::from),
        cited_reference: d.reference.clone(),
        attachments: d
            .attachments
            .iter()
            .map(|a| AttachmentView {
                name: clean_line(&a.name, 100),
                content_type: clean_line(&a.content_type, 100),
                size: a.size,
            })
            .collect(),
        why: hop.why.clone(),
        original_name: original_name.clone(),
        contact_update: update.map(|u| match u {
            UpdateOutcome::Applied { changes, .. } => crate::outbound::UpdateNote {
                applied: true,
                changes: changes.clone(),
                why: String::new(),
            },
            UpdateOutcome::Unchanged => crate::outbound::UpdateNote {
                applied: true,
                changes: Vec::new(),
                why: String::new(),
            },
            UpdateOutcome::Unparseable(why) => crate::outbound::UpdateNote {
                applied: false,
                changes: Vec::new(),
                why: clean_line(why, 300),
            },
        }),
    };
    let text = ctx.templates.render(&template, to.language, &data)?;
    let attachment = compose::original_attachment(
        &content.bytes,
        content.form == Form::PgpMime,
        &original_name,
    );
    Ok(Some(planned(
        "forward",
        &template,
        to,
        compose::seal(sender, to, &text, Some(attachment))?,
    )))
}

/// What the forward may show as the subject: the protected subject, or for
/// an inline message the first line of its signed text (where senders put
/// the tags); never the envelope's unsigned subject.
fn authenticated_subject(d: &Decision, content: &check::SignedContent) -> String {
    if d.subject_protected {
        return clean_line(d.subject.as_deref().unwrap_or(""), 200);
    }
    if content.form == Form::Inline {
        let text =
            String::from_utf8_lossy(&content.bytes[..content.bytes.len().min(4096)]).into_owned();
        return clean_line(
            text.lines().find(|l| !l.trim().is_empty()).unwrap_or(""),
            200,
        );
    }
    String::new()
}

/// The acknowledgement to the sender of an accepted message: the reference
/// and who receives it, nothing quoted.
fn acknowledgement_mail(
    ctx: &Ctx,
    sender: &Sender<'_>,
    d: &Decision,
    reference: &str,
    now: SystemTime,
) -> Result<Planned> {
    let (from_party, kind_code) = sender_and_kind(ctx, d)?;
    let ack = AcknowledgementData {
        reference: reference.to_string(),
        gateway: ctx.gw.config.address.clone(),
        recipient: from_party.into(),
        received_at: rfc3339(now),
        signed_at: d.signed_at.clone().unwrap_or_default(),
        kind: kind_code,
        forwarded_to: d
            .route
            .iter()
            .filter_map(|hop| ctx.gw.directory.get(&hop.party))
            .map(PartyView::from)
            .collect(),
    };
    letter(
        ctx,
        sender,
        "acknowledgement",
        "acknowledgement",
        from_party,
        &ack,
    )
}

fn quarantine_notice(
    ctx: &Ctx,
    sender: &Sender<'_>,
    inbound_id: i64,
    d: &Decision,
    raw: &[u8],
    oversize: Option<usize>,
    now: SystemTime,
) -> Result<Planned> {
    let secretariat = ctx.gw.directory.secretariat();
    let reason = d.reason.unwrap_or(Reason::Malformed);
    let data = QuarantineNoticeData {
        gateway: ctx.gw.config.address.clone(),
        recipient: secretariat.into(),
        inbound_id,
        received_at: rfc3339(now),
        reason: reason.code().to_string(),
        reason_text: reason.description().to_string(),
        envelope_from: clean_line(&envelope_of(raw).1, 254),
        size: oversize.unwrap_or(raw.len()),
    };
    letter(
        ctx,
        sender,
        "quarantine_notice",
        "quarantine_notice",
        secretariat,
        &data,
    )
}

/// An alert to the Secretariat that `party` has no usable key; None when
/// the Secretariat is that party (then only the audit and the log know).
fn no_key_alert(
    ctx: &Ctx,
    sender: &Sender<'_>,
    reference: Option<&str>,
    party: &str,
    why: &str,
) -> Result<Option<Planned>> {
    let secretariat = ctx.gw.directory.secretariat();
    let Some(unreachable) = ctx.gw.directory.get(party) else {
        return Ok(None);
    };
    if unreachable.id == secretariat.id {
        tracing::error!(
            party,
            why,
            "the Secretariat has no usable encryption key: nothing can be sent to it"
        );
        return Ok(None);
    }
    let data = NoUsableKeyData {
        gateway: ctx.gw.config.address.clone(),
        recipient: secretariat.into(),
        reference: reference.map(str::to_string),
        unreachable: unreachable.into(),
        why: clean_line(why, 300),
    };
    letter(ctx, sender, "alert", "no_usable_key", secretariat, &data).map(Some)
}

/// A letter of the gateway's own (no attachment): `template` rendered in
/// the recipient's language, signed and encrypted to it.
pub(crate) fn letter(
    ctx: &Ctx,
    sender: &Sender<'_>,
    purpose: &'static str,
    template: &str,
    to: &Party,
    data: &impl serde::Serialize,
) -> Result<Planned> {
    let text = ctx.templates.render(template, to.language, data)?;
    Ok(planned(
        purpose,
        template,
        to,
        compose::seal(sender, to, &text, None)?,
    ))
}

fn planned(purpose: &'static str, template: &str, to: &Party, sealed: Sealed) -> Planned {
    Planned {
        purpose,
        template: template.to_string(),
        party: to.id.clone(),
        email: to.email.clone(),
        sealed,
    }
}

/// Puts composed mail in the outbox, with an audit entry for each.
pub async fn queue(
    tx: &mut Tx,
    inbound_id: Option<i64>,
    mails: &[Planned],
    now: SystemTime,
) -> Result<()> {
    for m in mails {
        let (message, fingerprint) = match &m.sealed.message {
            Ok(bytes) => (Some(bytes.as_slice()), m.sealed.fingerprint.as_str()),
            Err(_) => (None, ""),
        };
        let id = tx
            .insert_outbox(&NewOutbox {
                inbound_id,
                purpose: m.purpose,
                template: &m.template,
                recipient_party: &m.party,
                recipient_email: &m.email,
                recipient_fingerprint: fingerprint,
                message_id: &m.sealed.message_id,
                message,
                created_at: now,
            })
            .await?;
        let (event, detail) = match &m.sealed.message {
            Ok(_) => (
                "queued",
                format!("{} ({}) to <{}>", m.purpose, m.template, m.email),
            ),
            Err(no_key) => (
                "held_no_key",
                format!("{} to <{}> held: {}", m.purpose, m.email, no_key.0),
            ),
        };
        tx.audit(&Audit {
            at: Some(now),
            event,
            inbound_id,
            outbox_id: Some(id),
            party: Some(&m.party),
            fingerprint: (!fingerprint.is_empty()).then_some(fingerprint),
            detail: &detail,
        })
        .await?;
    }
    Ok(())
}

/// (Message-ID, From address) as the envelope states them, unauthenticated.
fn envelope_of(raw: &[u8]) -> (String, String) {
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

/// The alert to the Secretariat that a mail could not be delivered.
pub fn delivery_failure_alert(
    ctx: &Ctx,
    item: &crate::store::outbox::OutboxItem,
    attempts: usize,
    response: &str,
    now: SystemTime,
) -> Result<Vec<Planned>> {
    let secretariat = ctx.gw.directory.secretariat();
    let failed = ctx.gw.directory.get(&item.recipient_party);
    let data = crate::outbound::DeliveryFailureData {
        gateway: ctx.gw.config.address.clone(),
        recipient: secretariat.into(),
        reference: None,
        failed_recipient: failed.map(PartyView::from).unwrap_or(PartyView {
            id: item.recipient_party.clone(),
            name: item.recipient_party.clone(),
            email: item.recipient_email.clone(),
        }),
        attempts: attempts as i64,
        first_attempt_at: item.created_at.clone(),
        last_error: clean_line(response, 300),
    };
    let sender = Sender {
        address: &ctx.gw.config.address,
        signer: &ctx.signer,
        policy: &ctx.gw.policy,
        now,
    };
    Ok(vec![letter(
        ctx,
        &sender,
        "alert",
        "delivery_failure",
        secretariat,
        &data,
    )?])
}

impl Ctx {
    /// Decrypts content the gateway stored (encrypted to its own key).
    pub fn decrypt_stored(&self, data: &[u8]) -> Result<Vec<u8>> {
        let v = crate::openpgp::Verifier {
            policy: &self.gw.policy,
            now: SystemTime::now(),
            max_age: std::time::Duration::ZERO,
            max_future: std::time::Duration::ZERO,
            key: &self.gw.key,
            directory: &self.gw.directory,
            max_plaintext: usize::MAX - 1,
        };
        crate::openpgp::decrypt(&v, data)
            .map(|d| d.plaintext)
            .map_err(|r| anyhow::anyhow!("Decrypting stored content: {r}"))
    }
}

/// Judges a quarantined message again (after a certificate was added, say).
/// Accepted now: it is forwarded and acknowledged like any accepted message.
/// Still quarantined: nothing changes but the audit trail.
pub async fn release(ctx: &Arc<Ctx>, id: i64) -> Result<Decision> {
    let (raw_enc, verdict) = ctx
        .store
        .raw_enc(id)
        .await?
        .with_context(|| format!("No stored message {id}"))?;
    if verdict == "accepted" {
        anyhow::bail!("message {id} was accepted already");
    }
    let now = SystemTime::now();
    let (judgement, raw) = {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || -> Result<(Judgement, Vec<u8>)> {
            let raw = ctx.decrypt_stored(&raw_enc)?;
            Ok((
                check::judge_full(&ctx.gw, &raw, now, &mut InTransaction),
                raw,
            ))
        })
        .await
        .context("The judgement task failed")??
    };
    let Judgement {
        mut decision,
        content,
    } = judgement;
    let mut tx = ctx.store.begin().await?;
    decision = withdraw_replay(&mut tx, decision).await?;
    if decision.verdict != Verdict::Accepted {
        let detail = format!(
            "still quarantined: {}",
            decision.reason.map(|r| r.code()).unwrap_or("")
        );
        tx.audit(&Audit {
            at: Some(now),
            event: "release_refused",
            inbound_id: Some(id),
            detail: &detail,
            ..Audit::default()
        })
        .await?;
        tx.commit().await?;
        return Ok(decision);
    }
    if decision.kind == Some(Kind::InformationReply) {
        if let Some(cited) = &decision.reference {
            let asked_by = ctx.store.sender_of_reference(cited).await?;
            check::reroute_reply(&ctx.gw, &mut decision, asked_by.as_deref());
        }
    }
    let reference = tx
        .next_reference(
            &ctx.gw.config.reference_prefix(),
            chrono::DateTime::<chrono::Utc>::from(now).year(),
        )
        .await?;
    let plan = {
        let (ctx, decision, reference) = (ctx.clone(), decision.clone(), reference.clone());
        tokio::task::spawn_blocking(move || {
            plan(
                &ctx,
                id,
                &decision,
                Some(&reference),
                content,
                None,
                raw,
                None,
                now,
            )
        })
        .await
        .context("The composing task failed")??
    };
    tx.update_decision(
        id,
        &decision,
        Some(&reference),
        plan.content_enc.as_deref(),
        plan.content_form,
    )
    .await?;
    if let Some(digest) = &decision.signature_digest {
        tx.record_signature(digest, id, now).await?;
    }
    let detail = format!("{reference}: released by an operator");
    tx.audit(&Audit {
        at: Some(now),
        event: "released",
        inbound_id: Some(id),
        party: decision.sender.as_ref().map(|s| s.party.as_str()),
        fingerprint: decision.sender.as_ref().map(|s| s.fingerprint.as_str()),
        detail: &detail,
        ..Audit::default()
    })
    .await?;
    queue(&mut tx, Some(id), &plan.mails, now).await?;
    tx.commit().await?;
    Ok(decision)
}

/// Composes held mail again with the directory as it is now: a forward or an
/// acknowledgement whose recipient has a usable key again becomes pending.
/// Returns how many were released from hold.
pub async fn recompose_held(ctx: &Arc<Ctx>) -> Result<usize> {
    let mut released = 0;
    for item in ctx.store.outbox_list(Some("held"), 10_000).await? {
        let Some(inbound_id) = item.inbound_id else {
            continue;
        };
        let Some(to) = ctx.gw.directory.get(&item.recipient_party) else {
            continue;
        };
        let now = SystemTime::now();
        if seal::transport_keys(&to.cert, &ctx.gw.policy, now).is_err() {
            continue;
        }
        let Some(stored) = ctx.store.accepted_content(inbound_id).await? else {
            continue;
        };
        let recomposed = {
            let (ctx, item) = (ctx.clone(), item.clone());
            tokio::task::spawn_blocking(move || -> Result<Option<Planned>> {
                let decision: Decision =
                    serde_json::from_str(&stored.decision).context("Reading a stored decision")?;
                let sender = Sender {
                    address: &ctx.gw.config.address,
                    signer: &ctx.signer,
                    policy: &ctx.gw.policy,
                    now,
                };
                match item.purpose.as_str() {
                    "forward" => {
                        let Some(hop) = decision
                            .route
                            .iter()
                            .find(|h| h.party == item.recipient_party)
                        else {
                            return Ok(None);
                        };
                        let bytes = ctx.decrypt_stored(&stored.content_enc)?;
                        let form = if stored.inline {
                            Form::Inline
                        } else {
                            Form::PgpMime
                        };
                        let content = check::SignedContent { bytes, form };
                        forward_mail(
                            &ctx,
                            &sender,
                            &decision,
                            &stored.reference,
                            &content,
                            None,
                            hop,
                            now,
                        )
                    }
                    "acknowledgement" => {
                        acknowledgement_mail(&ctx, &sender, &decision, &stored.reference, now)
                            .map(Some)
                    }
                    _ => Ok(None),
                }
            })
            .await
            .context("The composing task failed")??
        };
        let Some(Planned {
            sealed:
                Sealed {
                    message: Ok(message),
                    message_id,
                    fingerprint,
                },
            ..
        }) = recomposed
        else {
            continue;
        };
        if ctx
            .store
            .release_held(&item, &message_id, &message, &fingerprint, now)
            .await?
        {
            released += 1;
        }
    }
    if released > 0 {
        ctx.outbox_ready.notify_one();
    }
    Ok(released)
}
