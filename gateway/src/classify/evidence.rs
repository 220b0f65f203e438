//! Evidence: where the rules' phrases occur in the sender's new text, and
//! what they weigh for each kind and topic.
//!
//! A phrase counts once per kind (where it weighs most). It weighs more in
//! the subject and the opening lines, nothing when a negation stands just
//! before it or inside it ("this is not a request for assistance"), and an
//! offer asked for is a request ("we ask you to share your experience").

use super::rules::{Phrase, Rules, Scratch, Use};
use super::text::{Reading, Role};
use super::{Kind, Language, Topic};

/// One occurrence of a phrase: its first and last word.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub phrase: usize,
    pub start: usize,
    pub end: usize,
}

/// Every occurrence of every phrase of the text's language in the
/// reading's words. One language: the same stem in two languages' rules
/// ("expert", "experts") must not count twice, and a word is stemmed once.
pub fn hits(reading: &Reading<'_>, rules: &Rules, language: Language) -> Vec<Hit> {
    let words = &reading.words;
    // The word ids of each word: ids[offsets[i]..offsets[i + 1]].
    let mut ids = Vec::new();
    let mut offsets = Vec::with_capacity(words.len() + 1);
    offsets.push(0);
    let mut scratch = Scratch::default();
    for w in words {
        ids.extend(rules.lookup(language, w.raw, &mut scratch));
        offsets.push(ids.len());
    }
    let of = |i: usize| &ids[offsets[i]..offsets[i + 1]];
    let mut out: Vec<Hit> = Vec::new();
    for start in 0..words.len() {
        let first_hit = out.len();
        for id in of(start) {
            for &p in rules.starting_with(*id) {
                let p = p as usize;
                let phrase = &rules.phrases[p];
                if phrase.language != language || out[first_hit..].iter().any(|h| h.phrase == p) {
                    continue;
                }
                if let Some(end) = extend(phrase, reading, &of, start, 1) {
                    out.push(Hit {
                        phrase: p,
                        start,
                        end,
                    });
                }
            }
        }
    }
    out
}

/// The last word of the phrase when its word `k` onwards follow word `at`.
fn extend<'i>(
    phrase: &Phrase,
    reading: &Reading<'_>,
    of: &impl Fn(usize) -> &'i [u32],
    at: usize,
    k: usize,
) -> Option<usize> {
    if k == phrase.words.len() {
        return Some(at);
    }
    let sentence = reading.words[at].sentence;
    let last = (at + 1 + phrase.gap).min(reading.words.len() - 1);
    for j in at + 1..=last {
        if reading.words[j].sentence != sentence {
            break;
        }
        if of(j).iter().any(|id| phrase.words[k].contains(id)) {
            if let Some(end) = extend(phrase, reading, of, j, k + 1) {
                return Some(end);
            }
        }
    }
    None
}

/// Why something weighs what it does: a rule and the line it matched on.
#[derive(Debug, Clone)]
pub struct Reason {
    pub rule: String,
    /// The line number in the signed text (0: the subject).
    pub line: usize,
    pub weight: f32,
    pub note: Option<&'static str>,
}

/// The evidence for one kind or topic.
#[derive(Debug, Clone)]
pub struct Tally<T> {
    pub what: T,
    pub score: f32,
    pub reasons: Vec<Reason>,
}

impl<T: PartialEq + Copy> Tally<T> {
    fn add(
        list: &mut Vec<Tally<T>>,
        what: T,
        phrase: usize,
        reason: Reason,
        seen: &mut Vec<(usize, T, f32)>,
    ) {
        // A phrase counts once for each kind: where it weighs most.
        if let Some(s) = seen.iter_mut().find(|(p, w, _)| *p == phrase && *w == what) {
            if s.2 >= reason.weight {
                return;
            }
            let t = list.iter_mut().find(|t| t.what == what).expect("tallied");
            t.score -= s.2;
            t.reasons.retain(|r| r.rule != reason.rule);
            s.2 = reason.weight;
        } else {
            seen.push((phrase, what, reason.weight));
        }
        match list.iter_mut().find(|t| t.what == what) {
            Some(t) => {
                t.score += reason.weight;
                t.reasons.push(reason);
            }
            None => list.push(Tally {
                what,
                score: reason.weight,
                reasons: vec![reason],
            }),
        }
    }
}

/// The evidence of a text.
#[derive(Debug, Clone, Default)]
pub struct Weighed {
    pub kinds: Vec<Tally<Kind>>,
    pub topics: Vec<Tally<Topic>>,
    /// The line of the first thanks for what was done (a `thanks` cue).
    pub thanks: Option<usize>,
    /// The line of the first material asked for (an `asked` phrase that
    /// counted).
    pub asked: Option<usize>,
}

impl Weighed {
    /// Evidence from outside the phrases (a reference number).
    pub fn add_kind(&mut self, kind: Kind, reason: Reason) {
        match self.kinds.iter_mut().find(|t| t.what == kind) {
            Some(t) => {
                t.score += reason.weight;
                t.reasons.push(reason);
            }
            None => self.kinds.push(Tally {
                what: kind,
                score: reason.weight,
                reasons: vec![reason],
            }),
        }
    }
}

