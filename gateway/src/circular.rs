//! Circulars: every NFP and the Secretariat learn of each change of the
//! network's directory. Changes close together share one circular (it goes
//! out once the directory has been quiet for `circular-quiet-period`), and a
//! change is announced once: the circular, its mail and the marks on the
//! changes it announces are committed together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::config::Role;
use crate::directory::PartyKind;
use crate::outbound::{DirectoryCircularData, PartyChanges, PartyView, Undelivered};
use crate::post::{self, Ctx, Planned};
use crate::store::directory::PendingVersion;

/// Sends the circular of the changes not yet announced, when the directory
/// has been quiet long enough. Returns the circular's number.
pub async fn announce_due(ctx: &Arc<Ctx>, now: SystemTime) -> Result<Option<i64>> {
    if ctx.gw.config.role != Role::Secretariat {
        return Ok(None);
    }
    let pending = ctx.store.pending_announcements().await?;
    let Some(newest) = pending.iter().map(|p| p.valid_from.as_str()).max() else {
        return Ok(None);
    };
    let newest = crate::store::parse_timestamp(newest).context("A change's time")?;
    if now.duration_since(newest).unwrap_or_default() < ctx.gw.config.circular_quiet_period {
        return Ok(None);
    }
    let mut by_party: BTreeMap<&str, Vec<&PendingVersion>> = BTreeMap::new();
    for p in &pending {
        by_party.entry(&p.party_id).or_default().push(p);
    }
    let mut tx = ctx.store.begin().await?;
    let mut parties = Vec::new();
    for (id, versions) in &by_party {
        let (first, last) = (versions[0], versions[versions.len() - 1]);
        let before = match first.version {
            1 => None,
            v => tx
                .entry_version(id, v - 1)
                .await?
                .filter(|(_, removed)| !removed)
                .map(|(e, _)| e),
        };
        let (change, changes) = match (&before, last.removed) {
            (_, true) => ("removed", Vec::new()),
            (None, false) => ("added", last.entry.changes_from(None)),
            (Some(b), false) => ("changed", last.entry.changes_from(Some(b))),
        };
        let mut actors: Vec<&str> = versions.iter().map(|v| v.actor.as_str()).collect();
        actors.dedup();
        parties.push(PartyChanges {
            party: PartyView {
                id: last.entry.id.clone(),
                name: last.entry.name.clone(),
                email: last.entry.email.clone(),
            },
            change: change.to_string(),
            at: last.valid_from.clone(),
            by: actors.join("; "),
            changes,
        });
    }
    let versions: Vec<(String, i64)> = pending
        .iter()
        .map(|p| (p.party_id.clone(), p.version))
        .collect();
    let summary = serde_json::to_string(&parties).context("Summarising a circular")?;
    let Some(circular_id) = tx
        .announce("directory_change", &summary, &versions, now)
        .await?
    else {
        return Ok(None);
    };
    let mails = {
        let (ctx, parties) = (ctx.clone(), parties.clone());
        tokio::task::spawn_blocking(move || compose(&ctx, circular_id, parties, now))
            .await
            .context("The composing task failed")??
    };
    let held = mails.iter().filter(|m| m.sealed.message.is_err()).count();
    let detail = format!(
        "circular {circular_id}: {} entries changed; sent to {}, held for {held}",
        parties.len(),
        mails.len() - held
    );
    post::queue_and_commit(ctx, tx, &mails, "circular", &detail, now).await?;
    tracing::info!(
        circular_id,
        entries = parties.len(),
        recipients = mails.len(),
        "directory circular queued"
    );
    Ok(Some(circular_id))
}

/// One copy per NFP, then the Secretariat's, which carries the delivery
/// report: the NFPs that get nothing because they have no usable key.
fn compose(
    ctx: &Ctx,
    circular_id: i64,
    parties: Vec<PartyChanges>,
    now: SystemTime,
) -> Result<Vec<Planned>> {
    let gw = &ctx.gw;
    let sender = ctx.sender(now);
    let data = |recipient: PartyView, undelivered: Vec<Undelivered>| DirectoryCircularData {
        gateway: gw.config.address.clone(),
        recipient,
        circular_id,
        generated_at: crate::rfc3339(now),
        parties: parties.clone(),
        undelivered,
    };
    let mut mails = Vec::new();
    let mut undelivered = Vec::new();
    let mut nfps: Vec<_> = gw
        .directory
        .parties()
        .iter()
        .filter(|p| p.kind == PartyKind::Nfp)
        .collect();
    nfps.sort_by(|a, b| a.id.cmp(&b.id));
    for nfp in nfps {
        let mail = post::letter(
            ctx,
            &sender,
            "circular",
            "circular_directory_change",
            nfp,
            &data(nfp.into(), Vec::new()),
        )?;
        if let Err(no_key) = &mail.sealed.message {
            undelivered.push(Undelivered {
                party: nfp.into(),
                why: crate::outbound::render::clean_line(&no_key.0, 300),
            });
        }
        mails.push(mail);
    }
    let secretariat = gw.directory.secretariat();
    mails.push(post::letter(
        ctx,
        &sender,
        "circular",
        "circular_directory_change",
        secretariat,
        &data(secretariat.into(), undelivered),
    )?);
    Ok(mails)
}

