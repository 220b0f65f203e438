//! The classification rules, in the six languages, kept in a TOML file the
//! operator can read and edit (`rules/classify.toml`; `classify-rules` in the
//! configuration names another). The State names of `rules/states.toml`
//! (made from the CLDR) come with them.
//!
//! Tags match a whole `[...]` group, ignoring case, accents and spacing.
//! Phrases are words, not strings: each word is stemmed with the Snowball
//! stemmer of the phrase's language, on the rule and on the text alike, so
//! "solicitar apoyo" matches "solicita apoyo" and "solicitamos su apoyo".
//! `a|b` offers alternatives for one word; up to `gap` other words may stand
//! between two words of a phrase, within one sentence.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use foldhash::{HashMap, HashMapExt as _};
use rust_stemmers::{Algorithm, Stemmer};
use serde::Deserialize;

use super::{Kind, Language, Topic};
use crate::vocab::normalize;

/// The rules shipped with the gateway.
pub const DEFAULT_RULES: &str = include_str!("../../../rules/classify.toml");
/// The names of the participating States (generated from the CLDR).
pub const STATE_NAMES: &str = include_str!("../../../rules/states.toml");

/// Words in each of the six languages.
type PerLanguage = BTreeMap<Language, Vec<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    phrases: PerLanguage,
    #[serde(default)]
    hints: PerLanguage,
    #[serde(default)]
    offers: PerLanguage,
    #[serde(default)]
    asked: PerLanguage,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEvidence {
    gap: usize,
    min_score: f32,
    margin: f32,
    opening_factor: f32,
    reference: f32,
    negation_window: usize,
    // Absent (a rules file older than these keys): the decision as it was
    // before them, no clear-lead guard and no weak agreement.
    #[serde(default = "never")]
    clear_lead: f32,
    #[serde(default = "certain")]
    overrule: f32,
    #[serde(default = "certain")]
    agree: f32,
    #[serde(default = "never")]
    clear_lead_none: f32,
    #[serde(default = "nothing")]
    overrule_none: f32,
}

fn never() -> f32 {
    f32::INFINITY
}

fn nothing() -> f32 {
    0.0
}

fn certain() -> f32 {
    1.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawText {
    closings: PerLanguage,
    attributions: PerLanguage,
    header_from: Vec<String>,
    header_sent: Vec<String>,
    header_subject: Vec<String>,
    automatic_reply: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCues {
    negation: PerLanguage,
    request: PerLanguage,
    receipt: PerLanguage,
    #[serde(default)]
    thanks: PerLanguage,
    #[serde(default)]
    given: PerLanguage,
    #[serde(default)]
    earlier: PerLanguage,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    max_words: usize,
    addressee: PerLanguage,
    focal_point: PerLanguage,
    #[serde(default)]
    conjunction: PerLanguage,
    #[serde(default)]
    colleagues: PerLanguage,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    evidence: RawEvidence,
    text: RawText,
    cues: RawCues,
    target: RawTarget,
    kinds: BTreeMap<String, RawKind>,
    topics: BTreeMap<String, RawKind>,
}

/// What a phrase is evidence of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Use {
    /// A kind, with the phrase's weight.
    Kind(Kind, f32),
    /// A kind, as an offer: a request cue before it in its sentence makes
    /// it a request for information instead ("we ask you to share").
    Offer(Kind, f32),
    /// A kind only when asked for: a request cue anywhere in its sentence
    /// ("could you send us the workshop's report?"); without one it says
    /// nothing ("the report of the workshop is attached").
    Asked(Kind, f32),
    Topic(Topic, f32),
    Negation,
    Request,
    /// An acknowledgement of receipt: a reference it cites is no reply.
    Receipt,
    /// A message sent before, recalled ("further to our acknowledgement
    /// of 7 April"): a receipt cue after it in its sentence acknowledges
    /// nothing now.
    Earlier,
    /// Thanks for what was done ("our sincere gratitude for the course
    /// held in Bishkek"): the event's words are no request.
    Thanks,
    /// Material given, not asked for ("please find attached the report"):
    /// in its sentence, what is `Asked` says nothing.
    Given,
    Addressee,
    FocalPoint,
    /// "and", "или": an addressee line that joins two addressees.
    Conjunction,
    /// "colleagues from", "коллеги из": a salutation that addresses a
    /// State's people when its name follows at once.
    Colleagues,
    /// A State's name (index into [`Rules::states`]).
    State(usize),
}

/// A phrase of the rules, compiled.
#[derive(Debug, Clone)]
pub struct Phrase {
    pub language: Language,
    /// Per position, the word ids any of which matches.
    pub words: Vec<Vec<u32>>,
    /// Other words allowed between two of its words.
    pub gap: usize,
    pub what: Use,
    /// The rule as written, for explanations.
    pub source: String,
}

/// Weights of phrases and hints.
const PHRASE: f32 = 2.0;
const HINT: f32 = 1.0;
const TOPIC: f32 = 1.0;

/// Kinds that words may select. Circulars need an explicit tag from the
/// Secretariat.
pub const WORD_KINDS: [Kind; 5] = [
    Kind::AssistanceRequest,
    Kind::BestPractice,
    Kind::ContactUpdate,
    Kind::InformationRequest,
    Kind::InformationReply,
];

/// How evidence is weighed.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub min_score: f32,
    pub margin: f32,
    pub opening_factor: f32,
    pub reference: f32,
    pub negation_window: usize,
    /// A lead of the rules' first kind over the next from which their
    /// reading is clear.
    pub clear_lead: f32,
    /// The probability from which the model's kind overrules a clear reading
    /// of the rules.
    pub overrule: f32,
    /// The probability, below the model's threshold, from which its kind is
    /// taken when the rules' first kind, however weak, is the same.
    pub agree: f32,
    /// A lead that is clear when the model reads no kind at all and is
    /// below `overrule_none`.
    pub clear_lead_none: f32,
    pub overrule_none: f32,
}

