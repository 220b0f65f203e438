//! The roll call (issue 16, item 3): the Secretariat asks every NFP to
//! confirm its directory entry, which tests each NFP's mailbox and key end
//! to end and makes the duty to be available for contact measurable.
//!
//! A round ([`start`]: `nfp-gateway rollcall start`, or once every
//! `[rollcall] every` by the daemon) gets its own reference; every NFP gets
//! `rollcall_request` in its language with its entry as the directory
//! holds it, and is asked to confirm it by a signed reply citing the
//! reference, or to send a contact update. Those that have not answered
//! `remind-before` the end get the request again (`reminder`); at the end
//! the Secretariat gets `rollcall_report`: who confirmed, who updated, who
//! stayed silent, whose request was held for lack of a usable key, whose
//! delivery failed ([`run`]). Every mail goes through the outbox; the
//! reminder and the report are each claimed once across instances.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use chrono::Datelike;

use crate::check::Decision;
use crate::classify::Kind;
use crate::config::{Config, Role};
use crate::directory::{Party, PartyKind};
use crate::outbound::{EntryLine, PartyView, RollcallReportData, RollcallRequestData};
use crate::post::{self, Ctx, Planned};
use crate::store::rollcall::{MemberRow, RoundRow};
use crate::store::Tx;

/// The standings of a round's NFPs, in the order reports give them.
pub const STANDINGS: [&str; 5] = ["confirmed", "updated", "silent", "held", "failed"];

/// Starts a round at `now`, by `by` (`cli` or `schedule`): its reference.
/// A round that `follows` another is started once across instances: None
/// when another one started it first.
pub async fn start(
    ctx: &Arc<Ctx>,
    by: &str,
    follows: Option<&str>,
    now: SystemTime,
) -> Result<Option<String>> {
    let config = &ctx.gw.config;
    if config.role != Role::Secretariat {
        bail!("a roll call is the Secretariat's: this gateway has the national role");
    }
    let due = now + config.rollcall.answer_within;
    // The reference first, in a transaction of its own: the requests name
    // it, and composing them (signing and encrypting one for every NFP)
    // must not hold the store's write lock. A round that another instance
    // started first leaves its number unused (numbers are never reused).
    let year = chrono::DateTime::<chrono::Utc>::from(now).year();
    let reference = {
        let mut tx = ctx.store.begin().await?;
        let reference = tx.next_reference(&config.reference_prefix(), year).await?;
        tx.commit().await?;
        reference
    };
    let mails = {
        let (ctx, reference) = (ctx.clone(), reference.clone());
        tokio::task::spawn_blocking(move || requests(&ctx, &reference, due, false, None, now))
            .await
            .context("Composing the roll call failed")??
    };
    let mut tx = ctx.store.begin().await?;
    if !tx.start_round(&reference, now, due, by, follows).await? {
        return Ok(None);
    }
    for m in &mails {
        tx.round_member(&reference, &m.party, &m.sealed.message_id)
            .await?;
    }
    let detail = format!(
        "{reference} started by {by}: {} NFPs asked, due {}",
        mails.len(),
        crate::store::timestamp(due)
    );
    post::queue_and_commit(ctx, tx, &mails, "rollcall_started", &detail, now).await?;
    Ok(Some(reference))
}

/// The request (or, with `reminder`, the reminder) to every NFP of the
/// directory, or to the NFPs `only` names.
fn requests(
    ctx: &Ctx,
    reference: &str,
    due: SystemTime,
    reminder: bool,
    only: Option<&[String]>,
    now: SystemTime,
) -> Result<Vec<Planned>> {
    let sender = ctx.sender(now);
    let mut mails = Vec::new();
    for p in nfps(ctx) {
        if only.is_some_and(|ids| !ids.contains(&p.id)) {
            continue;
        }
        let data = RollcallRequestData {
            gateway: ctx.gw.config.address.clone(),
            recipient: p.into(),
            reference: reference.to_string(),
            due_at: day(&crate::store::timestamp(due)),
            reminder,
            entry: entry_lines(p),
        };
        mails.push(post::letter(
            ctx,
            &sender,
            "rollcall",
            "rollcall_request",
            p,
            &data,
        )?);
    }
    Ok(mails)
}

