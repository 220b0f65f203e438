//! The State a message is addressed to, from its signed text only.
//!
//! An addressee line is a short line of the subject or the opening that
//! starts with an addressee cue ("Attn:", "To the", "À l'attention de",
//! "Для", "Dear") and names the network's focal point ("NFP", "PCN", "НКП"),
//! a State's code in parentheses or the State's people ("Dear colleagues
//! from Poland", "Уважаемые коллеги из Монголии": the name right after, or
//! ending the salutation after the name of the State's service), and a
//! State: by its name (the CLDR's, or ISO 3166-1's official name,
//! "Эстонской Республики"; capitalised as names are written, in any case of
//! its language) or by that code. Exactly one State, other than the sender's own, must be
//! named on all addressee lines together: two States, or a State named only
//! in a sentence ("as France did last year"), give no target. An addressee
//! line that names no State may go on on the next short line, which does
//! ("An die Nationale Kontaktstelle" / "der Republik Polen"). An addressee
//! line that joins addressees ("of Kazakhstan and of the Kyrgyz Republic")
//! gives no target, even when only one of them is a name the rules know. A
//! wrong target sends one State's mail to another, so this errs on the side
//! of none.

use super::evidence::Hit;
use super::rules::{Rules, Use};
use super::text::{Reading, Role, Word};
use crate::directory::Directory;

/// The target and the line that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub state: String,
    pub line: usize,
}

/// How far into its line an addressee cue may start (after "À l'", "Для").
const CUE_WITHIN: usize = 3;

/// How far after a conjunction a second addressee's name may start.
const JOINED_WITHIN: usize = 3;

/// How far after "colleagues from" the State's name must start ("коллеги
/// из Республики Узбекистан": the name's own first word).
const COLLEAGUES_WITHIN: usize = 2;

/// How far after "colleagues from" the State's name may start when it ends
/// the salutation, the name of a service before it ("коллеги из
/// Государственной пограничной службы Украины,").
const SERVICE_WITHIN: usize = 6;

/// The longest line that continues an addressee line, in words.
const CONTINUATION_WORDS: usize = 10;

pub fn find(
    reading: &Reading<'_>,
    hits: &[Hit],
    rules: &Rules,
    directory: &Directory,
    sender: &str,
) -> Option<Target> {
    let mut found: Vec<Target> = Vec::new();
    for (index, line) in reading.lines.iter().enumerate() {
        let Some(on) = Line::of(reading, hits, rules, index) else {
            continue;
        };
        if !on.addressed {
            continue;
        }
        let mut named = on.states.clone();
        let mut joined = on.joined;
        let mut number = line.number;
        // "Для НКП" / "Республики Казахстан": an addressee line that names
        // no State may be continued on the next line, which names it.
        // Not after a salutation ("Dear NFP colleagues," then the letter),
        // and only a few words: an address, not a sentence.
        let salutation = line.text.trim_end().ends_with([',', ':', '!']);
        if named.is_empty() && !salutation {
            if let Some(next) = Line::of(reading, hits, rules, index + 1) {
                if !next.addressed && next.words <= CONTINUATION_WORDS {
                    named = next.states;
                    joined |= next.joined;
                    number = reading.lines[index + 1].number;
                }
            }
        }
        if joined && !named.is_empty() {
            return None;
        }
        for state in named {
            if state.eq_ignore_ascii_case(sender) {
                continue;
            }
            let Some(nfp) = directory.nfp(&state) else {
                continue;
            };
            if !found.iter().any(|t| t.state == nfp.id) {
                found.push(Target {
                    state: nfp.id.clone(),
                    line: number,
                });
            }
        }
    }
    match found.len() {
        1 => found.pop(),
        _ => None,
    }
}

/// What a short line of the subject or the opening says of an addressee.
struct Line {
    /// An addressee cue among its first words, and the network's focal
    /// point or a State's code in parentheses.
    addressed: bool,
    /// The States it names: capitalised names, codes in parentheses.
    states: Vec<String>,
    /// A conjunction outside the States' names: more than one addressee.
    joined: bool,
    words: usize,
}

