//! Routing: who must receive an accepted message, and why.
//!
//! Secretariat role: assistance requests, best practices, contact updates and
//! anything unclassified go to the Secretariat; information requests to the
//! target State's NFP; replies to the party that asked; the Secretariat's
//! circulars to every NFP.
//!
//! National role: mail from outside the State (the Secretariat, other NFPs)
//! goes to the competent national services by topic, or to the State's NFP
//! when no service's competence matches; what the State's NFP sends goes out
//! as in the Secretariat role; what a national service sends goes to its NFP.

use serde::Serialize;

use crate::classify::{Classification, Kind};
use crate::config::{Config, Role};
use crate::directory::{Directory, Party, PartyKind};

/// One recipient of a routed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Recipient {
    pub party: String,
    pub email: String,
    pub why: String,
}

impl Recipient {
    fn new(p: &Party, why: impl Into<String>) -> Recipient {
        Recipient {
            party: p.id.clone(),
            email: p.email.clone(),
            why: why.into(),
        }
    }
}

/// The recipients of an accepted message. `asked_by` is the party that sent
/// the request a reply cites, when the store knows the reference.
pub fn route(
    config: &Config,
    dir: &Directory,
    sender: &Party,
    c: &Classification,
    asked_by: Option<&str>,
) -> Vec<Recipient> {
    match (&config.role, config.state.as_deref()) {
        (Role::National, Some(state)) => national(dir, state, sender, c, asked_by),
        _ => network(dir, sender, c, asked_by),
    }
}

/// Routing between the parties of the network (Secretariat role, and what a
/// State's NFP sends out).
fn network(
    dir: &Directory,
    sender: &Party,
    c: &Classification,
    asked_by: Option<&str>,
) -> Vec<Recipient> {
    let secretariat = dir.secretariat();
    let to_secretariat = |why: &str| vec![Recipient::new(secretariat, why)];
    match c.kind {
        Kind::AssistanceRequest => to_secretariat("assistance requests go to the Secretariat"),
        Kind::BestPractice => {
            to_secretariat("best practices go to the Secretariat for the benefit of all States")
        }
        Kind::ContactUpdate => {
            to_secretariat("contact updates go to the Secretariat, which keeps the directory")
        }
        Kind::Unclassified => {
            to_secretariat("unclassified mail goes to the Secretariat for triage")
        }
        Kind::InformationRequest => match c.target.as_deref().and_then(|t| dir.nfp(t)) {
            Some(nfp) => vec![Recipient::new(
                nfp,
                format!("information request addressed to the NFP of {}", nfp.id),
            )],
            None => to_secretariat(
                "information request without a known target State: the Secretariat triages",
            ),
        },
        Kind::InformationReply => {
            if let Some(p) = asked_by
                .and_then(|id| dir.get(id))
                .filter(|p| p.id != sender.id)
            {
                return vec![Recipient::new(
                    p,
                    format!("reply to the request {} that {} sent", cite(c), p.id),
                )];
            }
            match c.target.as_deref().and_then(|t| dir.nfp(t)) {
                Some(nfp) => vec![Recipient::new(
                    nfp,
                    format!("reply to {}, addressed to the NFP of {}", cite(c), nfp.id),
                )],
                None => to_secretariat(&format!(
                    "reply to {}, whose requester is unknown here: the Secretariat triages",
                    cite(c)
                )),
            }
        }
        // The desk carries it out; it goes nowhere.
        Kind::Command => Vec::new(),
        Kind::Circular => sorted(
            dir.parties()
                .iter()
                .filter(|p| p.kind == PartyKind::Nfp && p.id != sender.id)
                .map(|p| Recipient::new(p, "Secretariat circulars go to every NFP"))
                .collect(),
        ),
    }
}

/// Recipients in a stable order, by party id.
fn sorted(mut r: Vec<Recipient>) -> Vec<Recipient> {
    r.sort_by(|a, b| a.party.cmp(&b.party));
    r
}

fn cite(c: &Classification) -> &str {
    c.cited_reference
        .as_deref()
        .unwrap_or("an unknown reference")
}

/// Routing in a national deployment of `state`.
fn national(
    dir: &Directory,
    state: &str,
    sender: &Party,
    c: &Classification,
    asked_by: Option<&str>,
) -> Vec<Recipient> {
    let own_nfp = dir.nfp(state);
    match (sender.kind, own_nfp) {
        (PartyKind::Nfp, Some(nfp)) if sender.id == nfp.id => network(dir, sender, c, asked_by),
        (PartyKind::Service, Some(nfp)) if sender.state.as_deref() == Some(state) => {
            vec![Recipient::new(
                nfp,
                format!("national services report to the NFP of {state}"),
            )]
        }
        (_, own_nfp) => {
            let services: Vec<Recipient> = dir
                .parties()
                .iter()
                .filter(|p| p.kind == PartyKind::Service && p.state.as_deref() == Some(state))
                .filter(|p| p.topics.iter().any(|t| c.topics.contains(t)))
                .map(|p| {
                    let shared: Vec<&str> = p
                        .topics
                        .iter()
                        .filter(|t| c.topics.contains(t))
                        .map(topic_name)
                        .collect();
                    Recipient::new(
                        p,
                        format!("competent national service for {}", shared.join(", ")),
                    )
                })
                .collect();
            if !services.is_empty() {
                return sorted(services);
            }
            match own_nfp {
                Some(nfp) => vec![Recipient::new(
                    nfp,
                    "no national service's competence matches: the NFP handles it",
                )],
                None => vec![Recipient::new(
                    dir.secretariat(),
                    format!("the directory lists no NFP for {state}"),
                )],
            }
        }
    }
}

fn topic_name(t: &crate::classify::Topic) -> &'static str {
    match t {
        crate::classify::Topic::BorderPolice => "border police",
        crate::classify::Topic::Customs => "customs",
        crate::classify::Topic::Migration => "migration",
        crate::classify::Topic::AntiDrug => "anti-drug",
    }
}
