//! Rendering the gateway's own text from handlebars templates.
//!
//! `templates/<language>/<name>.hbs`: the first line is `Subject: ...`, then
//! an empty line, then the body. Templates are plain text: nothing is
//! HTML-escaped, and values are data, never evaluated as templates. Values
//! that come from mail (subjects, names, file names) are cleaned of control
//! and invisible formatting characters before they reach a template; the
//! subject line is cleaned again after rendering.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use handlebars::Handlebars;
use serde::Serialize;

use crate::classify::Language;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// Every template the gateway renders.
pub const NAMES: [&str; 19] = [
    "forward_assistance_request",
    "forward_best_practice",
    "forward_contact_update",
    "forward_information_request",
    "forward_information_reply",
    "forward_circular",
    "forward_unclassified",
    "acknowledgement",
    "quarantine_notice",
    "unreadable_message_notice",
    "quarantine_digest",
    "delivery_failure",
    "no_usable_key",
    "contact_update_applied",
    "contact_update_unparsed",
    "circular_directory_change",
    "key_expiry_warning",
    "key_expiry_report",
    "circular_announcement",
];

/// A rendered subject and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The loaded templates.
pub struct Templates {
    registry: Handlebars<'static>,
    /// (name, language) -> registered key
    available: BTreeMap<(String, String), String>,
}

impl Templates {
    /// The shipped templates, overridden by the `.hbs` files in `dir` (same layout).
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut sources: BTreeMap<(String, String), String> = BTreeMap::new();
        for (lang, name, text) in embedded::EMBEDDED {
            sources.insert((name.to_string(), lang.to_string()), text.to_string());
        }
        if let Some(dir) = dir {
            for lang in Language::ALL {
                let folder = dir.join(lang.code());
                let Ok(entries) = std::fs::read_dir(&folder) else {
                    continue;
                };
                for e in entries.flatten() {
                    let path = e.path();
                    if path.extension().is_some_and(|x| x == "hbs") {
                        let name = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("Reading the template {}", path.display()))?;
                        sources.insert((name, lang.code().to_string()), text);
                    }
                }
            }
        }
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        let mut available = BTreeMap::new();
        for ((name, lang), text) in sources {
            let key = format!("{lang}/{name}");
            registry
                .register_template_string(&key, text)
                .with_context(|| format!("Compiling the template {key}"))?;
            available.insert((name, lang), key);
        }
        for name in NAMES {
            if !available.contains_key(&(name.to_string(), "en".to_string())) {
                bail!("the English template {name} is missing");
            }
        }
        Ok(Templates {
            registry,
            available,
        })
    }

    /// Renders `name` in `lang`, or in English when that language has no such template.
    pub fn render(&self, name: &str, lang: Language, data: &impl Serialize) -> Result<Rendered> {
        let key = self
            .available
            .get(&(name.to_string(), lang.code().to_string()))
            .or_else(|| self.available.get(&(name.to_string(), "en".to_string())))
            .with_context(|| format!("No template {name}"))?;
        let text = self
            .registry
            .render(key, data)
            .with_context(|| format!("Rendering the template {key}"))?;
        split_subject(&text)
            .with_context(|| format!("The template {key} must start with a Subject: line"))
    }

    /// The languages that have every template.
    pub fn complete_languages(&self) -> Vec<Language> {
        Language::ALL
            .into_iter()
            .filter(|l| {
                NAMES.iter().all(|n| {
                    self.available
                        .contains_key(&(n.to_string(), l.code().to_string()))
                })
            })
            .collect()
    }
}

fn split_subject(text: &str) -> Result<Rendered> {
    let text = text.replace("\r\n", "\n");
    let Some(rest) = text.strip_prefix("Subject:") else {
        bail!("no Subject: line")
    };
    let (subject, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let body = body.strip_prefix('\n').unwrap_or(body);
    Ok(Rendered {
        subject: one_line(subject.trim()),
        body: body.trim_end().to_string() + "\n",
    })
}

/// A value safe for one line of text: no control or invisible formatting
/// characters, white space runs as one space, at most `max` characters.
pub fn clean_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control() || crate::mime::is_invisible_format(c))
    {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect::<String>() + "…";
    }
    out
}

