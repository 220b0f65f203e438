//! Repairs before judgement: what servers and clients do to a genuine
//! OpenPGP message in transit, undone in one place before the policy sees it.
//!
//! Each repair is a pure function from one exactly recognised shape to the
//! canonical one the policy judges: the ciphertext of an RFC 3156
//! `multipart/encrypted` message, or the one armored block of an inline
//! message. It returns what it did ([`Repair`]), which the decision, the
//! audit and `check`'s JSON carry. A repair never admits text that the
//! signature does not cover: every part it leaves behind carries nothing
//! (Exchange's empty text part, the control part) or the very same armored
//! block (webmail's HTML alternative). Anything not recognised exactly is
//! left as it was and judged as it is, which for these shapes is
//! `structure`.
//!
//! This is how Thunderbird (`fixExchangeMessage`), Enigmail and Delta Chat
//! (`get_mixed_up_mime`) read the same mail.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

use super::rfc3156::{pgp_mime, Form};
use super::{addresses, mime_type};

/// A repair made to a message before it was judged (stable names: they are
/// printed by `check` and stored in the audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// Microsoft Exchange / 365 rewrote `multipart/encrypted` as
    /// `multipart/mixed`: an empty text part, the RFC 3156 control part
    /// (`ATT00001`), the armored message (`encrypted.asc`).
    ExchangeMixedUp,
    /// The same without the control part (Outlook).
    ExchangeMixedUpWithoutControl,
    /// Webmail (Mailvelope): `multipart/alternative`, the armored block in
    /// `text/plain` and the same block again in `text/html`.
    WebmailAlternative,
    /// Webmail: an HTML-only body holding one armored block and nothing
    /// else but markup and white space.
    WebmailHtml,
    /// Parts added outside the encryption in transit (an organisation's
    /// disclaimer or footer) discarded unread, for a party whose directory
    /// entry allows it (`unprotected-parts = "discard"`).
    UnprotectedPartsDiscarded,
    /// Outlook with GpgOL, "PGP/Inline": the armored text, and each
    /// attachment signed and encrypted on its own (`report.pdf.pgp`).
    GpgolInlineAttachments,
}

impl Repair {
    /// What was done, in a sentence for the decision's detail and the audit.
    pub fn description(self) -> &'static str {
        match self {
            Repair::ExchangeMixedUp => {
                "PGP/MIME rewritten by Microsoft Exchange as multipart/mixed (an empty text part, the control part, the encrypted part) restored to multipart/encrypted"
            }
            Repair::ExchangeMixedUpWithoutControl => {
                "PGP/MIME rewritten by Microsoft Exchange / Outlook as multipart/mixed without its control part (an empty text part, the encrypted part) restored to multipart/encrypted"
            }
            Repair::WebmailAlternative => {
                "webmail multipart/alternative: the armored block of the text/plain part judged, the text/html part carried the same block and nothing else"
            }
            Repair::WebmailHtml => {
                "webmail HTML-only body: the one armored block it holds judged, nothing else but markup"
            }
            Repair::UnprotectedPartsDiscarded => {
                "parts added outside the encryption in transit discarded unread, as the sender's directory entry allows"
            }
            Repair::GpgolInlineAttachments => {
                "Outlook/GpgOL PGP/Inline: the text and each attachment decrypted and verified on its own, all signed by the same key at the same time"
            }
        }
    }

    /// "exchange_mixed_up, …": the stable names, for details and the audit.
    pub fn list(repairs: &[Repair]) -> String {
        let names: Vec<&str> = repairs.iter().map(|r| r.code()).collect();
        names.join(", ")
    }

    /// The stable name (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            Repair::ExchangeMixedUp => "exchange_mixed_up",
            Repair::ExchangeMixedUpWithoutControl => "exchange_mixed_up_without_control",
            Repair::WebmailAlternative => "webmail_alternative",
            Repair::WebmailHtml => "webmail_html",
            Repair::UnprotectedPartsDiscarded => "unprotected_parts_discarded",
            Repair::GpgolInlineAttachments => "gpgol_inline_attachments",
        }
    }
}

