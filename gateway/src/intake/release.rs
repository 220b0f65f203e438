//! Second looks: a quarantined message judged again on an operator's
//! request, and held mail composed again once its recipient has a usable key.

use super::*;

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
    if raw_enc.is_empty() {
        anyhow::bail!(
            "message {id}'s content was deleted by the retention policy ([retention]): only its record is left"
        );
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
    let circulation = match decision.verdict {
        Verdict::Accepted => {
            crate::cases::prepare_circulation(ctx, &decision, content.as_ref(), now).await?
        }
        Verdict::Quarantined => None,
    };
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
    // What the message does at the desk, as if it had been accepted when it came.
    crate::cases::on_accepted(
        &mut tx,
        &ctx.gw.config,
        &ctx.gw.directory,
        id,
        &decision,
        &reference,
        now,
    )
    .await?;
    crate::rollcall::on_accepted(&mut tx, &ctx.gw.config, id, &decision, &reference, now).await?;
    let command = match &decision.command {
        Some(c) => Some(
            crate::cases::carry_out(
                &mut tx,
                &ctx.gw.directory,
                c,
                &reference,
                id,
                circulation,
                now,
            )
            .await?,
        ),
        None => None,
    };
    let plan = {
        let (ctx, decision, reference) = (ctx.clone(), decision.clone(), reference.clone());
        tokio::task::spawn_blocking(move || {
            plan(
                &ctx,
                id,
                &decision,
                Some(&reference),
                content.as_ref(),
                None,
                command.as_ref(),
                false,
                None,
                &raw,
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
    audit_and_queue(
        &mut tx,
        "released",
        id,
        &decision,
        &detail,
        &plan.mails,
        now,
    )
    .await?;
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
                let sender = ctx.sender(now);
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
                    // A command's result says what its transaction did,
                    // which is not stored: it is not composed again.
                    "acknowledgement" if item.template == "command_result" => Ok(None),
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
