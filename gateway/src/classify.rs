//! Classification: what kind of message, which topics, which language, and
//! which State it is for.
//!
//! Only authenticated content is read: the protected subject when the sender
//! protected its headers, and the signed text. Explicit tags in square
//! brackets (in the signed subject, or on the first line of the signed text)
//! win. Without them, the words decide ([`text`] reads the text, [`evidence`]
//! weighs the rules' phrases, [`target`] finds an addressee line): a kind
//! needs enough evidence and a margin over the next, or the message is
//! `unclassified` and the Secretariat triages it. The rules live in an
//! operator-editable data file ([`rules`]).

pub mod evidence;
pub mod model;
pub mod rules;
pub mod target;
pub mod text;

use crate::directory::{Directory, PartyKind};
use crate::vocab::normalize;
pub use crate::vocab::{Kind, Language, Topic};
use rules::Rules;
use text::Role;

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

/// Tags that say "request" and nothing of its kind, in the six languages
/// (the rules list them among the assistance request's tags): the words
/// decide between an assistance request and an information request.
const GENERIC_REQUEST_TAGS: [&str; 6] = [
    "REQUEST",
    "DEMANDE",
    "ERSUCHEN",
    "RICHIESTA",
    "ЗАПРОС",
    "SOLICITUD",
];

/// Whether a subject is a reply's or a forward's: it starts with a prefix
/// that mail clients add (Re:, AW:, Fwd:, WG:, TR:, RV:, R:, I:, SV:, Odg:,
/// Antw:, YNT:, Отв:, Пересл: ..., in any case, repeated, with a count such
/// as Re[2]:).
pub fn is_reply_or_forward(subject: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    starts_with_prefix(
        &RE,
        "re|aw|fw|fwd|wg|tr|rv|r|i|ris|rif|res|sv|vs|odp|odg|antw|ynt|отв|ответ|пересл",
        subject,
    )
}

/// Whether a subject is a forward's ("FW:", "WG:", "TR:", "I:", "RV:",
/// "Пересл:"), not a reply's.
pub fn is_forward(subject: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    starts_with_prefix(&RE, "fw|fwd|wg|tr|rv|i|enc|пересл", subject)
}

/// Whether `subject` starts with one of `prefixes` ("re|aw|..."), in any
/// case, with a count such as Re[2]: or Re(2):; the regex is compiled once
/// into `cell`.
fn starts_with_prefix(
    cell: &std::sync::OnceLock<regex::Regex>,
    prefixes: &str,
    subject: &str,
) -> bool {
    cell.get_or_init(|| {
        regex::Regex::new(&format!(r"(?i)^\s*({prefixes})\s*(\[\d+\]|\(\d+\))?\s*:"))
            .expect("valid regex")
    })
    .is_match(subject)
}

/// Classifies an authenticated message.
pub fn classify(
    input: &Input<'_>,
    rules: &Rules,
    directory: &Directory,
    own_address: &str,
) -> Classification {
    classify_with(input, rules, None, directory, own_address)
}

