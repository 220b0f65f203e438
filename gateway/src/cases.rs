//! The Secretariat's cases (issue 16, item 1). Every accepted assistance
//! request and information request opens a case under its reference: who
//! asked, who owes the answer (the debtor), when it is due. An information
//! reply that cites the reference, from anyone but the asker, answers it;
//! any other accepted message that cites it (the asker's reminder, an
//! acknowledgement, a second reply) goes into the case's history. The
//! Secretariat closes, reopens, extends and reassigns cases (`nfp-gateway
//! cases ...`); each change is in the case's history and the audit trail.
//!
//! Cases are the Secretariat's desk: a national gateway opens none.
//! The Secretariat also changes them by signed command mail ([`command`]).

pub mod command;
pub mod refusal;

pub use refusal::Refusal;

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use crate::check::Decision;
use crate::classify::Kind;
use crate::config::{Config, Role};
use crate::directory::Directory;
use crate::outbound::{CaseReminderData, PartyView};
use crate::post::{self, Ctx};
use crate::store::cases::{CaseRow, NewCase};
use crate::store::{timestamp, Audit, Store, Tx};

/// Who owes the answer to a request: the NFP of the State an information
/// request is for, or else the Secretariat.
pub fn debtor(dir: &Directory, kind: Kind, target: Option<&str>) -> String {
    match (kind, target.and_then(|t| dir.get(t))) {
        (Kind::InformationRequest, Some(p)) => p.id.clone(),
        _ => dir.secretariat().id.clone(),
    }
}

/// What an accepted message does to the cases, inside its intake
/// transaction: it opens one (a request), answers one (a reply citing its
/// reference), or is added to one's history (anything else citing it).
pub async fn on_accepted(
    tx: &mut Tx,
    config: &Config,
    dir: &Directory,
    inbound_id: i64,
    decision: &Decision,
    reference: &str,
    now: SystemTime,
) -> Result<()> {
    if config.role != Role::Secretariat || !config.cases.enabled {
        return Ok(());
    }
    let (Some(kind), Some(sender)) = (decision.kind, &decision.sender) else {
        return Ok(());
    };
    // A command's change is its own entry ([`carry_out`]).
    if kind == Kind::Command {
        return Ok(());
    }
    // A reminder: the asker's request again, citing its own case that is
    // still open. It joins that case's history (below), and opens none.
    let reminder = match decision.reference.as_deref() {
        Some(cited) => tx
            .case(cited)
            .await?
            .is_some_and(|c| c.asker == sender.party && c.state == "open"),
        None => false,
    };
    if let Some(period) = config.cases.period(kind).filter(|_| !reminder) {
        let debtor = debtor(dir, kind, decision.target.as_deref());
        let topics = serde_json::to_string(&decision.topics).context("Serialising topics")?;
        let opened = tx
            .open_case(&NewCase {
                reference,
                inbound_id,
                kind: kind.code(),
                asker: &sender.party,
                debtor: &debtor,
                topics: &topics,
                opened_at: now,
                due_at: now + period,
            })
            .await?;
        if opened {
            let detail = format!("{} from {}, owed by {debtor}", kind.code(), sender.party);
            tx.case_event(
                reference,
                now,
                "opened",
                &sender.party,
                Some(inbound_id),
                &detail,
            )
            .await?;
        }
    }
    let Some(cited) = decision.reference.as_deref() else {
        return Ok(());
    };
    let Some(case) = tx.case(cited).await? else {
        return Ok(());
    };
    let answers = kind == Kind::InformationReply && sender.party != case.asker;
    let event = match answers && tx.answer_case(cited, reference, now).await? {
        true => "answered",
        false => "message",
    };
    let detail = format!("{reference}: {} from {}", kind.code(), sender.party);
    tx.case_event(cited, now, event, &sender.party, Some(inbound_id), &detail)
        .await
}