/// A message in its canonical shape, and the repair that produced it.
#[derive(Debug, Clone)]
pub struct Repaired {
    pub form: Form,
    /// The armored OpenPGP message to decrypt.
    pub ciphertext: Vec<u8>,
    pub repair: Repair,
    /// The parts discarded unread (only for [`Repair::UnprotectedPartsDiscarded`]).
    pub discarded: Vec<Discarded>,
    /// Attachments encrypted and signed on their own (only for
    /// [`Repair::GpgolInlineAttachments`]): each must be judged like the text.
    pub attachments: Vec<EncryptedAttachment>,
}

/// An attachment that is an OpenPGP message of its own (GpgOL's
/// `report.pdf.pgp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedAttachment {
    /// The file name without its `.pgp`, `.gpg` or `.asc`, sanitized.
    pub name: String,
    /// The OpenPGP message, armored or binary, as attached.
    pub ciphertext: Vec<u8>,
}

/// A part added outside the encryption, discarded unread: what the audit
/// and the forward say of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discarded {
    #[serde(rename = "type")]
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

impl Discarded {
    /// The bytes of all the parts.
    pub fn total(parts: &[Discarded]) -> usize {
        parts.iter().map(|p| p.size).sum()
    }

    /// "text/plain 230 bytes, text/html 156 bytes", for details and the audit.
    pub fn list(parts: &[Discarded]) -> String {
        let each: Vec<String> = parts
            .iter()
            .map(|p| format!("{} {} bytes", p.content_type, p.size))
            .collect();
        each.join(", ")
    }
}

/// Tries every repair on a message whose root is not one of the canonical
/// shapes; None when no repair recognises it exactly.
pub fn repair(msg: &Message<'_>) -> Option<Repaired> {
    exchange_mixed_up(msg)
        .or_else(|| webmail_alternative(msg))
        .or_else(|| webmail_html(msg))
        .or_else(|| gpgol_inline_attachments(msg))
}

