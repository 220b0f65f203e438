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

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use crate::check::Decision;
use crate::classify::Kind;
use crate::config::{Config, Role};
use crate::directory::Directory;
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
    if let Some(period) = config.cases.period(kind) {
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
    let Some(mut case) = tx.case(reference).await? else {
        bail!("no case has the reference {reference}");
    };
    let before = case.clone();
    let detail = match change {
        Change::Close => {
            if case.state == "closed" {
                bail!("{reference} is closed already");
            }
            case.state = "closed".into();
            format!("closed (was {})", before.standing(now))
        }
        Change::Reopen => {
            if case.state == "open" {
                bail!("{reference} is open already");
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
                bail!("no party {party} in the directory");
            };
            if p.id == case.debtor {
                bail!("{reference} is owed by {} already", p.id);
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
    tx.commit().await?;
    // Re-read: the store sets the reminder times.
    store
        .case(reference)
        .await?
        .context("the case disappeared after its change")
}