/// [`classify`] with another model than the shipped one (the benchmark's
/// cross-validation of the whole decision trains one per fold); `None`,
/// the shipped one, read only when the words decide (a tagged message never
/// loads it).
pub fn classify_with(
    input: &Input<'_>,
    rules: &Rules,
    model: Option<&model::Model>,
    directory: &Directory,
    own_address: &str,
) -> Classification {
    let reading = text::read(input.protected_subject, input.text, rules.text_cues());
    let tag_line = match input.protected_subject {
        Some(s) => s,
        None => input
            .text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(""),
    };
    let tags = bracket_tags(tag_line);
    // Where the tags were read: the detail says it, so that a sender who
    // wrote them on the first line is not told they were in the subject.
    let tag_source = if input.protected_subject.is_some() {
        "the signed subject"
    } else {
        "the first line of the signed text"
    };
    let kind_tag = tags.iter().find_map(|t| {
        rules
            .kind_of_tag(t)
            .filter(|k| *k != Kind::Circular || input.sender_kind == PartyKind::Secretariat)
            .map(|k| (k, t.as_str()))
    });
    let tagged_kind = kind_tag.map(|(k, _)| k);
    // "[REQUEST]", "[ЗАПРОС]": a request, but which kind the tag does not
    // say: writers use them for information requests as often.
    let generic_tag = kind_tag.is_some_and(|(_, t)| GENERIC_REQUEST_TAGS.contains(&t));
    let tag_reference = find_reference(tag_line);

    let language = detect_language(&new_text(&reading), &tags).unwrap_or(input.sender_language);
    let hits = evidence::hits(&reading, rules, language);
    let mut weighed = evidence::weigh(&reading, &hits, rules);
    let mut unreplied_why = None;
    // "We acknowledge receipt of your request BSM-…": the reference says
    // which request, not that this answers it.
    let receipt_line = receipt(&reading, &hits, rules);
    let cited = match &tag_reference {
        Some(r) => Some(r.clone()),
        None => cited_reference(&reading, rules).map(|(r, reason)| {
            match (receipt_line, weighed.asked) {
                (Some(line), _) => {
                    unreplied_why = Some(format!(
                        "the reference on line {} is in an acknowledgement of receipt (line {line}): no evidence of a reply",
                        reason.line
                    ));
                }
                // "Could you send us the compilation of the answers to
                // BSM-…?": it names the request whose material is asked.
                (None, Some(line)) => {
                    unreplied_why = Some(format!(
                        "the reference on line {} names the request whose material is asked for (line {line}): no evidence of a reply",
                        reason.line
                    ));
                }
                (None, None) => weighed.add_kind(Kind::InformationReply, reason),
            }
            r
        }),
    };

    let automatic = rules.text_cues().is_automatic_reply(tag_line);
    let (kind, why) = if automatic {
        // It echoes the subject it answers, tags and reference included.
        (
            Kind::Unclassified,
            format!("{tag_source} is an automatic reply's: it neither asks nor answers"),
        )
    } else if let (Some(_), Some(line)) = (&tag_reference, receipt_line) {
        // The subject it echoes names the request it acknowledges; its
        // tags are the request's, not this message's.
        let (kind, why) = decide(&weighed, rules, model, &reading, language, true);
        (
            kind,
            format!(
                "{tag_source} cites a reference number, in an acknowledgement of receipt (line {line}): no evidence of a reply; {why}"
            ),
        )
    } else if tag_reference.is_some() {
        // A reference in the subject is a reply's, unless the words ask
        // again: a reminder of an unanswered request, follow-up questions.
        match decide(&weighed, rules, model, &reading, language, false) {
            (Kind::InformationRequest, why) => (
                Kind::InformationRequest,
                format!("{tag_source} cites a reference number, and the words ask (a reminder or a follow-up request): {why}"),
            ),
            _ => (
                Kind::InformationReply,
                format!("{tag_source} cites a reference number"),
            ),
        }
    } else if let (Some(_), true) = (tagged_kind, generic_tag) {
        // "RE: [ЗАПРОС] …": the tag is the request's that this answers.
        let reply = input.protected_subject.is_some_and(is_reply_or_forward);
        match decide(&weighed, rules, model, &reading, language, receipt_line.is_some()) {
            (Kind::InformationRequest, why) => (
                Kind::InformationRequest,
                format!("a request tag in {tag_source} that names no kind, and the words ask for information: {why}"),
            ),
            (Kind::InformationReply, why) if reply => (
                Kind::InformationReply,
                format!("a request tag in a reply's subject is the request's it answers, and the words answer: {why}"),
            ),
            _ => (
                Kind::AssistanceRequest,
                format!("a request tag in {tag_source} that names no kind, and the words do not ask for information"),
            ),
        }
    } else if let Some(k) = tagged_kind {
        (k, format!("an explicit tag in {tag_source}"))
    } else if input.has_vcard {
        (Kind::ContactUpdate, "a vCard is attached".to_string())
    } else {
        decide(
            &weighed,
            rules,
            model,
            &reading,
            language,
            receipt_line.is_some(),
        )
    };

    // An automatic reply's subject and words are not its sender's matter.
    let mut topics: Vec<Topic> = match automatic {
        true => Vec::new(),
        false => tags.iter().filter_map(|t| rules.topic_of_tag(t)).collect(),
    };
    let mut topic_why = Vec::new();
    // A contact update's words are a unit's name and address, not its matter.
    if kind != Kind::ContactUpdate && !automatic {
        for t in weighed.topics.iter().filter(|t| t.score >= 1.0) {
            topics.push(t.what);
            topic_why.push(format!("{} ({})", t.what.code(), explain(&t.reasons, 2)));
        }
    }
    topics.sort();
    topics.dedup();

    let tagged_target = tags
        .iter()
        .filter(|t| t.len() == 2)
        .find_map(|t| directory.nfp(t).map(|p| p.id.clone()))
        .or_else(|| plus_target(input.recipients, own_address, directory))
        .filter(|t| t != input.sender);
    let (target, target_why) = match tagged_target {
        Some(t) => (Some(t), None),
        None if kind == Kind::InformationRequest => {
            match target::find(&reading, &hits, rules, directory, input.sender) {
                Some(t) => {
                    let why = format!("target {}: the addressee line {}", t.state, t.line);
                    (Some(t.state), Some(why))
                }
                None => (None, None),
            }
        }
        None => (None, None),
    };

    let mut why = why;
    if let Some(r) = unreplied_why {
        why.push_str(&format!("; {r}"));
    }
    if !topic_why.is_empty() {
        why.push_str(&format!("; topics from words: {}", topic_why.join(", ")));
    }
    if let Some(t) = target_why {
        why.push_str(&format!("; {t}"));
    }
    Classification {
        kind,
        topics,
        language,
        target,
        cited_reference: cited,
        why,
    }
}