/// A change the Secretariat makes to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Close,
    Reopen,
    /// The due time moves by this much (from the current due time).
    Extend(Duration),
    /// Another party owes the answer.
    Reassign(String),
}

impl Change {
    fn event(&self) -> &'static str {
        match self {
            Change::Close => "closed",
            Change::Reopen => "reopened",
            Change::Extend(_) => "extended",
            Change::Reassign(_) => "reassigned",
        }
    }
}

/// Applies `change` to the case of `reference`, by `actor` (who, as the
/// audit trail names them: `cli` or a command mail's reference), with
/// `note`: the case, its history and the audit trail in one transaction.
/// The case as it is afterwards.
pub async fn change(
    store: &Store,
    dir: &Directory,
    reference: &str,
    change: &Change,
    actor: &str,
    note: &str,
    now: SystemTime,
) -> Result<CaseRow> {
    let mut tx = store.begin().await?;
    match change_in(&mut tx, dir, reference, change, actor, note, now).await? {
        Ok(case) => {
            tx.commit().await?;
            Ok(case)
        }
        Err(refused) => bail!("{}", refused.explain(reference)),
    }
}

/// [`change`] inside a transaction: the case as it is afterwards, or why
/// the change cannot be made (nothing is written then).
pub async fn change_in(
    tx: &mut Tx,
    dir: &Directory,
    reference: &str,
    change: &Change,
    actor: &str,
    note: &str,
    now: SystemTime,
) -> Result<Result<CaseRow, Refusal>> {
    let Some(mut case) = tx.case(reference).await? else {
        return Ok(Err(Refusal::NoCase));
    };
    let before = case.clone();
    let detail = match change {
        Change::Close => {
            if case.state == "closed" {
                return Ok(Err(Refusal::ClosedAlready));
            }
            case.state = "closed".into();
            format!("closed (was {})", before.standing(now))
        }
        Change::Reopen => {
            if case.state == "open" {
                return Ok(Err(Refusal::OpenAlready));
            }
            case.state = "open".into();
            format!("reopened (was {}); due {}", before.state, case.due_at)
        }
        Change::Extend(by) => {
            let due = crate::store::parse_timestamp(&case.due_at)
                .with_context(|| format!("{reference}'s due time {:?}", case.due_at))?;
            case.due_at = timestamp(due + *by);
            format!("due {} (was {})", case.due_at, before.due_at)
        }
        Change::Reassign(party) => {
            let Some(p) = dir.get(party) else {
                return Ok(Err(Refusal::NoParty(party.clone())));
            };
            if p.id == case.debtor {
                return Ok(Err(Refusal::OwedAlready(p.id.clone())));
            }
            case.debtor = p.id.clone();
            format!("owed by {} (was {})", case.debtor, before.debtor)
        }
    };
    let detail = match note.trim() {
        "" => detail,
        note => format!("{detail}; note: {note}"),
    };
    tx.update_case(&case, now).await?;
    tx.case_event(reference, now, change.event(), actor, None, &detail)
        .await?;
    let audit = format!("{reference} {detail}");
    tx.audit(&Audit {
        at: Some(now),
        event: &format!("case_{}", change.event()),
        inbound_id: Some(case.inbound_id),
        party: Some(&case.asker),
        detail: &audit,
        ..Audit::default()
    })
    .await?;
    // Read again: the store sets the reminder times.
    Ok(tx.case(reference).await?.ok_or(Refusal::NoCase))
}

/// What a command mail did: the case afterwards, or the circulation of a
/// best practice; or why nothing changed.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub command: command::Command,
    pub result: Result<Effect, Refusal>,
}

/// What a command that was carried out did.
#[derive(Debug, Clone)]
pub enum Effect {
    Case(Box<CaseRow>),
    Circulated(crate::library::Circulated),
}