/// The longest line a closing formula starts, in words.
const MAX_CLOSING_WORDS: usize = 12;

/// The cues that give lines their roles (see [`super::text`]).
#[derive(Debug, Clone, Default)]
pub struct TextCues {
    closings: Vec<Vec<String>>,
    attributions: Vec<String>,
    header_from: Vec<String>,
    header_sent: Vec<String>,
    header_subject: Vec<String>,
    automatic_reply: Vec<Vec<String>>,
}

impl TextCues {
    /// A short line that starts with a closing formula ("Best regards,").
    pub fn is_closing(&self, line: &str) -> bool {
        if line.split_whitespace().nth(MAX_CLOSING_WORDS).is_some() {
            return false;
        }
        let words = folded_words(line);
        words.len() <= MAX_CLOSING_WORDS
            && self
                .closings
                .iter()
                .any(|c| words.len() >= c.len() && words[..c.len()] == c[..])
    }

    /// An attribution line ("On 3 Oct 2026, Anna wrote:").
    pub fn is_attribution(&self, line: &str) -> bool {
        if line.split_whitespace().nth(30).is_some() {
            return false;
        }
        let words = folded_words(line);
        words.len() <= 30 && words.iter().any(|w| self.attributions.contains(w))
    }

    pub fn is_header_from(&self, field: &str) -> bool {
        self.header_from.contains(&fold_word(field))
    }

    pub fn is_header_sent(&self, field: &str) -> bool {
        let f = folded_words(field);
        f.first().is_some_and(|w| self.header_sent.contains(w))
    }

    pub fn is_header_subject(&self, field: &str) -> bool {
        self.header_subject.contains(&fold_word(field))
    }

    /// A subject that an automatic reply wrote: one of its prefixes (the
    /// parts before a colon) is an automatic reply's ("Automatic reply: Re:
    /// [BSM-2026-000042] ...", "Réponse automatique : ...").
    pub fn is_automatic_reply(&self, subject: &str) -> bool {
        let mut parts: Vec<&str> = subject.split(':').collect();
        parts.pop();
        parts
            .iter()
            .take(4)
            .any(|p| self.automatic_reply.contains(&folded_words(p)))
    }
}

/// The words of the rules, stemmed and numbered: a text's word is looked
/// up here once, and phrases compare numbers.
struct Lexicon {
    stemmers: Vec<Stemmer>,
    /// Words of one or two letters, compared as written (folded).
    short: HashMap<u64, u32>,
    /// Per language, rule words as written (lower case, with and without
    /// accents): found without stemming.
    exact: Vec<HashMap<String, u32>>,
    /// Per language, the folded stems of longer words.
    long: Vec<HashMap<String, u32>>,
    /// The first four folded letters of every longer rule word and of its
    /// stem (three, where the stem has three): which languages' stems are
    /// worth computing for a text's word. Most words of a text are in no
    /// rule, and stemming is the dearest step.
    prefixes: HashMap<u64, u8>,
    next: u32,
}