/// The features the model reads in a message, as [`classify`] reads them
/// (the same new text, in the language it detects): what
/// [`model::train`] learns from.
pub fn model_features(
    protected_subject: Option<&str>,
    text: &str,
    rules: &Rules,
    fallback: Language,
) -> Vec<String> {
    let reading = text::read(protected_subject, text, rules.text_cues());
    let tag_line = protected_subject
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("");
    let language =
        detect_language(&new_text(&reading), &bracket_tags(tag_line)).unwrap_or(fallback);
    let hits = evidence::hits(&reading, rules, language);
    let echoes = receipt(&reading, &hits, rules).is_some();
    model::features(&reading, language, !echoes)
}

/// The kind the words decide, and why: the model's kind when the rules'
/// phrases agree or when it is sure enough, unless the rules read another
/// kind clearly (a lead of `clear-lead`) and the model is below `overrule`
/// (a lead of `clear-lead-none` against its reading of no kind below
/// `overrule-none`, or below `overrule` against the rules' assistance
/// request in a text of thanks);
/// when it is not sure, its kind still if it reaches `agree` and the rules'
/// first kind, however weak, is the same; else the rules' kind if the model
/// ranks it among its two first; else `unclassified`. In an
/// acknowledgement of receipt (`receipt`: it may also promise the answer
/// for later) the subject is not read (it echoes the request's), and the
/// model alone, however sure, makes no reply: it reads "your request" as
/// a reply's words, and a reply there needs the rules' phrases too.
fn decide(
    weighed: &evidence::Weighed,
    rules: &Rules,
    model: Option<&model::Model>,
    reading: &text::Reading<'_>,
    language: Language,
    receipt: bool,
) -> (Kind, String) {
    let model: &model::Model = match model {
        Some(m) => m,
        None => model::Model::builtin(),
    };
    let ByRules {
        kind: by_rules,
        why: rules_why,
        lead,
        first,
    } = decide_by_rules(weighed, rules);
    let p = model.predict_text(reading, language, !receipt);
    let evidence: Vec<String> = p.evidence.iter().map(|f| format!("\"{f}\"")).collect();
    let read = format!(
        "the model reads {} p {:.2} ({})",
        p.kind.code(),
        p.probability,
        match evidence.is_empty() {
            true => "no word it knows".to_string(),
            false => evidence.join(", "),
        }
    );
    let t = model.threshold;
    let sure = p.probability >= t;
    // In an acknowledgement, the model's reply needs the rules' words.
    let reply_in_receipt = receipt && p.kind == Kind::InformationReply;
    // In thanks for a course or a visit held, its words are no request:
    // the model's assistance request needs the rules' kind.
    let thanked = weighed
        .thanks
        .filter(|_| p.kind == Kind::AssistanceRequest && by_rules != Kind::AssistanceRequest);
    // The rules' lead is clear against the model's other kind below
    // `overrule`, or, lower, against its barely sure reading of no kind.
    let e = &rules.evidence;
    // In thanks, the model's reading of no kind owes much to the thanks'
    // words: against the rules' assistance request (whose words in a
    // sentence of thanks do not count) it is barely sure below `overrule`.
    let none_overrule = match weighed.thanks {
        Some(_) if by_rules == Kind::AssistanceRequest => e.overrule,
        _ => e.overrule_none,
    };
    let clear_against = if by_rules == Kind::Unclassified {
        None
    } else if lead >= e.clear_lead && p.probability < e.overrule {
        Some((e.clear_lead, e.overrule))
    } else if p.kind == Kind::Unclassified
        && lead >= e.clear_lead_none
        && p.probability < none_overrule
    {
        Some((e.clear_lead_none, none_overrule))
    } else {
        None
    };
    if p.kind == by_rules {
        (p.kind, format!("{read}, and the rules agree: {rules_why}"))
    } else if let Some((clear, overrule)) = clear_against {
        (
            by_rules,
            format!(
                "{rules_why}, a clear lead (>= {clear:.1}); the model, not sure enough to overrule it (p < {overrule:.2}): {read}"
            ),
        )
    } else if let Some(line) = thanked {
        // The thanks take the model's assistance request away; the rules'
        // kind stands when the model ranks it second.
        let why = format!("{read}, but in thanks for what was done (line {line}) no assistance request without the rules' words");
        if by_rules != Kind::Unclassified && p.ranks_among_two(by_rules) {
            (
                by_rules,
                format!("{why}, and the rules' kind is the model's second: {rules_why}"),
            )
        } else {
            (Kind::Unclassified, format!("{why}: {rules_why}"))
        }
    } else if sure && !reply_in_receipt {
        (
            p.kind,
            format!("{read}, sure enough (p >= {t:.2}); the rules: {rules_why}"),
        )
    } else if sure && reply_in_receipt && first != Some(Kind::InformationReply) {
        (
            Kind::Unclassified,
            format!("{read}, but in an acknowledgement of receipt no reply without the rules' words: {rules_why}"),
        )
    } else if p.kind != Kind::Unclassified
        && p.probability >= rules.evidence.agree
        && first == Some(p.kind)
    {
        (
            p.kind,
            format!(
                "{read}, unsure (p >= {:.2}), and the rules' first kind, however little evidence it has, is the same: {rules_why}",
                rules.evidence.agree
            ),
        )
    } else if by_rules != Kind::Unclassified && p.ranks_among_two(by_rules) {
        (
            by_rules,
            format!("{rules_why}; the model, unsure, ranks it second: {read}"),
        )
    } else {
        (
            Kind::Unclassified,
            format!("unsure: {read}, below {t:.2}, and the rules disagree: {rules_why}"),
        )
    }
}

