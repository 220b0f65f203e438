//! Composing a mail the gateway sends: the protected inner entity (real
//! subject, From, To inside the encryption), signed by the gateway and
//! encrypted to the recipient, inside an RFC 3156 envelope whose subject
//! is `...`.

use std::time::SystemTime;

use anyhow::Result;
use sequoia_openpgp::crypto::KeyPair;
use sequoia_openpgp::policy::Policy;

use super::mime::{date, mailbox, new_message_id, Body, Entity};
use super::render::Rendered;
use crate::directory::Party;
use crate::openpgp::seal::{self, NoUsableKey};

/// The gateway's display name on everything it sends.
pub const GATEWAY_NAME: &str = "NFP Network Gateway";

/// A mail ready for the outbox, or the reason it cannot be encrypted.
pub struct Sealed {
    pub message_id: String,
    /// The PGP/MIME message, or why the recipient cannot receive mail.
    pub message: Result<Vec<u8>, NoUsableKey>,
    /// The certificate it is encrypted to.
    pub fingerprint: String,
}

/// What the gateway needs to sign and address mail.
pub struct Sender<'a> {
    pub address: &'a str,
    pub signer: &'a KeyPair,
    /// A second signature (the previous key, announcing a rotation).
    pub co_signer: Option<&'a KeyPair>,
    pub policy: &'a dyn Policy,
    pub now: SystemTime,
}

/// Builds, signs and encrypts one mail to `to`: the rendered text, and an
/// optional attachment (the original message as the sender signed it).
pub fn seal(
    from: &Sender<'_>,
    to: &Party,
    text: &Rendered,
    attachment: Option<Entity>,
) -> Result<Sealed> {
    let message_id = new_message_id(from.address);
    let from_header = mailbox(GATEWAY_NAME, from.address);
    let to_header = mailbox(&to.name, &to.email);
    let mut parts = vec![Entity::text(&text.body)];
    parts.extend(attachment);
    let inner = Entity::multipart("multipart/mixed; protected-headers=\"v1\"", parts)
        .with_header("From", &from_header)
        .with_header("To", &to_header)
        .with_header("Subject", &text.subject)
        .with_header("Date", &date(from.now))
        .with_header("Message-ID", &message_id)
        .with_header("Auto-Submitted", "auto-generated");
    let fingerprint = to.cert.fingerprint().to_hex();
    let armored = match seal::sign_and_encrypt(
        from.signer,
        from.co_signer,
        &to.cert,
        from.policy,
        from.now,
        &inner.to_bytes(),
    ) {
        Ok(a) => a,
        Err(e) => match e.downcast::<NoUsableKey>() {
            Ok(no_key) => {
                return Ok(Sealed {
                    message_id,
                    message: Err(no_key),
                    fingerprint,
                })
            }
            Err(e) => return Err(e),
        },
    };
    let envelope = Entity {
        headers: vec![
            ("From".into(), from_header),
            ("To".into(), to_header),
            ("Subject".into(), "...".into()),
            ("Date".into(), date(from.now)),
            ("Message-ID".into(), message_id.clone()),
            ("MIME-Version".into(), "1.0".into()),
            ("Auto-Submitted".into(), "auto-generated".into()),
            (
                "Content-Type".into(),
                "multipart/encrypted; protocol=\"application/pgp-encrypted\"".into(),
            ),
        ],
        body: Body::Multipart(vec![
            Entity {
                headers: vec![
                    ("Content-Type".into(), "application/pgp-encrypted".into()),
                    (
                        "Content-Description".into(),
                        "PGP/MIME version identification".into(),
                    ),
                ],
                body: Body::Verbatim(b"Version: 1\r\n".to_vec()),
            },
            Entity {
                headers: vec![
                    (
                        "Content-Type".into(),
                        "application/octet-stream; name=\"encrypted.asc\"".into(),
                    ),
                    (
                        "Content-Description".into(),
                        "OpenPGP encrypted message".into(),
                    ),
                    (
                        "Content-Disposition".into(),
                        "inline; filename=\"encrypted.asc\"".into(),
                    ),
                ],
                body: Body::Verbatim(armored),
            },
        ]),
    };
    Ok(Sealed {
        message_id,
        message: Ok(envelope.to_bytes()),
        fingerprint,
    })
}

/// The original signed content, attached to a forwarded mail: a MIME entity
/// as `message/rfc822`, the text of an inline message as `text/plain`.
pub fn original_attachment(bytes: &[u8], is_mime: bool, name: &str) -> Entity {
    let (content_type, body) = if is_mime {
        (
            format!("message/rfc822; name=\"{name}\""),
            Body::Verbatim(bytes.to_vec()),
        )
    } else {
        (
            format!("text/plain; charset=utf-8; name=\"{name}\""),
            Body::Binary(bytes.to_vec()),
        )
    };
    let cte = if is_mime {
        if bytes.is_ascii() {
            "7bit"
        } else {
            "8bit"
        }
    } else {
        "base64"
    };
    Entity {
        headers: vec![
            ("Content-Type".into(), content_type),
            ("Content-Transfer-Encoding".into(), cte.into()),
            (
                "Content-Disposition".into(),
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    }
}
