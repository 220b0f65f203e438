//! The classification rules: explicit tags and keywords per kind and topic,
//! in the six languages, kept in a TOML file the operator can edit
//! (`rules/classify.toml`; `classify-rules` in the configuration names another).
//!
//! Tags match a whole `[...]` group, ignoring case, accents and spacing.
//! Keywords match at the start of a word, ignoring case and accents: write
//! stems (`smuggl` matches "smuggling" and "smuggler").

use std::collections::BTreeMap;
use std::path::Path;

use aho_corasick::AhoCorasick;
use anyhow::{bail, Context, Result};
use serde::Deserialize;

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
    /// Every keyword of every kind and topic, found in one pass over a text;
    /// pattern i is `owners[i]`'s keyword.
    matcher: AhoCorasick,
    owners: Vec<Owner>,
}

/// Whose keyword a pattern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Kind(usize),
    Topic(usize),
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
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            for kw in &k.keywords {
                patterns.push(kw.clone());
                owners.push(Owner::Kind(i));
            }
        }
        for (i, t) in topics.iter().enumerate() {
            for kw in &t.keywords {
                patterns.push(kw.clone());
                owners.push(Owner::Topic(i));
            }
        }
        let matcher = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&patterns)
            .context("Compiling the keywords")?;
        Ok(Rules {
            kinds,
            topics,
            matcher,
            owners,
        })
    }

    /// Distinct keywords found at the start of a word, per owner.
    fn hits(&self, normalized: &str) -> Vec<(Owner, usize)> {
        let mut found = vec![false; self.owners.len()];
        for m in self.matcher.find_overlapping_iter(normalized) {
            let starts_word = normalized[..m.start()]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            if starts_word {
                found[m.pattern().as_usize()] = true;
            }
        }
        let mut counts: Vec<(Owner, usize)> = Vec::new();
        for (i, _) in found.iter().enumerate().filter(|(_, f)| **f) {
            match counts.iter_mut().find(|(o, _)| *o == self.owners[i]) {
                Some((_, n)) => *n += 1,
                None => counts.push((self.owners[i], 1)),
            }
        }
        counts
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
        let counts = self.hits(normalized);
        let mut best: Option<(usize, Kind)> = None;
        for (i, k) in self.kinds.iter().enumerate() {
            if !KEYWORD_KINDS.contains(&k.what) {
                continue;
            }
            let hits = counts
                .iter()
                .find(|(o, _)| *o == Owner::Kind(i))
                .map_or(0, |(_, n)| *n);
            if hits > 0 && best.is_none_or(|(b, _)| hits > b) {
                best = Some((hits, k.what));
            }
        }
        best.map(|(_, k)| k)
    }

    /// Every topic with at least one keyword hit.
    pub fn topics_by_keywords(&self, normalized: &str) -> Vec<Topic> {
        let counts = self.hits(normalized);
        self.topics
            .iter()
            .enumerate()
            .filter(|(i, _)| counts.iter().any(|(o, _)| *o == Owner::Topic(*i)))
            .map(|(_, t)| t.what)
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
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            space = false;
        } else if c.is_ascii() {
            push_folded(&mut out, &mut space, c);
        } else {
            // Marks are dropped, so NFD's reordering of them does not
            // matter: decomposing each character is enough.
            unicode_normalization::char::decompose_canonical(c, |d| {
                push_folded(&mut out, &mut space, d)
            });
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// One character of a decomposed text, folded: accents go (é -> e, ü -> u;
/// in Russian й -> и, ё -> е), on the rules and on the text alike.
fn push_folded(out: &mut String, space: &mut bool, c: char) {
    if unicode_normalization::char::is_combining_mark(c) {
        return;
    }
    let c = if c == '\u{2019}' || c == '\u{02BC}' {
        '\''
    } else {
        c
    };
    if c.is_whitespace() {
        if !*space {
            out.push(' ');
            *space = true;
        }
    } else {
        out.extend(c.to_lowercase());
        *space = false;
    }
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
        let r = Rules::parse(
            "[kinds.assistance_request]\ntags = [\"REQUEST\"]\n\
             [topics.customs]\nkeywords = [\"smuggl\", \"zoll\"]\n\
             [topics.anti_drug]\nkeywords = [\"наркот\"]\n",
        )
        .unwrap();
        let topics = |t: &str| r.topics_by_keywords(&normalize(t));
        assert_eq!(topics("the smuggling of goods"), [Topic::Customs]);
        assert_eq!(topics("antismuggling"), []);
        // A later occurrence at a word start counts after an earlier one inside a word.
        assert_eq!(topics("antismuggling and smuggling"), [Topic::Customs]);
        assert_eq!(topics("Zollbehörde"), [Topic::Customs]);
        assert_eq!(topics("контрабанда наркотиков"), [Topic::AntiDrug]);
    }

    #[test]
    fn unknown_kinds_are_errors() {
        let err = Rules::parse("[kinds.nonsense]\ntags=[\"X\"]\n[topics]\n").unwrap_err();
        assert!(format!("{err:#}").contains("nonsense"));
    }
}
