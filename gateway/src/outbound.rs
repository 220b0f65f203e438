//! Outbound: what the gateway sends, from template to SMTP.
//!
//! [`render`] fills the handlebars templates with the data below; [`mime`]
//! writes the message; `openpgp::seal` signs it with the gateway's key and
//! encrypts it to the recipient; the result waits in the durable outbox until
//! [`smtp`] has delivered it.

pub mod compose;
pub mod mime;
pub mod render;
pub mod smtp;

use serde::Serialize;

use crate::directory::Party;

/// A party as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct PartyView {
    pub id: String,
    pub name: String,
    pub email: String,
}

impl From<&Party> for PartyView {
    fn from(p: &Party) -> Self {
        PartyView {
            id: p.id.clone(),
            name: render::clean_line(&p.name, 200),
            email: p.email.clone(),
        }
    }
}

/// An attachment as templates see it (sanitized name).
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: usize,
}

/// `forward_<kind>`: an accepted message forwarded to one recipient.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardData {
    pub reference: String,
    pub gateway: String,
    pub recipient: PartyView,
    pub sender: PartyView,
    /// The signer's certificate fingerprint.
    pub fingerprint: String,
    pub signed_at: String,
    pub received_at: String,
    /// The authenticated subject (cleaned), or "" when the sender did not protect it.
    pub subject: String,
    pub kind: String,
    pub topics: Vec<String>,
    pub language: String,
    /// The target State's NFP (information requests), if named.
    pub target: Option<PartyView>,
    /// The reference a reply cites.
    pub cited_reference: Option<String>,
    pub attachments: Vec<AttachmentView>,
    /// Why this recipient receives it (the route's explanation).
    pub why: String,
    /// The file name of the attached original.
    pub original_name: String,
}

/// `acknowledgement`: to the sender of an accepted message. Nothing from the
/// message is quoted: reference, times and recipients only.
#[derive(Debug, Clone, Serialize)]
pub struct AcknowledgementData {
    pub reference: String,
    pub gateway: String,
    pub recipient: PartyView,
    pub received_at: String,
    pub signed_at: String,
    pub kind: String,
    pub forwarded_to: Vec<PartyView>,
}

/// `quarantine_notice`: to the Secretariat when a message is quarantined.
/// No content: the reason code, the envelope sender as seen, the time.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineNoticeData {
    pub gateway: String,
    pub recipient: PartyView,
    pub inbound_id: i64,
    pub received_at: String,
    pub reason: String,
    /// The fixed explanation of the reason code (never text from the message).
    pub reason_text: String,
    /// The From address as seen on the envelope, cleaned; "" when absent.
    pub envelope_from: String,
    pub size: usize,
}

/// `delivery_failure`: to the Secretariat when a mail could not be delivered.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryFailureData {
    pub gateway: String,
    pub recipient: PartyView,
    pub reference: Option<String>,
    pub failed_recipient: PartyView,
    pub attempts: i64,
    pub first_attempt_at: String,
    /// The last SMTP server response (cleaned).
    pub last_error: String,
}

/// `no_usable_key`: to the Secretariat when a recipient cannot be written to
/// because its certificate has no usable encryption key. Nothing was sent.
#[derive(Debug, Clone, Serialize)]
pub struct NoUsableKeyData {
    pub gateway: String,
    pub recipient: PartyView,
    pub reference: Option<String>,
    pub unreachable: PartyView,
    pub why: String,
}
