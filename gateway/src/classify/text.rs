//! The signed text as classification reads it: its lines, each with its
//! role (the signed subject, the opening lines, the body, quoted text, the
//! signature), and the words of the sender's own new text, folded (case,
//! accents) and numbered by sentence.
//!
//! Quoted text is the request being answered and a signature is the sender's
//! unit: neither says what this message is, so neither gives a kind or a
//! topic. Quoted headers are still read for the reference they cite. A
//! forward's forwarded text, below a short cover note, is the exception: it
//! is what the sender sends.

use super::rules::TextCues;

/// What a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The signed (protected) subject.
    Subject,
    /// The first lines of the sender's own text.
    Opening,
    Body,
    /// Quoted text: `>` lines, and everything below an attribution line
    /// ("On ... wrote:") or an original-message separator.
    Quoted,
    /// From a closing formula or `-- ` to the end of the new text.
    Signature,
}

impl Role {
    /// Whether the line is the sender's own new text.
    pub fn is_new(self) -> bool {
        matches!(self, Role::Subject | Role::Opening | Role::Body)
    }
}

#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// 1 for the first line of the signed text; 0 for the subject.
    pub number: usize,
    pub text: &'a str,
    pub role: Role,
}

/// A word of the new text.
#[derive(Debug, Clone)]
pub struct Word<'a> {
    /// Index into [`Reading::lines`].
    pub line: usize,
    /// Words of one sentence share this number.
    pub sentence: usize,
    /// The word as written: what the rules' lexicon looks up.
    pub raw: &'a str,
    /// Whether an opening parenthesis or bracket is right before it and a
    /// closing one right after it: `(PL)`.
    pub bracketed: bool,
}

/// The text, read.
#[derive(Debug, Clone)]
pub struct Reading<'a> {
    pub lines: Vec<Line<'a>>,
    pub words: Vec<Word<'a>>,
}

/// How much of the text's lines are read for their roles and references.
pub const MAX_LINES_BYTES: usize = 64 * 1024;
/// How many bytes of new text give words: what a message is, its first
/// paragraphs say; it keeps the cost of a long report flat.
pub const MAX_WORDS_BYTES: usize = 4 * 1024;
/// How many non-blank lines of new text are its opening.
pub const OPENING_LINES: usize = 6;

/// How many words of the sender's own a forward's cover note may have for
/// the forwarded text to be read as the message ("FYI, below the request
/// of our customs service"); a longer note says itself what it is.
pub const MAX_COVER_WORDS: usize = 60;

/// Where a line stands in a forward's forwarded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forwarded {
    /// Not in one.
    No,
    /// Its separator and header block ("From:", "Sent:", "Subject:").
    Header,
    /// Its text, read as the sender's.
    Text,
}