impl std::fmt::Debug for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lexicon")
            .field("short", &self.short.len())
            .field(
                "exact",
                &self.exact.iter().map(HashMap::len).collect::<Vec<_>>(),
            )
            .field(
                "long",
                &self.long.iter().map(HashMap::len).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Clone for Lexicon {
    fn clone(&self) -> Self {
        Lexicon {
            stemmers: Language::ALL
                .iter()
                .map(|l| Stemmer::create(algorithm(*l)))
                .collect(),
            short: self.short.clone(),
            exact: self.exact.clone(),
            long: self.long.clone(),
            prefixes: self.prefixes.clone(),
            next: self.next,
        }
    }
}

/// The Snowball stemmer of a language.
pub(super) fn algorithm(l: Language) -> Algorithm {
    match l {
        Language::En => Algorithm::English,
        Language::Fr => Algorithm::French,
        Language::De => Algorithm::German,
        Language::It => Algorithm::Italian,
        Language::Ru => Algorithm::Russian,
        Language::Es => Algorithm::Spanish,
    }
}

fn index(l: Language) -> usize {
    Language::ALL
        .iter()
        .position(|x| *x == l)
        .expect("one of the six")
}

/// The first four characters (or three, when there are only three) as one
/// number; a marker tells the two apart.
fn prefix(folded: &str) -> u64 {
    key(&folded.chars().take(PREFIX).collect::<Vec<_>>())
}

/// How many folded letters the prefix filter compares.
const PREFIX: usize = 4;

fn key(chars: &[char]) -> u64 {
    // 4 x 16 bits: enough for the Latin and Cyrillic letters of the six
    // languages (a rarer letter only costs a needless stemming).
    chars
        .iter()
        .fold(chars.len() as u64, |acc, c| (acc << 16) ^ (*c as u64))
}

/// What the stemmer reads: lower case as written, ё as е.
fn stem_input(lower: &str) -> String {
    lower.replace('ё', "е")
}

impl Lexicon {
    fn new() -> Lexicon {
        Lexicon {
            stemmers: Language::ALL
                .iter()
                .map(|l| Stemmer::create(algorithm(*l)))
                .collect(),
            short: HashMap::new(),
            exact: vec![HashMap::new(); Language::ALL.len()],
            long: vec![HashMap::new(); Language::ALL.len()],
            prefixes: HashMap::new(),
            next: 0,
        }
    }

    fn stem(&self, l: Language, lower: &str) -> String {
        fold_word(&self.stemmers[index(l)].stem(&stem_input(lower)))
    }

    /// The id of a rule word (`lower` is lower case, accents as written).
    fn intern(&mut self, l: Language, lower: &str) -> u32 {
        let folded = fold_word(lower);
        if folded.chars().count() <= 2 {
            let next = self.next;
            let chars: Vec<char> = folded.chars().collect();
            let id = *self.short.entry(key(&chars)).or_insert(next);
            if id == next {
                self.next += 1;
            }
            return id;
        }
        // The stem of the word as written, and of the word without its
        // accents: text typed without accents stems as the latter does.
        let stems = [self.stem(l, lower), self.stem(l, &folded)];
        let i = index(l);
        let id = stems
            .iter()
            .find_map(|s| self.long[i].get(s).copied())
            .unwrap_or_else(|| {
                self.next += 1;
                self.next - 1
            });
        for s in stems {
            *self.prefixes.entry(prefix(&s)).or_default() |= 1 << i;
            self.long[i].insert(s, id);
        }
        *self.prefixes.entry(prefix(&folded)).or_default() |= 1 << i;
        self.exact[i].insert(lower.to_string(), id);
        self.exact[i].insert(folded, id);
        id
    }

    /// The id a word as written has in a language. Most words of a text
    /// are in no rule: four folded letters tell, without allocating; a word
    /// that may be is lower-cased, found as a rule word is written, or
    /// stemmed (once per distinct word of the text: `scratch` remembers).
    pub fn lookup(&self, l: Language, raw: &str, scratch: &mut Scratch) -> Option<u32> {
        let mut first = ['\0'; PREFIX];
        let mut n = 0;
        for c in raw.chars() {
            fold_char(c, |f| {
                if n < PREFIX {
                    first[n] = f;
                }
                n += 1;
            });
            if n >= PREFIX {
                break;
            }
        }
        if n <= 2 {
            return self.short.get(&key(&first[..n])).copied();
        }
        let i = index(l);
        let n = n.min(PREFIX);
        let worth = |k: u64| {
            self.prefixes
                .get(&k)
                .is_some_and(|mask| mask & (1 << i) != 0)
        };
        // A rule stem of three letters ("ask") matches longer words ("asked").
        if !(worth(key(&first[..3])) || (n == PREFIX && worth(key(&first[..PREFIX])))) {
            return None;
        }
        scratch.lower.clear();
        scratch
            .lower
            .extend(raw.chars().flat_map(char::to_lowercase));
        if let Some(id) = self.exact[i].get(&scratch.lower) {
            return Some(*id);
        }
        if let Some(found) = scratch.memo.get(&scratch.lower) {
            return *found;
        }
        let found = self.long[i].get(&self.stem(l, &scratch.lower)).copied();
        scratch.memo.insert(scratch.lower.clone(), found);
        found
    }
}

/// What one text's lookups remember.
#[derive(Debug, Default)]
pub struct Scratch {
    lower: String,
    memo: HashMap<String, Option<u32>>,
}

/// Parsed, compiled rules.
#[derive(Debug, Clone)]
pub struct Rules {
    kind_tags: Vec<(Kind, Vec<String>)>,
    topic_tags: Vec<(Topic, Vec<String>)>,
    pub phrases: Vec<Phrase>,
    /// For each word id, the phrases whose first word it can be.
    first: HashMap<u32, Vec<u32>>,
    lexicon: Lexicon,
    pub evidence: Evidence,
    text: TextCues,
    /// The longest addressee line, in words.
    pub target_max_words: usize,
    /// The participating States' codes, as [`Use::State`] numbers them.
    pub states: Vec<String>,
}

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
        let states: BTreeMap<String, PerLanguage> =
            toml::from_str(STATE_NAMES).context("the State names")?;
        let mut b = Builder {
            lexicon: Lexicon::new(),
            phrases: Vec::new(),
            gap: raw.evidence.gap,
        };
        let mut kind_tags = Vec::new();
        for (name, e) in &raw.kinds {
            let kind: Kind =
                serde_plain(name).with_context(|| format!("unknown kind [kinds.{name}]"))?;
            kind_tags.push((kind, tags(&e.tags)));
            if kind == Kind::Circular && !(e.phrases.is_empty() && e.hints.is_empty()) {
                bail!("[kinds.circular] takes tags only: a circular is never guessed from words");
            }
            b.add(&e.phrases, Use::Kind(kind, PHRASE))?;
            b.add(&e.hints, Use::Kind(kind, HINT))?;
            b.add(&e.offers, Use::Offer(kind, PHRASE))?;
            b.add(&e.asked, Use::Asked(kind, PHRASE))?;
        }
        let mut topic_tags = Vec::new();
        for (name, e) in &raw.topics {
            let topic: Topic =
                serde_plain(name).with_context(|| format!("unknown topic [topics.{name}]"))?;
            topic_tags.push((topic, tags(&e.tags)));
            b.add(&e.phrases, Use::Topic(topic, TOPIC))?;
            b.add(&e.hints, Use::Topic(topic, TOPIC / 2.0))?;
            if !(e.offers.is_empty() && e.asked.is_empty()) {
                bail!("[topics.{name}] has no offers and nothing asked");
            }
        }
        if kind_tags.iter().all(|(_, t)| t.is_empty()) {
            bail!("no kind has any tag");
        }
        b.add(&raw.cues.negation, Use::Negation)?;
        b.add(&raw.cues.request, Use::Request)?;
        b.add(&raw.cues.receipt, Use::Receipt)?;
        b.add(&raw.cues.thanks, Use::Thanks)?;
        b.add(&raw.cues.given, Use::Given)?;
        b.add(&raw.cues.earlier, Use::Earlier)?;
        b.add(&raw.target.addressee, Use::Addressee)?;
        b.add(&raw.target.focal_point, Use::FocalPoint)?;
        b.add(&raw.target.conjunction, Use::Conjunction)?;
        b.add(&raw.target.colleagues, Use::Colleagues)?;
        let mut codes = Vec::new();
        for (code, names) in &states {
            // A State's name is matched whole: "Bosnia & Herzegovina" as
            // "Bosnia and Herzegovina" at most.
            // Names are written with spaces, hyphens and ampersands: their
            // words are what counts.
            let names: PerLanguage = names
                .iter()
                .map(|(l, v)| {
                    let words = |n: &String| {
                        n.split(|c: char| !c.is_alphanumeric())
                            .filter(|w| !w.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    (*l, v.iter().map(words).collect())
                })
                .collect();
            let gap = std::mem::replace(&mut b.gap, 1);
            b.add(&names, Use::State(codes.len()))?;
            b.gap = gap;
            codes.push(code.clone());
        }
        let mut first: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, p) in b.phrases.iter().enumerate() {
            for id in &p.words[0] {
                first.entry(*id).or_default().push(i as u32);
            }
        }
        kind_tags.sort_by_key(|(k, _)| WORD_KINDS.iter().position(|x| x == k));
        topic_tags.sort_by_key(|(t, _)| *t);
        let e = &raw.evidence;
        if e.min_score <= 0.0 || e.margin < 0.0 {
            bail!("[evidence] min-score must be positive and margin not negative");
        }
        if e.clear_lead <= 0.0
            || !(0.0..=1.0).contains(&e.overrule)
            || !(0.0..=1.0).contains(&e.agree)
            || e.clear_lead_none <= 0.0
            || !(0.0..=1.0).contains(&e.overrule_none)
        {
            bail!(
                "[evidence] clear-lead and clear-lead-none must be positive, overrule, agree and overrule-none probabilities (0 to 1)"
            );
        }
        Ok(Rules {
            kind_tags,
            topic_tags,
            phrases: b.phrases,
            first,
            lexicon: b.lexicon,
            evidence: Evidence {
                min_score: e.min_score,
                margin: e.margin,
                opening_factor: e.opening_factor,
                reference: e.reference,
                negation_window: e.negation_window,
                clear_lead: e.clear_lead,
                overrule: e.overrule,
                agree: e.agree,
                clear_lead_none: e.clear_lead_none,
                overrule_none: e.overrule_none,
            },
            text: TextCues {
                closings: raw
                    .text
                    .closings
                    .values()
                    .flatten()
                    .map(|c| folded_words(c))
                    .filter(|c| !c.is_empty())
                    .collect(),
                attributions: raw
                    .text
                    .attributions
                    .values()
                    .flatten()
                    .map(|w| fold_word(w))
                    .collect(),
                header_from: raw.text.header_from.iter().map(|w| fold_word(w)).collect(),
                header_sent: raw.text.header_sent.iter().map(|w| fold_word(w)).collect(),
                header_subject: raw
                    .text
                    .header_subject
                    .iter()
                    .map(|w| fold_word(w))
                    .collect(),
                automatic_reply: raw
                    .text
                    .automatic_reply
                    .iter()
                    .map(|w| folded_words(w))
                    .filter(|w| !w.is_empty())
                    .collect(),
            },
            target_max_words: raw.target.max_words,
            states: codes,
        })
    }

    pub fn text_cues(&self) -> &TextCues {
        &self.text
    }

    /// The word id of a text's word (as written) in a language.
    pub fn lookup(&self, l: Language, raw: &str, scratch: &mut Scratch) -> Option<u32> {
        self.lexicon.lookup(l, raw, scratch)
    }

    /// The phrases that can start with the word id.
    pub fn starting_with(&self, id: u32) -> &[u32] {
        self.first.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The kind an explicit tag (already normalized, upper case) names.
    pub fn kind_of_tag(&self, tag: &str) -> Option<Kind> {
        self.kind_tags
            .iter()
            .find(|(_, tags)| tags.iter().any(|t| t == tag))
            .map(|(k, _)| *k)
    }

    pub fn topic_of_tag(&self, tag: &str) -> Option<Topic> {
        self.topic_tags
            .iter()
            .find(|(_, tags)| tags.iter().any(|t| t == tag))
            .map(|(t, _)| *t)
    }
}

/// Compiles phrases.
struct Builder {
    lexicon: Lexicon,
    phrases: Vec<Phrase>,
    gap: usize,
}

impl Builder {
    fn add(&mut self, lists: &PerLanguage, what: Use) -> Result<()> {
        for (language, list) in lists {
            for source in list {
                let mut words = Vec::new();
                for alternatives in source.split_whitespace() {
                    let mut ids = Vec::new();
                    for w in alternatives.split('|') {
                        let lower = w.to_lowercase();
                        if lower.is_empty() || !lower.chars().all(char::is_alphanumeric) {
                            bail!(
                                "{}: \"{source}\": a word is letters and digits, `|` between alternatives",
                                language.code()
                            );
                        }
                        ids.push(self.lexicon.intern(*language, &lower));
                    }
                    words.push(ids);
                }
                if words.is_empty() {
                    bail!("{}: an empty phrase", language.code());
                }
                self.phrases.push(Phrase {
                    language: *language,
                    words,
                    gap: self.gap,
                    what,
                    source: source.clone(),
                });
            }
        }
        Ok(())
    }
}

fn tags(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|t| normalize(t).to_uppercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn serde_plain<T: serde::de::DeserializeOwned>(name: &str) -> Result<T> {
    Ok(T::deserialize(serde::de::value::StrDeserializer::<
        serde::de::value::Error,
    >::new(name))?)
}

/// One word, folded: lower case, accents removed, ß as ss.
pub fn fold_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        fold_char(c, |f| out.push(f));
    }
    out
}

