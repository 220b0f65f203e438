//! The gateway's judgement on one message: the decision `nfp-gateway check`
//! prints and the daemon acts on. One function, [`judge`], runs the whole
//! pipeline: outer shape, decryption and verification, signed content,
//! sender identity, replay, classification and routing.

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use sequoia_openpgp::policy::StandardPolicy;
use serde::Serialize;

use crate::classify::{self, rules::Rules, Kind, Language, Topic};
use crate::config::Config;
use crate::directory::{Directory, Party, UnprotectedParts};
use crate::mime::repair::{Discarded, Repair};
use crate::mime::{inner, outer};
use crate::openpgp::{self, GatewayKey, Signer, Verifier};
use crate::reason::{reject, Reason, Rejection};
use crate::rfc3339;
use crate::route::{self, Recipient};

/// Everything loaded once: configuration, directory, keys, rules, policy.
pub struct Gateway {
    pub config: Config,
    pub directory: Directory,
    pub key: GatewayKey,
    pub rules: Rules,
    pub policy: StandardPolicy<'static>,
}

impl Gateway {
    /// The gateway with the directory of its file (no store needed).
    pub fn load(config_path: &Path) -> Result<Gateway> {
        let config = Config::load(config_path)?;
        let directory = Directory::load(&config.directory)?;
        Gateway::with_directory(config, directory)
    }

    /// The gateway with the directory the store holds (seeded from the file
    /// the first time): what the daemon and every store command use.
    pub async fn load_with_store(config_path: &Path) -> Result<(Gateway, crate::store::Store)> {
        let config = Config::load(config_path)?;
        let store = crate::store::Store::open(&config.database).await?;
        let directory =
            crate::directory::sync::current(&store, &config.directory, config.certificate_overlap)
                .await?;
        Ok((Gateway::with_directory(config, directory)?, store))
    }

    pub fn with_directory(config: Config, directory: Directory) -> Result<Gateway> {
        let key = GatewayKey::for_config(&config)?;
        let rules = match &config.classify_rules {
            Some(path) => Rules::load(path)?,
            None => Rules::builtin(),
        };
        if directory.party_of_key(&key.cert.fingerprint()).is_some() {
            anyhow::bail!(
                "the gateway's own key is listed as a party's certificate in the directory"
            )
        }
        let policy = StandardPolicy::new();
        key.refuse_librepgp_aead(&policy, SystemTime::now())
            .with_context(|| format!("Using the gateway key {}", config.secret_key.display()))?;
        Ok(Gateway {
            config,
            directory,
            key,
            rules,
            policy,
        })
    }
}

/// Remembers the signatures of accepted messages, to detect replays.
pub trait ReplayGuard {
    /// Records `digest`; false when it was recorded before.
    fn first_time(&mut self, digest: &str) -> Result<bool>;
}

/// A replay guard for one `check` run.
#[derive(Default)]
pub struct MemoryReplayGuard(HashSet<String>);

impl ReplayGuard for MemoryReplayGuard {
    fn first_time(&mut self, digest: &str) -> Result<bool> {
        Ok(self.0.insert(digest.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Quarantined,
}

/// The authenticated sender.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SenderInfo {
    pub party: String,
    pub email: String,
    pub fingerprint: String,
}

impl SenderInfo {
    fn of(party: &Party, signer: &Signer) -> SenderInfo {
        SenderInfo {
            party: party.id.clone(),
            email: party.email.clone(),
            fingerprint: signer.cert.to_hex(),
        }
    }
}

/// "N bytes in K parts (type size, ...)", for details.
fn describe_additions(parts: &[Discarded]) -> String {
    format!(
        "{} bytes in {} unprotected part{} ({})",
        Discarded::total(parts),
        parts.len(),
        if parts.len() == 1 { "" } else { "s" },
        Discarded::list(parts)
    )
}

/// What a contact update changes (field, before, after), or why it cannot be read.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ContactUpdateView {
    pub changes: Vec<crate::directory::Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unparseable: Option<String>,
}

/// The decision on one message, as printed by `check`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Option<Reason>,
    pub detail: String,
    pub sender: Option<SenderInfo>,
    pub signed_at: Option<String>,
    pub subject: Option<String>,
    /// Whether `subject` was signed (protected headers) or only read from the envelope.
    pub subject_protected: bool,
    pub language: Option<Language>,
    pub kind: Option<Kind>,
    pub topics: Vec<Topic>,
    pub target: Option<String>,
    /// The reference the message cites (a reply); the daemon assigns new ones.
    pub reference: Option<String>,
    pub attachments: Vec<inner::Attachment>,
    pub route: Vec<Recipient>,
    /// What was repaired before the message was judged (Exchange's
    /// rewriting, webmail's wrapping), whatever the verdict.
    #[serde(default)]
    pub repairs: Vec<Repair>,
    /// Parts added outside the encryption: discarded unread (accepted, the
    /// sender's entry allows it), or the reason a genuine message was
    /// refused (`structure`, it does not). Type and size only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discarded_parts: Vec<Discarded>,
    /// For a contact update: what it would change in the sender's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_update: Option<ContactUpdateView>,
    /// For the Secretariat's command mail (kind `command`): the command as
    /// read; it is carried out when the message is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::cases::command::Command>,
    /// SHA-256 of the signature: the replay key.
    #[serde(skip)]
    pub signature_digest: Option<String>,
    /// The same for each separately signed attachment (GpgOL): a block seen
    /// before makes the message a replay too.
    #[serde(skip)]
    pub attachment_digests: Vec<String>,
}