/// Weighs the hits.
pub fn weigh(reading: &Reading<'_>, hits: &[Hit], rules: &Rules) -> Weighed {
    let mut w = Weighed::default();
    let mut seen_kinds = Vec::new();
    let mut seen_topics = Vec::new();
    let e = &rules.evidence;
    // Whether each offer is asked for ("we ask you to share"), read once:
    // the overlap below and the weighing both need it.
    let asked: Vec<bool> = hits
        .iter()
        .map(|h| {
            matches!(rules.phrases[h.phrase].what, Use::Offer(..))
                && asked_for(reading, hits, rules, h)
        })
        .collect();
    // An offer asked for is a request for information ("could you send us
    // the materials": the offer's words and the material asked share them).
    let kind_of = |i: usize| match rules.phrases[hits[i].phrase].what {
        Use::Offer(_, _) if asked[i] => Some(Kind::InformationRequest),
        Use::Kind(k, _) | Use::Offer(k, _) | Use::Asked(k, _) => Some(k),
        _ => None,
    };
    // A word says one thing: where phrases of two kinds share words ("in
    // reply to your request for information"), the one read first keeps
    // them (hits come in reading order).
    let mut kept: Vec<usize> = Vec::new();
    for (i, h) in hits.iter().enumerate() {
        if let Some(k) = kind_of(i) {
            let overlaps = kept.iter().any(|&o| {
                kind_of(o).is_some_and(|ok| ok != k)
                    && hits[o].start <= h.end
                    && h.start <= hits[o].end
            });
            if overlaps {
                continue;
            }
        }
        kept.push(i);
    }
    for i in kept {
        let h = &hits[i];
        let phrase = &rules.phrases[h.phrase];
        let word = &reading.words[h.start];
        let line = &reading.lines[word.line];
        let factor = match line.role {
            Role::Subject | Role::Opening => e.opening_factor,
            _ => 1.0,
        };
        let reason = |weight: f32, note| Reason {
            rule: phrase.source.clone(),
            line: line.number,
            weight,
            note,
        };
        let cue = |what| cue_in_sentence(reading, hits, rules, h, what);
        match phrase.what {
            Use::Kind(kind, weight) | Use::Offer(kind, weight) => {
                // Thanks for the support, the courses and the equipment
                // given ask for none of them, unless the sentence asks too.
                if negated(reading, hits, rules, h)
                    || (kind == Kind::InformationReply && acknowledged(reading, hits, rules, h))
                    || (kind == Kind::AssistanceRequest && cue(Use::Thanks) && !cue(Use::Request))
                {
                    continue;
                }
                let (kind, reason) = if asked[i] {
                    let note = Some("asked for, not offered");
                    (
                        Kind::InformationRequest,
                        reason(weight / 2.0 * factor, note),
                    )
                } else {
                    (kind, reason(weight * factor, None))
                };
                Tally::add(&mut w.kinds, kind, h.phrase, reason, &mut seen_kinds);
            }
            Use::Asked(kind, weight) => {
                if negated(reading, hits, rules, h) || !cue(Use::Request) || cue(Use::Given) {
                    continue;
                }
                w.asked.get_or_insert(line.number);
                let reason = reason(weight * factor, Some("asked for"));
                Tally::add(&mut w.kinds, kind, h.phrase, reason, &mut seen_kinds);
            }
            Use::Thanks => {
                w.thanks.get_or_insert(line.number);
            }
            Use::Topic(topic, weight) => {
                Tally::add(
                    &mut w.topics,
                    topic,
                    h.phrase,
                    reason(weight, None),
                    &mut seen_topics,
                );
            }
            _ => {}
        }
    }
    w
}

/// The hits of cues of one use in the sentence of the phrase `h`.
fn cues_in_sentence<'h>(
    reading: &'h Reading<'_>,
    hits: &'h [Hit],
    rules: &'h Rules,
    h: &Hit,
    what: Use,
) -> impl Iterator<Item = &'h Hit> {
    let sentence = reading.words[h.start].sentence;
    hits.iter().filter(move |c| {
        rules.phrases[c.phrase].what == what && reading.words[c.start].sentence == sentence
    })
}

/// A negation cue just before the phrase, or inside it, in its sentence.
fn negated(reading: &Reading<'_>, hits: &[Hit], rules: &Rules, h: &Hit) -> bool {
    let window = rules.evidence.negation_window;
    cues_in_sentence(reading, hits, rules, h, Use::Negation).any(|n| {
        (n.end < h.start && h.start - n.end <= window) || (n.start > h.start && n.end < h.end)
    })
}

/// A cue of one use anywhere in the phrase's sentence: thanks without a
/// request beside an assistance request's words, a request or a `given`
/// cue beside material asked for.
fn cue_in_sentence(reading: &Reading<'_>, hits: &[Hit], rules: &Rules, h: &Hit, what: Use) -> bool {
    cues_in_sentence(reading, hits, rules, h, what)
        .next()
        .is_some()
}

/// Whether the sentence of `h` acknowledges receipt: a receipt cue in it
/// ("the information on your request will be sent later" names the request
/// and answers nothing) that no recalled message before it makes past
/// ("further to our e-mail of 3 March, which confirmed receipt of your
/// request, here are ...").
pub fn acknowledged(reading: &Reading<'_>, hits: &[Hit], rules: &Rules, h: &Hit) -> bool {
    cues_in_sentence(reading, hits, rules, h, Use::Receipt)
        .any(|r| !cues_in_sentence(reading, hits, rules, r, Use::Earlier).any(|e| e.end < r.start))
}

/// A request cue before the phrase in its sentence.
fn asked_for(reading: &Reading<'_>, hits: &[Hit], rules: &Rules, h: &Hit) -> bool {
    cues_in_sentence(reading, hits, rules, h, Use::Request).any(|r| r.end < h.start)
}