/// One character, folded (into none, one or several).
fn fold_char(c: char, mut push: impl FnMut(char)) {
    if c.is_ascii() {
        push(c.to_ascii_lowercase());
    } else if c == 'ß' {
        push('s');
        push('s');
    } else {
        unicode_normalization::char::decompose_canonical(c, |d| {
            if !unicode_normalization::char::is_combining_mark(d) {
                d.to_lowercase().for_each(&mut push);
            }
        });
    }
}

/// The folded words of a line (letters and digits).
pub fn folded_words(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold_word)
        .collect()
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
            Kind::InformationReply,
            Kind::Circular,
        ] {
            assert!(
                r.kind_tags.iter().any(|(x, t)| *x == k && !t.is_empty()),
                "{k:?}"
            );
        }
        for k in WORD_KINDS {
            for l in Language::ALL {
                assert!(
                    r.phrases.iter().any(|p| p.language == l
                        && matches!(p.what, Use::Kind(x, _) | Use::Offer(x, _) if x == k)),
                    "{k:?} has no phrase in {l:?}"
                );
            }
        }
        assert_eq!(r.topic_tags.len(), 4);
        assert_eq!(r.states.len(), 57);
    }

    #[test]
    fn normalization_folds_case_accents_and_space() {
        assert_eq!(normalize("  Bewährte\u{00A0}  PRAXIS "), "bewahrte praxis");
        assert_eq!(
            normalize("Demande d\u{2019}Assistance"),
            "demande d'assistance"
        );
        assert_eq!(normalize("ТАМОЖНЯ"), "таможня");
        assert_eq!(fold_word("Grüße"), "grusse");
        assert_eq!(fold_word("Пограничный"), "пограничныи");
    }

    /// Inflections of one word share its id, in each language, typed with
    /// accents or without.
    #[test]
    fn inflected_words_share_the_rule_word_id() {
        let mut lx = Lexicon::new();
        let cases: [(Language, &str, &[&str]); 6] = [
            (
                Language::En,
                "request",
                &["requests", "requested", "requesting"],
            ),
            (
                Language::Fr,
                "préciser",
                &["précisez", "preciser", "précisions"],
            ),
            (
                Language::De,
                "Unterstützung",
                &["Unterstützungen", "unterstutzung"],
            ),
            (
                Language::It,
                "chiedere",
                &["chiede", "chiediamo", "chiedono"],
            ),
            (Language::Ru, "просить", &["просим", "просит", "просят"]),
            (
                Language::Es,
                "información",
                &["informacion", "informaciones"],
            ),
        ];
        for (l, rule, forms) in cases {
            let id = lx.intern(l, rule);
            for form in forms {
                let found = lx.lookup(l, form, &mut Scratch::default());
                assert_eq!(found, Some(id), "{l:?}: {form} is not {rule}");
            }
        }
    }

    #[test]
    fn bad_rules_are_errors() {
        let base = DEFAULT_RULES.split("[kinds.").next().unwrap();
        let err =
            Rules::parse(&format!("{base}[kinds.nonsense]\ntags=[\"X\"]\n[topics]\n")).unwrap_err();
        assert!(format!("{err:#}").contains("nonsense"));
        let err = Rules::parse(&format!(
            "{base}[kinds.circular]\ntags=[\"C\"]\nphrases.en=[\"circular\"]\n[topics]\n"
        ))
        .unwrap_err();
        assert!(format!("{err:#}").contains("tags only"));
        let err = Rules::parse(&format!(
            "{base}[kinds.best_practice]\ntags=[\"B\"]\nphrases.en=[\"best-practice\"]\n[topics]\n"
        ))
        .unwrap_err();
        assert!(format!("{err:#}").contains("letters and digits"));
    }
}