/// Carries out the Secretariat's command mail stored as `reference`, in
/// its intake transaction: the change is the case's (or the circulation
/// the library's) and the audit's, by that reference; a command that
/// cannot be carried out changes nothing and is audited as refused. A
/// circulation comes composed ([`prepare_circulation`], before the
/// transaction). `check` has let through only the Secretariat's commands,
/// at the Secretariat's gateway.
pub async fn carry_out(
    tx: &mut Tx,
    dir: &Directory,
    command: &command::Command,
    reference: &str,
    inbound_id: i64,
    circulation: Option<Result<crate::library::Prepared, Refusal>>,
    now: SystemTime,
) -> Result<CommandOutcome> {
    let target = command.reference.clone().unwrap_or_default();
    let result = match (&command.not_understood, command.verb, command.change()) {
        (Some(why), _, _) => Err(Refusal::NotUnderstood(why.clone())),
        (None, command::Verb::Circulate, _) => match circulation {
            Some(Ok(prepared)) => {
                crate::library::commit_in(tx, prepared, reference, Some(inbound_id), now)
                    .await?
                    .map(Effect::Circulated)
            }
            Some(Err(refused)) => Err(refused),
            None => Err(Refusal::NotUnderstood("nothing to circulate".into())),
        },
        (None, _, Some((case, change))) => {
            let note = format!("by command mail {reference}");
            change_in(tx, dir, case, &change, reference, &note, now)
                .await?
                .map(|c| Effect::Case(Box::new(c)))
        }
        (None, _, None) => Err(Refusal::NotUnderstood("no reference".into())),
    };
    if let Err(refused) = &result {
        let detail = format!(
            "{reference} [{}]: {}",
            command.written,
            refused.explain(&target)
        );
        tx.audit(&Audit {
            at: Some(now),
            event: "case_command_refused",
            inbound_id: Some(inbound_id),
            party: Some(&dir.secretariat().id),
            detail: &detail,
            ..Audit::default()
        })
        .await?;
    }
    Ok(CommandOutcome {
        command: command.clone(),
        result,
    })
}

/// The circulation a command mail asks for, composed before its intake
/// transaction (None: the mail asks for none). `content`: the command
/// mail's signed content, whose text is the covering note.
pub async fn prepare_circulation(
    ctx: &std::sync::Arc<Ctx>,
    decision: &Decision,
    content: Option<&crate::check::SignedContent>,
    now: SystemTime,
) -> Result<Option<Result<crate::library::Prepared, Refusal>>> {
    let (Some(c), Some(content)) = (&decision.command, content) else {
        return Ok(None);
    };
    if c.verb != command::Verb::Circulate || c.not_understood.is_some() {
        return Ok(None);
    }
    let note = note_of_command_mail(content);
    let target = c.reference.as_deref().unwrap_or_default();
    Ok(Some(
        crate::library::prepare(ctx, target, &note, now).await?,
    ))
}

