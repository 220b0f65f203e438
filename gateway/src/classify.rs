//! Classification: what kind of message, which topics, which language.
//!
//! Only authenticated content is read: the protected subject when the sender
//! protected its headers, otherwise the first line of the signed body, and
//! the signed body itself. Explicit tags in square brackets win over keyword
//! rules; the rules live in an operator-editable data file ([`rules`]).

pub mod rules;

use serde::{Deserialize, Serialize};

use crate::directory::{Directory, PartyKind};
use rules::{normalize, Rules};

/// The six OSCE working languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Fr,
    De,
    It,
    Ru,
    Es,
}

impl Language {
    pub const ALL: [Language; 6] = [
        Language::En,
        Language::Fr,
        Language::De,
        Language::It,
        Language::Ru,
        Language::Es,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
            Language::De => "de",
            Language::It => "it",
            Language::Ru => "ru",
            Language::Es => "es",
        }
    }

    fn from_whatlang(l: whatlang::Lang) -> Option<Language> {
        Some(match l {
            whatlang::Lang::Eng => Language::En,
            whatlang::Lang::Fra => Language::Fr,
            whatlang::Lang::Deu => Language::De,
            whatlang::Lang::Ita => Language::It,
            whatlang::Lang::Rus => Language::Ru,
            whatlang::Lang::Spa => Language::Es,
            _ => return None,
        })
    }
}

/// The competences of national services, and the topics of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    BorderPolice,
    Customs,
    Migration,
    AntiDrug,
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AssistanceRequest,
    BestPractice,
    ContactUpdate,
    InformationRequest,
    InformationReply,
    Circular,
    Unclassified,
}

/// What the gateway read from the authenticated content.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The protected subject, if the headers were protected.
    pub protected_subject: Option<&'a str>,
    /// The signed body text.
    pub text: &'a str,
    pub has_vcard: bool,
    /// The protected recipients (To and Cc), for plus-addressed targets.
    pub recipients: &'a [String],
    /// The sender's party id and kind.
    pub sender: &'a str,
    pub sender_kind: PartyKind,
    /// Fallback when the text is too short to tell.
    pub sender_language: Language,
}

/// The result of classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    pub topics: Vec<Topic>,
    pub language: Language,
    /// A State named as the target (`[FR]` or `gateway+fr@`).
    pub target: Option<String>,
    /// A reference number cited (`BSM-YYYY-NNNNNN`).
    pub cited_reference: Option<String>,
    /// Why the kind was chosen, for the route's explanation and the audit.
    pub why: String,
}

/// Classifies an authenticated message.
pub fn classify(
    input: &Input<'_>,
    rules: &Rules,
    directory: &Directory,
    own_address: &str,
) -> Classification {
    let tag_line = match input.protected_subject {
        Some(s) => s.to_string(),
        None => input
            .text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string(),
    };
    let tags = bracket_tags(&tag_line);
    let cited_reference = find_reference(&tag_line);
    let content = format!(
        "{}\n{}",
        input.protected_subject.unwrap_or(""),
        prefix(input.text, MAX_CLASSIFIED_BYTES)
    );
    let normalized = normalize(&content);

    let tagged_kind = tags
        .iter()
        .find_map(|t| rules.kind_of_tag(t))
        .filter(|k| *k != Kind::Circular || input.sender_kind == PartyKind::Secretariat);
    // Where the tags were read: the detail says it, so that a sender who
    // wrote them on the first line is not told they were in the subject.
    let tag_source = if input.protected_subject.is_some() {
        "the signed subject"
    } else {
        "the first line of the signed text"
    };
    let (kind, why) = if cited_reference.is_some() {
        (
            Kind::InformationReply,
            format!("{tag_source} cites a reference number"),
        )
    } else if let Some(k) = tagged_kind {
        (k, format!("an explicit tag in {tag_source}"))
    } else if input.has_vcard {
        (Kind::ContactUpdate, "a vCard is attached".to_string())
    } else if let Some(k) = rules.kind_by_keywords(&normalized) {
        (k, "keyword rules".to_string())
    } else {
        (
            Kind::Unclassified,
            "no tag and no keyword rule matched".to_string(),
        )
    };

    let mut topics: Vec<Topic> = tags.iter().filter_map(|t| rules.topic_of_tag(t)).collect();
    topics.extend(rules.topics_by_keywords(&normalized));
    topics.sort();
    topics.dedup();

    let target = tags
        .iter()
        .filter(|t| t.len() == 2)
        .find_map(|t| directory.nfp(t).map(|p| p.id.clone()))
        .or_else(|| plus_target(input.recipients, own_address, directory))
        .filter(|t| t != input.sender);

    Classification {
        kind,
        topics,
        language: detect_language(&content, &tags).unwrap_or(input.sender_language),
        target,
        cited_reference,
        why,
    }
}

