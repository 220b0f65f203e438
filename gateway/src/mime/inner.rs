//! The decrypted entity: the signed layer, protected headers, text and attachments.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::{addresses, check_tree, mime_type, parse, sanitize_filename};
use crate::config::Limits;
use crate::reason::{reject, Reason, Rejection};

/// An RFC 3156 §5 signed entity, split: the exact signed bytes and the signature.
#[derive(Debug, Clone)]
pub struct SignedLayer {
    /// The first part, headers included, with CRLF line endings.
    pub signed: Vec<u8>,
    /// The OpenPGP detached signature.
    pub signature: Vec<u8>,
}

/// Headers the sender signed (RFC 9788 / the Autocrypt "protected headers" draft).
#[derive(Debug, Clone, Default)]
pub struct ProtectedHeaders {
    pub from: Vec<String>,
    /// To and Cc together.
    pub recipients: Vec<String>,
    pub subject: Option<String>,
}

/// An attachment as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    /// Sanitized file name, for display only.
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// The name was read outside the encryption, where anyone on the way
    /// could have changed it: a GpgOL attachment whose OpenPGP message
    /// carries no file name of its own. Its content is signed all the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub name_unprotected: bool,
}

/// What the signed content says.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub protected: Option<ProtectedHeaders>,
    /// The readable text: text/plain bodies, HTML converted to text.
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// A vCard is attached.
    pub has_vcard: bool,
}

/// Parses a decrypted MIME entity and checks it against the limits. It must
/// declare its Content-Type, as every PGP/MIME client writes it: bytes
/// without MIME headers (another OpenPGP message, say) are not an entity.
pub fn parse_entity<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Message<'a>, Rejection> {
    let msg = parse(bytes)?;
    if msg.root_part().content_type().is_none() {
        return reject(
            Reason::Structure,
            "the decrypted content is not a MIME entity (no Content-Type)",
        );
    }
    check_tree(&msg, limits)?;
    Ok(msg)
}

/// If the entity is `multipart/signed`, splits it into signed bytes and signature.
pub fn signed_layer(msg: &Message<'_>) -> Result<Option<SignedLayer>, Rejection> {
    let entity = msg.raw_message();
    let root = msg.root_part();
    if mime_type(root) != "multipart/signed" {
        return Ok(None);
    }
    let ct = root.content_type();
    let protocol = ct
        .and_then(|c| c.attribute("protocol"))
        .unwrap_or("")
        .to_ascii_lowercase();
    if protocol != "application/pgp-signature" {
        return reject(
            Reason::Structure,
            format!("multipart/signed with protocol {protocol:?}"),
        );
    }
    let Some(boundary) = ct.and_then(|c| c.attribute("boundary")) else {
        return reject(Reason::Malformed, "multipart/signed without a boundary");
    };
    let body = entity
        .get(root.raw_body_offset() as usize..)
        .unwrap_or_default();
    let parts = split_multipart(body, boundary)?;
    let [signed, signature] = parts.as_slice() else {
        return reject(
            Reason::Structure,
            format!("multipart/signed with {} parts instead of 2", parts.len()),
        );
    };
    let sig_part = parse(signature)?;
    if mime_type(sig_part.root_part()) != "application/pgp-signature" {
        return reject(
            Reason::Structure,
            "the second part of multipart/signed is not a signature",
        );
    }
    Ok(Some(SignedLayer {
        signed: to_crlf(signed),
        signature: sig_part.root_part().contents().to_vec(),
    }))
}

/// The body parts of a multipart body, exactly as written (RFC 2046 §5.1.1):
/// the CRLF before each delimiter belongs to the delimiter.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, Rejection> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        let line = trim_line(&body[pos..end]);
        let is_close = line.len() == delimiter.len() + 2
            && line.starts_with(delimiter.as_bytes())
            && line.ends_with(b"--");
        if line == delimiter.as_bytes() || is_close {
            if let Some(s) = start {
                let mut e = pos;
                if e > s && body[e - 1] == b'\n' {
                    e -= 1;
                    if e > s && body[e - 1] == b'\r' {
                        e -= 1;
                    }
                }
                parts.push(&body[s..e.max(s)]);
            }
            if is_close {
                return Ok(parts);
            }
            start = Some(end);
        }
        pos = end;
    }
    reject(
        Reason::Malformed,
        "multipart body without a close delimiter",
    )
}