impl Line {
    fn of(reading: &Reading<'_>, hits: &[Hit], rules: &Rules, index: usize) -> Option<Line> {
        let line = reading.lines.get(index)?;
        if !matches!(line.role, Role::Subject | Role::Opening) {
            return None;
        }
        let first = reading.words.iter().position(|w| w.line == index)?;
        let count = reading.words[first..]
            .iter()
            .take_while(|w| w.line == index)
            .count();
        if count > rules.target_max_words {
            return None;
        }
        let words = first..first + count;
        let on_line: Vec<&Hit> = hits.iter().filter(|h| words.contains(&h.start)).collect();
        let is = |u: fn(&Use) -> bool| {
            on_line
                .iter()
                .filter(move |h| u(&rules.phrases[h.phrase].what))
        };
        let codes: Vec<String> = reading.words[words.clone()]
            .iter()
            .filter(|w| {
                w.bracketed && w.raw.len() == 2 && w.raw.chars().all(|c| c.is_ascii_uppercase())
            })
            .map(|w| w.raw.to_string())
            .collect();
        let names: Vec<&Hit> = is(|u| matches!(u, Use::State(_))).copied().collect();
        // "Уважаемые коллеги из Монголии", "Cari colleghi della Croazia": the
        // State's name right after "colleagues from", written together
        // ("colleagues, as in Poland" is no salutation).
        // Or a salutation that ends with the State's name, its service in
        // between ("коллеги из Государственной пограничной службы Украины,"),
        // with no conjunction (two services, "ГПС и ГТК", are no one's) and
        // no comma ("colleagues from the border police, as in Poland,").
        let salutation = line.text.trim_end().ends_with([',', ':', '!']);
        let last = first + count - 1;
        let conjunction_in = |from: usize, to: usize| {
            is(|u| *u == Use::Conjunction).any(|j| j.start > from && j.start < to)
        };
        let colleagues_of = is(|u| *u == Use::Colleagues).any(|c| {
            c.end == c.start + 1
                && names.iter().any(|n| {
                    n.start > c.end
                        && (n.start <= c.end + COLLEAGUES_WITHIN
                            || (salutation
                                && n.end == last
                                && n.start <= c.end + SERVICE_WITHIN
                                && !conjunction_in(c.end, n.start)
                                && unbroken(
                                    line.text,
                                    &reading.words[c.end],
                                    &reading.words[n.start],
                                )))
                })
        });
        let addressed = is(|u| *u == Use::Addressee).any(|h| h.start < first + CUE_WITHIN)
            && (is(|u| *u == Use::FocalPoint).next().is_some()
                || !codes.is_empty()
                || colleagues_of);
        // "Казахстан и Кыргызской Республики", "Poland and of the Czech
        // Republic": a conjunction after a State's name, then a name again
        // within a few words. Not "Bosnia and Herzegovina" (one State),
        // "Kolleginnen und Kollegen der NKS Deutschland" (before the name),
        // "Andorra – tabaco y controles" (no name follows).
        let joined = is(|u| *u == Use::Conjunction).any(|c| {
            !names.iter().any(|n| (n.start..=n.end).contains(&c.start))
                && names.iter().any(|n| n.end < c.start)
                && (c.end + 1..=c.end + JOINED_WITHIN)
                    .any(|i| words.contains(&i) && capitalised(&reading.words[i]))
        });
        let named = names
            .into_iter()
            .filter(|h| written_as_a_name(reading, h, &rules.phrases[h.phrase].source))
            .filter_map(|h| match rules.phrases[h.phrase].what {
                Use::State(s) => Some(rules.states[s].clone()),
                _ => None,
            });
        Some(Line {
            addressed,
            states: named.chain(codes).collect(),
            joined,
            words: count,
        })
    }
}

/// Names are capitalised: "груз" (cargo) is not Грузия. A name's first
/// word must be, and its other words too, except as many as the name itself
/// writes in small letters ("République française", "Repubblica italiana")
/// and short words ("of", "и").
fn written_as_a_name(reading: &Reading<'_>, hit: &Hit, name: &str) -> bool {
    let long_and_small =
        |w: &str| w.chars().count() > 3 && !w.chars().next().is_some_and(char::is_uppercase);
    let words = &reading.words[hit.start..=hit.end];
    let small = words.iter().filter(|w| long_and_small(w.raw)).count();
    capitalised(&words[0])
        && small
            <= name
                .split_whitespace()
                .filter(|w| long_and_small(w))
                .count()
}

/// Whether no punctuation stands between two words of a line (`a` before
/// `b`): one phrase, not a clause added.
fn unbroken(line: &str, a: &Word<'_>, b: &Word<'_>) -> bool {
    let offset = |w: &Word<'_>| (w.raw.as_ptr() as usize).checked_sub(line.as_ptr() as usize);
    match (offset(a), offset(b)) {
        (Some(from), Some(to)) if from + a.raw.len() <= to && to <= line.len() => line
            [from + a.raw.len()..to]
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || c == '-' || c == '\''),
        _ => false,
    }
}

/// Whether a word is written with a capital, as names are.
fn capitalised(w: &Word<'_>) -> bool {
    w.raw.chars().next().is_some_and(char::is_uppercase)
}