/// How much of the text classification reads: enough for any letter, and
/// it keeps the cost of a message with a huge text part flat.
const MAX_CLASSIFIED_BYTES: usize = 64 * 1024;
/// How much of it language detection reads.
const MAX_LANGUAGE_BYTES: usize = 4 * 1024;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The contents of every `[...]` group, normalized (upper case, no accents, single spaces).
pub fn bracket_tags(line: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        let tag = normalize(inner).to_uppercase();
        if !tag.is_empty() && tag.chars().count() <= 64 {
            tags.push(tag);
        }
        rest = &rest[open + close + 1..];
    }
    tags
}

/// The first reference in a line: `BSM-YYYY-NNNNNN` (the Secretariat's) or
/// `BSM-XX-YYYY-NNNNNN` (a national gateway's).
pub fn find_reference(line: &str) -> Option<String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\bBSM-(?:[A-Z]{2}-)?\d{4}-\d{6}\b").expect("valid regex")
    });
    re.find(&line.to_ascii_uppercase())
        .map(|m| m.as_str().to_string())
}

/// `gateway+fr@domain` in the protected recipients names the NFP of FR.
fn plus_target(recipients: &[String], own_address: &str, directory: &Directory) -> Option<String> {
    let (own_local, own_domain) = own_address.split_once('@')?;
    recipients.iter().find_map(|r| {
        let (local, domain) = r.split_once('@')?;
        let (base, detail) = local.split_once('+')?;
        if base == own_local && domain == own_domain {
            directory.nfp(detail).map(|p| p.id.clone())
        } else {
            None
        }
    })
}

/// The language of the text, with whatlang restricted to the six languages.
fn detect_language(content: &str, tags: &[String]) -> Option<Language> {
    // A few paragraphs tell the language as surely as the whole letter.
    let mut text = prefix(content, MAX_LANGUAGE_BYTES).to_string();
    for t in tags {
        text = text.replace(t.as_str(), " ");
    }
    let allow = vec![
        whatlang::Lang::Eng,
        whatlang::Lang::Fra,
        whatlang::Lang::Deu,
        whatlang::Lang::Ita,
        whatlang::Lang::Rus,
        whatlang::Lang::Spa,
    ];
    let info = whatlang::Detector::with_allowlist(allow).detect(&text)?;
    // Short texts give unreliable guesses; the sender's language is the better default then.
    if text.split_whitespace().count() < 4 {
        return None;
    }
    Language::from_whatlang(info.lang())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalized() {
        assert_eq!(
            bracket_tags("Re: [Demande d'assistance] [fr] Objet [  bonne   pratique ]"),
            vec!["DEMANDE D'ASSISTANCE", "FR", "BONNE PRATIQUE"]
        );
        assert_eq!(bracket_tags("[Bewährte Praxis]"), vec!["BEWAHRTE PRAXIS"]);
        assert_eq!(
            bracket_tags("[Запрос информации]"),
            vec!["ЗАПРОС ИНФОРМАЦИИ"]
        );
        assert!(bracket_tags("no tags ] [").is_empty());
    }

    #[test]
    fn references() {
        assert_eq!(
            find_reference("Re: answer to bsm-2026-000042"),
            Some("BSM-2026-000042".into())
        );
        assert_eq!(find_reference("BSM-2026-00004"), None);
        assert_eq!(find_reference("XBSM-2026-000042"), None);
        assert_eq!(
            find_reference("Re: [BSM-AT-2026-000007] Zoll"),
            Some("BSM-AT-2026-000007".into())
        );
    }

    #[test]
    fn languages_are_detected_in_all_six() {
        let samples = [
            (Language::En, "We kindly request information about the border crossing point and the customs procedures applied there."),
            (Language::Fr, "Nous vous prions de bien vouloir nous transmettre les informations relatives au point de passage frontalier."),
            (Language::De, "Wir bitten um Informationen über den Grenzübergang und die dort angewandten Zollverfahren."),
            (Language::It, "Chiediamo cortesemente informazioni sul valico di frontiera e sulle procedure doganali applicate."),
            (Language::Ru, "Просим предоставить информацию о пункте пропуска через границу и применяемых таможенных процедурах."),
            (Language::Es, "Solicitamos amablemente información sobre el paso fronterizo y los procedimientos aduaneros aplicados."),
        ];
        for (lang, text) in samples {
            assert_eq!(detect_language(text, &[]), Some(lang), "{text}");
        }
    }
}
