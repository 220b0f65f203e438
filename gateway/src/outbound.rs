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

impl PartyView {
    /// The party `id` as the directory has it, or only its id when it is
    /// no longer there.
    pub fn of(dir: &crate::directory::Directory, id: &str) -> PartyView {
        match dir.get(id) {
            Some(p) => PartyView::from(p),
            None => PartyView {
                id: id.to_string(),
                name: id.to_string(),
                email: String::new(),
            },
        }
    }
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
    /// The name was read outside the encryption (GpgOL): the forward says so.
    pub name_unprotected: bool,
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
    /// For a contact update: whether the gateway applied it to the
    /// sender's entry, what changed, or why it could not be read.
    pub contact_update: Option<UpdateNote>,
    /// Bytes (and parts) added outside the encryption in transit and
    /// discarded unread, as the sender's entry allows; 0 when none.
    pub discarded_bytes: usize,
    pub discarded_parts: usize,
    /// The text and each attachment were signed separately (GpgOL's
    /// PGP/Inline) and are attached together in the original.
    pub separately_signed: bool,
}

/// What became of a contact update, for the forward to the Secretariat.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateNote {
    pub applied: bool,
    pub changes: Vec<crate::directory::Change>,
    /// Why it could not be applied (English), when it was not.
    pub why: String,
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

/// `unreadable_message_notice`: to the party whose registered address a
/// message came from when the gateway could not read it because of how the
/// sender's software encrypted it (GnuPG 2.4's OCB mode), at most one a day
/// per party. Nothing from the message: the time, the inbound id, what to
/// change. The message was not authenticated: the notice says so.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadableNoticeData {
    pub gateway: String,
    pub recipient: PartyView,
    pub inbound_id: i64,
    pub received_at: String,
    /// The gateway certificate's fingerprint, to compare with the sender's copy.
    pub gateway_fingerprint: String,
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
    /// For a genuine message refused only because parts were added outside
    /// its encryption: the signing party's id and the bytes added (the
    /// notice says what the operator can set). None otherwise.
    pub transit_party: Option<String>,
    pub transit_bytes: usize,
}

/// `quarantine_digest`: to the Secretariat, at most once per period, about
/// the quarantined messages beyond the hour's notice budget. Counts and
/// envelope senders as seen; nothing from the messages themselves.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineDigestData {
    pub gateway: String,
    pub recipient: PartyView,
    pub since: String,
    pub until: String,
    pub count: usize,
    /// Per reason code: the code, its fixed explanation, how many.
    pub by_reason: Vec<DigestLine>,
    /// Per envelope sender (unverified), most first.
    pub by_sender: Vec<DigestLine>,
    /// Envelope senders beyond those listed.
    pub more_senders: usize,
    /// The inbound ids the digest covers.
    pub first_id: i64,
    pub last_id: i64,
}

/// One counted line of a digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestLine {
    pub label: String,
    pub text: String,
    pub count: usize,
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

/// `contact_update_applied`: to the sender of a contact update: exactly
/// what changed in its entry (before -> after).
#[derive(Debug, Clone, Serialize)]
pub struct ContactUpdateAppliedData {
    pub reference: String,
    pub gateway: String,
    pub recipient: PartyView,
    pub received_at: String,
    /// Field names are the directory's (address, timezone, working-hours,
    /// "contact <name>", cert); values are text.
    pub changes: Vec<crate::directory::Change>,
    /// The new certificate's fingerprint, when the update rotated it.
    pub new_certificate: Option<String>,
    /// Until when the previous certificate still verifies (RFC 3339).
    pub previous_certificate_until: Option<String>,
}

/// `contact_update_unparsed`: to the sender: the update could not be read
/// and went to the Secretariat for manual handling.
#[derive(Debug, Clone, Serialize)]
pub struct ContactUpdateUnparsedData {
    pub reference: String,
    pub gateway: String,
    pub recipient: PartyView,
    pub received_at: String,
    /// Why, in English (from the parser; never text of the message).
    pub why: String,
}

/// One party's changes in a directory circular.
#[derive(Debug, Clone, Serialize)]
pub struct PartyChanges {
    pub party: PartyView,
    /// "added", "changed" or "removed".
    pub change: String,
    /// When (RFC 3339) and by whom ("update by AT (BSM-2026-000042)", "import directory.toml").
    pub at: String,
    pub by: String,
    pub changes: Vec<crate::directory::Change>,
}

/// A party a circular could not be sent to.
#[derive(Debug, Clone, Serialize)]
pub struct Undelivered {
    pub party: PartyView,
    pub why: String,
}

/// `circular_directory_change`: to every NFP and the Secretariat: the
/// changes of the directory since the last circular.
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryCircularData {
    pub gateway: String,
    pub recipient: PartyView,
    pub circular_id: i64,
    pub generated_at: String,
    pub parties: Vec<PartyChanges>,
    /// The delivery report (the Secretariat's copy only): who gets nothing, and why.
    pub undelivered: Vec<Undelivered>,
}

/// One certificate the key-expiry watch reports.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub party: PartyView,
    pub fingerprint: String,
    /// When it expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
    /// Whole days until then (0 or less: already).
    pub days_left: Option<i64>,
    /// Mail can no longer be encrypted to it.
    pub unusable: bool,
    /// Why, in English, when unusable.
    pub why: String,
}