/// Reads the subject and the signed text. In a forward (`forward`: its
/// subject says so) whose cover note is short, the forwarded message's
/// text, below its header block and down to its closing or a quote inside
/// it, is read as the sender's own: forwarding it is what the sender says.
pub fn read<'a>(subject: Option<&'a str>, text: &'a str, cues: &TextCues) -> Reading<'a> {
    let mut lines = Vec::new();
    if let Some(s) = subject {
        lines.push(Line {
            number: 0,
            text: s,
            role: Role::Subject,
        });
    }
    let forward = subject.is_some_and(super::is_forward);
    let text = super::prefix(text, MAX_LINES_BYTES);
    let mut quoted_below = false;
    let mut signature = false;
    let mut opening_left = OPENING_LINES;
    let mut new_lines = 0;
    let mut cover_words = 0;
    let mut forwarded = Forwarded::No;
    let mut forwarded_lines = 0;
    let all: Vec<&str> = text.lines().collect();
    for (i, raw) in all.iter().enumerate() {
        let trimmed = raw.trim();
        let starts = !quoted_below
            && (starts_quoted_block(
                trimmed,
                all.get(i + 1..(i + 4).min(all.len())),
                new_lines > 0 || forward,
                cues,
            ) || (forward && trimmed.len() >= 5 && trimmed.bytes().all(|b| b == b'-')));
        match forwarded {
            Forwarded::No if starts => {
                if forward && cover_words <= MAX_COVER_WORDS {
                    forwarded = Forwarded::Header;
                    signature = false;
                } else {
                    quoted_below = true;
                }
            }
            // Its end: a quote inside it, or its own closing.
            Forwarded::Text
                if starts
                    || trimmed == "--"
                    || (forwarded_lines > 0 && cues.is_closing(trimmed)) =>
            {
                forwarded = Forwarded::No;
                quoted_below = true;
            }
            Forwarded::Header
                if !(trimmed.is_empty() || header_field(trimmed).is_some() || starts) =>
            {
                forwarded = Forwarded::Text;
            }
            _ => {}
        }
        let role = if quoted_below || trimmed.starts_with('>') || forwarded == Forwarded::Header {
            Role::Quoted
        } else if forwarded == Forwarded::Text {
            if !trimmed.is_empty() {
                forwarded_lines += 1;
            }
            Role::Body
        } else if signature || trimmed == "--" || (new_lines > 0 && cues.is_closing(trimmed)) {
            signature = true;
            Role::Signature
        } else if opening_left > 0 {
            if !trimmed.is_empty() {
                opening_left -= 1;
            }
            Role::Opening
        } else {
            Role::Body
        };
        if role.is_new() && !trimmed.is_empty() && forwarded == Forwarded::No {
            new_lines += 1;
            // Counted only where it matters: a cover note not yet too long.
            if forward && cover_words <= MAX_COVER_WORDS {
                cover_words += trimmed.split_whitespace().count();
            }
        }
        lines.push(Line {
            number: i + 1,
            text: raw,
            role,
        });
    }
    let words = words(&lines);
    Reading { lines, words }
}

/// Whether quoted text starts at this line: an attribution line ("On 3 Oct
/// 2026, X wrote:"), a separator ("-----Original Message-----", a line of
/// underscores) or a header block ("From: ..." followed by "Sent: ...").
fn starts_quoted_block(
    line: &str,
    next: Option<&[&str]>,
    after_text: bool,
    cues: &TextCues,
) -> bool {
    if line.is_empty() {
        return false;
    }
    let dashes = line.chars().take_while(|c| *c == '-').count();
    if dashes >= 2 && line.ends_with("--") && line.chars().any(char::is_alphabetic) {
        return true; // -----Original Message----- and its translations
    }
    if line.len() >= 20 && line.chars().all(|c| c == '_') {
        return true;
    }
    if line.ends_with(':') && cues.is_attribution(line) {
        return true;
    }
    if let (Some(field), Some(next), true) = (header_field(line), next, after_text) {
        // "From: X" then, within three lines, "Sent: ..." / "Date: ...".
        return cues.is_header_from(field)
            && next
                .iter()
                .filter_map(|l| header_field(l.trim()))
                .any(|f| cues.is_header_sent(f));
    }
    false
}

/// `Subject` of "Subject: ...", without any quoting `>`.
pub fn header_field(line: &str) -> Option<&str> {
    let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
    let (field, _) = line.split_once(':')?;
    let field = field.trim_end();
    (!field.is_empty() && field.chars().count() <= 24 && !field.contains("  ")).then_some(field)
}