fn nfps(ctx: &Ctx) -> impl Iterator<Item = &Party> {
    ctx.gw
        .directory
        .parties()
        .iter()
        .filter(|p| p.kind == PartyKind::Nfp)
}

/// What a party's entry says of it, as the directory holds it, one line
/// per field: the fields its NFP keeps up to date (not the id, kind and
/// State the Secretariat set, nor the operator's settings).
fn entry_lines(p: &Party) -> Vec<EntryLine> {
    const SHOWN: [&str; 8] = [
        "name",
        "email",
        "address",
        "timezone",
        "working_hours",
        "languages",
        "organigram",
        "cert",
    ];
    p.entry()
        .changes_from(None)
        .into_iter()
        .filter(|c| SHOWN.contains(&c.field.as_str()) || c.field.starts_with("contact "))
        .filter_map(|c| {
            // Lists (languages, organigram documents) as words, not JSON.
            let value = match serde_json::from_str::<Vec<serde_json::Value>>(&c.after) {
                Ok(list) if list.is_empty() => return None,
                Ok(list) => list
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(_) => c.after,
            };
            Some(EntryLine {
                field: c.field,
                value: crate::outbound::render::clean_line(&value, 300),
            })
        })
        .collect()
}

fn day(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_string()
}

/// What an accepted message does to the roll call, inside its intake
/// transaction: from an NFP asked in the latest round, a message citing
/// that round's reference confirms its entry, and a contact update while
/// the round runs (citing it or not) updates it.
pub async fn on_accepted(
    tx: &mut Tx,
    config: &Config,
    inbound_id: i64,
    decision: &Decision,
    reference: &str,
    now: SystemTime,
) -> Result<()> {
    if config.role != Role::Secretariat {
        return Ok(());
    }
    let (Some(kind), Some(sender)) = (decision.kind, &decision.sender) else {
        return Ok(());
    };
    let Some(round) = tx.latest_round(now).await? else {
        return Ok(());
    };
    let cites = decision.reference.as_deref() == Some(round.reference.as_str());
    let answer = match kind {
        Kind::ContactUpdate if cites || round.reported_at.is_empty() => "updated",
        Kind::Command => return Ok(()),
        _ if cites => "confirmed",
        _ => return Ok(()),
    };
    if tx
        .answer_round(
            &round.reference,
            &sender.party,
            answer,
            reference,
            inbound_id,
            now,
        )
        .await?
    {
        tracing::info!(round = %round.reference, party = %sender.party, answer, "roll call answered");
    }
    Ok(())
}

/// What [`run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Done {
    pub reminded: usize,
    pub reported: usize,
}

/// Sends what the rounds under way need as of `as_of` (queued, signed and
/// recorded at the wall clock `now`): the reminder to the NFPs that have
/// not answered, `remind-before` the round's end; the report to the
/// Secretariat once it has ended. Then starts a round, at `now`, when
/// `[rollcall] every` has passed since the last one started.
pub async fn run(ctx: &Arc<Ctx>, as_of: SystemTime, now: SystemTime) -> Result<Done> {
    let config = &ctx.gw.config;
    let mut done = Done::default();
    if config.role != Role::Secretariat {
        return Ok(done);
    }
    for round in ctx.store.rounds_unreported().await? {
        let end = crate::store::parse_timestamp(&round.due_at).context("A roll call's end")?;
        if as_of >= end {
            done.reported += usize::from(report(ctx, &round, now).await?);
        } else if round.reminded_at.is_empty() && as_of + config.rollcall.remind_before >= end {
            done.reminded += remind(ctx, &round, end, now).await?;
        }
    }
    // After the rounds under way: the last one is reported before the next starts.
    if let Some(every) = config.rollcall.every {
        let latest = ctx.store.rounds().await?.into_iter().next();
        let due = match &latest {
            None => true,
            Some(r) => crate::store::parse_timestamp(&r.started_at)
                .is_ok_and(|t| as_of.duration_since(t).unwrap_or_default() >= every),
        };
        if due {
            // The first round follows none: '' stands for it.
            let follows = latest.as_ref().map_or("", |r| r.reference.as_str());
            if let Some(reference) = start(ctx, "schedule", Some(follows), now).await? {
                tracing::info!(%reference, "the roll call of `[rollcall] every` started");
            }
        }
    }
    Ok(done)
}