impl Decision {
    /// Every signature the message carries, as replay keys.
    pub fn signature_digests(&self) -> impl Iterator<Item = &String> {
        self.signature_digest.iter().chain(&self.attachment_digests)
    }
}

impl Decision {
    /// The same message, seen again: everything it said is withdrawn.
    pub fn into_replay(self) -> Decision {
        let (repairs, discarded) = (self.repairs, self.discarded_parts);
        let attachment_digests = self.attachment_digests;
        let digest = self.signature_digest.unwrap_or_default();
        let mut d = Decision::quarantined(Rejection::new(
            Reason::Replay,
            format!(
                "a message with the same signature ({}) was already received",
                digest.get(..16).unwrap_or("")
            ),
        ));
        d.signature_digest = Some(digest);
        d.repairs = repairs;
        d.discarded_parts = discarded;
        d.attachment_digests = attachment_digests;
        d
    }

    /// An accepted decision beyond the hourly limits becomes `rate_limited`;
    /// who signed it stays known (it was authenticated).
    pub fn into_rate_limited(self, why: String) -> Decision {
        let mut d = Decision::quarantined(Rejection::new(Reason::RateLimited, why));
        d.sender = self.sender;
        d.signed_at = self.signed_at;
        d.signature_digest = self.signature_digest;
        d.attachment_digests = self.attachment_digests;
        d.repairs = self.repairs;
        d.discarded_parts = self.discarded_parts;
        d
    }

    /// A refusal, with nothing else said about the message.
    pub fn quarantined(r: Rejection) -> Decision {
        Decision {
            verdict: Verdict::Quarantined,
            reason: Some(r.reason),
            detail: r.detail,
            sender: None,
            signed_at: None,
            subject: None,
            subject_protected: false,
            language: None,
            kind: None,
            topics: Vec::new(),
            target: None,
            reference: None,
            attachments: Vec::new(),
            route: Vec::new(),
            repairs: Vec::new(),
            discarded_parts: Vec::new(),
            contact_update: None,
            command: None,
            signature_digest: None,
            attachment_digests: Vec::new(),
        }
    }
}

/// The signed content of an accepted message, exactly as the signer signed it.
#[derive(Debug, Clone)]
pub struct SignedContent {
    /// The MIME entity (PGP/MIME) or the text (inline PGP).
    pub bytes: Vec<u8>,
    pub form: outer::Form,
}

/// A decision and, for an accepted message, what it authenticates.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub decision: Decision,
    pub content: Option<SignedContent>,
}

/// Judges one raw message at time `now`.
///
/// Never panics: a panic in a parser below is caught and becomes `malformed`.
pub fn judge(gw: &Gateway, raw: &[u8], now: SystemTime, replays: &mut dyn ReplayGuard) -> Decision {
    judge_full(gw, raw, now, replays).decision
}