/// `case_reminder` (to the party that owes the answer to a request) and
/// `case_overdue_note` (to the Secretariat): a case's dates and parties,
/// never the request's content.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReminderData {
    pub gateway: String,
    pub recipient: PartyView,
    pub reference: String,
    /// `assistance_request` or `information_request`.
    pub kind: String,
    pub asker: PartyView,
    pub debtor: PartyView,
    /// The day it was received and the day it is due (YYYY-MM-DD, UTC).
    pub opened_at: String,
    pub due_at: String,
    /// Past its due time.
    pub overdue: bool,
    /// Whole days left before the due time, or since it passed.
    pub days: i64,
}

/// `command_result`: to the Secretariat, what its command mail did to a
/// case (instead of an acknowledgement). Dates and parties only.
#[derive(Debug, Clone, Serialize)]
pub struct CommandResultData {
    pub gateway: String,
    pub recipient: PartyView,
    /// The command mail's own reference.
    pub reference: String,
    pub received_at: String,
    /// The command as written between the brackets.
    pub command: String,
    /// `close`, `reopen`, `extend` or `reassign`.
    pub verb: String,
    /// The case's reference ('' when the command names none).
    pub case_reference: String,
    pub done: bool,
    /// Why not (`no_case`, `closed_already`, `open_already`, `no_party`,
    /// `owed_already`, `not_understood`); '' when done.
    pub refusal: String,
    /// The refusal in English, as the audit trail has it ('' when done).
    pub why: String,
    /// The case afterwards (when done): its state, due day and debtor.
    pub state: String,
    pub due_at: String,
    pub debtor: Option<PartyView>,
    /// A circulation (when done): mails queued, and held for lack of a key.
    pub circulated: usize,
    pub held: usize,
}

/// `library_circular`: a best practice of the library, circulated by the
/// Secretariat to an NFP with its covering note, the original attached.
#[derive(Debug, Clone, Serialize)]
pub struct LibraryCircularData {
    pub gateway: String,
    pub recipient: PartyView,
    /// The practice's reference.
    pub reference: String,
    /// The NFP that sent it.
    pub from: PartyView,
    /// The day it was received (YYYY-MM-DD).
    pub received_at: String,
    /// Its language's code.
    pub language: String,
    pub topics: Vec<String>,
    /// The Secretariat's covering note ('' none), lines cleaned.
    pub note: String,
    /// The attached original's file name.
    pub original_name: String,
}

/// One field of a directory entry, as the roll call shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryLine {
    pub field: String,
    pub value: String,
}

/// `rollcall_request`: to an NFP, its entry as the directory holds it, to
/// confirm by a signed reply citing the round's reference, or to correct
/// by a contact update; with `reminder`, the same again before the end.
#[derive(Debug, Clone, Serialize)]
pub struct RollcallRequestData {
    pub gateway: String,
    pub recipient: PartyView,
    /// The round's reference.
    pub reference: String,
    /// The last day to answer (YYYY-MM-DD, UTC).
    pub due_at: String,
    pub reminder: bool,
    pub entry: Vec<EntryLine>,
}

/// `rollcall_report`: to the Secretariat at a round's end.
#[derive(Debug, Clone, Serialize)]
pub struct RollcallReportData {
    pub gateway: String,
    pub recipient: PartyView,
    pub reference: String,
    pub started_at: String,
    pub due_at: String,
    /// NFPs asked.
    pub asked: usize,
    pub confirmed: Vec<PartyView>,
    pub updated: Vec<PartyView>,
    /// Delivered (or still in delivery), no answer.
    pub silent: Vec<PartyView>,
    /// Never sent: no usable key.
    pub held: Vec<PartyView>,
    /// Refused by the recipient's server.
    pub failed: Vec<PartyView>,
}

/// `key_expiry_warning`: to a party whose certificate expires soon.
#[derive(Debug, Clone, Serialize)]
pub struct KeyExpiryWarningData {
    pub gateway: String,
    pub recipient: PartyView,
    pub key: KeyStatus,
}

/// `key_expiry_report`: to the Secretariat: every certificate that expires
/// soon or is unusable already (those parties receive nothing).
#[derive(Debug, Clone, Serialize)]
pub struct KeyExpiryReportData {
    pub gateway: String,
    pub recipient: PartyView,
    pub generated_at: String,
    pub warning_days: i64,
    pub keys: Vec<KeyStatus>,
    /// The gateway's own key, when it cannot sign or decrypt now or by the
    /// end of the warning period.
    pub own_key: Option<OwnKeyStatus>,
}

/// The gateway's own key in the key-expiry report.
#[derive(Debug, Clone, Serialize)]
pub struct OwnKeyStatus {
    pub fingerprint: String,
    /// When peers can no longer encrypt to it (RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// What `nfp-gateway keys check` finds, in English.
    pub findings: Vec<String>,
}

/// `gateway_key_rotation`: the circular announcing the gateway's new key,
/// signed by the old and the new key, the new certificate attached.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRotationData {
    pub gateway: String,
    pub recipient: PartyView,
    pub circular_id: i64,
    pub generated_at: String,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// When the new certificate expires (RFC 3339), if it does.
    pub new_expires_at: Option<String>,
    /// The attached certificate's file name.
    pub certificate_file: String,
    pub undelivered: Vec<Undelivered>,
}

/// `circular_announcement`: an operator's circular (initiatives, activities,
/// meetings), from `nfp-gateway circular send --data FILE`.
#[derive(Debug, Clone, Serialize)]
pub struct AnnouncementData {
    pub gateway: String,
    pub recipient: PartyView,
    pub circular_id: i64,
    pub generated_at: String,
    /// From the data file, as written by the Secretariat.
    pub title: String,
    pub text: String,
    /// The delivery report (the Secretariat's copy only): who gets nothing, and why.
    pub undelivered: Vec<Undelivered>,
}