/// What the rules' phrases read: their kind and why, its lead over the
/// next kind, and the kind with the most evidence however little (none
/// when two tie).
struct ByRules {
    kind: Kind,
    why: String,
    lead: f32,
    first: Option<Kind>,
}

fn decide_by_rules(weighed: &evidence::Weighed, rules: &Rules) -> ByRules {
    let mut ranked: Vec<&evidence::Tally<Kind>> = weighed
        .kinds
        .iter()
        .filter(|t| rules::WORD_KINDS.contains(&t.what))
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    let (kind, why) = ranked_by_rules(&ranked, rules);
    let score = |i: usize| ranked.get(i).map_or(0.0, |t| t.score);
    let mut some = ranked.iter().filter(|t| t.score > 0.0);
    let first = match (some.next(), some.next()) {
        (Some(best), Some(second)) if best.score == second.score => None,
        (best, _) => best.map(|t| t.what),
    };
    ByRules {
        kind,
        why,
        lead: score(0) - score(1),
        first,
    }
}

/// The kind the rules' phrases decide, with the evidence that decided it, or
/// `unclassified` when no kind has enough evidence or two are close, from
/// the word kinds' tallies, the most evidence first.
fn ranked_by_rules(ranked: &[&evidence::Tally<Kind>], rules: &Rules) -> (Kind, String) {
    let e = &rules.evidence;
    match ranked {
        [] => (
            Kind::Unclassified,
            "no tag, and no phrase of any kind".into(),
        ),
        [best, ..] if best.score < e.min_score => (
            Kind::Unclassified,
            format!(
                "no tag, and too little evidence: {} {:.1} ({}), {:.1} needed",
                best.what.code(),
                best.score,
                explain(&best.reasons, 3),
                e.min_score
            ),
        ),
        [best, second, ..] if best.score - second.score < e.margin => (
            Kind::Unclassified,
            format!(
                "a close call: {} {:.1} ({}) against {} {:.1} ({})",
                best.what.code(),
                best.score,
                explain(&best.reasons, 3),
                second.what.code(),
                second.score,
                explain(&second.reasons, 3)
            ),
        ),
        [best, rest @ ..] => (
            best.what,
            match rest.first() {
                Some(second) => format!(
                    "words: {} {:.1} ({}) over {} {:.1}",
                    best.what.code(),
                    best.score,
                    explain(&best.reasons, 4),
                    second.what.code(),
                    second.score
                ),
                None => format!(
                    "words: {} {:.1} ({})",
                    best.what.code(),
                    best.score,
                    explain(&best.reasons, 4)
                ),
            },
        ),
    }
}

