//! A party's entry as data: what the store keeps, what exports show, what a
//! contact update changes. Field-level differences between two entries are
//! what confirmations and circulars report ("before -> after").

use serde::{Deserialize, Serialize};

use super::{Contact, PartyKind, UnprotectedParts};
use crate::vocab::{Language, Topic};

/// An organigram document, stored by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Document {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

/// One party's entry, certificates named by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    pub id: String,
    pub kind: PartyKind,
    pub name: String,
    pub email: String,
    pub language: Language,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<Topic>,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_confirmed: Option<String>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub organigram: Vec<Document>,
    /// The fingerprint of the party's current certificate.
    pub cert: String,
    /// Parts added outside the encryption in transit: refused (the
    /// default, not written) or discarded. The operator's setting.
    #[serde(default, skip_serializing_if = "UnprotectedParts::is_refuse")]
    pub unprotected_parts: UnprotectedParts,
}

/// One changed field: its name and its values before and after, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: String,
    pub after: String,
}

impl Entry {
    /// The fields that differ from `before` (an absent entry has no fields).
    pub fn changes_from(&self, before: Option<&Entry>) -> Vec<Change> {
        let after = fields(Some(self));
        let before = fields(before);
        let mut names: Vec<&String> = after.keys().chain(before.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|k| {
                let (b, a) = (
                    before.get(k).cloned().unwrap_or_default(),
                    after.get(k).cloned().unwrap_or_default(),
                );
                (a != b).then(|| Change {
                    field: k.clone(),
                    before: b,
                    after: a,
                })
            })
            .collect()
    }
}

/// An entry as (field -> readable value); lists of contacts become one field per contact.
fn fields(entry: Option<&Entry>) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Some(e) = entry else { return out };
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(e) else {
        return out;
    };
    for (k, v) in map {
        match (k.as_str(), v) {
            ("contacts", serde_json::Value::Array(list)) => {
                for c in list {
                    let name = c
                        .get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("?")
                        .to_string();
                    out.insert(format!("contact {name}"), contact_line(&c));
                }
            }
            (_, v) => {
                out.insert(k, readable(&v));
            }
        }
    }
    out
}

/// A contact person on one line: role; e-mails; phones.
fn contact_line(c: &serde_json::Value) -> String {
    let list = |k: &str| {
        c.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let role = c.get("role").and_then(|r| r.as_str()).unwrap_or("");
    [role.to_string(), list("emails"), list("phones")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn readable(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            id: "AT".into(),
            kind: PartyKind::Nfp,
            name: "NFP Austria".into(),
            email: "nfp@at.example".into(),
            language: Language::De,
            state: Some("AT".into()),
            topics: vec![],
            languages: vec![Language::De],
            address: Some("Herrengasse 7".into()),
            timezone: None,
            working_hours: None,
            last_confirmed: None,
            contacts: vec![Contact {
                name: "Anna Berger".into(),
                role: Some("Head".into()),
                emails: vec![],
                phones: vec!["+43 1 1".into()],
            }],
            organigram: vec![],
            cert: "AAAA".into(),
            unprotected_parts: UnprotectedParts::Refuse,
        }
    }

    #[test]
    fn changes_name_each_field_with_before_and_after() {
        let before = entry();
        let mut after = entry();
        after.address = Some("Minoritenplatz 9".into());
        after.contacts[0].phones = vec!["+43 1 2".into()];
        let changes = after.changes_from(Some(&before));
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].field, "address");
        assert_eq!(
            (changes[0].before.as_str(), changes[0].after.as_str()),
            ("Herrengasse 7", "Minoritenplatz 9")
        );
        assert_eq!(changes[1].field, "contact Anna Berger");
        assert!(after.changes_from(Some(&after)).is_empty());
        assert!(
            after.changes_from(None).len() > 5,
            "a new entry changes every field"
        );
    }
}