/// A line without its line break and trailing white space (RFC 2046 allows it after delimiters).
fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

/// Canonical line endings for signature checks: every LF preceded by CR.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Reads a signed MIME entity (PGP/MIME).
///
/// OpenPGP data inside it (an attached encrypted file or key, a detached
/// signature of a file, a forwarded signed or encrypted mail, a quoted
/// clear-signed message) is content like any other: never decrypted, never
/// verified, never a source of identity, forwarded as it is. The one
/// signature that counts is the one over this whole entity.
pub fn mime_content(msg: &Message<'_>) -> Result<Content, Rejection> {
    let root = msg.root_part();
    let marked = root.content_type().is_some_and(|ct| {
        ct.attribute("protected-headers")
            .is_some_and(|v| v.eq_ignore_ascii_case("v1"))
            || ct.attribute("hp").is_some_and(|v| {
                v.eq_ignore_ascii_case("cipher") || v.eq_ignore_ascii_case("clear")
            })
    });
    let protected = marked.then(|| ProtectedHeaders {
        from: addresses(msg.from()),
        recipients: addresses(msg.to())
            .into_iter()
            .chain(addresses(msg.cc()))
            .collect(),
        subject: msg.subject().map(str::to_string),
    });
    let mut text = String::new();
    for i in 0..msg.text_body_count() {
        let part = msg.text_part(i as u32);
        if part.is_some_and(is_legacy_display) {
            continue;
        }
        if let Some(t) = msg.body_text(i) {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&t);
        }
    }
    let mut attachments = Vec::new();
    let mut has_vcard = false;
    for part in msg.attachments() {
        if is_legacy_display(part) {
            continue;
        }
        let name = part.attachment_name().unwrap_or("");
        let content_type = mime_type(part);
        has_vcard |= matches!(
            content_type.as_str(),
            "text/vcard" | "text/x-vcard" | "text/directory"
        ) || name.to_ascii_lowercase().ends_with(".vcf");
        attachments.push(Attachment {
            name: sanitize_filename(name),
            content_type,
            size: part.contents().len(),
            name_unprotected: false,
        });
    }
    Ok(Content {
        protected,
        text,
        attachments,
        has_vcard,
    })
}

/// Reads the plaintext of an inline PGP message.
pub fn inline_content(plaintext: &[u8]) -> Content {
    Content {
        text: String::from_utf8_lossy(plaintext).replace("\r\n", "\n"),
        ..Content::default()
    }
}

/// Thunderbird's "legacy display" part repeats the protected headers for old
/// clients: it is neither body text nor an attachment.
fn is_legacy_display(part: &MessagePart<'_>) -> bool {
    mime_type(part) == "text/rfc822-headers"
        || (part
            .content_type()
            .is_some_and(|ct| ct.attribute("protected-headers").is_some())
            && !part.is_multipart()
            && part.raw_header_offset() != 0)
}

/// In an encrypted entity that nothing signs as a whole: encryption or a
/// signature below its root, a signature that would cover only part of the
/// content (or someone else's signed message presented as this sender's).
pub fn refuse_nested_openpgp(msg: &Message<'_>) -> Result<(), Rejection> {
    for part in &msg.parts {
        let t = mime_type(part);
        if matches!(
            t.as_str(),
            "multipart/encrypted"
                | "multipart/signed"
                | "application/pgp-encrypted"
                | "application/pgp-signature"
        ) {
            return reject(
                Reason::Structure,
                format!("a nested {t} part inside the encrypted content"),
            );
        }
        if matches!(part.body, PartType::Text(_)) {
            let text = part.text_contents().unwrap_or("");
            if text.contains("-----BEGIN PGP ") {
                return reject(
                    Reason::Structure,
                    "an armored OpenPGP message inside the encrypted content",
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_split_excludes_the_crlf_before_delimiters() {
        let body = b"preamble\r\n--b\r\nA: 1\r\n\r\nfirst\r\n--b\r\nsecond\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(parts, vec![&b"A: 1\r\n\r\nfirst"[..], &b"second"[..]]);
    }

    #[test]
    fn multipart_without_close_is_malformed() {
        let err = split_multipart(b"--b\r\nx\r\n", "b").unwrap_err();
        assert_eq!(err.reason, Reason::Malformed);
    }

    #[test]
    fn crlf_canonicalisation() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }
}