/// The reminder to the NFPs of `round` that have not answered and whose
/// request was not held or refused: how many.
async fn remind(
    ctx: &Arc<Ctx>,
    round: &RoundRow,
    end: SystemTime,
    now: SystemTime,
) -> Result<usize> {
    let silent: Vec<String> = ctx
        .store
        .round_members(&round.reference)
        .await?
        .into_iter()
        .filter(|m| m.standing() == "silent")
        .map(|m| m.party)
        .collect();
    let mails = {
        let (ctx, reference, silent) = (ctx.clone(), round.reference.clone(), silent.clone());
        tokio::task::spawn_blocking(move || {
            requests(&ctx, &reference, end, true, Some(&silent), now)
        })
        .await
        .context("Composing the roll call's reminder failed")??
    };
    let mut tx = ctx.store.begin().await?;
    if !tx.claim_round(&round.reference, false, now).await? {
        return Ok(0);
    }
    let detail = format!("{}: reminder to {} NFPs", round.reference, mails.len());
    post::queue_and_commit(ctx, tx, &mails, "rollcall_reminded", &detail, now).await?;
    Ok(mails.len())
}

/// The report of `round` to the Secretariat; false if another run sent it.
async fn report(ctx: &Arc<Ctx>, round: &RoundRow, now: SystemTime) -> Result<bool> {
    let members = ctx.store.round_members(&round.reference).await?;
    let mail = {
        let (ctx, round, members) = (ctx.clone(), round.clone(), members.clone());
        tokio::task::spawn_blocking(move || report_mail(&ctx, &round, &members, now))
            .await
            .context("Composing the roll call's report failed")??
    };
    let mut tx = ctx.store.begin().await?;
    if !tx.claim_round(&round.reference, true, now).await? {
        return Ok(false);
    }
    let counts: Vec<String> = STANDINGS
        .iter()
        .map(|s| {
            format!(
                "{s} {}",
                members.iter().filter(|m| m.standing() == *s).count()
            )
        })
        .collect();
    let detail = format!("{}: report, {}", round.reference, counts.join(", "));
    post::queue_and_commit(ctx, tx, &[mail], "rollcall_reported", &detail, now).await?;
    Ok(true)
}

fn report_mail(
    ctx: &Ctx,
    round: &RoundRow,
    members: &[MemberRow],
    now: SystemTime,
) -> Result<Planned> {
    let dir = &ctx.gw.directory;
    let secretariat = dir.secretariat();
    let view = |id: &str| PartyView::of(dir, id);
    let of = |standing: &str| -> Vec<PartyView> {
        members
            .iter()
            .filter(|m| m.standing() == standing)
            .map(|m| view(&m.party))
            .collect()
    };
    let data = RollcallReportData {
        gateway: ctx.gw.config.address.clone(),
        recipient: secretariat.into(),
        reference: round.reference.clone(),
        started_at: day(&round.started_at),
        due_at: day(&round.due_at),
        asked: members.len(),
        confirmed: of("confirmed"),
        updated: of("updated"),
        silent: of("silent"),
        held: of("held"),
        failed: of("failed"),
    };
    let sender = ctx.sender(now);
    post::letter(
        ctx,
        &sender,
        "rollcall",
        "rollcall_report",
        secretariat,
        &data,
    )
}
