//! The labelled classification corpus (`bench/classify/corpus/<lang>/NNN.txt`)
//! and its evaluation, shared by `tests/classify.rs` (which holds the gateway
//! to its numbers) and `cargo bench --bench classify` (which prints them).
//!
//! A file is a header block of labels (From, Language, Kind, Topics, Target,
//! optional Subject, Note), a blank line, and the signed text. A fifth of each
//! language is the held-out split, chosen by a hash of the file's name (so
//! that nobody picks it) and listed in `bench/classify/held-out.txt`, never
//! read when the rules are tuned.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nfp_gateway::classify::{self, rules::Rules, Classification, Kind, Language, Topic};
use nfp_gateway::directory::{Directory, Party, PartyKind, UnprotectedParts};
use sequoia_openpgp::cert::CertBuilder;

/// The labels of the corpus: the kinds the model tells apart.
pub const KINDS: [Kind; 6] = classify::model::CLASSES;

pub const STATES: &str = "AL AD AM AT AZ BY BE BA BG CA HR CY CZ DK EE FI FR GE DE GR VA HU IS IE IT \
    KZ KG LV LI LT LU MT MD MC MN ME NL MK NO PL PT RO RU SM RS SK SI ES SE CH TJ TR TM UA GB US UZ";

#[derive(Debug, Clone)]
pub struct Message {
    /// `fr/017`.
    pub id: String,
    pub language: Language,
    pub from: String,
    pub kind: Kind,
    pub topics: Vec<Topic>,
    pub target: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    pub held_out: bool,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/classify/corpus")
}

fn plain<T: serde::de::DeserializeOwned>(s: &str) -> T {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Every message of the corpus, held-out ones marked (the committed list
/// `bench/classify/held-out.txt`, which `bench/classify/split.py` appends to
/// once per batch).
pub fn load() -> Vec<Message> {
    let listed = std::fs::read_to_string(root().join("../held-out.txt")).expect("held-out.txt");
    let held_out: std::collections::BTreeSet<&str> = listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let mut all = Vec::new();
    for lang in Language::ALL {
        let dir = root().join(lang.code());
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".txt"))
            .collect();
        names.sort();
        let messages = names.iter().map(|n| {
            let id = format!("{}/{}", lang.code(), &n[..n.len() - 4]);
            let mut m = parse(&id, &dir.join(n));
            m.held_out = held_out.contains(id.as_str());
            m
        });
        all.extend(messages);
    }
    all
}

fn parse(id: &str, path: &Path) -> Message {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{id}: {e}"));
    let (head, body) = text
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("{id}: no blank line after the labels"));
    let mut labels = BTreeMap::new();
    for line in head.lines() {
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("{id}: {line:?} is not a label"));
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    let get = |k: &str| {
        labels
            .get(k)
            .unwrap_or_else(|| panic!("{id}: no {k}"))
            .as_str()
    };
    let topics = match get("Topics") {
        "none" => Vec::new(),
        t => {
            let mut v: Vec<Topic> = t.split_whitespace().map(plain).collect();
            v.sort();
            v
        }
    };
    Message {
        id: id.to_string(),
        language: plain(get("Language")),
        from: get("From").to_string(),
        kind: plain(get("Kind")),
        topics,
        target: match get("Target") {
            "none" => None,
            t => Some(t.to_string()),
        },
        subject: labels.get("Subject").cloned(),
        text: body.to_string(),
        held_out: false,
    }
}