/// Outlook with GpgOL in "PGP/Inline" mode: a `multipart/mixed` root whose
/// first part is `text/plain` holding one armored OpenPGP message and
/// nothing else, and whose other parts, at least one, are all attachments
/// named `*.pgp`, `*.gpg` or `*.asc` that are each an OpenPGP message
/// (binary or armored) and nothing else.
///
/// Safe because nothing outside an OpenPGP message is kept, and the caller
/// accepts the message only when every block decrypts with the gateway's
/// key and is signed, inside its encryption, by the same registered key at
/// the same time as the text; one block that is not refuses all of it.
pub fn gpgol_inline_attachments(msg: &Message<'_>) -> Option<Repaired> {
    let children = leaf_children(msg, "multipart/mixed")?;
    let (body, rest) = children.split_first()?;
    if mime_type(body) != "text/plain" || rest.is_empty() {
        return None;
    }
    let armor = Armor::parse(text(body)?)?;
    let attachments = rest
        .iter()
        .map(|part| {
            let name = part.attachment_name()?;
            let lower = name.to_ascii_lowercase();
            let stem = [".pgp", ".gpg", ".asc"].iter().find_map(|ext| {
                lower
                    .ends_with(ext)
                    .then(|| &name[..name.len() - ext.len()])
            })?;
            let data = part.contents();
            let armored = std::str::from_utf8(data).ok().and_then(Armor::parse);
            let ciphertext = match armored {
                Some(a) => a.to_string().into_bytes(),
                None if crate::openpgp::is_openpgp_message(data) => data.to_vec(),
                None => return None,
            };
            Some(EncryptedAttachment {
                name: super::sanitize_filename(stem),
                ciphertext,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Repaired {
        form: Form::Inline,
        ciphertext: armor.to_string().into_bytes(),
        repair: Repair::GpgolInlineAttachments,
        discarded: Vec::new(),
        attachments,
    })
}

/// The lines a PGP/MIME client writes as the preamble of
/// `multipart/encrypted`, which a server may move into the first text part,
/// and the placeholder Proton Mail Bridge writes there (Delta Chat's
/// `protonmail-mixed-up.eml`). Fixed strings: none carries a word of the sender's.
const PREAMBLES: [&str; 5] = [
    "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
    "This is an OpenPGP/MIME encrypted message (RFC 2440 and 3156)",
    "This is an OpenPGP/MIME encrypted message (RFC 3156).",
    "This is an OpenPGP/MIME encrypted message",
    "Empty Message",
];

/// Exchange's "mixed-up" PGP/MIME: a `multipart/mixed` root with exactly
/// these leaf parts, in this order:
/// 1. `text/plain` that is empty, white space, or one known PGP/MIME
///    preamble line;
/// 2. `application/pgp-encrypted` whose content is `Version: 1` and nothing
///    else (absent in Outlook's variant);
/// 3. `application/octet-stream` that is one armored OpenPGP message with
///    nothing but white space around it.
///
/// Safe because nothing outside the encrypted part carries any content: the
/// result is exactly the RFC 3156 message Exchange received.
pub fn exchange_mixed_up(msg: &Message<'_>) -> Option<Repaired> {
    let children = leaf_children(msg, "multipart/mixed")?;
    let (first, control, data) = match children.as_slice() {
        [first, control, data] => (first, Some(control), data),
        [first, data] => (first, None, data),
        _ => return None,
    };
    if mime_type(first) != "text/plain" || !carries_nothing(first) {
        return None;
    }
    if let Some(control) = control {
        let version = text(control)?;
        if mime_type(control) != "application/pgp-encrypted"
            || version.split_whitespace().collect::<Vec<_>>() != ["Version:", "1"]
        {
            return None;
        }
    }
    if mime_type(data) != "application/octet-stream" {
        return None;
    }
    let armor = Armor::parse(text(data)?)?;
    Some(Repaired {
        form: Form::PgpMime,
        ciphertext: armor.to_string().into_bytes(),
        repair: match control {
            Some(_) => Repair::ExchangeMixedUp,
            None => Repair::ExchangeMixedUpWithoutControl,
        },
        discarded: Vec::new(),
        attachments: Vec::new(),
    })
}

/// Webmail's `multipart/alternative` with exactly two leaf parts,
/// `text/plain` then `text/html`: the plain part is one armored OpenPGP
/// message with nothing but white space around it, and the HTML part, read
/// as text (markup dropped, character references decoded), is the same
/// armored message and nothing else.
///
/// Safe because the two alternatives say exactly the same thing: whichever
/// a reader is shown, it is the block that is judged.
pub fn webmail_alternative(msg: &Message<'_>) -> Option<Repaired> {
    let children = leaf_children(msg, "multipart/alternative")?;
    let [plain, html] = children.as_slice() else {
        return None;
    };
    if mime_type(plain) != "text/plain" || mime_type(html) != "text/html" {
        return None;
    }
    let armor = Armor::parse(text(plain)?)?;
    if Armor::parse(&html_text(text(html)?)?)? != armor {
        return None;
    }
    Some(Repaired {
        form: Form::Inline,
        ciphertext: armor.to_string().into_bytes(),
        repair: Repair::WebmailAlternative,
        discarded: Vec::new(),
        attachments: Vec::new(),
    })
}

/// An HTML-only body (`text/html` at the root) whose text, markup dropped
/// and character references decoded, is one armored OpenPGP message and
/// nothing else.
///
/// Safe because nothing but the block is read: markup is never rendered,
/// and any text outside the block makes the shape unrecognised.
pub fn webmail_html(msg: &Message<'_>) -> Option<Repaired> {
    let root = msg.root_part();
    if mime_type(root) != "text/html" {
        return None;
    }
    let armor = Armor::parse(&html_text(text(root)?)?)?;
    Some(Repaired {
        form: Form::Inline,
        ciphertext: armor.to_string().into_bytes(),
        repair: Repair::WebmailHtml,
        discarded: Vec::new(),
        attachments: Vec::new(),
    })
}

/// Parts added outside the encryption in transit, as a transport rule adds
/// an organisation's disclaimer or footer: a `multipart/mixed` root whose
/// children are exactly one encrypted message and any number of other
/// parts. The encrypted message is one of
/// - a `multipart/encrypted` child in the RFC 3156 shape;
/// - the same flattened by Exchange: an `application/pgp-encrypted` control
///   part (`Version: 1`) followed by an `application/octet-stream` that is
///   one armored message, or that armored part alone;
/// - a `message/rfc822` child holding a message of either shape, from the
///   same single From address as the outer message (the original wrapped
///   next to the disclaimer).
///
/// Every other part, at any depth, must carry no OpenPGP data at all (no
/// OpenPGP type, no armor in its decoded content): a second encrypted or
/// signed part is never discarded as a "disclaimer". The other parts are
/// returned by type and size and never read further.
///
/// Only a candidate: it is safe solely because the caller accepts it for a
/// party whose directory entry allows it (`unprotected-parts = "discard"`),
/// after the signature inside has established that party; for every other
/// sender the message stays `structure`.
pub fn unprotected_parts(msg: &Message<'_>, outer_from: &str) -> Option<Repaired> {
    let root = msg.root_part();
    if mime_type(root) != "multipart/mixed" {
        return None;
    }
    let PartType::Multipart(ids) = &root.body else {
        return None;
    };
    let children: Vec<&MessagePart<'_>> = ids
        .iter()
        .map(|&i| msg.parts.get(i as usize))
        .collect::<Option<_>>()?;
    let mut found: Option<Vec<u8>> = None;
    let mut discarded = Vec::new();
    let mut i = 0;
    while i < children.len() {
        let part = children[i];
        let ciphertext = match mime_type(part).as_str() {
            "multipart/encrypted" => {
                let bytes = msg
                    .raw_message()
                    .get(part.raw_header_offset() as usize..part.raw_end_offset() as usize)?;
                let sub = super::parse(bytes).ok()?;
                Some(pgp_mime(&sub).ok()?.1)
            }
            "message/rfc822" => {
                let PartType::Message(nested) = &part.body else {
                    return None;
                };
                if addresses(nested.from()) != [outer_from] {
                    return None;
                }
                match mime_type(nested.root_part()).as_str() {
                    "multipart/encrypted" => Some(pgp_mime(nested).ok()?.1),
                    _ => Some(exchange_mixed_up(nested)?.ciphertext),
                }
            }
            "application/pgp-encrypted" => {
                // Exchange's flattening: the control part, then the armor.
                let version = text(part)?;
                let data = children.get(i + 1)?;
                if version.split_whitespace().collect::<Vec<_>>() != ["Version:", "1"]
                    || mime_type(data) != "application/octet-stream"
                {
                    return None;
                }
                i += 1;
                Some(Armor::parse(text(data)?)?.to_string().into_bytes())
            }
            "application/octet-stream" => text(part)
                .and_then(Armor::parse)
                .map(|a| a.to_string().into_bytes()),
            _ => None,
        };
        match ciphertext {
            Some(_) if found.is_some() => return None,
            Some(c) => found = Some(c),
            None => {
                if carries_openpgp(msg, part, 0)? {
                    return None;
                }
                discarded.push(Discarded {
                    content_type: mime_type(part),
                    size: decoded_size(msg, part, 0),
                });
            }
        }
        i += 1;
    }
    Some(Repaired {
        form: Form::PgpMime,
        ciphertext: found?,
        repair: Repair::UnprotectedPartsDiscarded,
        discarded,
        attachments: Vec::new(),
    })
}

/// Whether a part, or anything below it, carries OpenPGP data: an OpenPGP
/// or encrypted/signed MIME type, or an armor line in its decoded content.
/// None past the depth that [`super::check_tree`] allows.
fn carries_openpgp(msg: &Message<'_>, part: &MessagePart<'_>, depth: usize) -> Option<bool> {
    if depth > 64 {
        return None;
    }
    let t = mime_type(part);
    if t.starts_with("application/pgp")
        || matches!(t.as_str(), "multipart/encrypted" | "multipart/signed")
    {
        return Some(true);
    }
    match &part.body {
        PartType::Multipart(ids) => {
            for &id in ids.iter() {
                if carries_openpgp(msg, msg.parts.get(id as usize)?, depth + 1)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        PartType::Message(nested) => carries_openpgp(nested, nested.root_part(), depth + 1),
        _ => Some(memchr::memmem::find(part.contents(), b"-----BEGIN PGP").is_some()),
    }
}

/// The decoded size of a part's leaves.
fn decoded_size(msg: &Message<'_>, part: &MessagePart<'_>, depth: usize) -> usize {
    match &part.body {
        PartType::Multipart(ids) if depth <= 64 => ids
            .iter()
            .filter_map(|&id| msg.parts.get(id as usize))
            .map(|p| decoded_size(msg, p, depth + 1))
            .sum(),
        PartType::Message(nested) => nested.raw_message().len(),
        _ => part.contents().len(),
    }
}

/// The children of a root of type `multipart`, when each is a leaf (no
/// nested multipart, no `message/rfc822`).
fn leaf_children<'a>(msg: &'a Message<'a>, multipart: &str) -> Option<Vec<&'a MessagePart<'a>>> {
    let root = msg.root_part();
    let PartType::Multipart(ids) = &root.body else {
        return None;
    };
    if mime_type(root) != multipart {
        return None;
    }
    let parts: Vec<&MessagePart<'_>> = ids
        .iter()
        .map(|&i| msg.parts.get(i as usize))
        .collect::<Option<_>>()?;
    parts
        .iter()
        .all(|p| {
            matches!(
                p.body,
                PartType::Text(_)
                    | PartType::Html(_)
                    | PartType::Binary(_)
                    | PartType::InlineBinary(_)
            )
        })
        .then_some(parts)
}

/// A part's decoded content as UTF-8 text.
fn text<'a>(part: &'a MessagePart<'a>) -> Option<&'a str> {
    std::str::from_utf8(part.contents()).ok()
}

/// Whether a text part is empty, white space, or one known preamble line.
fn carries_nothing(part: &MessagePart<'_>) -> bool {
    let Some(t) = text(part) else {
        return false;
    };
    let t = t.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    t.is_empty() || PREAMBLES.contains(&t)
}

/// An ASCII-armored OpenPGP message (RFC 9580 §6.2), read strictly: the
/// BEGIN line, armor header lines, base64 lines, an optional checksum line
/// and the END line, with nothing but white space before or after and
/// empty lines anywhere. Line breaks may differ (HTML renders them its own
/// way); the content may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armor {
    headers: Vec<String>,
    base64: String,
    checksum: Option<String>,
}

const BEGIN: &str = "-----BEGIN PGP MESSAGE-----";
const END: &str = "-----END PGP MESSAGE-----";

impl Armor {
    pub fn parse(text: &str) -> Option<Armor> {
        let mut lines = text
            .lines()
            .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
            .filter(|l| !l.is_empty());
        if lines.next()? != BEGIN {
            return None;
        }
        let mut armor = Armor {
            headers: Vec::new(),
            base64: String::new(),
            checksum: None,
        };
        let mut ended = false;
        for line in lines.by_ref() {
            if line == END {
                ended = true;
                break;
            }
            if armor.checksum.is_some() {
                return None; // nothing between the checksum and END
            }
            if armor.base64.is_empty() && is_header(line) {
                armor.headers.push(line.to_string());
            } else if let Some(crc) = line.strip_prefix('=').filter(|c| c.len() == 4) {
                if armor.base64.is_empty() || !crc.bytes().all(is_base64) {
                    return None;
                }
                armor.checksum = Some(crc.to_string());
            } else if line.trim_end_matches('=').bytes().all(is_base64) {
                if armor.base64.ends_with('=') {
                    return None; // padding only at the end
                }
                armor.base64.push_str(line);
            } else {
                return None;
            }
        }
        (ended && lines.next().is_none() && !armor.base64.is_empty()).then_some(armor)
    }
}

impl std::fmt::Display for Armor {
    /// The canonical armor: 64-column lines, CRLF.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{BEGIN}\r\n")?;
        for h in &self.headers {
            write!(f, "{h}\r\n")?;
        }
        f.write_str("\r\n")?;
        for chunk in self.base64.as_bytes().chunks(64) {
            // The base64 alphabet is ASCII: every chunk is UTF-8.
            write!(f, "{}\r\n", String::from_utf8_lossy(chunk))?;
        }
        if let Some(c) = &self.checksum {
            write!(f, "={c}\r\n")?;
        }
        write!(f, "{END}\r\n")
    }
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// `Key: value` with an RFC 9580 §6.2.2-style key.
fn is_header(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(k, _)| {
        !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The text of an HTML document as a reader would see it, for comparison
/// only: tags, comments, and the content of `head`, `style` and `script`
/// dropped; `br`, `p`, `div`, `pre` and `tr` end lines; character
/// references decoded. None for a document this reader cannot follow (an
/// unclosed tag or comment, an unknown reference): the shape is then not
/// recognised.
pub fn html_text(html: &str) -> Option<String> {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find(['<', '&']) {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else if rest.starts_with('<') {
            let close = tag_end(rest)?;
            let tag = &rest[1..close];
            rest = &rest[close + 1..];
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if matches!(name.as_str(), "head" | "style" | "script" | "title")
                && !tag.starts_with('/')
                && !tag.ends_with('/')
            {
                let end = format!("</{name}");
                let at = rest.to_ascii_lowercase().find(&end)?;
                rest = &rest[at..];
            } else if matches!(
                name.as_str(),
                "br" | "p" | "div" | "pre" | "tr" | "li" | "blockquote"
            ) {
                out.push('\n');
            }
        } else {
            let semi = rest.find(';').filter(|&i| i <= 10)?;
            out.push(entity(&rest[1..semi])?);
            rest = &rest[semi + 1..];
        }
    }
    out.push_str(rest);
    Some(out)
}

/// The index of the `>` that ends the tag at the start of `s`, outside
/// quoted attribute values, as a browser reads it.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// A character reference's character (the few named ones webmail writes,
/// or numeric).
fn entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "-----BEGIN PGP MESSAGE-----\r\nVersion: Mailvelope v6.1.0\r\n\r\nwcFMA1bx0oZz1lsWARAAj0x2\r\nqGtjx+Y=\r\n=njUN\r\n-----END PGP MESSAGE-----\r\n";

    fn parsed(raw: &str) -> Message<'_> {
        mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap()
    }

    #[test]
    fn armor_is_read_strictly() {
        let a = Armor::parse(BLOCK).unwrap();
        assert_eq!(a.headers, ["Version: Mailvelope v6.1.0"]);
        assert_eq!(a.base64, "wcFMA1bx0oZz1lsWARAAj0x2qGtjx+Y=");
        assert_eq!(Armor::parse(&a.to_string()), Some(a.clone()));
        // Line breaks may move; content may not.
        let rewrapped = BLOCK.replace("Aj0x2\r\nqG", "Aj0x2qG");
        assert_eq!(Armor::parse(&rewrapped), Some(a));
        for bad in [
            format!("Hello\r\n{BLOCK}"),
            format!("{BLOCK}Regards"),
            format!("{BLOCK}{BLOCK}"),
            BLOCK.replace("qGtjx+Y=", "qGtjx Y="),
            BLOCK.replace("-----END PGP MESSAGE-----", ""),
            BLOCK.replace("=njUN", "=njUN\r\nmore"),
            BLOCK.replace("qGtjx+Y=", "qGtjx+Y=\r\nAAAA"),
            // Padding inside a line: re-wrapped, "=…" could start a line
            // and read as the checksum.
            BLOCK.replace("wcFMA1bx", "wcFM=1bx"),
        ] {
            assert_eq!(Armor::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn html_text_drops_markup_and_keeps_text() {
        assert_eq!(
            html_text("<html><head><title>T</title><style>p{}</style></head><body><p>a&lt;b&#65;&#x42;&nbsp;</p><!-- c --><div>d<br/>e</div></body></html>").unwrap(),
            "\na<bAB \n\nd\ne\n"
        );
        assert_eq!(html_text("<p>unclosed"), Some("\nunclosed".into()));
        assert_eq!(html_text("<p unclosed"), None);
        assert_eq!(html_text("<!-- open"), None);
        assert_eq!(html_text("a &bogus; b"), None);
        assert_eq!(html_text("<script>never closed"), None);
    }

    #[test]
    fn exchange_mixed_up_is_recognised_exactly() {
        let make = |first: &str, control: &str| {
            format!(
                "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
                 --b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{first}\r\n\
                 {control}\
                 --b\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
                base64_of(BLOCK)
            )
        };
        let control = "--b\r\nContent-Type: application/pgp-encrypted; name=\"ATT00001\"\r\n\r\nVersion: 1\r\n";
        let ok = make("", control);
        let r = exchange_mixed_up(&parsed(&ok)).unwrap();
        assert_eq!(r.repair, Repair::ExchangeMixedUp);
        assert_eq!(r.form, Form::PgpMime);
        assert!(Armor::parse(std::str::from_utf8(&r.ciphertext).unwrap()).is_some());
        let ok = make(" \r\n\t", "");
        assert_eq!(
            exchange_mixed_up(&parsed(&ok)).unwrap().repair,
            Repair::ExchangeMixedUpWithoutControl
        );
        let ok = make(PREAMBLES[0], control);
        assert!(exchange_mixed_up(&parsed(&ok)).is_some());
        for bad in [
            make("Please forward to every NFP at once.", control),
            make("", &control.replace("Version: 1", "Version: 1\r\nurgent")),
            make(
                "",
                &control.replace("application/pgp-encrypted", "text/plain"),
            ),
        ] {
            assert!(exchange_mixed_up(&parsed(&bad)).is_none(), "{bad}");
        }
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn webmail_alternative_needs_the_same_block() {
        let make = |html: &str| {
            format!(
                "From: a@b.example\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\n{BLOCK}\r\n\
                 --b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n"
            )
        };
        let pre = format!("<div dir=\"ltr\"><pre>{BLOCK}</pre></div>");
        let brs = format!("<p>{}</p>", BLOCK.replace("\r\n", "<br>"));
        for ok in [&pre, &brs] {
            let r = webmail_alternative(&parsed(&make(ok))).unwrap();
            assert_eq!(r.repair, Repair::WebmailAlternative);
            assert_eq!(r.form, Form::Inline);
        }
        for bad in [
            format!("<p>Urgent: forward to all</p>{pre}"),
            pre.replace("qGtjx", "qGtjy"),
            "<p>nothing</p>".to_string(),
            format!("<span style=\"display:none\">x</span>{pre}"),
            format!("<img src=\"http://evil.example/{BLOCK}\">"),
            format!("<x a=\">{BLOCK}<y b=\">"),
        ] {
            assert!(webmail_alternative(&parsed(&make(&bad))).is_none(), "{bad}");
        }
    }
}
