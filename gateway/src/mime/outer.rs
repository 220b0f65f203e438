//! The outer message, as received: which shape it has, and its ciphertext.
//!
//! Accepted shapes: RFC 3156 `multipart/encrypted` at the root, or a single
//! `text/plain` body that is one armored OpenPGP message and nothing else,
//! or a shape that one of the [`repair`](super::repair)s restores to one of
//! these exactly. Everything else is refused here, before any cryptography
//! runs.

use mail_parser::{HeaderValue, Message};

use super::repair::{self, Repair};
use super::rfc3156::pgp_mime;
pub use super::rfc3156::Form;
use super::{addresses, check_tree, mime_type, parse};
use crate::config::Limits;
use crate::reason::{reject, Reason, Rejection};

const BEGIN_MESSAGE: &str = "-----BEGIN PGP MESSAGE-----";
const END_MESSAGE: &str = "-----END PGP MESSAGE-----";
const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";

/// What the gateway reads of the outer message. None of it is authenticated.
#[derive(Debug, Clone)]
pub struct Outer {
    /// The one From address, lower case.
    pub from: String,
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub form: Form,
    /// The OpenPGP message (armored or binary) to decrypt.
    pub ciphertext: Vec<u8>,
    /// What was repaired to reach the canonical shape, if anything.
    pub repair: Option<Repair>,
    /// Parts added outside the encryption and discarded, if the judgement
    /// finds that the signer's party allows it
    /// ([`Repair::UnprotectedPartsDiscarded`]).
    pub discarded: Vec<repair::Discarded>,
    /// Attachments encrypted and signed on their own (GpgOL), to be judged
    /// like the text.
    pub attachments: Vec<repair::EncryptedAttachment>,
}

/// Reads the outer message and refuses every shape but the accepted two.
pub fn examine(raw: &[u8], limits: &Limits, own_address: &str) -> Result<Outer, Rejection> {
    if raw.len() > limits.max_message_size {
        return reject(
            Reason::Limits,
            format!(
                "message of {} bytes exceeds {} bytes",
                raw.len(),
                limits.max_message_size
            ),
        );
    }
    let msg = parse(raw)?;
    if msg.root_part().headers.is_empty() {
        return reject(Reason::Malformed, "no header section");
    }
    check_tree(&msg, limits)?;
    check_loop(&msg, own_address)?;
    let from = single_from(&msg)?;
    let (form, ciphertext, repair, discarded, attachments) = match payload(&msg) {
        Ok((form, ciphertext)) => (form, ciphertext, None, Vec::new(), Vec::new()),
        Err(refused) => {
            match repair::repair(&msg).or_else(|| repair::unprotected_parts(&msg, &from)) {
                Some(r) => (
                    r.form,
                    r.ciphertext,
                    Some(r.repair),
                    r.discarded,
                    r.attachments,
                ),
                None => return Err(refused),
            }
        }
    };
    Ok(Outer {
        from,
        to: addresses(msg.to()),
        subject: msg.subject().map(str::to_string),
        message_id: msg.message_id().map(str::to_string),
        form,
        ciphertext,
        repair,
        discarded,
        attachments,
    })
}

/// RFC 3834: automatic responses, bounces and reports are never acted on.
fn check_loop(msg: &Message<'_>, own_address: &str) -> Result<(), Rejection> {
    let header_text = |name: &str| -> Vec<String> {
        msg.header_values(name)
            .filter_map(|v| match v {
                HeaderValue::Text(t) => Some(t.to_string()),
                HeaderValue::TextList(l) => Some(l.join(",")),
                _ => None,
            })
            .collect()
    };
    for v in header_text("Auto-Submitted") {
        if !v.trim().eq_ignore_ascii_case("no") {
            return reject(Reason::Loop, format!("Auto-Submitted: {}", v.trim()));
        }
    }
    if mime_type(msg.root_part()) == "multipart/report" {
        return reject(
            Reason::Loop,
            "a delivery or disposition report (multipart/report)",
        );
    }
    for v in header_text("Precedence") {
        let v = v.trim().to_ascii_lowercase();
        if matches!(v.as_str(), "bulk" | "junk" | "list") {
            return reject(Reason::Loop, format!("Precedence: {v}"));
        }
    }
    for v in header_text("X-Loop") {
        if v.to_ascii_lowercase().contains(own_address) {
            return reject(Reason::Loop, "X-Loop names this gateway");
        }
    }
    if let Some(rp) = msg.header_raw("Return-Path") {
        if rp.trim() == "<>" {
            return reject(Reason::Loop, "null Return-Path: a bounce");
        }
    }
    Ok(())
}

/// Exactly one From header with exactly one plain address.
fn single_from(msg: &Message<'_>) -> Result<String, Rejection> {
    let fields = msg.header_values("From").count();
    if fields == 0 {
        return reject(Reason::Malformed, "no From header");
    }
    if fields > 1 {
        return reject(Reason::Malformed, format!("{fields} From headers"));
    }
    let from = addresses(msg.from());
    match from.as_slice() {
        [one] if crate::address::is_plain_address(one) => Ok(one.clone()),
        [] | [_] => reject(Reason::Malformed, "the From header holds no usable address"),
        more => reject(
            Reason::SenderMismatch,
            format!("From names {} addresses", more.len()),
        ),
    }
}

/// The ciphertext of an accepted shape, or why the shape is refused.
fn payload(msg: &Message<'_>) -> Result<(Form, Vec<u8>), Rejection> {
    let root = msg.root_part();
    match mime_type(root).as_str() {
        "multipart/encrypted" => pgp_mime(msg),
        "text/plain" => inline(msg),
        "multipart/signed" if !any_encrypted(msg) => reject(
            Reason::NotEncrypted,
            "signed (multipart/signed) but not encrypted",
        ),
        "multipart/signed" => reject(
            Reason::Structure,
            "a signature outside the encryption: multipart/signed around encrypted content",
        ),
        other if any_encrypted(msg) => reject(
            Reason::Structure,
            format!("encrypted content below a {other} root, next to unprotected parts"),
        ),
        other => reject(Reason::NotEncrypted, format!("no encryption ({other})")),
    }
}

/// Inline PGP: the whole body is one armored message, nothing around it.
fn inline(msg: &Message<'_>) -> Result<(Form, Vec<u8>), Rejection> {
    let text = String::from_utf8_lossy(msg.root_part().contents());
    let body = text.trim();
    if body.starts_with(BEGIN_MESSAGE)
        && body.ends_with(END_MESSAGE)
        && body.matches(BEGIN_MESSAGE).count() == 1
    {
        return Ok((Form::Inline, body.as_bytes().to_vec()));
    }
    if body.contains(BEGIN_MESSAGE) {
        return reject(
            Reason::Structure,
            "inline PGP with unprotected text around the armor",
        );
    }
    if body.contains(BEGIN_SIGNED) {
        return reject(Reason::NotEncrypted, "clear-signed but not encrypted");
    }
    reject(Reason::NotEncrypted, "plain text, no encryption")
}

/// Whether any part anywhere carries OpenPGP encryption.
fn any_encrypted(msg: &Message<'_>) -> bool {
    msg.parts.iter().any(|p| {
        let t = mime_type(p);
        t == "multipart/encrypted"
            || t == "application/pgp-encrypted"
            || (!p.is_multipart()
                && p.len() < (64 << 20)
                && memchr_str(p.contents(), BEGIN_MESSAGE.as_bytes()))
    })
}

fn memchr_str(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}
