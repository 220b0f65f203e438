//! The classification rules: explicit tags and keywords per kind and topic,
//! in the six languages, kept in a TOML file the operator can edit
//! (`rules/classify.toml`; `classify-rules` in the configuration names another).
//!
//! Tags match a whole `[...]` group, ignoring case, accents and spacing.
//! Keywords match at the start of a word, ignoring case and accents: write
//! stems (`smuggl` matches "smuggling" and "smuggler").

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::{Kind, Topic};

/// The rules shipped with the gateway.
pub const DEFAULT_RULES: &str = include_str!("../../../rules/classify.toml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    kinds: BTreeMap<String, RawEntry>,
    topics: BTreeMap<String, RawEntry>,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    what: T,
    tags: Vec<String>,
    keywords: Vec<String>,
}

/// Parsed, normalized rules.
#[derive(Debug, Clone)]
pub struct Rules {
    kinds: Vec<Entry<Kind>>,
    topics: Vec<Entry<Topic>>,
}

/// Kinds that keywords alone may select. Replies need a reference, circulars
/// an explicit tag from the Secretariat.
const KEYWORD_KINDS: [Kind; 4] = [
    Kind::ContactUpdate,
    Kind::BestPractice,
    Kind::InformationRequest,
    Kind::AssistanceRequest,
];

impl Rules {
    pub fn load(path: &Path) -> Result<Rules> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Reading the classification rules {}", path.display()))?;
        Rules::parse(&text)
            .with_context(|| format!("Parsing the classification rules {}", path.display()))
    }

    pub fn builtin() -> Rules {
        Rules::parse(DEFAULT_RULES).expect("the shipped rules parse (tested)")
    }

    pub fn parse(text: &str) -> Result<Rules> {
        let raw: RawRules = toml::from_str(text)?;
        let mut kinds = Vec::new();
        for (name, e) in raw.kinds {
            let what: Kind =
                serde_plain(&name).with_context(|| format!("unknown kind [kinds.{name}]"))?;
            kinds.push(entry(what, e));
        }
        let mut topics = Vec::new();
        for (name, e) in raw.topics {
            let what: Topic =
                serde_plain(&name).with_context(|| format!("unknown topic [topics.{name}]"))?;
            topics.push(entry(what, e));
        }
        if kinds.iter().all(|k| k.tags.is_empty()) {
            bail!("no kind has any tag");
        }
        // Deterministic tie-breaking: the order of KEYWORD_KINDS, then topics' order.
        kinds.sort_by_key(|k| {
            KEYWORD_KINDS
                .iter()
                .position(|x| *x == k.what)
                .unwrap_or(usize::MAX)
        });
        topics.sort_by_key(|t| t.what);
        Ok(Rules { kinds, topics })
    }

    /// The kind an explicit tag (already normalized, upper case) names.
    pub fn kind_of_tag(&self, tag: &str) -> Option<Kind> {
        self.kinds
            .iter()
            .find(|k| k.tags.iter().any(|t| t == tag))
            .map(|k| k.what)
    }

    pub fn topic_of_tag(&self, tag: &str) -> Option<Topic> {
        self.topics
            .iter()
            .find(|k| k.tags.iter().any(|t| t == tag))
            .map(|k| k.what)
    }

    /// The kind with the most distinct keyword hits (at least one).
    pub fn kind_by_keywords(&self, normalized: &str) -> Option<Kind> {
        let mut best: Option<(usize, Kind)> = None;
        for k in self
            .kinds
            .iter()
            .filter(|k| KEYWORD_KINDS.contains(&k.what))
        {
            let hits = hits(normalized, &k.keywords);
            if hits > 0 && best.is_none_or(|(b, _)| hits > b) {
                best = Some((hits, k.what));
            }
        }
        best.map(|(_, k)| k)
    }

    /// Every topic with at least one keyword hit.
    pub fn topics_by_keywords(&self, normalized: &str) -> Vec<Topic> {
        self.topics
            .iter()
            .filter(|t| hits(normalized, &t.keywords) > 0)
            .map(|t| t.what)
            .collect()
    }
}

fn entry<T>(what: T, e: RawEntry) -> Entry<T> {
    Entry {
        what,
        tags: e
            .tags
            .iter()
            .map(|t| normalize(t).to_uppercase())
            .filter(|t| !t.is_empty())
            .collect(),
        keywords: e
            .keywords
            .iter()
            .map(|k| normalize(k))
            .filter(|k| !k.is_empty())
            .collect(),
    }
}

fn serde_plain<T: serde::de::DeserializeOwned>(name: &str) -> Result<T> {
    Ok(T::deserialize(serde::de::value::StrDeserializer::<
        serde::de::value::Error,
    >::new(name))?)
}

/// Lower case, accents removed (NFD, combining marks dropped), runs of white
/// space as one space, typographic apostrophes as `'`.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.nfd() {
        // Accents go (é -> e, ü -> u; in Russian й -> и, ё -> е), on the
        // rules and on the text alike.
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        let c = if c == '\u{2019}' || c == '\u{02BC}' {
            '\''
        } else {
            c
        };
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            out.extend(c.to_lowercase());
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// How many distinct keywords occur at the start of a word.
fn hits(normalized: &str, keywords: &[String]) -> usize {
    keywords
        .iter()
        .filter(|k| occurs_at_word_start(normalized, k))
        .count()
}

fn occurs_at_word_start(hay: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let at = from + i;
        let starts_word = hay[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if starts_word {
            return true;
        }
        from = at + needle.len().max(1);
        while from < hay.len() && !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_parse_and_cover_every_kind_and_topic() {
        let r = Rules::builtin();
        for k in [
            Kind::AssistanceRequest,
            Kind::BestPractice,
            Kind::ContactUpdate,
            Kind::InformationRequest,
            Kind::Circular,
        ] {
            assert!(
                r.kinds.iter().any(|e| e.what == k && !e.tags.is_empty()),
                "{k:?}"
            );
        }
        assert_eq!(r.topics.len(), 4);
    }

    #[test]
    fn normalization_folds_case_accents_and_space() {
        assert_eq!(normalize("  Bewährte\u{00A0}  PRAXIS "), "bewahrte praxis");
        assert_eq!(
            normalize("Demande d\u{2019}Assistance"),
            "demande d'assistance"
        );
        assert_eq!(normalize("ТАМОЖНЯ"), "таможня");
    }

    #[test]
    fn keywords_match_at_word_starts_only() {
        assert!(occurs_at_word_start("the smuggling of goods", "smuggl"));
        assert!(!occurs_at_word_start("antismuggling", "smuggl"));
        assert!(occurs_at_word_start("zollbehorde", "zoll"));
        assert!(occurs_at_word_start("контрабанда наркотиков", "наркот"));
    }

    #[test]
    fn unknown_kinds_are_errors() {
        let err = Rules::parse("[kinds.nonsense]\ntags=[\"X\"]\n[topics]\n").unwrap_err();
        assert!(format!("{err:#}").contains("nonsense"));
    }
}