/// [`judge`], keeping the signed content of an accepted message for the daemon.
pub fn judge_full(
    gw: &Gateway,
    raw: &[u8],
    now: SystemTime,
    replays: &mut dyn ReplayGuard,
) -> Judgement {
    let mut repairs = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        judge_inner(gw, raw, now, replays, &mut repairs)
    }));
    let mut judgement = match outcome {
        Ok(Ok((decision, content))) => {
            let content = (decision.verdict == Verdict::Accepted).then_some(content);
            Judgement { decision, content }
        }
        Ok(Err(r)) => Judgement {
            decision: Decision::quarantined(r),
            content: None,
        },
        Err(_) => Judgement {
            decision: Decision::quarantined(Rejection::new(
                Reason::Malformed,
                "a parser failed on this input (failure caught)",
            )),
            content: None,
        },
    };
    // A repaired message that is then refused says so: the operator sees
    // that the server's rewriting was undone and what was wrong after it.
    if !repairs.is_empty() && judgement.decision.verdict == Verdict::Quarantined {
        judgement.decision.detail = format!(
            "{} (after repairing: {})",
            judgement.decision.detail,
            Repair::list(&repairs)
        );
    }
    judgement.decision.repairs = repairs;
    judgement
}

fn judge_inner(
    gw: &Gateway,
    raw: &[u8],
    now: SystemTime,
    replays: &mut dyn ReplayGuard,
    repairs: &mut Vec<Repair>,
) -> Result<(Decision, SignedContent), Rejection> {
    let cfg = &gw.config;
    let envelope = outer::examine(raw, &cfg.limits, &cfg.address)?;
    let additions = envelope.repair == Some(Repair::UnprotectedPartsDiscarded);
    if !additions {
        repairs.extend(envelope.repair);
    }
    let v = Verifier {
        policy: &gw.policy,
        now,
        max_age: cfg.policy.signature_max_age,
        max_future: cfg.policy.signature_max_future,
        key: &gw.key,
        directory: &gw.directory,
        max_plaintext: cfg.limits.max_decrypted_size,
    };
    let authenticated = || {
        let decrypted = openpgp::decrypt(&v, &envelope.ciphertext)?;
        let (signer, content, signed_bytes) = signed_content(&v, &envelope, decrypted, cfg)?;
        let party = gw.directory.party_of_key(&signer.cert).ok_or_else(|| {
            Rejection::new(
                Reason::UnknownSigner,
                "the signing certificate has no party",
            )
        })?;
        check_sender(&envelope, &content, party)?;
        check_recipients(&content, &cfg.address)?;
        if envelope.attachments.is_empty() {
            return Ok((signer, content, signed_bytes, party, Vec::new()));
        }
        let (content, entity, digests) =
            separately_signed(&v, &envelope, &signer, &signed_bytes, gw)?;
        Ok((signer, content, entity, party, digests))
    };
    let (signer, content, signed_bytes, party, attachment_digests) = match authenticated() {
        Ok(found) => found,
        // Parts beside the encryption are a shape refused for everyone but
        // the parties allowed to have them discarded: whatever else is
        // wrong inside, the shape is what the sender must hear about first.
        Err(r) if additions => {
            let added = describe_additions(&envelope.discarded);
            return reject(
                Reason::Structure,
                format!("encrypted content next to {added}; no registered party's genuine message inside ({r})"),
            );
        }
        Err(r) => return Err(r),
    };
    // Separately signed attachments (GpgOL) are assembled with the text
    // into one MIME entity, which is what is stored and forwarded.
    let form = if envelope.attachments.is_empty() {
        envelope.form
    } else {
        outer::Form::PgpMime
    };
    if additions {
        if party.unprotected_parts != UnprotectedParts::Discard {
            // A genuine message with parts added outside its encryption,
            // most likely by the sender's organisation in transit.
            let mut d = Decision::quarantined(Rejection::new(
                Reason::Structure,
                format!(
                    "a genuine message signed by {} with {} added outside the encryption, \
                     most likely in transit (an organisation's disclaimer or footer); refused, \
                     as {}'s directory entry does not allow discarding them. If its \
                     organisation adds them to every message, the operator can set \
                     unprotected-parts = \"discard\" in {}'s entry",
                    party.id,
                    describe_additions(&envelope.discarded),
                    party.id,
                    party.id
                ),
            ));
            d.sender = Some(SenderInfo::of(party, &signer));
            d.signed_at = Some(rfc3339(signer.signed_at));
            d.discarded_parts = envelope.discarded.clone();
            return Ok((
                d,
                SignedContent {
                    bytes: signed_bytes,
                    form,
                },
            ));
        }
        repairs.push(Repair::UnprotectedPartsDiscarded);
    }
    let mut first_time = true;
    for digest in std::iter::once(&signer.signature_digest).chain(&attachment_digests) {
        first_time &= replays.first_time(digest).map_err(|e| {
            Rejection::new(Reason::Replay, format!("the replay store failed: {e:#}"))
        })?;
    }

    let protected_subject = content
        .protected
        .as_ref()
        .and_then(|p| p.subject.as_deref());
    let no_recipients = Vec::new();
    let input = classify::Input {
        protected_subject,
        text: &content.text,
        has_vcard: content.has_vcard,
        recipients: content
            .protected
            .as_ref()
            .map_or(&no_recipients, |p| &p.recipients),
        sender: &party.id,
        sender_kind: party.kind,
        sender_language: party.language,
    };
    if let Some(command) =
        crate::cases::command::find(protected_subject, &content.text, &gw.directory)
    {
        let mut d = desk_command(gw, party, command, &signer)?;
        d.subject = protected_subject
            .map(str::to_string)
            .or(envelope.subject.clone());
        d.subject_protected = protected_subject.is_some();
        if additions {
            d.discarded_parts = envelope.discarded.clone();
        }
        if !first_time {
            d = d.into_replay();
        }
        return Ok((
            d,
            SignedContent {
                bytes: signed_bytes,
                form,
            },
        ));
    }
    let c = classify::classify(&input, &gw.rules, &gw.directory, &cfg.address);
    let contact_update = match c.kind {
        Kind::ContactUpdate => Some(contact_update(party, &signed_bytes, form)?),
        _ => None,
    };
    let route = route::route(cfg, &gw.directory, party, &c, None);
    let mut decision = Decision {
        verdict: Verdict::Accepted,
        reason: None,
        detail: format!(
            "signed by {} ({}); {}{}{}",
            party.id,
            signer.cert,
            c.why,
            repairs
                .iter()
                .map(|r| format!("; repaired: {}", r.description()))
                .collect::<String>(),
            unprotected_names(&content.attachments)
        ),
        sender: Some(SenderInfo::of(party, &signer)),
        signed_at: Some(rfc3339(signer.signed_at)),
        subject: protected_subject
            .map(str::to_string)
            .or(envelope.subject.clone()),
        subject_protected: protected_subject.is_some(),
        language: Some(c.language),
        kind: Some(c.kind),
        topics: c.topics,
        target: c.target,
        reference: c.cited_reference,
        attachments: content.attachments,
        route,
        repairs: Vec::new(),
        discarded_parts: if additions {
            envelope.discarded.clone()
        } else {
            Vec::new()
        },
        contact_update,
        command: None,
        signature_digest: Some(signer.signature_digest),
        attachment_digests,
    };
    if !first_time {
        decision = decision.into_replay();
    }
    Ok((
        decision,
        SignedContent {
            bytes: signed_bytes,
            form,
        },
    ))
}

