//! The Secretariat's command mail (issue 16, item 1): a signed message
//! from the Secretariat whose signed subject or first line is a bracketed
//! command changes a case, as `nfp-gateway cases` does from the shell:
//!
//! ```text
//! [CLOSE BSM-2026-000042]
//! [REOPEN BSM-2026-000042]
//! [EXTEND BSM-2026-000042 7d]      (days; "2 weeks", "10 jours", "3 Wochen")
//! [REASSIGN BSM-2026-000042 PL]    (a directory id)
//! [CIRCULATE BSM-2026-000042]      (a best practice, to every NFP; the
//!                                   rest of the text is the covering note)
//! ```
//!
//! The verbs in the six languages are [`VERBS`]; case and accents do not
//! matter. Only the Secretariat may command, and only at the Secretariat's
//! gateway: anyone else's command mail is quarantined as `command_refused`
//! (`check` decides it). The command is carried out in the transaction
//! that stores the mail ([`super::carry_out`]), and the Secretariat gets
//! the outcome (`command_result`) instead of an acknowledgement.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::rules::fold_word;
use crate::classify::{bracket_tags, find_reference, is_reply_or_forward};
use crate::directory::Directory;

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Close,
    Reopen,
    Extend,
    Reassign,
    /// A best practice of the library, to every NFP (`crate::library`).
    Circulate,
}

impl Verb {
    pub fn code(self) -> &'static str {
        match self {
            Verb::Close => "close",
            Verb::Reopen => "reopen",
            Verb::Extend => "extend",
            Verb::Reassign => "reassign",
            Verb::Circulate => "circulate",
        }
    }
}

/// The verbs, folded (lower case, no accents), in English, French, German,
/// Italian, Russian and Spanish.
pub const VERBS: [(Verb, &[&str]); 5] = [
    (
        Verb::Close,
        &[
            "close",
            "clore",
            "cloturer",
            "schliessen",
            "chiudere",
            "закрыть",
            "cerrar",
        ],
    ),
    (
        Verb::Reopen,
        &[
            "reopen",
            "rouvrir",
            "wiedereroffnen",
            "riaprire",
            "возобновить",
            "переоткрыть",
            "reabrir",
        ],
    ),
    (
        Verb::Extend,
        &[
            "extend",
            "prolonger",
            "verlangern",
            "prorogare",
            "продлить",
            "prorrogar",
        ],
    ),
    (
        Verb::Reassign,
        &[
            "reassign",
            "reattribuer",
            "zuweisen",
            "riassegnare",
            "переназначить",
            "передать",
            "reasignar",
        ],
    ),
    (
        Verb::Circulate,
        &[
            "circulate",
            "diffuser",
            "verteilen",
            "diffondere",
            "разослать",
            "difundir",
        ],
    ),
];

/// Units of an extension, folded: days, then weeks.
const DAYS: &[&str] = &[
    "d", "day", "days", "j", "jour", "jours", "t", "tag", "tage", "tagen", "g", "giorno", "giorni",
    "д", "дн", "день", "дня", "дней", "dia", "dias",
];
const WEEKS: &[&str] = &[
    "w",
    "week",
    "weeks",
    "sem",
    "semaine",
    "semaines",
    "woche",
    "wochen",
    "settimana",
    "settimane",
    "нед",
    "неделя",
    "недели",
    "недель",
    "semana",
    "semanas",
];

/// The longest extension one command may give.
pub const MAX_DAYS: u64 = 365;

/// A command as read from a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// As written between the brackets (cleaned, at most 64 characters).
    pub written: String,
    pub verb: Verb,
    /// The case's reference.
    pub reference: Option<String>,
    /// By how many days (extend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u64>,
    /// The party that is to owe the answer (reassign): a directory id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    /// Why it cannot be carried out as written; None when it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_understood: Option<String>,
}

impl Command {
    /// The change to the case, when the command is understood.
    pub fn change(&self) -> Option<(&str, super::Change)> {
        if self.not_understood.is_some() {
            return None;
        }
        let reference = self.reference.as_deref()?;
        let change = match self.verb {
            Verb::Close => super::Change::Close,
            Verb::Reopen => super::Change::Reopen,
            Verb::Extend => super::Change::Extend(Duration::from_secs(self.days? * 86_400)),
            Verb::Reassign => super::Change::Reassign(self.party.clone()?),
            Verb::Circulate => return None,
        };
        Some((reference, change))
    }
}

/// The command in a message's signed subject or on the first non-blank
/// line of its signed text (the lines where tags are read), if either
/// holds a bracket whose first word is a command verb. Two different
/// commands make one that is not understood: a message carries one.
pub fn find(protected_subject: Option<&str>, text: &str, dir: &Directory) -> Option<Command> {
    let party = |id: &str| {
        dir.parties()
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id))
            .map(|p| p.id.clone())
    };
    find_with(protected_subject, text, &party)
}

/// Whether `line` holds a command (understood or not).
pub fn holds_command(line: &str) -> bool {
    find_with(None, line, &|_| None).is_some()
}