/// The words of the new text, at most [`MAX_WORDS_BYTES`] of it.
fn words<'a>(lines: &[Line<'a>]) -> Vec<Word<'a>> {
    let mut out = Vec::new();
    let mut budget = MAX_WORDS_BYTES;
    let mut sentence = 0;
    for (index, line) in lines.iter().enumerate() {
        if !line.role.is_new() {
            sentence += 1;
            continue;
        }
        let text = super::prefix(line.text, budget);
        budget -= text.len();
        if text.trim().is_empty() {
            sentence += 1; // a paragraph ends
            continue;
        }
        let mut start = None;
        // The word just before the character at hand ends, if it ends there.
        let mut just_ended: Option<&str> = None;
        // The end of a reference number read as one word.
        let mut skip_to = 0;
        let bytes = text.as_bytes();
        for (i, c) in text
            .char_indices()
            .chain(std::iter::once((text.len(), ' ')))
        {
            if i < skip_to {
                continue;
            }
            if start.is_none() {
                // "our answer to BSM-2026-000131 will follow": one word, not
                // three, between a phrase's words.
                if let Some(len) = super::reference_at(&text[i..]) {
                    let raw = &text[i..i + len];
                    just_ended = Some(raw);
                    out.push(Word {
                        line: index,
                        sentence,
                        raw,
                        bracketed: false,
                    });
                    skip_to = i + len;
                    continue;
                }
            }
            if c.is_alphanumeric() {
                start.get_or_insert(i);
                continue;
            }
            let ended = start.is_some();
            if let Some(s) = start.take() {
                let raw = &text[s..i];
                just_ended = Some(raw);
                let bracketed = s > 0
                    && matches!(bytes[s - 1], b'(' | b'[')
                    && matches!(bytes.get(i), Some(b')' | b']'));
                out.push(Word {
                    line: index,
                    sentence,
                    raw,
                    bracketed,
                });
            }
            // A sentence ends at . ! ? ; followed by a space or the line's end
            // (not in 3.5 or www.example.org).
            let after = text.get(i + c.len_utf8()..).unwrap_or("");
            // Nor at an ordinal's dot inside a line ("am 22. Mai", "im 3.
            // Quartal"): one or two digits, then more words.
            let ordinal = c == '.'
                && ended
                && just_ended
                    .is_some_and(|w| w.len() <= 2 && w.bytes().all(|b| b.is_ascii_digit()))
                && !after.trim().is_empty();
            if matches!(c, '.' | '!' | '?' | ';' | '¿' | '¡')
                && after.chars().next().is_none_or(char::is_whitespace)
                && !ordinal
            {
                sentence += 1;
            }
        }
        // A short line (a salutation, a heading, an addressee line) is a
        // sentence of its own; a long one is wrapped prose that goes on.
        if line.role == Role::Subject || text.trim().chars().count() < 45 {
            sentence += 1;
        }
        if budget == 0 {
            break;
        }
    }
    out
}

