//! The letters intake composes: forwards, acknowledgements, answers to
//! contact updates, quarantine notices and alerts, each rendered in its
//! recipient's language, signed and encrypted to it.

use super::*;
use crate::mime::repair::{Discarded, Repair};

#[allow(clippy::too_many_arguments)]
pub(super) fn accepted_mail(
    ctx: &Ctx,
    sender: &Sender<'_>,
    d: &Decision,
    reference: &str,
    content: &check::SignedContent,
    update: Option<&UpdateOutcome>,
    command: Option<&crate::cases::CommandOutcome>,
    now: SystemTime,
) -> Result<Vec<Planned>> {
    // A command goes nowhere; its outcome answers it.
    if let Some(outcome) = command {
        return Ok(vec![command_result(
            ctx, sender, d, reference, outcome, now,
        )?]);
    }
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

/// The answer to the Secretariat's command mail: what it did to the case,
/// or why it did nothing.
fn command_result(
    ctx: &Ctx,
    sender: &Sender<'_>,
    d: &Decision,
    reference: &str,
    outcome: &crate::cases::CommandOutcome,
    now: SystemTime,
) -> Result<Planned> {
    let (from_party, _) = sender_and_kind(ctx, d)?;
    let c = &outcome.command;
    let case_reference = c.reference.clone().unwrap_or_default();
    let mut data = crate::outbound::CommandResultData {
        gateway: ctx.gw.config.address.clone(),
        recipient: from_party.into(),
        reference: reference.to_string(),
        received_at: rfc3339(now),
        command: clean_line(&c.written, 80),
        verb: c.verb.code().to_string(),
        case_reference: case_reference.clone(),
        done: outcome.result.is_ok(),
        refusal: String::new(),
        why: String::new(),
        state: String::new(),
        due_at: String::new(),
        debtor: None,
        circulated: 0,
        held: 0,
    };
    match &outcome.result {
        Ok(crate::cases::Effect::Case(case)) => {
            data.state = case.state.clone();
            data.due_at = case.due_at.get(..10).unwrap_or_default().to_string();
            data.debtor = ctx.gw.directory.get(&case.debtor).map(PartyView::from);
        }
        Ok(crate::cases::Effect::Circulated(c)) => {
            data.circulated = c.sent;
            data.held = c.held;
        }
        Err(r) => {
            data.refusal = r.code().to_string();
            data.why = clean_line(&r.explain(&case_reference), 300);
        }
    }
    letter(
        ctx,
        sender,
        "acknowledgement",
        "command_result",
        from_party,
        &data,
    )
}

/// The answer to a contact update: what changed, or why nothing could.
pub(super) fn update_answer(
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
pub(super) fn sender_and_kind<'a>(ctx: &'a Ctx, d: &Decision) -> Result<(&'a Party, String)> {
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
    Ok((party, kind.code().to_string()))
}

/// The forward of an accepted message to one recipient of its route.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_mail(
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
                name_unprotected: a.name_unprotected,
            })
            .collect(),
        why: hop.why.clone(),
        original_name: original_name.clone(),
        discarded_bytes: Discarded::total(&d.discarded_parts),
        discarded_parts: d.discarded_parts.len(),
        separately_signed: d.repairs.contains(&Repair::GpgolInlineAttachments),
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
pub(super) fn authenticated_subject(d: &Decision, content: &check::SignedContent) -> String {
    if d.subject_protected {
        return clean_line(d.subject.as_deref().unwrap_or(""), 200);
    }
    let first_line = |text: &str| {
        clean_line(
            text.lines().find(|l| !l.trim().is_empty()).unwrap_or(""),
            200,
        )
    };
    if content.form == Form::Inline {
        return first_line(&String::from_utf8_lossy(
            &content.bytes[..content.bytes.len().min(4096)],
        ));
    }
    // GpgOL's separately signed text, assembled with its attachments: its
    // first part is the signed text.
    if d.repairs.contains(&Repair::GpgolInlineAttachments) {
        if let Some(text) = mail_parser::MessageParser::default()
            .parse(&content.bytes)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        {
            return first_line(&text);
        }
    }
    String::new()
}

/// The acknowledgement to the sender of an accepted message: the reference
/// and who receives it, nothing quoted.
pub(super) fn acknowledgement_mail(
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

pub(super) fn quarantine_notice(
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
        transit_party: (reason == Reason::Structure && !d.discarded_parts.is_empty())
            .then(|| d.sender.as_ref().map(|s| s.party.clone()))
            .flatten(),
        transit_bytes: Discarded::total(&d.discarded_parts),
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

/// The notice to a party that mail from its address could not be read
/// (GnuPG 2.4's OCB): in its language, to its registered key, nothing quoted.
pub(super) fn unreadable_notice(
    ctx: &Ctx,
    sender: &Sender<'_>,
    inbound_id: i64,
    to: &Party,
    now: SystemTime,
) -> Result<Planned> {
    let data = crate::outbound::UnreadableNoticeData {
        gateway: ctx.gw.config.address.clone(),
        recipient: to.into(),
        inbound_id,
        received_at: rfc3339(now),
        gateway_fingerprint: ctx.gw.key.cert.fingerprint().to_hex(),
    };
    letter(
        ctx,
        sender,
        "sender_notice",
        "unreadable_message_notice",
        to,
        &data,
    )
}

/// An alert to the Secretariat that `party` has no usable key; None when
/// the Secretariat is that party (then only the audit and the log know).
pub(super) fn no_key_alert(
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
    let sender = ctx.sender(now);
    Ok(vec![letter(
        ctx,
        &sender,
        "alert",
        "delivery_failure",
        secretariat,
        &data,
    )?])
}
