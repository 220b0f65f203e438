//! Writing MIME: the entities the gateway signs and encrypts, and the
//! PGP/MIME envelope around them.
//!
//! Header values are cleaned (no control characters, so no header injection)
//! and encoded as RFC 2047 encoded-words when not ASCII; every line ends in CRLF.

use base64::Engine as _;
use rand::Rng as _;

/// A MIME entity to serialize.
#[derive(Debug, Clone)]
pub struct Entity {
    /// (name, value); values are cleaned and encoded on output.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// UTF-8 text, written as quoted-printable.
    Text(String),
    /// Bytes, written as base64.
    Binary(Vec<u8>),
    /// Bytes written as they are (a `message/rfc822` entity), with CRLF line endings.
    Verbatim(Vec<u8>),
    /// Parts of a multipart entity; the boundary is chosen on output.
    Multipart(Vec<Entity>),
}

impl Entity {
    pub fn text(body: &str) -> Entity {
        Entity {
            headers: vec![
                ("Content-Type".into(), "text/plain; charset=utf-8".into()),
                (
                    "Content-Transfer-Encoding".into(),
                    "quoted-printable".into(),
                ),
            ],
            body: Body::Text(body.to_string()),
        }
    }

    /// A multipart entity; `content_type` without the boundary parameter.
    pub fn multipart(content_type: &str, parts: Vec<Entity>) -> Entity {
        Entity {
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Multipart(parts),
        }
    }

    /// Adds a header at the top (e.g. the protected headers of the root entity).
    pub fn with_header(mut self, name: &str, value: &str) -> Entity {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        let boundary = matches!(self.body, Body::Multipart(_)).then(new_boundary);
        for (name, value) in &self.headers {
            let mut value = value.clone();
            if name.eq_ignore_ascii_case("Content-Type") {
                if let Some(b) = &boundary {
                    value = format!("{value}; boundary=\"{b}\"");
                }
            }
            write_header(out, name, &value);
        }
        out.extend_from_slice(b"\r\n");
        match &self.body {
            Body::Text(text) => out.extend_from_slice(&quoted_printable(text)),
            Body::Binary(data) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(data);
                for chunk in encoded.as_bytes().chunks(76) {
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Body::Verbatim(data) => {
                out.extend_from_slice(&crate::mime::inner::to_crlf(data));
                if !data.ends_with(b"\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
            Body::Multipart(parts) => {
                let b = boundary.as_deref().unwrap_or_default();
                for part in parts {
                    out.extend_from_slice(format!("--{b}\r\n").as_bytes());
                    part.write(out);
                }
                out.extend_from_slice(format!("--{b}--\r\n").as_bytes());
            }
        }
    }
}

fn new_boundary() -> String {
    let mut rng = rand::thread_rng();
    let token: String = (0..24)
        .map(|_| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.gen_range(0..36)]))
        .collect();
    format!("nfp-{token}")
}

/// A fresh Message-ID at the gateway's domain.
pub fn new_message_id(own_address: &str) -> String {
    let domain = own_address
        .rsplit('@')
        .next()
        .unwrap_or("nfp-gateway.invalid");
    format!("<{}@{domain}>", new_boundary().trim_start_matches("nfp-"))
}

/// An RFC 5322 date.
pub fn date(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// `Name <address>` with the name encoded as needed.
pub fn mailbox(name: &str, address: &str) -> String {
    let name = crate::outbound::render::clean_line(name, 200).replace(['"', '\\'], "");
    if name.is_empty() {
        address.to_string()
    } else if name.is_ascii() {
        format!("\"{name}\" <{address}>")
    } else {
        format!("{} <{address}>", encoded_word(&name))
    }
}

/// Writes one header, cleaned, encoded and folded.
fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let value = crate::outbound::render::clean_line(value, 2000);
    let value =
        if value.is_ascii() || name.eq_ignore_ascii_case("From") || name.eq_ignore_ascii_case("To")
        {
            // Address headers arrive pre-encoded from `mailbox`.
            value
        } else {
            encoded_word(&value)
        };
    let mut line_len = name.len() + 2;
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b":");
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 && line_len + 1 + word.len() > 76 {
            out.extend_from_slice(b"\r\n");
            line_len = 0;
        }
        out.push(b' ');
        out.extend_from_slice(word.as_bytes());
        line_len += 1 + word.len();
    }
    out.extend_from_slice(b"\r\n");
}

/// RFC 2047 `=?utf-8?B?...?=` words of at most 75 characters, split on characters.
fn encoded_word(s: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if (chunk.len() + c.len_utf8()) > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quoted-printable (RFC 2045 §6.7) with CRLF line endings and soft breaks at 76.
fn quoted_printable(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    let text = text.replace("\r\n", "\n");
    for line in text.split('\n') {
        let bytes = line.as_bytes();
        let mut len = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let plain =
                (b == b' ' || b == b'\t') && !last || (b'!'..=b'~').contains(&b) && b != b'=';
            let piece: Vec<u8> = if plain {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            if len + piece.len() > 75 {
                out.extend_from_slice(b"=\r\n");
                len = 0;
            }
            len += piece.len();
            out.extend_from_slice(&piece);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_cannot_inject_headers() {
        let mut out = Vec::new();
        write_header(&mut out, "Subject", "Hello\r\nBcc: victim@example.org");
        assert_eq!(out, b"Subject: Hello Bcc: victim@example.org\r\n");
    }

    #[test]
    fn non_ascii_headers_are_encoded_words_that_mail_parser_decodes() {
        let subject =
            "Запрос информации — Grenzübergang Nickelsdorf, très urgent, with a long tail of words";
        let e = Entity::text("x").with_header("Subject", subject);
        let bytes = e.to_bytes();
        assert!(bytes.is_ascii());
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some(subject));
    }

    #[test]
    fn quoted_printable_round_trips() {
        let text = "Grüße = 100%\n   trailing spaces   \n".to_string() + &"é".repeat(60);
        let e = Entity::text(&text);
        let bytes = e.to_bytes();
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.body_text(0).unwrap().replace("\r\n", "\n"), text + "\n");
        assert!(e.to_bytes().split(|&b| b == b'\n').all(|l| l.len() <= 78));
    }

    #[test]
    fn multipart_parts_are_found_again() {
        let e = Entity::multipart(
            "multipart/mixed",
            vec![Entity::text("one"), Entity::text("two")],
        );
        let bytes = e.to_bytes();
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.text_body_count(), 2);
    }
}