/// The rules that gave evidence and where: the rules' words, never the
/// message's (the detail is stored and shown in the clear).
fn explain(reasons: &[evidence::Reason], max: usize) -> String {
    let mut sorted: Vec<&evidence::Reason> = reasons.iter().collect();
    sorted.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.line.cmp(&b.line)));
    let mut parts: Vec<String> = sorted
        .iter()
        .take(max)
        .map(|r| {
            let place = match r.line {
                0 => "the subject".to_string(),
                n => format!("line {n}"),
            };
            let rule = match r.note {
                Some(REFERENCE) | Some(QUOTED_REFERENCE) => r.rule.clone(),
                _ => format!("\"{}\"", r.rule),
            };
            match r.note {
                Some(n) => format!("{rule} on {place}, {n}"),
                None => format!("{rule} on {place}"),
            }
        })
        .collect();
    if sorted.len() > max {
        parts.push(format!("{} more", sorted.len() - max));
    }
    parts.join(", ")
}

const REFERENCE: &str = "cited in the opening";
const QUOTED_REFERENCE: &str = "cited in a quoted header";

/// A reference cited in the opening lines, or in a quoted header's subject,
/// and the evidence of a reply it gives.
fn cited_reference(
    reading: &text::Reading<'_>,
    rules: &Rules,
) -> Option<(String, evidence::Reason)> {
    reading.lines.iter().find_map(|l| {
        let note = match l.role {
            Role::Subject | Role::Opening => REFERENCE,
            Role::Quoted
                if text::header_field(l.text)
                    .is_some_and(|f| rules.text_cues().is_header_subject(f)) =>
            {
                QUOTED_REFERENCE
            }
            _ => return None,
        };
        find_reference(l.text).map(|r| {
            let reason = evidence::Reason {
                rule: "a reference number".into(),
                line: l.number,
                weight: rules.evidence.reference,
                note: Some(note),
            };
            (r, reason)
        })
    })
}

/// The line of an acknowledgement of receipt in the new text, if any.
fn receipt(reading: &text::Reading<'_>, hits: &[evidence::Hit], rules: &Rules) -> Option<usize> {
    hits.iter()
        .find(|h| {
            rules.phrases[h.phrase].what == rules::Use::Receipt
                && evidence::acknowledged(reading, hits, rules, h)
        })
        .map(|h| reading.lines[reading.words[h.start].line].number)
}

/// The sender's own words, for language detection.
fn new_text(reading: &text::Reading<'_>) -> String {
    let mut out = String::new();
    for l in reading.lines.iter().filter(|l| l.role.is_new()) {
        if out.len() >= MAX_LANGUAGE_BYTES {
            break;
        }
        out.push_str(l.text);
        out.push('\n');
    }
    out
}

/// How much of it language detection reads.
const MAX_LANGUAGE_BYTES: usize = 1024;

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

/// A reference: `BSM-YYYY-NNNNNN` (the Secretariat's) or
/// `BSM-XX-YYYY-NNNNNN` (a national gateway's), in upper case.
const REFERENCE_PATTERN: &str = r"BSM-(?:[A-Z]{2}-)?\d{4}-\d{6}\b";