/// Whether a word is a reference number read as one ([`super::reference_at`]).
pub fn is_reference(word: &str) -> bool {
    super::reference_at(word) == Some(word.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::rules::Rules;

    /// The text read with the shipped rules' cues.
    fn reading(text: &str) -> Reading<'_> {
        read(None, text, Rules::builtin().text_cues())
    }

    fn roles(text: &str) -> Vec<Role> {
        roles_under(None, text)
    }

    /// The roles of the subject's line (if any) and the text's lines.
    fn roles_under(subject: Option<&str>, text: &str) -> Vec<Role> {
        read(subject, text, Rules::builtin().text_cues())
            .lines
            .iter()
            .map(|l| l.role)
            .collect()
    }

    #[test]
    fn quoted_text_and_signatures_are_told_apart() {
        use Role::*;
        let text = "Dear colleagues,\n\nplease find our answer below.\n\nBest regards,\nJan Novak\nCustoms Service\n\n-----Original Message-----\nFrom: X\nSent: Monday\nSubject: BSM-2026-000001\n\nWe request assistance.\n";
        assert_eq!(
            roles(text),
            [
                Opening, Opening, Opening, Opening, Signature, Signature, Signature, Signature,
                Quoted, Quoted, Quoted, Quoted, Quoted, Quoted
            ]
        );
        assert_eq!(
            roles("Thanks.\n\nOn 3 Oct 2026, at 10:12, Anna wrote:\n> request\nmore"),
            [Opening, Opening, Quoted, Quoted, Quoted]
        );
        assert_eq!(
            roles("Merci.\nDe : PCN France\nEnvoyé : lundi 3 octobre\nObjet : question\n\ntexte"),
            [Opening, Quoted, Quoted, Quoted, Quoted, Quoted]
        );
        assert_eq!(
            roles("Ответ ниже.\n\n3 окт. 2026 г., в 10:12, Анна пишет:\n> Просим"),
            [Opening, Opening, Quoted, Quoted]
        );
    }

    #[test]
    fn a_forward_s_text_is_read_below_a_short_cover_note() {
        use Role::*;
        let text = "FYI, below.\n\nBest regards,\nAnna\n\n-----Original Message-----\nFrom: Customs\nSent: Monday\nSubject: training\n\nDear colleagues,\nwe request a course.\n\nKind regards,\nJan\n";
        let roles = |subject| roles_under(Some(subject), text);
        assert_eq!(
            roles("FW: training"),
            [
                Subject, Opening, Opening, Signature, Signature, Signature, Quoted, Quoted, Quoted,
                Quoted, Quoted, Body, Body, Body, Quoted, Quoted
            ]
        );
        // A reply's quote is the request answered; a long cover note says
        // itself what the message is.
        let quoted_below = |roles: Vec<Role>| roles[6..].iter().all(|r| *r == Quoted);
        assert!(quoted_below(roles("RE: training")));
        let long = format!("{}\n{}", "word ".repeat(MAX_COVER_WORDS + 1), &text[12..]);
        assert!(roles_under(Some("FW: training"), &long)
            .iter()
            .skip(7)
            .all(|r| *r == Quoted || *r == Signature));
        // A bare line of dashes separates a forward's text too.
        assert_eq!(
            roles_under(
                Some("Пересл: письмо"),
                "Направляю письмо ниже.\n-----\nУважаемые коллеги,\nпросим оказать содействие.\n",
            ),
            [Subject, Opening, Quoted, Body, Body]
        );
    }

    #[test]
    fn a_reference_number_is_one_word() {
        let r = reading(
            "Our answer to BSM-2026-000131 will follow; see also bsm-at-2026-000007.\nNot BSM-2026-00013 nor XBSM-2026-000131.",
        );
        let raw: Vec<&str> = r.words.iter().map(|w| w.raw).collect();
        assert_eq!(
            raw,
            [
                "Our",
                "answer",
                "to",
                "BSM-2026-000131",
                "will",
                "follow",
                "see",
                "also",
                "bsm-at-2026-000007",
                "Not",
                "BSM",
                "2026",
                "00013",
                "nor",
                "XBSM",
                "2026",
                "000131"
            ]
        );
        assert!(is_reference("BSM-2026-000131") && !is_reference("BSM"));
    }

    #[test]
    fn sentences_end_at_punctuation_and_short_lines() {
        let r = reading(
            "Dear colleagues,\nwe ask for help. The 3.5 tonnes of cigarettes were seized\nat the border (PL).",
        );
        let s = |w: &str| {
            r.words
                .iter()
                .find(|x| x.raw.eq_ignore_ascii_case(w))
                .unwrap()
                .sentence
        };
        assert_ne!(s("dear"), s("we"));
        assert_ne!(s("help"), s("the"));
        assert_eq!(s("the"), s("5"));
        assert_eq!(s("tonnes"), s("border"));
        assert!(r.words.iter().find(|x| x.raw == "PL").unwrap().bracketed);
        // An ordinal's dot ends no sentence; a number's at the line's end does.
        let r = reading(
            "wie von Ihnen am 22. Mai erbeten, senden wir die Zahlen von 2025 und 26.\nDanach",
        );
        let s = |w: &str| r.words.iter().find(|x| x.raw == w).unwrap().sentence;
        assert_eq!(s("am"), s("Mai"));
        assert_eq!(s("Mai"), s("erbeten"));
        assert_ne!(s("26"), s("Danach"));
    }
}