/// [`find`], with the directory's ids looked up by `party` (case-insensitively).
fn find_with(
    protected_subject: Option<&str>,
    text: &str,
    party: &dyn Fn(&str) -> Option<String>,
) -> Option<Command> {
    // A reply or a forward is not a command, even when it echoes one (a
    // reply to a command's result, a quoted first line).
    let subject = protected_subject.filter(|s| !is_reply_or_forward(s));
    let first_line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .filter(|l| !l.trim_start().starts_with('>'));
    let mut found: Vec<Command> = Vec::new();
    for line in subject.into_iter().chain(first_line) {
        for tag in bracket_tags(line) {
            if let Some(c) = parse(&tag, party) {
                if !found.contains(&c) {
                    found.push(c);
                }
            }
        }
    }
    let mut command = found.first()?.clone();
    if found.len() > 1 {
        command.not_understood = Some(format!(
            "{} different commands; a message carries one",
            found.len()
        ));
    }
    Some(command)
}

/// One bracket's content (as `bracket_tags` gives it: upper case, spaces
/// normalised), if its first word is a verb.
fn parse(tag: &str, party: &dyn Fn(&str) -> Option<String>) -> Option<Command> {
    let mut words = tag.split_whitespace();
    let first = fold_word(words.next()?);
    // German: "NEU ZUWEISEN".
    let (first, mut words) = match first.as_str() {
        "neu" => {
            let mut rest = words.clone();
            match rest.next().map(fold_word).as_deref() {
                Some("zuweisen") => ("zuweisen".to_string(), rest),
                _ => (first, words),
            }
        }
        _ => (first, words),
    };
    let (verb, _) = VERBS
        .iter()
        .find(|(_, names)| names.iter().any(|n| fold_word(n) == first))?;
    let mut command = Command {
        written: tag.chars().take(64).collect(),
        verb: *verb,
        reference: None,
        days: None,
        party: None,
        not_understood: None,
    };
    let mut problem = |why: String| {
        if command.not_understood.is_none() {
            command.not_understood = Some(why);
        }
    };
    // A verb is also an everyday word ("[VERTEILEN AN ALLE]", "[Close
    // cooperation]"): only a verb followed by a reference is a command.
    let reference = Some(words.next().and_then(find_reference)?);
    let rest: Vec<&str> = words.collect();
    match verb {
        Verb::Close | Verb::Reopen | Verb::Circulate if !rest.is_empty() => problem(format!(
            "unexpected words after the reference: {}",
            rest.join(" ")
        )),
        Verb::Close | Verb::Reopen | Verb::Circulate => {}
        Verb::Extend => match period(&rest) {
            Ok(days) => command.days = Some(days),
            Err(why) => problem(why),
        },
        Verb::Reassign => match rest.as_slice() {
            [id] => match party(id) {
                Some(id) => command.party = Some(id),
                None => problem(format!("no party {id} in the directory")),
            },
            _ => problem("the party (a directory id such as PL) must follow the reference".into()),
        },
    }
    command.reference = reference;
    Some(command)
}

/// Days from "7", "7d", "7 days", "2 weeks", "10 jours", "3 Wochen", ...
fn period(words: &[&str]) -> Result<u64, String> {
    let joined = words.join(" ");
    let digits: String = joined.chars().take_while(char::is_ascii_digit).collect();
    let unit = fold_word(joined[digits.len()..].trim());
    let n: u64 = match digits.parse() {
        Ok(n) if n > 0 => n,
        _ => return Err(format!("no number of days after the reference: {joined:?}")),
    };
    let days = match unit.as_str() {
        u if u.is_empty() || is_one_of(u, DAYS) => n,
        u if is_one_of(u, WEEKS) => n.saturating_mul(7),
        u => return Err(format!("{u:?} is not a unit of days or weeks")),
    };
    match days <= MAX_DAYS {
        true => Ok(days),
        false => Err(format!(
            "{days} days is more than one extension may give ({MAX_DAYS})"
        )),
    }
}

