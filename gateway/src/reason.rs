//! The stable reason codes of a quarantine decision.
//!
//! The codes are part of the gateway's interface: operators filter on them,
//! the daemon stores them, tests assert them. A code never changes meaning;
//! new ones are only ever added. The README documents each.

use serde::Serialize;

/// Why a message was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No OpenPGP encryption at all.
    NotEncrypted,
    /// Encrypted, but no signature inside the encryption.
    NotSigned,
    /// A signature that does not verify, is malformed, or uses an algorithm the policy rejects.
    BadSignature,
    /// Signed by a certificate that is not in the directory.
    UnknownSigner,
    /// The From address is not the signer's registered address, or the
    /// protected From differs from the outer one.
    SenderMismatch,
    /// The signer's key is expired (or not yet valid) now.
    KeyExpired,
    /// The signer's key or certificate is revoked.
    KeyRevoked,
    /// Ciphertext without integrity protection, or manipulated ciphertext.
    IntegrityFailure,
    /// A shape the gateway does not accept: mixed protected and unprotected
    /// parts, several encrypted parts, several signatures, text around inline armor.
    Structure,
    /// The signature's creation time is outside the accepted window around now.
    StaleSignature,
    /// The same signed content was already received.
    Replay,
    /// A size, depth or count limit was exceeded.
    Limits,
    /// The message or its OpenPGP data cannot be parsed.
    Malformed,
    /// Encrypted, but not to the gateway's key, or signed for other recipients.
    NotForUs,
    /// Auto-submitted mail, a bounce or a delivery report (RFC 3834).
    Loop,
    /// A contact update for another party's entry: a party may change only its own.
    ForeignUpdate,
    /// The sender, or the network as a whole, sent more messages in the
    /// last hour than the daemon's limits allow (never from `check`, which
    /// judges one message without history).
    RateLimited,
    /// Encrypted to the gateway in a mode it does not read: GnuPG 2.4's OCB
    /// (the LibrePGP AEAD Encrypted Data packet, tag 20). Not malformed and
    /// not tampered with: the sender's software chose it.
    UnsupportedEncryption,
    /// A command to the Secretariat's desk (`[CLOSE BSM-…]`) from a party
    /// other than the Secretariat, or to a gateway that keeps no cases.
    CommandRefused,
}

impl Reason {
    /// Every reason, in documentation order.
    pub const ALL: [Reason; 19] = [
        Reason::NotEncrypted,
        Reason::NotSigned,
        Reason::BadSignature,
        Reason::UnknownSigner,
        Reason::SenderMismatch,
        Reason::KeyExpired,
        Reason::KeyRevoked,
        Reason::IntegrityFailure,
        Reason::Structure,
        Reason::StaleSignature,
        Reason::Replay,
        Reason::Limits,
        Reason::Malformed,
        Reason::NotForUs,
        Reason::Loop,
        Reason::ForeignUpdate,
        Reason::RateLimited,
        Reason::UnsupportedEncryption,
        Reason::CommandRefused,
    ];

    /// The stable code, as printed in JSON and stored.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotEncrypted => "not_encrypted",
            Reason::NotSigned => "not_signed",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownSigner => "unknown_signer",
            Reason::SenderMismatch => "sender_mismatch",
            Reason::KeyExpired => "key_expired",
            Reason::KeyRevoked => "key_revoked",
            Reason::IntegrityFailure => "integrity_failure",
            Reason::Structure => "structure",
            Reason::StaleSignature => "stale_signature",
            Reason::Replay => "replay",
            Reason::Limits => "limits",
            Reason::Malformed => "malformed",
            Reason::NotForUs => "not_for_us",
            Reason::Loop => "loop",
            Reason::ForeignUpdate => "foreign_update",
            Reason::RateLimited => "rate_limited",
            Reason::UnsupportedEncryption => "unsupported_encryption",
            Reason::CommandRefused => "command_refused",
        }
    }
}

impl Reason {
    /// A fixed explanation of the code, for notices: it never carries text
    /// from the message itself.
    pub fn description(self) -> &'static str {
        match self {
            Reason::NotEncrypted => "the message was not encrypted",
            Reason::NotSigned => "the message was encrypted but not signed inside the encryption",
            Reason::BadSignature => "the signature did not verify or used an algorithm the policy rejects",
            Reason::UnknownSigner => "the message was signed by a key that is not in the directory",
            Reason::SenderMismatch => "the From address does not belong to the signer",
            Reason::KeyExpired => "the signer's key is expired",
            Reason::KeyRevoked => "the signer's key is revoked",
            Reason::IntegrityFailure => "the ciphertext was not integrity-protected or was modified",
            Reason::Structure => "the message has a shape the gateway refuses (mixed protected and unprotected parts)",
            Reason::StaleSignature => "the signature was made outside the accepted time window",
            Reason::Replay => "the same signed content had already been received",
            Reason::Limits => "the message exceeded a size or complexity limit",
            Reason::Malformed => "the message or its OpenPGP data could not be parsed",
            Reason::NotForUs => "the message was not encrypted to, or not signed for, the gateway",
            Reason::Loop => "the message was an automatic reply, bounce or report",
            Reason::ForeignUpdate => "the contact update was for another party's entry",
            Reason::RateLimited => "the sender or the network exceeded the hourly message limit",
            Reason::UnsupportedEncryption => "the message was encrypted with GnuPG 2.4's OCB mode (a LibrePGP AEAD packet), which the gateway does not read, so its sender could not be verified. The sender can send it again once their GnuPG encrypts to the gateway without OCB: their copy of the gateway's certificate must be the one in the directory (it does not advertise the LibrePGP AEAD feature) and their gpg.conf must not set force-ocb",
            Reason::CommandRefused => "the message was a command to the Secretariat's desk (a first line such as [CLOSE BSM-…]); only the Secretariat may send commands, and only to the Secretariat's gateway. Nothing was changed and nothing was forwarded",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A quarantine decision taken by one pipeline stage: the stable code and
/// a human-readable explanation for the security officer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Shorthand for `Err(Rejection::new(..))`.
pub fn reject<T>(reason: Reason, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_serde_names() {
        for r in Reason::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.code()));
        }
    }
}
