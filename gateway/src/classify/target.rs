//! The State a message is addressed to, from its signed text only.
//!
//! An addressee line is a short line of the subject or the opening that
//! starts with an addressee cue ("Attn:", "To the", "À l'attention de",
//! "Для", "Dear") and names the network's focal point ("NFP", "PCN", "НКП")
//! or a State's code in parentheses, and a State: by its name (from the
//! CLDR, capitalised as names are written, in any case of its language) or
//! by that code. Exactly one State, other than the sender's own, must be
//! named on all addressee lines together: two States, or a State named only
//! in a sentence ("as France did last year"), give no target. A wrong target
//! sends one State's mail to another, so this errs on the side of none.

use super::evidence::Hit;
use super::rules::{Rules, Use};
use super::text::{Reading, Role};
use crate::directory::Directory;

/// The target and the line that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub state: String,
    pub line: usize,
}

/// How far into its line an addressee cue may start (after "À l'", "Для").
const CUE_WITHIN: usize = 3;

pub fn find(
    reading: &Reading<'_>,
    hits: &[Hit],
    rules: &Rules,
    directory: &Directory,
    sender: &str,
) -> Option<Target> {
    let mut found: Vec<Target> = Vec::new();
    for (index, line) in reading.lines.iter().enumerate() {
        if !matches!(line.role, Role::Subject | Role::Opening) {
            continue;
        }
        let Some(first) = reading.words.iter().position(|w| w.line == index) else {
            continue;
        };
        let count = reading.words[first..]
            .iter()
            .take_while(|w| w.line == index)
            .count();
        if count > rules.target_max_words {
            continue;
        }
        let words = first..first + count;
        let on_line: Vec<&Hit> = hits.iter().filter(|h| words.contains(&h.start)).collect();
        let is = |u: fn(&Use) -> bool| {
            on_line
                .iter()
                .filter(move |h| u(&rules.phrases[h.phrase].what))
        };
        if !is(|u| *u == Use::Addressee).any(|h| h.start < first + CUE_WITHIN) {
            continue;
        }
        let codes: Vec<&str> = reading.words[words.clone()]
            .iter()
            .filter(|w| {
                w.bracketed && w.raw.len() == 2 && w.raw.chars().all(|c| c.is_ascii_uppercase())
            })
            .map(|w| w.raw)
            .collect();
        if is(|u| *u == Use::FocalPoint).next().is_none() && codes.is_empty() {
            continue;
        }
        let named = is(|u| matches!(u, Use::State(_)))
            .filter(|h| {
                // Names are capitalised: "груз" (cargo) is not Грузия.
                reading.words[h.start..=h.end].iter().all(|w| {
                    w.raw.chars().next().is_some_and(char::is_uppercase)
                        || w.raw.chars().count() <= 3
                })
            })
            .filter_map(|h| match rules.phrases[h.phrase].what {
                Use::State(s) => Some(rules.states[s].as_str()),
                _ => None,
            });
        for state in named.chain(codes) {
            if state.eq_ignore_ascii_case(sender) {
                continue;
            }
            let Some(nfp) = directory.nfp(state) else {
                continue;
            };
            if !found.iter().any(|t| t.state == nfp.id) {
                found.push(Target {
                    state: nfp.id.clone(),
                    line: line.number,
                });
            }
        }
    }
    match found.len() {
        1 => found.pop(),
        _ => None,
    }
}