/// Who an operator's circular reaches: every NFP, then the Secretariat.
fn recipients(ctx: &Ctx) -> Vec<&crate::directory::Party> {
    let mut nfps: Vec<_> = ctx
        .gw
        .directory
        .parties()
        .iter()
        .filter(|p| p.kind == PartyKind::Nfp)
        .collect();
    nfps.sort_by(|a, b| a.id.cmp(&b.id));
    nfps.push(ctx.gw.directory.secretariat());
    nfps
}

/// One recipient of an operator's circular, as `--dry-run` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub party: String,
    pub email: String,
    pub language: String,
    pub subject: String,
    /// Why nothing would be sent to it (no usable key), if so.
    pub held: Option<String>,
}

impl Preview {
    /// The recipient's line of `circular send` and `keys rotate`.
    pub fn line(&self) -> String {
        let held = self
            .held
            .as_deref()
            .map(|w| format!("  HELD: {w}"))
            .unwrap_or_default();
        format!(
            "{:<12} {:<3} <{}>  {}{held}",
            self.party, self.language, self.email, self.subject
        )
    }
}

/// An operator's circular (`nfp-gateway circular send`): `template`
/// rendered with `data` (a JSON object; the gateway adds `gateway`,
/// `recipient`, `circular_id` and `generated_at`) for every NFP and the
/// Secretariat, each in its language, signed and encrypted to each, queued
/// for the daemon to send. With `dry_run`, nothing is written.
pub async fn send(
    ctx: &Arc<Ctx>,
    template: &str,
    data: serde_json::Value,
    dry_run: bool,
    now: SystemTime,
) -> Result<(Option<i64>, Vec<Preview>)> {
    send_as(ctx, template, data, Extras::default(), dry_run, now).await
}

/// What a circular may carry beyond its text.
#[derive(Default)]
pub struct Extras {
    /// The circular's kind in the store (`announcement` by default).
    pub kind: Option<&'static str>,
    /// A second signature on every copy (the previous key, announcing a rotation).
    pub co_signer: Option<sequoia_openpgp::crypto::KeyPair>,
    /// An attachment to every copy (the new certificate).
    pub attachment: Option<crate::outbound::mime::Entity>,
}

/// [`send`], with `extras`.
pub async fn send_as(
    ctx: &Arc<Ctx>,
    template: &str,
    data: serde_json::Value,
    extras: Extras,
    dry_run: bool,
    now: SystemTime,
) -> Result<(Option<i64>, Vec<Preview>)> {
    let serde_json::Value::Object(fields) = data else {
        anyhow::bail!("the data file must hold a JSON object")
    };
    let kind = extras.kind.unwrap_or("announcement");
    let mut tx = ctx.store.begin().await?;
    let circular_id = match dry_run {
        true => 0,
        false => tx
            .announce(kind, &serde_json::to_string(&fields)?, &[], now)
            .await?
            .context("Recording the circular")?,
    };
    let (mails, previews) = {
        let (ctx, template, fields) = (ctx.clone(), template.to_string(), fields.clone());
        tokio::task::spawn_blocking(move || -> Result<(Vec<Planned>, Vec<Preview>)> {
            let gw = &ctx.gw;
            let mut sender = ctx.sender(now);
            sender.co_signer = extras.co_signer.as_ref();
            let mut mails = Vec::new();
            let mut previews = Vec::new();
            let mut undelivered: Vec<Undelivered> = Vec::new();
            for party in recipients(&ctx) {
                let mut data = fields.clone();
                // The Secretariat's copy (the last) carries the delivery report.
                let report = if party.kind == PartyKind::Secretariat {
                    undelivered.clone()
                } else {
                    Vec::new()
                };
                data.insert("undelivered".into(), serde_json::to_value(report)?);
                data.insert("gateway".into(), gw.config.address.clone().into());
                data.insert(
                    "recipient".into(),
                    serde_json::to_value(PartyView::from(party))?,
                );
                data.insert("circular_id".into(), circular_id.into());
                data.insert("generated_at".into(), crate::rfc3339(now).into());
                let mail = post::letter_with(
                    &ctx,
                    &sender,
                    "circular",
                    &template,
                    party,
                    &data,
                    extras.attachment.clone(),
                )?;
                let subject = ctx
                    .templates
                    .render(&template, party.language, &data)?
                    .subject;
                previews.push(Preview {
                    party: party.id.clone(),
                    email: party.email.clone(),
                    language: party.language.code().to_string(),
                    subject,
                    held: mail.sealed.message.as_ref().err().map(|e| e.0.clone()),
                });
                if let Err(no_key) = &mail.sealed.message {
                    undelivered.push(Undelivered {
                        party: party.into(),
                        why: crate::outbound::render::clean_line(&no_key.0, 300),
                    });
                }
                mails.push(mail);
            }
            Ok((mails, previews))
        })
        .await
        .context("The composing task failed")??
    };
    if dry_run {
        return Ok((None, previews));
    }
    let held = previews.iter().filter(|p| p.held.is_some()).count();
    let detail = format!(
        "circular {circular_id} ({template}): sent to {}, held for {held}",
        previews.len() - held
    );
    post::queue_and_commit(ctx, tx, &mails, "circular", &detail, now).await?;
    Ok((Some(circular_id), previews))
}