/// The decision on a command to the Secretariat's desk, signed by `party`:
/// accepted (kind `command`, routed nowhere) from the Secretariat at the
/// Secretariat's gateway with cases kept; from anyone else, or to a
/// gateway that keeps no cases, refused as `command_refused`.
fn desk_command(
    gw: &Gateway,
    party: &Party,
    command: crate::cases::command::Command,
    signer: &Signer,
) -> Result<Decision, Rejection> {
    use crate::config::Role;
    use crate::directory::PartyKind;
    let cfg = &gw.config;
    let refused = if party.kind != PartyKind::Secretariat {
        Some(format!(
            "a command to the Secretariat's desk ([{}]) signed by {}: only the Secretariat may send commands",
            command.written, party.id
        ))
    } else if cfg.role != Role::Secretariat {
        Some(format!(
            "a command to the Secretariat's desk ([{}]) sent to a national gateway, which keeps no cases",
            command.written
        ))
    } else if !cfg.cases.enabled {
        Some(format!(
            "a command to the Secretariat's desk ([{}]), and this gateway keeps no cases ([cases] enabled = false)",
            command.written
        ))
    } else {
        None
    };
    let mut d = Decision::quarantined(Rejection::new(
        Reason::CommandRefused,
        refused.clone().unwrap_or_default(),
    ));
    d.sender = Some(SenderInfo::of(party, signer));
    d.signed_at = Some(rfc3339(signer.signed_at));
    d.signature_digest = Some(signer.signature_digest.clone());
    if refused.is_some() {
        return Ok(d);
    }
    d.verdict = Verdict::Accepted;
    d.reason = None;
    d.detail = format!(
        "signed by {} ({}); a command to the Secretariat's desk: [{}]{}",
        party.id,
        signer.cert,
        command.written,
        match &command.not_understood {
            Some(why) => format!(", not understood ({why}): nothing will change"),
            None => String::new(),
        }
    );
    d.language = Some(party.language);
    d.kind = Some(Kind::Command);
    d.reference = command.reference.clone();
    d.command = Some(command);
    Ok(d)
}