fn one_line(s: &str) -> String {
    clean_line(s, 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::*;

    fn party(id: &str, name: &str) -> PartyView {
        PartyView {
            id: id.into(),
            name: name.into(),
            email: format!("{}@example.org", id.to_lowercase()),
        }
    }

    /// Sample data for each template, and a string its output must contain.
    fn sample(name: &str) -> (serde_json::Value, &'static str) {
        let gateway = "gateway@nfp-network.example".to_string();
        let v = |x: serde_json::Result<serde_json::Value>| x.unwrap();
        match name {
            "acknowledgement" => (
                v(serde_json::to_value(AcknowledgementData {
                    reference: "BSM-2026-000042".into(),
                    gateway,
                    recipient: party("AT", "Bundesministerium für Inneres"),
                    received_at: "2026-11-26T10:00:00Z".into(),
                    signed_at: "2026-11-26T09:59:00Z".into(),
                    kind: "assistance_request".into(),
                    forwarded_to: vec![party("secretariat", "OSCE Secretariat")],
                })),
                "BSM-2026-000042",
            ),
            "quarantine_notice" => (
                v(serde_json::to_value(QuarantineNoticeData {
                    gateway,
                    recipient: party("secretariat", "OSCE Secretariat"),
                    inbound_id: 17,
                    received_at: "2026-11-26T10:00:00Z".into(),
                    reason: "unknown_signer".into(),
                    reason_text: "signed by a key that is not in the directory".into(),
                    envelope_from: "mallory@evil.example".into(),
                    size: 12345,
                    transit_party: Some("AT".into()),
                    transit_bytes: 205,
                })),
                "unknown_signer",
            ),
            "unreadable_message_notice" => (
                v(serde_json::to_value(UnreadableNoticeData {
                    gateway,
                    recipient: party("AT", "Bundesministerium für Inneres"),
                    inbound_id: 17,
                    received_at: "2026-11-26T10:00:00Z".into(),
                    gateway_fingerprint: "C42147E7AD6F57570590F7845B1C04081B718CFC".into(),
                })),
                "OCB",
            ),
            "quarantine_digest" => (
                v(serde_json::to_value(QuarantineDigestData {
                    gateway,
                    recipient: party("secretariat", "OSCE Secretariat"),
                    since: "2026-11-26T10:00:00Z".into(),
                    until: "2026-11-26T11:00:00Z".into(),
                    count: 997,
                    by_reason: vec![DigestLine {
                        label: "sender_mismatch".into(),
                        text: "the From address does not belong to the signer".into(),
                        count: 997,
                    }],
                    by_sender: vec![DigestLine {
                        label: "nfp@interieur.fr.example".into(),
                        text: String::new(),
                        count: 997,
                    }],
                    more_senders: 0,
                    first_id: 4,
                    last_id: 1000,
                })),
                "997",
            ),
            "delivery_failure" => (
                v(serde_json::to_value(DeliveryFailureData {
                    gateway,
                    recipient: party("secretariat", "OSCE Secretariat"),
                    reference: Some("BSM-2026-000042".into()),
                    failed_recipient: party("FR", "Ministère de l'Intérieur"),
                    attempts: 6,
                    first_attempt_at: "2026-11-26T10:00:00Z".into(),
                    last_error: "550 5.1.1 mailbox unavailable".into(),
                })),
                "fr@example.org",
            ),
            "no_usable_key" => (
                v(serde_json::to_value(NoUsableKeyData {
                    gateway,
                    recipient: party("secretariat", "OSCE Secretariat"),
                    reference: Some("BSM-2026-000042".into()),
                    unreachable: party("SE", "Polisen"),
                    why: "certificate 0123 is expired".into(),
                })),
                "se@example.org",
            ),
            "contact_update_applied" => (
                v(serde_json::to_value(ContactUpdateAppliedData {
                    reference: "BSM-2026-000042".into(),
                    gateway,
                    recipient: party("AT", "Bundesministerium für Inneres"),
                    received_at: "2026-11-26T10:00:00Z".into(),
                    changes: vec![crate::directory::Change {
                        field: "address".into(),
                        before: "Herrengasse 7, 1010 Wien".into(),
                        after: "Minoritenplatz 9, 1010 Wien".into(),
                    }],
                    new_certificate: Some("C42147E7AD6F57570590F7845B1C04081B718CFC".into()),
                    previous_certificate_until: Some("2026-12-03T10:00:00Z".into()),
                })),
                "Minoritenplatz 9, 1010 Wien",
            ),
            "contact_update_unparsed" => (
                v(serde_json::to_value(ContactUpdateUnparsedData {
                    reference: "BSM-2026-000042".into(),
                    gateway,
                    recipient: party("AT", "Bundesministerium für Inneres"),
                    received_at: "2026-11-26T10:00:00Z".into(),
                    why: "the vCard field X-FOO is not one the directory keeps".into(),
                })),
                "BSM-2026-000042",
            ),
            "circular_directory_change" => (
                v(serde_json::to_value(DirectoryCircularData {
                    gateway,
                    recipient: party("FR", "Ministère de l'Intérieur"),
                    circular_id: 7,
                    generated_at: "2026-11-26T10:10:00Z".into(),
                    parties: vec![PartyChanges {
                        party: party("AT", "Bundesministerium für Inneres"),
                        change: "changed".into(),
                        at: "2026-11-26T10:00:00Z".into(),
                        by: "update by AT (BSM-2026-000042)".into(),
                        changes: vec![crate::directory::Change {
                            field: "address".into(),
                            before: "Herrengasse 7, 1010 Wien".into(),
                            after: "Minoritenplatz 9, 1010 Wien".into(),
                        }],
                    }],
                    undelivered: vec![Undelivered {
                        party: party("SE", "Polisen"),
                        why: "certificate expired".into(),
                    }],
                })),
                "Minoritenplatz 9, 1010 Wien",
            ),
            "key_expiry_warning" | "key_expiry_report" => {
                let key = KeyStatus {
                    party: party("SE", "Polisen"),
                    fingerprint: "C42147E7AD6F57570590F7845B1C04081B718CFC".into(),
                    expires_at: Some("2026-12-10T00:00:00Z".into()),
                    days_left: Some(14),
                    unusable: false,
                    why: String::new(),
                };
                if name == "key_expiry_warning" {
                    (
                        v(serde_json::to_value(KeyExpiryWarningData {
                            gateway,
                            recipient: party("SE", "Polisen"),
                            key,
                        })),
                        "C42147E7AD6F57570590F7845B1C04081B718CFC",
                    )
                } else {
                    let dead = KeyStatus {
                        party: party("PL", "Straż Graniczna"),
                        fingerprint: "A15F00A7FA020A3BE24C0935BBA0F0BA97E97A04".into(),
                        expires_at: Some("2026-11-20T00:00:00Z".into()),
                        days_left: Some(-6),
                        unusable: true,
                        why: "certificate is expired".into(),
                    };
                    (
                        v(serde_json::to_value(KeyExpiryReportData {
                            gateway,
                            recipient: party("secretariat", "OSCE Secretariat"),
                            generated_at: "2026-11-26T10:00:00Z".into(),
                            warning_days: 30,
                            keys: vec![key, dead],
                        })),
                        "A15F00A7FA020A3BE24C0935BBA0F0BA97E97A04",
                    )
                }
            }
            "circular_announcement" => (
                v(serde_json::to_value(AnnouncementData {
                    gateway,
                    recipient: party("FR", "Ministère de l'Intérieur"),
                    circular_id: 8,
                    generated_at: "2026-11-26T10:00:00Z".into(),
                    title: "Annual meeting of the NFP network, Vienna, 12-13 March".into(),
                    text:
                        "Dear colleagues, the Secretariat invites each NFP to its annual meeting."
                            .into(),
                    undelivered: vec![Undelivered {
                        party: party("PL", "Straż Graniczna"),
                        why: "certificate expired".into(),
                    }],
                })),
                "Annual meeting of the NFP network",
            ),
            _ => (
                v(serde_json::to_value(ForwardData {
                    reference: "BSM-2026-000042".into(),
                    gateway,
                    recipient: party("secretariat", "OSCE Secretariat"),
                    sender: party("AT", "Bundesministerium für Inneres"),
                    fingerprint: "C42147E7AD6F57570590F7845B1C04081B718CFC".into(),
                    signed_at: "2026-11-26T09:59:00Z".into(),
                    received_at: "2026-11-26T10:00:00Z".into(),
                    subject: "Schulung der Grenzpolizei".into(),
                    kind: name.trim_start_matches("forward_").into(),
                    topics: vec!["border_police".into()],
                    language: "de".into(),
                    target: Some(party("FR", "Ministère de l'Intérieur")),
                    cited_reference: Some("BSM-2026-000007".into()),
                    attachments: vec![AttachmentView {
                        name: "bericht.pdf".into(),
                        content_type: "application/pdf".into(),
                        size: 615,
                    }],
                    why: "assistance requests go to the Secretariat".into(),
                    original_name: "original-BSM-2026-000042.eml".into(),
                    contact_update: Some(UpdateNote {
                        applied: true,
                        changes: vec![crate::directory::Change {
                            field: "address".into(),
                            before: "Herrengasse 7".into(),
                            after: "Minoritenplatz 9".into(),
                        }],
                        why: String::new(),
                    }),
                    discarded_bytes: 230,
                    discarded_parts: 2,
                    separately_signed: true,
                })),
                "BSM-2026-000042",
            ),
        }
    }

    #[test]
    fn every_template_renders_in_every_language() {
        let t = Templates::load(None).unwrap();
        assert_eq!(
            t.complete_languages(),
            Language::ALL.to_vec(),
            "languages with every template"
        );
        for lang in Language::ALL {
            for name in NAMES {
                let (data, must) = sample(name);
                let r = t
                    .render(name, lang, &data)
                    .unwrap_or_else(|e| panic!("{}/{name}: {e:#}", lang.code()));
                assert!(
                    !r.subject.is_empty(),
                    "{}/{name}: empty subject",
                    lang.code()
                );
                let all = format!("{}\n{}", r.subject, r.body);
                assert!(
                    all.contains(must),
                    "{}/{name} does not show {must}:\n{all}",
                    lang.code()
                );
            }
        }
    }

    /// Parts discarded in transit are counted in every forward, separately
    /// signed attachments (GpgOL) are explained, and a genuine message
    /// refused for added parts gets the operator's setting named in the
    /// notice, in every language; none of these lines appears otherwise.
    #[test]
    fn transit_additions_are_told_in_every_language() {
        let t = Templates::load(None).unwrap();
        for lang in Language::ALL {
            for name in NAMES
                .iter()
                .filter(|n| n.starts_with("forward_") || **n == "quarantine_notice")
            {
                let (mut data, _) = sample(name);
                let shown = |data: &serde_json::Value| {
                    let r = t.render(name, lang, data).unwrap();
                    r.body.contains("230")
                        || r.body.contains("unprotected-parts")
                        || r.body.contains("GpgOL")
                };
                assert!(shown(&data), "{}/{name}: no transit line", lang.code());
                data["discarded_bytes"] = 0.into();
                data["discarded_parts"] = 0.into();
                data["transit_party"] = serde_json::Value::Null;
                data["separately_signed"] = false.into();
                assert!(
                    !shown(&data),
                    "{}/{name}: a transit line for nothing",
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_not_an_empty_string() {
        let t = Templates::load(None).unwrap();
        assert!(t
            .render("acknowledgement", Language::En, &serde_json::json!({}))
            .is_err());
    }

    #[test]
    fn clean_line_removes_line_breaks_and_bidi_controls() {
        assert_eq!(
            clean_line("a\r\nBcc: evil@x\u{2028}y\u{202E}z\0", 100),
            "a Bcc: evil@x y z"
        );
        assert_eq!(clean_line(&"x".repeat(50), 10).chars().count(), 10);
    }

    #[test]
    fn subject_and_body_are_split() {
        let r = split_subject("Subject:  Hello  there\r\n\r\nBody\nline\n\n").unwrap();
        assert_eq!(r.subject, "Hello there");
        assert_eq!(r.body, "Body\nline\n");
        assert!(split_subject("Hello\n\nBody").is_err());
    }
}