/// The network: the Secretariat and an NFP in each of the 57 States, each
/// with a key of its own (the directory refuses shared keys).
pub fn directory() -> Directory {
    let party = |id: &str, kind: PartyKind| {
        let (cert, _) = CertBuilder::general_purpose(Some(format!("<{id}@nfp.example>")))
            .generate()
            .expect("a certificate");
        Party {
            id: id.to_string(),
            kind,
            name: format!("NFP {id}"),
            email: format!("{}@nfp.example", id.to_lowercase()),
            cert,
            old_certs: Vec::new(),
            language: Language::En,
            state: (kind == PartyKind::Nfp).then(|| id.to_string()),
            topics: Vec::new(),
            languages: Vec::new(),
            address: None,
            timezone: None,
            working_hours: None,
            organigram: Vec::new(),
            last_confirmed: None,
            contacts: Vec::new(),
            unprotected_parts: UnprotectedParts::Refuse,
        }
    };
    let mut parties = vec![party("secretariat", PartyKind::Secretariat)];
    parties.extend(STATES.split_whitespace().map(|s| party(s, PartyKind::Nfp)));
    Directory::new(
        PathBuf::from("corpus-directory.toml"),
        BTreeMap::new(),
        parties,
    )
    .expect("the corpus directory")
}

/// The gateway's reading of one message.
pub fn classify_one(m: &Message, rules: &Rules, dir: &Directory) -> Classification {
    classify_one_with(m, rules, classify::model::Model::builtin(), dir)
}

/// [`classify_one`] with another model.
pub fn classify_one_with(
    m: &Message,
    rules: &Rules,
    model: &classify::model::Model,
    dir: &Directory,
) -> Classification {
    let sender = dir
        .get(&m.from)
        .unwrap_or_else(|| panic!("{}: unknown sender {}", m.id, m.from));
    let input = classify::Input {
        protected_subject: m.subject.as_deref(),
        text: &m.text,
        has_vcard: false,
        recipients: &[],
        sender: &sender.id,
        sender_kind: sender.kind,
        sender_language: m.language,
    };
    classify::classify_with(
        &input,
        rules,
        Some(model),
        dir,
        "gateway@secretariat.example",
    )
}

/// A kind's place in [`KINDS`] (a circular after them).
fn ki(k: Kind) -> usize {
    KINDS.iter().position(|x| *x == k).unwrap_or(KINDS.len())
}

fn short(k: Kind) -> &'static str {
    match k {
        Kind::AssistanceRequest => "assist",
        Kind::BestPractice => "best",
        Kind::ContactUpdate => "contact",
        Kind::InformationRequest => "request",
        Kind::InformationReply => "reply",
        Kind::Circular => "circular",
        Kind::Unclassified => "unclass",
        Kind::Command => "command",
    }
}

/// The numbers of one split.
#[derive(Debug, Default, Clone)]
pub struct Score {
    pub messages: usize,
    pub kind_right: usize,
    /// Per language: (messages, kinds right).
    pub by_language: BTreeMap<Language, (usize, usize)>,
    /// (label, predicted) -> count, per language.
    pub confusion: BTreeMap<Language, BTreeMap<(usize, usize), usize>>,
    pub targets_predicted: usize,
    pub targets_right: usize,
    pub targets_labelled: usize,
    pub topics_predicted: usize,
    pub topics_right: usize,
    pub topics_labelled: usize,
    /// Messages of a word kind left unclassified.
    pub left_unclassified: Vec<String>,
    /// Every message whose kind, target or topics differ: (id, what).
    pub misses: Vec<(String, String)>,
}

impl Score {
    pub fn accuracy(&self, l: Language) -> f64 {
        let (n, r) = self.by_language.get(&l).copied().unwrap_or((0, 0));
        if n == 0 {
            return 1.0;
        }
        r as f64 / n as f64
    }

    pub fn target_precision(&self) -> f64 {
        if self.targets_predicted == 0 {
            return 1.0;
        }
        self.targets_right as f64 / self.targets_predicted as f64
    }

    fn count(&self, label: Option<Kind>, predicted: Option<Kind>) -> usize {
        self.confusion
            .values()
            .flat_map(|m| m.iter())
            .filter(|((l, p), _)| {
                label.is_none_or(|x| ki(x) == *l) && predicted.is_none_or(|x| ki(x) == *p)
            })
            .map(|(_, n)| n)
            .sum()
    }
}