/// [`REFERENCE_PATTERN`] anywhere after a word boundary, and at the start.
fn reference_regexes() -> &'static (regex::Regex, regex::Regex) {
    static RE: std::sync::OnceLock<(regex::Regex, regex::Regex)> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        let re = |p: String| regex::Regex::new(&p).expect("valid regex");
        (
            re(format!(r"\b{REFERENCE_PATTERN}")),
            re(format!("^{REFERENCE_PATTERN}")),
        )
    })
}

/// The first reference in a line.
pub fn find_reference(line: &str) -> Option<String> {
    reference_regexes()
        .0
        .find(&line.to_ascii_uppercase())
        .map(|m| m.as_str().to_string())
}

/// The length of the reference `s` starts with, if it starts with one.
pub(crate) fn reference_at(s: &str) -> Option<usize> {
    // Most words of a text are no reference: only those that start so are
    // matched (18 bytes at most, and the character after for the boundary).
    if s.len() < 15 || !s.as_bytes()[..4].eq_ignore_ascii_case(b"bsm-") {
        return None;
    }
    reference_regexes()
        .1
        .find(&prefix(s, 24).to_ascii_uppercase())
        .map(|m| m.end())
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

/// The language [`classify`] reads a text in (the sender's own new text),
/// or `None` when it is too short to tell (the sender's language then);
/// `stop_words: false` for whatlang's guess alone, as before session 15:
/// the benchmark compares the two.
pub fn language_of(text: &str, rules: &Rules, stop_words: bool) -> Option<Language> {
    let reading = text::read(None, text, rules.text_cues());
    detect(&new_text(&reading), &[], stop_words)
}

/// The language of the text, with whatlang restricted to the six languages.
fn detect_language(content: &str, tags: &[String]) -> Option<Language> {
    detect(content, tags, true)
}

fn detect(content: &str, tags: &[String], stop_words: bool) -> Option<Language> {
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
    let guess = Language::from_whatlang(info.lang())?;
    if info.is_reliable() || !stop_words {
        return Some(guess);
    }
    // Letter trigrams take a short English text full of Latin words
    // ("We request assistance for our new maritime border unit.") for
    // French; its grammatical words say English. An unreliable guess gives
    // way to the language with strictly more of them.
    let counts = stop_word_counts(&text);
    let most = Language::ALL
        .into_iter()
        .max_by_key(|l| counts[*l as usize])
        .unwrap_or(guess);
    Some(if counts[most as usize] > counts[guess as usize] {
        most
    } else {
        guess
    })
}

/// How many of the text's words are stop words of each language, in the
/// order of [`Language::ALL`]; a word that is a stop word of two of them
/// ("de", "la", "a", "in") tells them apart no better than a letter's
/// trigrams do and counts for none.
fn stop_word_counts(text: &str) -> [usize; 6] {
    static OWNER: std::sync::OnceLock<std::collections::HashMap<&'static str, Option<usize>>> =
        std::sync::OnceLock::new();
    let owner = OWNER.get_or_init(|| {
        let mut owner = std::collections::HashMap::new();
        for (i, l) in Language::ALL.iter().enumerate() {
            for word in stop_words::get(l.code()) {
                owner
                    .entry(*word)
                    .and_modify(|o: &mut Option<usize>| {
                        if *o != Some(i) {
                            *o = None;
                        }
                    })
                    .or_insert(Some(i));
            }
        }
        owner
    });
    let lower = text.to_lowercase();
    let mut counts = [0; 6];
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if let Some(Some(i)) = owner.get(word) {
            counts[*i] += 1;
        }
    }
    counts
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

    /// whatlang reads these short English texts as French, unreliably; their
    /// stop words decide.
    #[test]
    fn an_unreliable_guess_gives_way_to_stop_words() {
        for text in [
            "Dear colleagues,\n\nWe request assistance for our new maritime border unit.",
            "Our new phone number is +43 1 531 37 123.",
        ] {
            assert_eq!(detect_language(text, &[]), Some(Language::En), "{text}");
        }
        // "a", "de" and "la" are Spanish and Italian stop words too: they
        // do not outweigh a French guess.
        assert_eq!(
            detect_language("Bonjour a tous, petite mise a jour de la liste :", &[]),
            Some(Language::Fr)
        );
    }
}
