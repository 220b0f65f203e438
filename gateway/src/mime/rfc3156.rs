//! The RFC 3156 shape, below the outer message's reader and its repairs,
//! which both check it: `multipart/encrypted` with exactly its control part
//! and its ciphertext.

use mail_parser::{Message, MimeHeaders, PartType};

use super::mime_type;
use crate::reason::{reject, Reason, Rejection};

/// How the ciphertext was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// RFC 3156 `multipart/encrypted`.
    PgpMime,
    /// One armored block as the whole `text/plain` body.
    Inline,
}

/// RFC 3156 §4: exactly two parts, the control part and the ciphertext.
pub(super) fn pgp_mime(msg: &Message<'_>) -> Result<(Form, Vec<u8>), Rejection> {
    let root = msg.root_part();
    let protocol = root
        .content_type()
        .and_then(|ct| ct.attribute("protocol"))
        .unwrap_or("")
        .to_ascii_lowercase();
    if protocol != "application/pgp-encrypted" {
        return reject(
            Reason::Structure,
            format!("multipart/encrypted with protocol {protocol:?}"),
        );
    }
    let PartType::Multipart(children) = &root.body else {
        return reject(Reason::Malformed, "multipart/encrypted without parts");
    };
    let [control, data] = children.as_slice() else {
        return reject(
            Reason::Structure,
            format!(
                "multipart/encrypted with {} parts instead of 2",
                children.len()
            ),
        );
    };
    let (control, data) = (&msg.parts[*control as usize], &msg.parts[*data as usize]);
    if mime_type(control) != "application/pgp-encrypted"
        || !String::from_utf8_lossy(control.contents()).contains("Version: 1")
    {
        return reject(
            Reason::Structure,
            "the first part is not an RFC 3156 control part",
        );
    }
    if mime_type(data) != "application/octet-stream" {
        return reject(
            Reason::Structure,
            format!("the encrypted part is {}", mime_type(data)),
        );
    }
    Ok((Form::PgpMime, data.contents().to_vec()))
}
