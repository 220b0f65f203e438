//! The network's shared vocabulary, below every stage that uses it: the six
//! working languages, the four topics, the kinds of message, and the folding by which names and
//! phrases are compared (the directory and the classifier both need them).

use serde::{Deserialize, Serialize};

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

    pub(crate) fn from_whatlang(l: whatlang::Lang) -> Option<Language> {
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

impl Topic {
    /// The topic as the rules and reports name it.
    pub fn code(self) -> &'static str {
        match self {
            Topic::BorderPolice => "border_police",
            Topic::Customs => "customs",
            Topic::Migration => "migration",
            Topic::AntiDrug => "anti_drug",
        }
    }
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
    /// The Secretariat's command mail to its desk (`[CLOSE BSM-…]`):
    /// never classified from words, never forwarded (`cases::command`).
    Command,
}

impl Kind {
    /// The kind as the configuration, the templates and reports name it.
    pub fn code(self) -> &'static str {
        match self {
            Kind::AssistanceRequest => "assistance_request",
            Kind::BestPractice => "best_practice",
            Kind::ContactUpdate => "contact_update",
            Kind::InformationRequest => "information_request",
            Kind::InformationReply => "information_reply",
            Kind::Circular => "circular",
            Kind::Unclassified => "unclassified",
            Kind::Command => "command",
        }
    }

    pub const ALL: [Kind; 8] = [
        Kind::AssistanceRequest,
        Kind::BestPractice,
        Kind::ContactUpdate,
        Kind::InformationRequest,
        Kind::InformationReply,
        Kind::Circular,
        Kind::Unclassified,
        Kind::Command,
    ];

    /// The kind of a code ([`Kind::code`]).
    pub fn from_code(code: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }
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
