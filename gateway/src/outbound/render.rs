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
pub const NAMES: [&str; 27] = [
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
    "gateway_key_rotation",
    "case_reminder",
    "case_overdue_note",
    "command_result",
    "rollcall_request",
    "rollcall_report",
    "library_circular",
    "weekly_report",
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

/// A value safe for several lines of text (a covering note): each line as
/// [`clean_line`] makes it (at most `max_line` characters), runs of blank
/// lines as one, at most `max_lines` lines.
pub fn clean_text(s: &str, max_lines: usize, max_line: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in s.lines().map(|l| clean_line(l, max_line)) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        lines.push("…".into());
    }
    lines.join("\n")
}

fn one_line(s: &str) -> String {
    clean_line(s, 300)
}

pub mod samples;

#[cfg(test)]
mod tests {
    use super::samples::sample;
    use super::*;

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

    /// A command's result says what was done, or each refusal in words of
    /// the language, never an empty reason.
    #[test]
    fn command_results_explain_every_refusal_in_every_language() {
        let t = Templates::load(None).unwrap();
        for lang in Language::ALL {
            let (mut data, _) = sample("command_result");
            let done = t.render("command_result", lang, &data).unwrap();
            for code in [
                "no_case",
                "closed_already",
                "open_already",
                "no_party",
                "owed_already",
                "not_understood",
                "no_practice",
                "content_deleted",
            ] {
                data["done"] = false.into();
                data["refusal"] = code.into();
                data["why"] = "WHY".into();
                data["debtor"] = serde_json::Value::Null;
                let r = t.render("command_result", lang, &data).unwrap();
                assert_ne!(r.subject, done.subject, "{}/{code}", lang.code());
                data["refusal"] = "unknown".into();
                let bare = t.render("command_result", lang, &data).unwrap();
                // The reason's words are the difference.
                assert!(
                    r.body.len() > bare.body.len() + 15 && !r.body.contains("2026-12-03"),
                    "{}/{code}: {}",
                    lang.code(),
                    r.body
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

    /// A GpgOL attachment whose name was read outside the encryption is
    /// marked so in every forward, in every language; a name from inside
    /// the encryption is not.
    #[test]
    fn an_unprotected_attachment_name_is_marked_in_every_forward() {
        let t = Templates::load(None).unwrap();
        for lang in Language::ALL {
            for name in NAMES.iter().filter(|n| n.starts_with("forward_")) {
                let (mut data, _) = sample(name);
                let line = |data: &serde_json::Value, file: &str| {
                    let body = t.render(name, lang, data).unwrap().body;
                    let line = body.lines().find(|l| l.contains(file)).map(str::to_string);
                    line.unwrap_or_else(|| panic!("{}/{name}: no {file}", lang.code()))
                };
                let marked = line(&data, "lagebild.pdf");
                let inside = line(&data, "bericht.pdf");
                assert!(
                    marked.len() > inside.len() + 20,
                    "{}/{name}: {marked}",
                    lang.code()
                );
                data["attachments"][1]["name_unprotected"] = false.into();
                let unmarked = line(&data, "lagebild.pdf");
                assert!(
                    unmarked.len() + 20 < marked.len(),
                    "{}/{name}: {unmarked}",
                    lang.code()
                );
            }
        }
    }

    /// The key-expiry report names the gateway's own key, with what keys
    /// check found, in every language; only when there is something.
    #[test]
    fn the_report_names_the_gateways_own_key_when_due() {
        let t = Templates::load(None).unwrap();
        for lang in Language::ALL {
            let (mut data, _) = sample("key_expiry_report");
            let body =
                |data: &serde_json::Value| t.render("key_expiry_report", lang, data).unwrap().body;
            let due = body(&data);
            assert!(
                due.contains("9E0D2C41B7A35F6E8D1C0B2A3F4E5D6C7B8A9F01")
                    && due.contains("no valid signing key on 2026-12-26")
                    && due.contains("2026-12-20T00:00:00Z"),
                "{}: {due}",
                lang.code()
            );
            data["own_key"] = serde_json::Value::Null;
            let quiet = body(&data);
            assert!(
                !quiet.contains("9E0D2C41B7A35F6E") && !quiet.contains("keys check"),
                "{}: {quiet}",
                lang.code()
            );
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
