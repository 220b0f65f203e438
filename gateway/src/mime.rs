//! MIME: the message's structure, before and after decryption.
//!
//! [`outer`] decides what shape an inbound message has (PGP/MIME, inline
//! PGP, or something the gateway refuses) and extracts the ciphertext.
//! [`inner`] reads the decrypted entity: the RFC 3156 signed layer when the
//! sender used separate layers, protected headers, the text and the
//! attachments. Nothing here trusts anything: the caller decides what is
//! authenticated. [`repair`] undoes, before judgement, what servers and
//! webmail do to genuine OpenPGP mail in transit.

pub mod inner;
pub mod outer;
pub mod repair;
mod rfc3156;

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use crate::config::Limits;
use crate::reason::{reject, Reason, Rejection};

/// The addresses in an address header, lower case, in order.
pub fn addresses(addr: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    addr.map(|a| {
        a.iter()
            .filter_map(|a| a.address())
            .map(|a| a.trim().to_ascii_lowercase())
            .collect()
    })
    .unwrap_or_default()
}

/// `type/subtype` in lower case, `text/plain` when absent (RFC 2045 §5.2).
/// Only RFC 2045 token characters are kept (it is shown in the gateway's own
/// text): a type that needed more is `application/octet-stream`.
pub fn mime_type(part: &MessagePart<'_>) -> String {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) if token(ct.ctype()) && token(sub) => {
                format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
            }
            None if token(ct.ctype()) => ct.ctype().to_ascii_lowercase(),
            _ => "application/octet-stream".into(),
        },
        None if matches!(part.body, PartType::Multipart(_)) => "multipart/mixed".into(),
        None => "text/plain".into(),
    }
}

/// Checks a parsed message against the depth, part-count and header-size limits.
///
/// mail-parser keeps nested `message/rfc822` parts as messages of their own:
/// they count towards both limits.
pub fn check_tree(msg: &Message<'_>, limits: &Limits) -> Result<(), Rejection> {
    let mut parts = 0usize;
    // (message, part index, depth)
    let mut stack: Vec<(&Message<'_>, usize, usize)> = vec![(msg, 0, 1)];
    while let Some((m, idx, depth)) = stack.pop() {
        if depth > limits.max_mime_depth {
            return reject(
                Reason::Limits,
                format!("MIME nesting deeper than {}", limits.max_mime_depth),
            );
        }
        parts += 1;
        if parts > limits.max_mime_parts {
            return reject(
                Reason::Limits,
                format!("more than {} MIME parts", limits.max_mime_parts),
            );
        }
        let Some(part) = m.parts.get(idx) else {
            continue;
        };
        let header = part
            .raw_body_offset()
            .saturating_sub(part.raw_header_offset()) as usize;
        if header > limits.max_header_size {
            return reject(
                Reason::Limits,
                format!(
                    "a header section of {header} bytes (more than {})",
                    limits.max_header_size
                ),
            );
        }
        match &part.body {
            PartType::Multipart(children) => {
                stack.extend(children.iter().map(|&c| (m, c as usize, depth + 1)));
            }
            PartType::Message(nested) => stack.push((nested, 0, depth + 1)),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a MIME entity; `None` from mail-parser is `malformed`.
pub fn parse(raw: &[u8]) -> Result<Message<'_>, Rejection> {
    match mail_parser::MessageParser::default().parse(raw) {
        Some(m) if !m.parts.is_empty() => Ok(m),
        _ => reject(Reason::Malformed, "not a MIME message"),
    }
}

/// A file name safe to show and to log: no path, no control or
/// bidirectional-override characters, at most 100 characters.
pub fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible_format(c))
        .take(100)
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if cleaned.is_empty() {
        "attachment".into()
    } else {
        cleaned.to_string()
    }
}

/// Characters that change how text is displayed without being seen:
/// bidirectional controls, zero-width characters, line and paragraph separators.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_sanitized() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Windows\\evil.exe"), "evil.exe");
        assert_eq!(sanitize_filename("report\u{202E}fdp.exe"), "reportfdp.exe");
        assert_eq!(sanitize_filename("a\r\nBcc: x"), "aBcc: x");
        assert_eq!(sanitize_filename(".."), "attachment");
        assert_eq!(sanitize_filename(&"x".repeat(500)).len(), 100);
    }
}