/// How far apart the text and each attachment of a GpgOL message may have
/// been signed: GpgOL signs them all when the message is sent. An
/// attachment signed at another time belongs to another message.
const SEPARATE_SIGNATURES_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What the detail says of attachment names read outside the encryption.
fn unprotected_names(attachments: &[inner::Attachment]) -> String {
    let names: Vec<&str> = attachments
        .iter()
        .filter(|a| a.name_unprotected)
        .map(|a| a.name.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    format!(
        "; the name of {} is given outside the encryption (its content is signed)",
        names.join(", ")
    )
}

/// The attachments of a GpgOL "PGP/Inline" message, each decrypted and
/// verified on its own: each must be signed inside its encryption by the
/// text's signing certificate, within [`SEPARATE_SIGNATURES_WINDOW`] of the
/// text, and not itself be an OpenPGP message. The first block that is not
/// refuses the message with that block's reason. Returns the content and
/// the MIME entity (the signed text and the decrypted attachments, each
/// byte for byte as signed) that is stored and forwarded, and the replay
/// keys of the attachments' signatures.
fn separately_signed(
    v: &Verifier<'_>,
    envelope: &outer::Outer,
    signer: &Signer,
    text: &[u8],
    gw: &Gateway,
) -> Result<(inner::Content, Vec<u8>, Vec<String>), Rejection> {
    use crate::outbound::mime::{Body, Entity};
    let mut total = text.len();
    let mut digests = Vec::new();
    // For each block, in order: its name was read outside the encryption.
    let mut outside = Vec::new();
    let mut parts = vec![Entity {
        headers: vec![
            ("Content-Type".into(), "text/plain; charset=utf-8".into()),
            ("Content-Transfer-Encoding".into(), "base64".into()),
        ],
        body: Body::Binary(text.to_vec()),
    }];
    for a in &envelope.attachments {
        let block =
            |r: Rejection| Rejection::new(r.reason, format!("attachment {}: {}", a.name, r.detail));
        let d = openpgp::decrypt(v, &a.ciphertext).map_err(block)?;
        let Some(s) = d.signer else {
            return Err(block(Rejection::new(
                Reason::NotSigned,
                "encrypted, but not signed inside the encryption",
            )));
        };
        if s.cert != signer.cert {
            let reason = match gw.directory.party_of_key(&s.cert) {
                Some(_) => Reason::SenderMismatch,
                None => Reason::UnknownSigner,
            };
            return Err(block(Rejection::new(
                reason,
                format!(
                    "signed by {}, not by the text's signer {}",
                    s.cert, signer.cert
                ),
            )));
        }
        let apart = s
            .signed_at
            .duration_since(signer.signed_at)
            .unwrap_or_else(|e| e.duration());
        if apart > SEPARATE_SIGNATURES_WINDOW {
            return Err(block(Rejection::new(
                Reason::Structure,
                format!(
                    "signed {} s apart from the text: a block of another message",
                    apart.as_secs()
                ),
            )));
        }
        if openpgp::is_openpgp_message(&d.plaintext) {
            return Err(block(Rejection::new(
                Reason::Structure,
                "the decrypted attachment is itself an OpenPGP message",
            )));
        }
        // GpgOL names the attachment outside the encryption; the name the
        // sender's software wrote inside it, when there is one, is the one
        // no one on the way without a recipient's key could have changed.
        let name = match d.literal_name.as_deref().map(String::from_utf8_lossy) {
            Some(inside) if inside != "_CONSOLE" => {
                outside.push(false);
                crate::mime::sanitize_filename(&inside)
            }
            _ => {
                outside.push(true);
                a.name.clone()
            }
        };
        digests.push(s.signature_digest);
        total += d.plaintext.len();
        if total > v.max_plaintext {
            return reject(
                Reason::Limits,
                format!("decrypted content exceeds {} bytes", v.max_plaintext),
            );
        }
        let name = name.replace(['"', '\\'], "_");
        parts.push(Entity {
            headers: vec![
                (
                    "Content-Type".into(),
                    format!(
                        "{}; name=\"{name}\"",
                        crate::directory::content_type_of(&name)
                    ),
                ),
                ("Content-Transfer-Encoding".into(), "base64".into()),
                (
                    "Content-Disposition".into(),
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body: Body::Binary(d.plaintext),
        });
    }
    let entity = Entity::multipart("multipart/mixed", parts).to_bytes();
    let mut content = {
        let msg = inner::parse_entity(&entity, &gw.config.limits)?;
        inner::mime_content(&msg)?
    };
    // Marked by position, not by name: a name reads differently once the
    // entity is parsed again (quotes replaced, encoded words decoded). The
    // entity lists the blocks in order; should its reading list them
    // otherwise, every name is marked when any was read outside.
    if content.attachments.len() == outside.len() {
        for (listed, outside) in content.attachments.iter_mut().zip(&outside) {
            listed.name_unprotected = *outside;
        }
    } else if outside.contains(&true) {
        for listed in &mut content.attachments {
            listed.name_unprotected = true;
        }
    }
    Ok((content, entity, digests))
}

/// The signer and the signed content, for each accepted shape: a signature
/// inside the encryption (combined), or an encrypted RFC 3156
/// `multipart/signed` (separate layers) for PGP/MIME.
fn signed_content(
    v: &Verifier<'_>,
    envelope: &outer::Outer,
    decrypted: openpgp::Decrypted,
    cfg: &Config,
) -> Result<(Signer, inner::Content, Vec<u8>), Rejection> {
    match envelope.form {
        outer::Form::Inline => match decrypted.signer {
            Some(signer) => {
                if openpgp::is_openpgp_message(&decrypted.plaintext) {
                    return reject(
                        Reason::Structure,
                        "an OpenPGP message inside the signed inline text",
                    );
                }
                let content = inner::inline_content(&decrypted.plaintext);
                Ok((signer, content, decrypted.plaintext))
            }
            None => reject(
                Reason::NotSigned,
                "encrypted inline PGP without a signature inside",
            ),
        },
        outer::Form::PgpMime => {
            let entity = inner::parse_entity(&decrypted.plaintext, &cfg.limits)?;
            match (decrypted.signer, inner::signed_layer(&entity)?) {
                (Some(signer), None) => {
                    let content = inner::mime_content(&entity)?;
                    drop(entity);
                    Ok((signer, content, decrypted.plaintext))
                }
                (None, Some(layer)) => {
                    let signer = openpgp::verify_detached(v, &layer.signed, &layer.signature)?;
                    let signed = inner::parse_entity(&layer.signed, &cfg.limits)?;
                    let content = inner::mime_content(&signed)?;
                    drop(signed);
                    Ok((signer, content, layer.signed))
                }
                (Some(_), Some(_)) => reject(
                    Reason::Structure,
                    "signed twice: inside the encryption and by multipart/signed",
                ),
                (None, None) => {
                    // A signed part below the root signs only part of the content.
                    inner::refuse_nested_openpgp(&entity)?;
                    reject(Reason::NotSigned, "encrypted, but nothing inside is signed")
                }
            }
        }
    }
}

/// Routes an accepted reply again, now that the store knows who sent the
/// request it cites (`asked_by`).
pub fn reroute_reply(gw: &Gateway, decision: &mut Decision, asked_by: Option<&str>) {
    let (Some(kind), Some(sender), Some(language)) =
        (decision.kind, &decision.sender, decision.language)
    else {
        return;
    };
    if kind != Kind::InformationReply {
        return;
    }
    let Some(party) = gw.directory.get(&sender.party) else {
        return;
    };
    let c = classify::Classification {
        kind,
        topics: decision.topics.clone(),
        language,
        target: decision.target.clone(),
        cited_reference: decision.reference.clone(),
        why: String::new(),
    };
    decision.route = route::route(&gw.config, &gw.directory, party, &c, asked_by);
}

/// Reads a contact update and says what it would change in the sender's
/// entry; an update for anyone else's entry is refused.
fn contact_update(
    party: &Party,
    signed: &[u8],
    form: outer::Form,
) -> Result<ContactUpdateView, Rejection> {
    use crate::directory::update::{self, Parsed};
    match update::parse(signed, form == outer::Form::PgpMime) {
        Parsed::Unparseable(why) => Ok(ContactUpdateView {
            changes: Vec::new(),
            unparseable: Some(why),
        }),
        Parsed::Update(u) => {
            if let Some(target) = u
                .target
                .as_deref()
                .filter(|t| !t.eq_ignore_ascii_case(&party.id))
            {
                return reject(
                    Reason::ForeignUpdate,
                    format!(
                        "{} sent a contact update for the entry of {target}",
                        party.id
                    ),
                );
            }
            let before = party.entry();
            let mut after = update::apply(&before, &u);
            if let Some(cert) = &u.new_cert {
                use sequoia_openpgp::parse::Parse;
                if let Ok(c) = sequoia_openpgp::Cert::from_bytes(cert) {
                    after.cert = c.fingerprint().to_hex();
                }
            }
            Ok(ContactUpdateView {
                changes: after.changes_from(Some(&before)),
                unparseable: None,
            })
        }
    }
}

/// The From address must be the signer's registered address, and the
/// protected From (if any) the same as the outer one.
fn check_sender(
    envelope: &outer::Outer,
    content: &inner::Content,
    party: &Party,
) -> Result<(), Rejection> {
    if let Some(p) = &content.protected {
        match p.from.as_slice() {
            [one] if *one == envelope.from => {}
            [one] => {
                return reject(
                    Reason::SenderMismatch,
                    format!(
                        "the signed From <{one}> differs from the envelope's From <{}>",
                        envelope.from
                    ),
                )
            }
            [] => return reject(Reason::SenderMismatch, "protected headers without a From"),
            more => {
                return reject(
                    Reason::SenderMismatch,
                    format!("the signed From names {} addresses", more.len()),
                )
            }
        }
    }
    if envelope.from != party.email {
        return reject(
            Reason::SenderMismatch,
            format!(
                "signed by {}, whose registered address is <{}>, but From is <{}>",
                party.id, party.email, envelope.from
            ),
        );
    }
    Ok(())
}

/// Signed recipients that do not include the gateway mean the message was
/// signed for someone else and re-encrypted to us (surreptitious forwarding).
fn check_recipients(content: &inner::Content, own: &str) -> Result<(), Rejection> {
    let Some(p) = &content.protected else {
        return Ok(());
    };
    if p.recipients.is_empty() || p.recipients.iter().any(|r| is_own_address(r, own)) {
        return Ok(());
    }
    reject(
        Reason::NotForUs,
        "the signed recipients do not include the gateway: signed for someone else",
    )
}

/// `own`, or a plus-address of it (`gateway+fr@...`).
pub fn is_own_address(addr: &str, own: &str) -> bool {
    let (Some((local, domain)), Some((own_local, own_domain))) =
        (addr.split_once('@'), own.split_once('@'))
    else {
        return false;
    };
    domain == own_domain
        && (local == own_local
            || local
                .split_once('+')
                .is_some_and(|(base, _)| base == own_local))
}

/// Loads a message file, `-` for standard input.
pub fn read_message(path: &Path, limit: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?)
    };
    // Read one byte past the limit so that `judge` sees the message is too large.
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("Reading {}", path.display()))?;
    if buf.is_empty() {
        anyhow::bail!("{} is empty (0 bytes): nothing to judge", path.display());
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses() {
        assert!(is_own_address("gateway@net.example", "gateway@net.example"));
        assert!(is_own_address(
            "gateway+fr@net.example",
            "gateway@net.example"
        ));
        assert!(!is_own_address(
            "gateway@other.example",
            "gateway@net.example"
        ));
        assert!(!is_own_address(
            "gatewayx@net.example",
            "gateway@net.example"
        ));
    }
}
