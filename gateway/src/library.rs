//! The best-practice library (issue 16, item 4): the accepted best
//! practices, listed by topic, State, language and date (`nfp-gateway
//! library list`), and circulated by the Secretariat to every NFP (`library
//! circulate REF`, or its command mail `[CIRCULATE REF]` whose text is the
//! covering note): each NFP but the one that sent it gets `library_circular`
//! in its language with the Secretariat's note and the original attached,
//! signed and encrypted to it ([`prepare`], outside the store's write
//! lock); the library records which practice went to whom and when, in the
//! transaction that queues the mail ([`commit_in`]).

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::cases::refusal::Refusal;
use crate::directory::PartyKind;
use crate::outbound::render::clean_text;
use crate::outbound::{LibraryCircularData, PartyView};
use crate::post::{self, Ctx, Planned};
use crate::store::Tx;

/// What a circulation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circulated {
    pub reference: String,
    /// Mails queued for sending.
    pub sent: usize,
    /// Mails held: the NFP has no usable key.
    pub held: usize,
}

/// A circulation composed, not yet recorded: composing (signing and
/// encrypting a copy of the original for every NFP) happens before the
/// transaction that records it, which holds the store's write lock.
pub struct Prepared {
    pub reference: String,
    mails: Vec<Planned>,
}

/// Composes the circulation of the practice `reference` to every NFP but
/// its sender, with the Secretariat's `note`; why not, when there is no
/// such practice or its content was deleted.
pub async fn prepare(
    ctx: &Arc<Ctx>,
    reference: &str,
    note: &str,
    now: SystemTime,
) -> Result<Result<Prepared, Refusal>> {
    let Some(practice) = ctx.store.practice(reference).await? else {
        return Ok(Err(Refusal::NoPractice));
    };
    let Some(content_enc) = practice.content_enc.clone() else {
        return Ok(Err(Refusal::ContentDeleted));
    };
    let mails = {
        let (ctx, reference, note) = (ctx.clone(), reference.to_string(), note.to_string());
        tokio::task::spawn_blocking(move || -> Result<Vec<Planned>> {
            let bytes = ctx.decrypt_stored(&content_enc)?;
            circular_mails(&ctx, &reference, &practice, &bytes, &note, now)
        })
        .await
        .context("Composing a circulation failed")??
    };
    Ok(Ok(Prepared {
        reference: reference.to_string(),
        mails,
    }))
}

/// Records and queues a prepared circulation, by `by` (`cli` or a command
/// mail's reference), inside `tx`, each mail with an audit entry; the
/// copies belong to the practice's message (retention deletes them with
/// it), those held for lack of a key (which hold no content) to none.
/// `inbound_id`: the command mail's, for the audit. Why not, when the
/// practice's content was deleted in the meantime.
pub async fn commit_in(
    tx: &mut Tx,
    prepared: Prepared,
    by: &str,
    inbound_id: Option<i64>,
    now: SystemTime,
) -> Result<Result<Circulated, Refusal>> {
    let Prepared { reference, mails } = prepared;
    let reference = reference.as_str();
    let practice = match tx.practice(reference).await? {
        None => return Ok(Err(Refusal::NoPractice)),
        Some(p) if p.content_enc.is_none() => return Ok(Err(Refusal::ContentDeleted)),
        Some(p) => p,
    };
    for m in &mails {
        tx.record_circulation(reference, &m.party, now, by, &m.sealed.message_id)
            .await?;
    }
    let asked = mails.len();
    let (held, to_send): (Vec<Planned>, Vec<Planned>) =
        mails.into_iter().partition(|m| m.sealed.message.is_err());
    post::queue(tx, Some(practice.inbound_id), &to_send, now).await?;
    post::queue(tx, None, &held, now).await?;
    let done = Circulated {
        reference: reference.to_string(),
        sent: to_send.len(),
        held: held.len(),
    };
    let detail = format!(
        "{reference} circulated by {by} to {asked} NFPs ({} held: no usable key)",
        done.held
    );
    tx.audit(&crate::store::Audit {
        at: Some(now),
        event: "library_circulated",
        inbound_id,
        detail: &detail,
        ..Default::default()
    })
    .await?;
    Ok(Ok(done))
}

/// `library_circular` to every NFP but the practice's sender.
fn circular_mails(
    ctx: &Ctx,
    reference: &str,
    practice: &crate::store::library::PracticeContent,
    bytes: &[u8],
    note: &str,
    now: SystemTime,
) -> Result<Vec<Planned>> {
    let dir = &ctx.gw.directory;
    let from = PartyView::of(dir, &practice.party);
    let is_mime = practice.content_form != "inline";
    let name = format!(
        "best-practice-{reference}.{}",
        if is_mime { "eml" } else { "txt" }
    );
    let topics: Vec<String> = serde_json::from_str(&practice.topics).unwrap_or_default();
    let note = clean_text(note, 60, 400);
    let sender = ctx.sender(now);
    let mut mails = Vec::new();
    for to in dir
        .parties()
        .iter()
        .filter(|p| p.kind == PartyKind::Nfp && p.id != practice.party)
    {
        let data = LibraryCircularData {
            gateway: ctx.gw.config.address.clone(),
            recipient: to.into(),
            reference: reference.to_string(),
            from: from.clone(),
            received_at: practice
                .received_at
                .get(..10)
                .unwrap_or_default()
                .to_string(),
            language: practice.language.clone(),
            topics: topics.clone(),
            note: note.clone(),
            original_name: name.clone(),
        };
        let attachment = crate::outbound::compose::original_attachment(bytes, is_mime, &name);
        mails.push(post::letter_with(
            ctx,
            &sender,
            "library",
            "library_circular",
            to,
            &data,
            Some(attachment),
        )?);
    }
    Ok(mails)
}
