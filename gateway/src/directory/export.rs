//! Exports of the directory: JSON, CSV, vCard and a printable HTML page.
//! Output depends only on the entries and the date given, so two exports of
//! the same directory are byte-identical and can be diffed.

use std::fmt::Write as _;

use super::{Entry, PartyKind};

/// The entries in the order every export uses: the Secretariat, then each
/// State (its NFP before its services), services by id.
pub fn ordered(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| {
        let key = |e: &Entry| {
            (
                e.kind != PartyKind::Secretariat,
                e.state.clone().unwrap_or_default(),
                e.kind,
                e.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    entries
}

pub fn json(entries: &[Entry]) -> String {
    serde_json::to_string_pretty(entries).unwrap_or_default() + "\n"
}

/// One row per contact person (a party without contacts: one row without).
pub fn csv(entries: &[Entry]) -> String {
    let mut out = String::from(
        "party,kind,state,name,email,language,address,timezone,contact,role,contact_emails,contact_phones,certificate\r\n",
    );
    for e in entries {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let base = [
            e.id.clone(),
            kind,
            e.state.clone().unwrap_or_default(),
            e.name.clone(),
            e.email.clone(),
            e.language.code().to_string(),
            e.address.clone().unwrap_or_default(),
            e.timezone.clone().unwrap_or_default(),
        ];
        let contacts: Vec<[String; 4]> = if e.contacts.is_empty() {
            vec![Default::default()]
        } else {
            e.contacts
                .iter()
                .map(|c| {
                    [
                        c.name.clone(),
                        c.role.clone().unwrap_or_default(),
                        c.emails.join("; "),
                        c.phones.join("; "),
                    ]
                })
                .collect()
        };
        for c in contacts {
            let row: Vec<String> = base
                .iter()
                .chain(c.iter())
                .chain([&e.cert])
                .map(|f| csv_field(f))
                .collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// vCard 4.0 (RFC 6350), one card per contact person, written by calcard
/// (escaping, folding at 75 octets, CRLF). Every property name is one of
/// calcard's or the constant `X-NFP-PARTY`: only values come from the
/// directory, and calcard escapes them.
pub fn vcard(entries: &[Entry]) -> String {
    use calcard::vcard::{
        VCard, VCardEntry, VCardKind, VCardParameter, VCardParameterName, VCardProperty, VCardType,
        VCardValue, VCardVersion,
    };
    let text = |s: &str| VCardValue::Text(s.to_string());
    let work = || VCardParameter::typ(VCardType::Work);
    let mut out = String::new();
    for e in entries {
        for c in &e.contacts {
            let mut card = VCard::default();
            let mut add = |entry: VCardEntry| card.entries.push(entry);
            add(VCardEntry::new(VCardProperty::Kind)
                .with_value(VCardValue::Kind(VCardKind::Individual)));
            add(VCardEntry::new(VCardProperty::Fn).with_value(text(&c.name)));
            add(VCardEntry::new(VCardProperty::Org).with_value(text(&e.name)));
            if let Some(role) = &c.role {
                add(VCardEntry::new(VCardProperty::Title).with_value(text(role)));
            }
            for m in &c.emails {
                add(VCardEntry::new(VCardProperty::Email)
                    .with_param(work())
                    .with_value(text(m)));
            }
            for p in &c.phones {
                add(VCardEntry::new(VCardProperty::Tel)
                    .with_param(work())
                    .with_value(text(p)));
            }
            if let Some(a) = &e.address {
                let label = a.replace(['"', '\r', '\n'], " ");
                add(VCardEntry::new(VCardProperty::Adr)
                    .with_param(work())
                    .with_param(VCardParameter::new(VCardParameterName::Label, label))
                    .with_values(vec![text(""); 7]));
            }
            add(VCardEntry::new(VCardProperty::Lang).with_value(text(e.language.code())));
            add(
                VCardEntry::new(VCardProperty::Note).with_value(text(&format!(
                    "Contact person of {} ({}) in the NFP network",
                    e.name, e.id
                ))),
            );
            add(VCardEntry::new(VCardProperty::Other("X-NFP-PARTY".into())).with_value(text(&e.id)));
            // Writing to a String cannot fail.
            let _ = card.write_to(&mut out, VCardVersion::V4_0);
        }
    }
    out
}

/// A printable, self-contained page of the whole list, grouped by State.
pub fn html(entries: &[Entry], network: &[(String, String)], generated: &str) -> String {
    let title = network
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| {
            "Network of National Focal Points for border security and management".into()
        });
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<header><h1>{t}</h1>\n<p class=\"meta\">Directory of the participating States' National Focal Points, the Secretariat and national services. Generated {g} from the gateway's directory; {n} entries.</p></header>\n",
        t = esc(&title),
        g = esc(generated),
        n = entries.len()
    );
    let mut current_group = None;
    for e in entries {
        let group = match e.kind {
            PartyKind::Secretariat => "Secretariat".to_string(),
            _ => e.state.clone().unwrap_or_default(),
        };
        if current_group.as_ref() != Some(&group) {
            if current_group.is_some() {
                out.push_str("</section>\n");
            }
            let heading = if group == "Secretariat" {
                "OSCE Secretariat".to_string()
            } else {
                format!("State: {group}")
            };
            let _ = writeln!(out, "<section class=\"group\"><h2>{}</h2>", esc(&heading));
            current_group = Some(group);
        }
        party_html(&mut out, e);
    }
    if current_group.is_some() {
        out.push_str("</section>\n");
    }
    out.push_str("<footer>Certificates are identified by fingerprint; confirm a fingerprint through a second channel before relying on it.</footer>\n</body>\n</html>\n");
    out
}

fn party_html(out: &mut String, e: &Entry) {
    let kind = match e.kind {
        PartyKind::Secretariat => "Secretariat",
        PartyKind::Nfp => "National Focal Point",
        PartyKind::Service => "National service",
    };
    let _ = writeln!(
        out,
        "<article class=\"party\"><h3>{} <span class=\"id\">{}</span></h3>",
        esc(&e.name),
        esc(&e.id)
    );
    out.push_str("<dl>\n");
    let mut row = |k: &str, v: &str| {
        if !v.is_empty() {
            let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
        }
    };
    row("Role", kind);
    row("E-mail", &e.email);
    let langs: Vec<&str> = e.languages.iter().map(|l| l.code()).collect();
    row("Languages", &langs.join(", "));
    let topics: Vec<String> = e
        .topics
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_string))
        .collect();
    row("Competences", &topics.join(", ").replace('_', " "));
    row("Postal address", e.address.as_deref().unwrap_or(""));
    row("Time zone", e.timezone.as_deref().unwrap_or(""));
    row("Working hours", e.working_hours.as_deref().unwrap_or(""));
    row("Last confirmed", e.last_confirmed.as_deref().unwrap_or(""));
    let docs: Vec<String> = e
        .organigram
        .iter()
        .map(|d| format!("{} ({}, {} bytes)", d.name, d.content_type, d.size))
        .collect();
    row("Organigram", &docs.join("; "));
    row("Certificate", &e.cert);
    out.push_str("</dl>\n");
    if !e.contacts.is_empty() {
        out.push_str("<table><thead><tr><th>Contact person</th><th>Role</th><th>E-mail</th><th>Telephone</th></tr></thead><tbody>\n");
        for c in &e.contacts {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.name),
                esc(c.role.as_deref().unwrap_or("")),
                esc(&c.emails.join(", ")),
                esc(&c.phones.join(", "))
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</article>\n");
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const CSS: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:10.5pt;color:#111;margin:2em auto;max-width:60em}
h1{font-size:17pt;margin:0}h2{font-size:13pt;border-bottom:2px solid #004b87;color:#004b87;margin-top:1.6em}
h3{font-size:11pt;margin:.9em 0 .3em}.id{color:#666;font-weight:normal;font-size:9pt}
.meta{color:#444}dl{display:grid;grid-template-columns:9em 1fr;gap:.1em .8em;margin:.2em 0}
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}table{border-collapse:collapse;width:100%;margin:.4em 0 .8em}
th,td{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}th{background:#eef2f7}
.party{page-break-inside:avoid}footer{margin-top:2em;color:#555;font-size:9pt}
@media print{body{margin:0;max-width:none}section.group{page-break-before:auto}}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Contact;
    use crate::vocab::Language;

    fn entry(id: &str, kind: PartyKind, state: Option<&str>) -> Entry {
        Entry {
            id: id.into(),
            kind,
            name: format!("<{id}> & Co, \"quoted\""),
            email: format!("{}@x.example", id.to_lowercase()),
            language: Language::En,
            state: state.map(str::to_string),
            topics: vec![],
            languages: vec![Language::En],
            address: Some("Line 1, Line 2".into()),
            timezone: None,
            working_hours: None,
            last_confirmed: None,
            contacts: vec![Contact {
                name: "Ann; Doe".into(),
                role: None,
                emails: vec!["a@x.example".into()],
                phones: vec![],
            }],
            organigram: vec![],
            cert: "F00".into(),
            unprotected_parts: Default::default(),
        }
    }

    #[test]
    fn order_is_secretariat_then_states_nfp_first() {
        let e = ordered(vec![
            entry("at-customs", PartyKind::Service, Some("AT")),
            entry("FR", PartyKind::Nfp, Some("FR")),
            entry("AT", PartyKind::Nfp, Some("AT")),
            entry("secretariat", PartyKind::Secretariat, None),
        ]);
        let ids: Vec<&str> = e.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["secretariat", "AT", "at-customs", "FR"]);
    }

    #[test]
    fn html_escapes_and_csv_quotes() {
        let e = vec![entry("AT", PartyKind::Nfp, Some("AT"))];
        let page = html(&e, &[], "2026-11-26");
        assert!(page.contains("&lt;AT&gt; &amp; Co, &quot;quoted&quot;"));
        assert!(!page.contains("<AT>"));
        assert!(csv(&e).contains("\"<AT> & Co, \"\"quoted\"\"\""));
    }

    /// What the export writes, the contact-update reader reads back: each
    /// card gives its contact, with escaped, folded and non-ASCII values.
    #[test]
    fn exported_vcards_read_back() {
        let mut e = entry("AT", PartyKind::Nfp, Some("AT"));
        e.contacts = vec![
            Contact {
                name: "Ann; Doe, \\ Jr".into(),
                role: Some(
                    "Leiterin der Nationalen Kontaktstelle für Grenzsicherheit und Grenzmanagement"
                        .into(),
                ),
                emails: vec!["ann.doe@bmi.at.example".into(), "nfp@bmi.at.example".into()],
                phones: vec!["+43 1 555 26 90".into()],
            },
            Contact {
                name: "Мария Иванова".into(),
                role: None,
                emails: vec!["m.ivanova@bmi.at.example".into()],
                phones: vec![],
            },
        ];
        let text = vcard(std::slice::from_ref(&e));
        assert!(text.split("\r\n").all(|l| l.len() <= 75), "{text}");
        for (card, contact) in text.split_inclusive("END:VCARD\r\n").zip(&e.contacts) {
            let mut u = super::super::update::Update::default();
            super::super::update::read_vcards(card, &mut u).unwrap();
            assert_eq!(u.target.as_deref(), Some("AT"));
            assert_eq!(u.contacts.len(), 1, "{card}");
            let read = &u.contacts[0];
            assert_eq!(
                (&read.name, &read.role, &read.emails, &read.phones),
                (
                    &contact.name,
                    &contact.role,
                    &contact.emails,
                    &contact.phones
                ),
                "{card}"
            );
        }
    }

    #[test]
    fn vcards_escape_and_fold() {
        let mut e = entry("AT", PartyKind::Nfp, Some("AT"));
        e.name = "x".repeat(200);
        let v = vcard(&[e]);
        assert!(v.contains("FN:Ann\\; Doe\r\n"));
        assert!(v.split("\r\n").all(|l| l.len() <= 75));
        assert_eq!(v.matches("BEGIN:VCARD").count(), 1);
    }
}