/// Whether the folded word `u` is one of `words` (folded alike: in
/// Russian й -> и).
fn is_one_of(u: &str, words: &[&str]) -> bool {
    words.iter().any(|w| fold_word(w) == u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(id: &str) -> Option<String> {
        ["AT", "FR", "secretariat"]
            .into_iter()
            .find(|p| p.eq_ignore_ascii_case(id))
            .map(str::to_string)
    }

    fn find(subject: Option<&str>, text: &str) -> Option<Command> {
        find_with(subject, text, &party)
    }

    fn one(line: &str) -> Option<Command> {
        find(None, line)
    }

    #[test]
    fn verbs_in_six_languages() {
        let r = "BSM-2026-000042";
        for (line, verb) in [
            ("[CLOSE BSM-2026-000042]", Verb::Close),
            ("[Clôturer bsm-2026-000042] affaire réglée", Verb::Close),
            ("[SCHLIEßEN BSM-2026-000042]", Verb::Close),
            ("[chiudere BSM-2026-000042]", Verb::Close),
            ("[ЗАКРЫТЬ BSM-2026-000042]", Verb::Close),
            ("[CERRAR BSM-2026-000042]", Verb::Close),
            ("[ROUVRIR BSM-2026-000042]", Verb::Reopen),
            ("[WIEDERERÖFFNEN BSM-2026-000042]", Verb::Reopen),
            ("[Возобновить BSM-2026-000042]", Verb::Reopen),
            ("[REABRIR BSM-2026-000042]", Verb::Reopen),
            ("[DIFFUSER BSM-2026-000042]", Verb::Circulate),
            ("[РАЗОСЛАТЬ BSM-2026-000042]", Verb::Circulate),
        ] {
            let c = one(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((c.verb, c.reference.as_deref()), (verb, Some(r)), "{line}");
            assert_eq!(c.not_understood, None, "{line}");
        }
    }

    #[test]
    fn periods_and_parties() {
        for (line, days) in [
            ("[EXTEND BSM-2026-000042 7d]", 7),
            ("[EXTEND BSM-2026-000042 7]", 7),
            ("[PROLONGER BSM-2026-000042 10 jours]", 10),
            ("[VERLÄNGERN BSM-2026-000042 3 Wochen]", 21),
            ("[PROROGARE BSM-2026-000042 2 settimane]", 14),
            ("[ПРОДЛИТЬ BSM-2026-000042 14 дней]", 14),
            ("[PRORROGAR BSM-2026-000042 5 días]", 5),
        ] {
            let c = one(line).unwrap();
            assert_eq!((c.verb, c.days), (Verb::Extend, Some(days)), "{line}");
        }
        for line in [
            "[REASSIGN BSM-2026-000042 at]",
            "[NEU ZUWEISEN BSM-2026-000042 AT]",
            "[ПЕРЕДАТЬ BSM-2026-000042 AT]",
        ] {
            let c = one(line).unwrap();
            assert_eq!(
                (c.verb, c.party.as_deref(), &c.not_understood),
                (Verb::Reassign, Some("AT"), &None),
                "{line}"
            );
        }
    }

    #[test]
    fn what_is_not_understood_says_why() {
        for (line, why) in [
            ("[CLOSE BSM-2026-000042 now]", "unexpected words"),
            ("[EXTEND BSM-2026-000042]", "no number"),
            ("[EXTEND BSM-2026-000042 7 months]", "not a unit"),
            ("[EXTEND BSM-2026-000042 400d]", "more than"),
            ("[REASSIGN BSM-2026-000042 XX]", "no party XX"),
            ("[REASSIGN BSM-2026-000042]", "must follow"),
            (
                "[CLOSE BSM-2026-000042] [REOPEN BSM-2026-000042]",
                "2 different commands",
            ),
        ] {
            let c = one(line).unwrap_or_else(|| panic!("{line}"));
            let said = c.not_understood.clone().unwrap_or_default();
            assert!(said.contains(why), "{line}: {said}");
            assert!(c.change().is_none(), "{line}");
        }
    }

    #[test]
    fn ordinary_tags_and_words_are_no_command() {
        for line in [
            "[CLOSE]",
            "[CLOSE 42]",
            "[BEST PRACTICE] [VERTEILEN AN ALLE KONTAKTSTELLEN]",
            "[ПЕРЕДАТЬ В ТАМОЖНЮ] запрос",
            "[Close cooperation] with customs",
            "> [CLOSE BSM-2026-000042]",
            "[ASSISTANCE REQUEST] [FR] Border police training",
            "[BSM-2026-000042] Re: closing the case",
            "Please close BSM-2026-000042",
            "[CLOSED BSM-2026-000042]",
            "Re: [INFORMATION REQUEST] close cooperation",
        ] {
            assert_eq!(one(line), None, "{line}");
        }
        // Only the first non-blank line and the signed subject are read.
        assert_eq!(one("Dear colleagues,\n[CLOSE BSM-2026-000042]\n"), None);
        let c = find(Some("[CLOSE BSM-2026-000042]"), "Dear colleagues,");
        assert_eq!(c.map(|c| c.verb), Some(Verb::Close));
        // A reply to a command's result, or a forward of a command, is none.
        for subject in [
            "Re: [BSM-2026-000050] Done: [CLOSE BSM-2026-000042]",
            "AW: [CLOSE BSM-2026-000042]",
            "RE[2]: [CLOSE BSM-2026-000042]",
            "Fwd: [EXTEND BSM-2026-000042 7d]",
            "Отв: [ЗАКРЫТЬ BSM-2026-000042]",
        ] {
            assert_eq!(find(Some(subject), "Thanks."), None, "{subject}");
        }
        assert!(!is_reply_or_forward(
            "[CLOSE BSM-2026-000042] Reefer containers"
        ));
        assert!(!is_reply_or_forward(
            "Reassign: [REASSIGN BSM-2026-000042 PL]"
        ));
        // The same command in subject and text is one command.
        let c = find(
            Some("[CLOSE BSM-2026-000042]"),
            "\n[close bsm-2026-000042]\n",
        )
        .unwrap();
        assert_eq!(c.not_understood, None);
    }
}