/// Sends the reminders that are due at `now` (issue 16, item 2): before a
/// case's due time (`remind-before`), a reminder to the party that owes the
/// answer; once the time has passed, a second one and a note to the
/// Secretariat (none when the Secretariat owes it). Each in its recipient's
/// language, naming the reference, the asker and the dates, never the
/// request's words; through the outbox, each claimed in the transaction
/// that queues it, so it goes out once across restarts and instances.
/// Deadlines are read as of `as_of` (the daemon: now; `cases remind
/// --as-of`: another time); what is stored, signed and queued is at the
/// wall clock `now`. Returns how many cases were reminded.
pub async fn remind(
    ctx: &std::sync::Arc<Ctx>,
    as_of: SystemTime,
    now: SystemTime,
) -> Result<usize> {
    let config = &ctx.gw.config;
    if config.role != Role::Secretariat || !config.cases.enabled {
        return Ok(0);
    }
    let horizon = as_of + config.cases.remind_before;
    let mut reminded = 0;
    for case in ctx.store.cases_to_remind(horizon, as_of).await? {
        let overdue = case.overdue(as_of);
        let mails = {
            let ctx = ctx.clone();
            let case = case.clone();
            tokio::task::spawn_blocking(move || reminder_mails(&ctx, &case, as_of, now))
                .await
                .context("Composing a reminder failed")??
        };
        let mut tx = ctx.store.begin().await?;
        let hour_ago = now - Duration::from_secs(3600);
        let queued = tx.reminders_since(hour_ago).await?;
        // One case's mails always go (a limit below two would otherwise
        // hold an overdue case's pair for ever).
        if queued > 0 && queued + mails.len() as i64 > i64::from(config.cases.reminders_per_hour) {
            tracing::info!(
                queued,
                "the hourly limit of reminders is reached: the rest wait for the next hour"
            );
            break;
        }
        if !tx.claim_reminder(&case.reference, overdue, now).await? {
            continue;
        }
        let event = match overdue {
            true => "overdue",
            false => "reminded",
        };
        let to: Vec<&str> = mails.iter().map(|m| m.party.as_str()).collect();
        let detail = format!("reminder to {}, due {}", to.join(", "), case.due_at);
        tx.case_event(&case.reference, now, event, "gateway", None, &detail)
            .await?;
        let audit = format!("{} {detail}", case.reference);
        post::queue_and_commit(ctx, tx, &mails, &format!("case_{event}"), &audit, now).await?;
        reminded += 1;
    }
    Ok(reminded)
}

/// The reminder to the debtor and, once overdue, the note to the
/// Secretariat. A party no longer in the directory gets nothing; the
/// Secretariat is then told.
fn reminder_mails(
    ctx: &Ctx,
    case: &CaseRow,
    as_of: SystemTime,
    now: SystemTime,
) -> Result<Vec<post::Planned>> {
    let dir = &ctx.gw.directory;
    let secretariat = dir.secretariat();
    let overdue = case.overdue(as_of);
    let due = crate::store::parse_timestamp(&case.due_at)?;
    let days = match due.duration_since(as_of) {
        Ok(left) => left.as_secs() / 86_400,
        Err(past) => past.duration().as_secs() / 86_400,
    } as i64;
    let view = |id: &str| PartyView::of(dir, id);
    let data = |recipient: PartyView| CaseReminderData {
        gateway: ctx.gw.config.address.clone(),
        recipient,
        reference: case.reference.clone(),
        kind: case.kind.clone(),
        asker: view(&case.asker),
        debtor: view(&case.debtor),
        opened_at: case.opened_at.get(..10).unwrap_or_default().to_string(),
        due_at: case.due_at.get(..10).unwrap_or_default().to_string(),
        overdue,
        days,
    };
    let sender = ctx.sender(now);
    let mut mails = Vec::new();
    let debtor = dir.get(&case.debtor);
    if let Some(debtor) = debtor {
        mails.push(post::letter(
            ctx,
            &sender,
            "reminder",
            "case_reminder",
            debtor,
            &data(debtor.into()),
        )?);
    }
    if (overdue || debtor.is_none()) && case.debtor != secretariat.id {
        mails.push(post::letter(
            ctx,
            &sender,
            "reminder",
            "case_overdue_note",
            secretariat,
            &data(secretariat.into()),
        )?);
    }
    Ok(mails)
}

/// The covering note of a command mail: its signed text, without the line
/// that holds the command.
pub fn note_of_command_mail(content: &crate::check::SignedContent) -> String {
    let text = match content.form {
        crate::mime::outer::Form::Inline => String::from_utf8_lossy(&content.bytes).into_owned(),
        _ => mail_parser::MessageParser::default()
            .parse(&content.bytes)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
            .unwrap_or_default(),
    };
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(first) = lines.iter().position(|l| !l.trim().is_empty()) {
        if command::holds_command(lines[first]) {
            lines.remove(first);
        }
    }
    crate::outbound::render::clean_text(&lines.join("\n"), 60, 400)
}