/// Classifies the messages of one split and scores them.
pub fn score(messages: &[&Message], rules: &Rules, dir: &Directory) -> Score {
    let mut s = Score::default();
    for m in messages {
        let c = classify_one(m, rules, dir);
        s.messages += 1;
        let e = s.by_language.entry(m.language).or_default();
        e.0 += 1;
        let mut what = Vec::new();
        if c.kind == m.kind {
            s.kind_right += 1;
            e.1 += 1;
        } else {
            what.push(format!(
                "kind {} (labelled {})",
                c.kind.code(),
                m.kind.code()
            ));
            if c.kind == Kind::Unclassified {
                s.left_unclassified.push(m.id.clone());
            }
        }
        *s.confusion
            .entry(m.language)
            .or_default()
            .entry((ki(m.kind), ki(c.kind)))
            .or_default() += 1;
        if m.target.is_some() {
            s.targets_labelled += 1;
        }
        if let Some(t) = &c.target {
            s.targets_predicted += 1;
            if Some(t) == m.target.as_ref() {
                s.targets_right += 1;
            }
        }
        if c.target != m.target {
            what.push(format!("target {:?} (labelled {:?})", c.target, m.target));
        }
        s.topics_labelled += m.topics.len();
        s.topics_predicted += c.topics.len();
        s.topics_right += c.topics.iter().filter(|t| m.topics.contains(t)).count();
        if c.topics != m.topics {
            what.push(format!("topics {:?} (labelled {:?})", c.topics, m.topics));
        }
        if !what.is_empty() {
            s.misses
                .push((m.id.clone(), format!("{}; why: {}", what.join("; "), c.why)));
        }
    }
    s
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        return "—".into();
    }
    format!("{:.1} %", 100.0 * a as f64 / b as f64)
}

/// The report of one split, in Markdown.
pub fn report(title: &str, s: &Score) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {title}: {} messages\n", s.messages);
    let _ = writeln!(
        out,
        "| language | messages | kind right | accuracy |\n|---|---:|---:|---:|"
    );
    for (l, (n, r)) in &s.by_language {
        let _ = writeln!(out, "| {} | {n} | {r} | {} |", l.code(), pct(*r, *n));
    }
    let _ = writeln!(
        out,
        "| all | {} | {} | {} |\n",
        s.messages,
        s.kind_right,
        pct(s.kind_right, s.messages)
    );
    let _ = writeln!(out, "| kind | labelled | predicted | right | precision | recall |\n|---|---:|---:|---:|---:|---:|");
    for k in KINDS {
        let labelled = s.count(Some(k), None);
        let predicted = s.count(None, Some(k));
        let right = s.count(Some(k), Some(k));
        let _ = writeln!(
            out,
            "| {} | {labelled} | {predicted} | {right} | {} | {} |",
            k.code(),
            pct(right, predicted),
            pct(right, labelled)
        );
    }
    let counts = |what: &str, labelled: usize, predicted: usize, right: usize| {
        let (p, r) = (pct(right, predicted), pct(right, labelled));
        format!("{what}: {labelled} labelled, {predicted} predicted, {right} right: precision {p}, recall {r}.  ")
    };
    let (t, c) = (
        counts(
            "Targets",
            s.targets_labelled,
            s.targets_predicted,
            s.targets_right,
        ),
        counts(
            "Topics",
            s.topics_labelled,
            s.topics_predicted,
            s.topics_right,
        ),
    );
    let _ = writeln!(out, "\n{t}\n{c}");
    let _ = writeln!(
        out,
        "Messages of a word kind left unclassified: {}.\n",
        s.left_unclassified.len()
    );
    let _ = writeln!(
        out,
        "Confusion (rows: label, columns: the gateway's kind):\n"
    );
    for (l, m) in &s.confusion {
        let _ = write!(out, "| {} |", l.code());
        for k in KINDS {
            let _ = write!(out, " {} |", short(k));
        }
        let _ = write!(out, "\n|---|");
        for _ in KINDS {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for label in KINDS {
            let _ = write!(out, "| {} |", short(label));
            for p in KINDS {
                let n = m.get(&(ki(label), ki(p))).copied().unwrap_or(0);
                let _ = write!(
                    out,
                    " {} |",
                    if n == 0 {
                        ".".to_string()
                    } else {
                        n.to_string()
                    }
                );
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}
