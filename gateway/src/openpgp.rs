//! OpenPGP with Sequoia: decryption, verification and the security policy.
//!
//! Synchronous by design (callers on tokio use `spawn_blocking`). The policy
//! and the clock are passed in, never read from the environment, so every
//! time-dependent rule is reproducible with `check --now`.
//!
//! What is accepted: integrity-protected encryption to the gateway's key,
//! containing exactly one signature group with exactly one signature that
//! verifies against a directory certificate; the signing key valid and
//! unrevoked both when it signed and now; the signature made within the
//! configured window around now.

pub mod seal;
pub mod whole;

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, SessionKey};
use openpgp::packet::{Signature, PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, GoodChecksum, MessageLayer,
    MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::parse::{PacketParser, Parse};
use openpgp::policy::Policy;
use openpgp::serialize::MarshalInto;
use openpgp::types::{HashAlgorithm, RevocationStatus, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle, Packet};
use sequoia_openpgp as openpgp;

use crate::directory::Directory;
use crate::reason::{reject, Reason, Rejection};

/// The gateway's own secret key material, loaded once.
pub struct GatewayKey {
    pub cert: Cert,
    /// The keys it had before a rotation (`previous-secret-keys`): they
    /// decrypt, they never sign.
    pub previous: Vec<Cert>,
    /// Every secret key that can decrypt, whatever its flags or expiry:
    /// mail encrypted before a key expired must still be readable; the
    /// previous keys' too.
    decryptors: Vec<(KeyHandle, KeyPair)>,
}

impl GatewayKey {
    /// Reads an armored TSK (`gpg --export-secret-keys --armor`), unprotected.
    pub fn load(path: &std::path::Path) -> Result<GatewayKey> {
        GatewayKey::load_protected(path, None)
    }

    /// The key of a configuration: `secret-key`, unlocked with
    /// `secret-key-passphrase-file` when it is set.
    pub fn for_config(config: &crate::config::Config) -> Result<GatewayKey> {
        let mut key = GatewayKey::load_protected(
            &config.secret_key,
            config.secret_key_passphrase_file.as_deref(),
        )?;
        for path in &config.previous_secret_keys {
            let old =
                GatewayKey::load_protected(path, config.secret_key_passphrase_file.as_deref())
                    .context("A previous key (`previous-secret-keys`)")?;
            key.add_previous(old)
                .with_context(|| format!("The previous key {}", path.display()))?;
        }
        Ok(key)
    }

    /// Adds a key the gateway had before a rotation: it decrypts what was
    /// encrypted to it, and never signs.
    pub fn add_previous(&mut self, old: GatewayKey) -> Result<()> {
        let fpr = old.cert.fingerprint();
        if fpr == self.cert.fingerprint() || self.previous.iter().any(|c| c.fingerprint() == fpr) {
            anyhow::bail!("{fpr} is already the gateway's key or a previous one");
        }
        self.decryptors.extend(old.decryptors);
        self.previous.push(old.cert);
        Ok(())
    }

    /// Reads an armored TSK whose secret keys may be protected by the
    /// passphrase on the first line of `passphrase_file` (a systemd
    /// credential, typically): they are unlocked in memory only.
    pub fn load_protected(
        path: &std::path::Path,
        passphrase_file: Option<&std::path::Path>,
    ) -> Result<GatewayKey> {
        let mut cert = std::fs::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|data| whole::certificate(&data))
            .with_context(|| format!("Reading the gateway key {}", path.display()))?;
        if let Some(file) = passphrase_file {
            let password: openpgp::crypto::Password =
                crate::config::first_line(file, "the key's passphrase")?.into();
            let mut unlocked = Vec::new();
            for ka in cert.keys().secret() {
                if ka.key().has_unencrypted_secret() {
                    continue;
                }
                let key = ka.key().clone().decrypt_secret(&password).with_context(|| {
                    format!(
                        "Unlocking the gateway key {} with the passphrase of {} (wrong passphrase?)",
                        path.display(),
                        file.display()
                    )
                })?;
                unlocked.push(match ka.primary() {
                    true => openpgp::Packet::from(key.role_into_primary()),
                    false => openpgp::Packet::from(key.role_into_subordinate()),
                });
            }
            cert = cert.insert_packets(unlocked)?.0;
        }
        GatewayKey::new(cert).with_context(|| format!("Using the gateway key {}", path.display()))
    }

    pub fn new(cert: Cert) -> Result<GatewayKey> {
        refuse_unsupported_algorithms(&cert)?;
        let mut decryptors = Vec::new();
        for ka in cert.keys().unencrypted_secret() {
            if ka.key().pk_algo().for_encryption() {
                let pair = ka
                    .key()
                    .clone()
                    .into_keypair()
                    .context("Preparing a decryption key")?;
                decryptors.push((ka.key().key_handle(), pair));
            }
        }
        if decryptors.is_empty() {
            anyhow::bail!("no unprotected secret encryption key (is it passphrase-protected, or public only?)");
        }
        Ok(GatewayKey {
            cert,
            previous: Vec::new(),
            decryptors,
        })
    }

    /// Refuses a gateway certificate that invites mail the gateway cannot
    /// read: one whose self-signatures advertise the LibrePGP AEAD feature
    /// (0x02), which makes GnuPG 2.4 encrypt to it with OCB (the AEAD
    /// Encrypted Data packet, tag 20), which Sequoia does not read.
    pub fn refuse_librepgp_aead(&self, policy: &dyn Policy, now: SystemTime) -> Result<()> {
        // A certificate that is not valid now gets no mail at all (its
        // expiry is watched elsewhere); this is about what a valid one invites.
        let Ok(vc) = self.cert.with_policy(policy, now) else {
            return Ok(());
        };
        let direct = vc.direct_key_signature().ok().and_then(|s| s.features());
        let advertised = direct
            .into_iter()
            .chain(
                vc.userids()
                    .filter_map(|u| u.binding_signature().features()),
            )
            .any(|f| f.get(1));
        if advertised {
            anyhow::bail!(
                "the gateway's certificate {} advertises the LibrePGP AEAD feature: GnuPG 2.4 \
                 (Gpg4win 4) would encrypt to it with OCB, which the gateway cannot read, and \
                 every such message would be quarantined. Fix: issue new self-signatures \
                 without it (GnuPG 2.4: gpg --edit-key {} then `setpref AES256 AES192 AES128 \
                 SHA512 SHA384 SHA256 ZLIB BZIP2 ZIP Uncompressed` (no AEAD algorithm) and \
                 `save`), export the secret key again, and publish the new certificate",
                self.cert.fingerprint(),
                self.cert.fingerprint()
            );
        }
        Ok(())
    }
}

/// Whether `pkesk` may be addressed to the key `handle`: it names that key,
/// or it is a wildcard (no recipient named), which could be any key.
fn may_be_for(pkesk: &PKESK, handle: &KeyHandle) -> bool {
    pkesk.recipient().is_none_or(|r| r.aliases(handle))
}

/// A gateway key with a secret key this build cannot use would make every
/// message encrypted to it fail later: refused at start-up instead.
fn refuse_unsupported_algorithms(cert: &Cert) -> Result<()> {
    use openpgp::crypto::mpi::PublicKey as P;
    for ka in cert.keys().secret() {
        let key = ka.key();
        let curve = match key.mpis() {
            P::ECDH { curve, .. } | P::EdDSA { curve, .. } | P::ECDSA { curve, .. } => Some(curve),
            _ => None,
        };
        let supported = key.pk_algo().is_supported() && curve.is_none_or(|c| c.is_supported());
        if !supported {
            anyhow::bail!(
                "the gateway key {} uses {}{}, which this build's OpenPGP backend \
                 (Sequoia with the system's OpenSSL) cannot use: mail encrypted to it could \
                 never be read. Post-quantum algorithms need OpenSSL 3.5 or later; Debian 12 \
                 has 3.0. Use a key with Curve25519 or RSA (nfp-gateway's keys/README.md)",
                key.fingerprint(),
                key.pk_algo(),
                curve.map(|c| format!(" on {c}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Everything a verification depends on.
pub struct Verifier<'a> {
    pub policy: &'a dyn Policy,
    pub now: SystemTime,
    pub max_age: Duration,
    pub max_future: Duration,
    pub key: &'a GatewayKey,
    pub directory: &'a Directory,
    pub max_plaintext: usize,
}

/// Who signed, established cryptographically.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The primary fingerprint of the signer's directory certificate.
    pub cert: Fingerprint,
    /// The (sub)key that made the signature.
    pub key: Fingerprint,
    pub signed_at: SystemTime,
    /// SHA-256 of the signature packet: the replay key.
    pub signature_digest: String,
}

/// A decrypted message: the plaintext, and its signer if it was signed inside.
#[derive(Debug)]
pub struct Decrypted {
    pub plaintext: Vec<u8>,
    pub signer: Option<Signer>,
    /// The file name in the literal data packet, when the sender's
    /// software wrote one: inside the encryption, so no one on the way
    /// without a recipient's key can change it. A v4 signature does not
    /// cover it: a recipient could decrypt, rename and encrypt again.
    pub literal_name: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decryption {
    NotAttempted,
    NoKeyOfOurs,
    Failed,
    Done,
}

/// The session key that opened the message, for a second look after an error.
type Opened = RefCell<Option<(Option<SymmetricAlgorithm>, SessionKey)>>;

struct Helper<'v, 'a> {
    v: &'v Verifier<'a>,
    /// Shared with the caller: Sequoia consumes the helper when it fails early.
    decryption: &'v Cell<Decryption>,
    opened: &'v Opened,
    outcome: Option<Result<Option<Signer>, Rejection>>,
    expect_encryption: bool,
    /// The first literal data packet's file name, once one was seen.
    literal: Option<Option<Vec<u8>>>,
}

/// Decrypts and verifies an OpenPGP message (armored or binary).
pub fn decrypt(v: &Verifier<'_>, ciphertext: &[u8]) -> Result<Decrypted, Rejection> {
    let state = Cell::new(Decryption::NotAttempted);
    let opened = Opened::default();
    // Sequoia 2.4 panics on some truncated SEIPDv1 packets (an `unwrap` in
    // its parser, found by our property test): a panic is a refusal too.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decrypt_unguarded(v, ciphertext, &state, &opened).map_err(|r| {
            if librepgp_ocb(ciphertext, v.key) {
                return Rejection::new(
                    Reason::UnsupportedEncryption,
                    "encrypted to the gateway with GnuPG 2.4's OCB mode (a LibrePGP AEAD \
                     Encrypted Data packet, tag 20), which the gateway does not read: the \
                     sender's GnuPG must encrypt to the gateway's certificate as the \
                     directory publishes it (no LibrePGP AEAD feature), without force-ocb",
                );
            }
            // Sequoia stops descending into compressed packets 16 levels
            // down and then finds no literal data: a compression quine or
            // recursion, which is a resource limit, not a corrupt message.
            if matches!(r.reason, Reason::IntegrityFailure | Reason::Malformed)
                && compression_too_deep(ciphertext, opened.borrow().as_ref())
            {
                Rejection::new(
                    Reason::Limits,
                    format!(
                        "compressed packets nested {MAX_COMPRESSION_DEPTH} or more levels deep"
                    ),
                )
            } else {
                r
            }
        })
    }));
    outcome.unwrap_or_else(|_| {
        Err(match state.get() {
            Decryption::Done => Rejection::new(
                Reason::IntegrityFailure,
                "the decrypted data is truncated or corrupt (parser failure caught)",
            ),
            _ => Rejection::new(
                Reason::Malformed,
                "the OpenPGP data is corrupt (parser failure caught)",
            ),
        })
    })
}

/// An armored OpenPGP message in its usual shape (RFC 9580 §6.2: the BEGIN
/// line, header lines, an empty line, base64 lines, an optional checksum
/// line, which §6.1.1 says not to enforce, and the END line), decoded with a
/// fast base64 decoder; None for anything else, which Sequoia's own armor
/// reader then gets (it is several times slower: a quarter of the time
/// spent on a 2 MiB message).
fn dearmor(data: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text
        .lines()
        .map(|l| l.trim_end())
        .skip_while(|l| l.is_empty());
    if lines.next()? != "-----BEGIN PGP MESSAGE-----" {
        return None;
    }
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if !line.contains(": ") {
            return None;
        }
    }
    let mut body = String::with_capacity(data.len() * 3 / 4);
    let mut ended = false;
    for line in lines.by_ref() {
        if line == "-----END PGP MESSAGE-----" {
            ended = true;
            break;
        }
        if line.starts_with('=') && line.len() == 5 {
            continue; // the CRC-24 checksum
        }
        body.push_str(line);
    }
    if !ended || lines.any(|l| !l.is_empty()) {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Whether `data` is encrypted to one of the gateway's keys in a LibrePGP
/// AEAD Encrypted Data packet (tag 20), as GnuPG 2.4 writes in OCB mode when
/// every recipient key advertises the LibrePGP AEAD feature. Sequoia does
/// not read that packet; the gateway names it instead of calling it
/// malformed. Reads packet headers only.
fn librepgp_ocb(data: &[u8], key: &GatewayKey) -> bool {
    let Some(head) = encryption_head(data) else {
        return false;
    };
    let ours = head.pkesks.iter().any(|p| {
        key.decryptors
            .iter()
            .any(|(handle, _)| may_be_for(p, handle))
    });
    ours && head.data == Some(openpgp::packet::Tag::AED)
}

/// The session-key packets of an encrypted message and the tag of the
/// packet after them (None: the packets end or break off there).
pub(crate) struct EncryptionHead {
    pub pkesks: Vec<PKESK>,
    pub data: Option<openpgp::packet::Tag>,
}

/// The packets before an OpenPGP message's encrypted data (public-key and
/// symmetric session-key packets, markers), read from the packet headers
/// alone; None when `data` does not start as OpenPGP.
pub(crate) fn encryption_head(data: &[u8]) -> Option<EncryptionHead> {
    use openpgp::parse::{PacketParser, PacketParserResult};
    use openpgp::Packet;
    let mut ppr = PacketParser::from_bytes(data).ok()?;
    let mut head = EncryptionHead {
        pkesks: Vec::new(),
        data: None,
    };
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => head.pkesks.push(p.clone()),
            Packet::SKESK(_) | Packet::Marker(_) => {}
            p => {
                head.data = Some(p.tag());
                break;
            }
        }
        ppr = match pp.next() {
            Ok((_, next)) => next,
            Err(_) => break,
        };
    }
    Some(head)
}

/// Sequoia's parser recurses at most 16 levels; the encryption is one.
const MAX_COMPRESSION_DEPTH: usize = 16;

/// Whether the message nests compressed packets `MAX_COMPRESSION_DEPTH`
/// deep along its first branch (decrypting with the session key, if any);
/// reads no content beyond the packet headers.
fn compression_too_deep(
    data: &[u8],
    opened: Option<&(Option<SymmetricAlgorithm>, SessionKey)>,
) -> bool {
    use openpgp::parse::{PacketParser, PacketParserResult};
    use openpgp::Packet;
    let Ok(mut ppr) = PacketParser::from_bytes(data) else {
        return false;
    };
    let mut depth = 0;
    while let PacketParserResult::Some(mut pp) = ppr {
        match &pp.packet {
            Packet::PKESK(_) | Packet::SKESK(_) | Packet::Marker(_) => {}
            Packet::SEIP(_) => match opened {
                Some((algo, key)) if pp.decrypt(*algo, key).is_ok() => {}
                _ => return false,
            },
            Packet::CompressedData(_) => {
                depth += 1;
                if depth >= MAX_COMPRESSION_DEPTH {
                    return true;
                }
            }
            _ => return false,
        }
        ppr = match pp.recurse() {
            Ok((_, next)) => next,
            Err(_) => return false,
        };
    }
    false
}

fn decrypt_unguarded(
    v: &Verifier<'_>,
    ciphertext: &[u8],
    state: &Cell<Decryption>,
    opened: &Opened,
) -> Result<Decrypted, Rejection> {
    let helper = Helper {
        v,
        decryption: state,
        opened,
        outcome: None,
        expect_encryption: true,
        literal: None,
    };
    // Signatures are checked for liveness at this time; the exact window is
    // enforced on the creation time afterwards.
    let horizon = v.now + v.max_future;
    let binary = dearmor(ciphertext);
    let ciphertext = binary.as_deref().unwrap_or(ciphertext);
    // Sequoia holds back the last `buffer_size` bytes of plaintext until the
    // signatures are checked. Nothing here acts on plaintext before the
    // whole message is read and judged, so 1 MiB instead of the default
    // 25 MiB only saves memory.
    let mut decryptor = match DecryptorBuilder::from_bytes(ciphertext)
        .map(|b| b.buffer_size(1 << 20))
        .and_then(|b| b.with_policy(v.policy, horizon, helper))
    {
        Ok(d) => d,
        Err(e) => return Err(decryption_error(&e, state.get())),
    };
    // Grown by hand, never beyond the cap: read_to_end's doubling would hold
    // twice the cap at the moment a bomb crosses it.
    let mut plaintext = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        let n = match decryptor.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(decryption_error(&anyhow::Error::from(e), state.get())),
        };
        if plaintext.len() + n > v.max_plaintext {
            return reject(
                Reason::Limits,
                format!("decrypted content exceeds {} bytes", v.max_plaintext),
            );
        }
        if plaintext.capacity() < plaintext.len() + n {
            let want = (plaintext.capacity() * 2)
                .max(plaintext.len() + n)
                .min(v.max_plaintext);
            plaintext.reserve_exact(want - plaintext.len());
        }
        plaintext.extend_from_slice(&chunk[..n]);
    }
    if !decryptor.message_processed() {
        return reject(Reason::Malformed, "the OpenPGP message did not end");
    }
    let helper = decryptor.into_helper();
    match helper.outcome {
        Some(Ok(signer)) => Ok(Decrypted {
            plaintext,
            signer,
            literal_name: helper.literal.flatten().filter(|n| !n.is_empty()),
        }),
        Some(Err(rejection)) => Err(rejection),
        None => reject(
            Reason::Malformed,
            "the OpenPGP message was not processed to its end",
        ),
    }
}

/// Verifies an RFC 3156 detached signature over `data` (already canonical).
pub fn verify_detached(
    v: &Verifier<'_>,
    data: &[u8],
    signature: &[u8],
) -> Result<Signer, Rejection> {
    let state = Cell::new(Decryption::Done);
    let opened = Opened::default();
    let helper = Helper {
        v,
        decryption: &state,
        opened: &opened,
        outcome: None,
        expect_encryption: false,
        literal: None,
    };
    let horizon = v.now + v.max_future;
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .and_then(|b| b.with_policy(v.policy, horizon, helper))
        .map_err(|e| {
            Rejection::new(
                Reason::BadSignature,
                format!("unreadable detached signature: {e}"),
            )
        })?;
    verifier
        .verify_bytes(data)
        .map_err(|e| Rejection::new(Reason::BadSignature, format!("detached signature: {e}")))?;
    match verifier.into_helper().outcome {
        Some(Ok(Some(signer))) => Ok(signer),
        Some(Ok(None)) => reject(Reason::NotSigned, "multipart/signed without a signature"),
        Some(Err(rejection)) => Err(rejection),
        None => reject(
            Reason::BadSignature,
            "the detached signature was not checked",
        ),
    }
}

/// Maps an error from Sequoia's decryptor to a reason.
fn decryption_error(e: &anyhow::Error, state: Decryption) -> Rejection {
    use openpgp::Error as E;
    let text = format!("{e:#}");
    if let Some(err) = e.chain().find_map(|c| c.downcast_ref::<E>()) {
        match err {
            E::ManipulatedMessage => {
                return Rejection::new(
                    Reason::IntegrityFailure,
                    "the integrity check (MDC) failed: the ciphertext was modified",
                )
            }
            E::PolicyViolation(what, _)
                if what.contains("SED") || what.contains("Symmetrically Encrypted Data") =>
            {
                return Rejection::new(
                    Reason::IntegrityFailure,
                    "encrypted without integrity protection (SED packet)",
                )
            }
            _ => {}
        }
    }
    match state {
        Decryption::NoKeyOfOurs => {
            Rejection::new(Reason::NotForUs, "not encrypted to the gateway's key")
        }
        Decryption::Failed | Decryption::Done => Rejection::new(
            Reason::IntegrityFailure,
            format!("decryption failed: {text}"),
        ),
        Decryption::NotAttempted if text.contains("SED") => Rejection::new(
            Reason::IntegrityFailure,
            "encrypted without integrity protection (SED packet)",
        ),
        Decryption::NotAttempted => Rejection::new(
            Reason::Malformed,
            format!("not a valid OpenPGP message: {text}"),
        ),
    }
}

/// The error a decryption helper returns when no key of ours fits.
#[derive(Debug, thiserror::Error)]
#[error("not encrypted to the gateway key")]
struct NotForUs;

impl DecryptionHelper for Helper<'_, '_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let mut ours = false;
        for pkesk in pkesks {
            for (handle, pair) in &self.v.key.decryptors {
                if !may_be_for(pkesk, handle) {
                    continue;
                }
                ours = true;
                let mut pair = pair.clone();
                if let Some((algo, session_key)) = pkesk.decrypt(&mut pair, sym_algo) {
                    if decrypt(algo, &session_key) {
                        self.decryption.set(Decryption::Done);
                        *self.opened.borrow_mut() = Some((algo, session_key));
                        return Ok(Some(self.v.key.cert.clone()));
                    }
                }
            }
        }
        self.decryption.set(if ours {
            Decryption::Failed
        } else {
            Decryption::NoKeyOfOurs
        });
        Err(NotForUs.into())
    }
}

impl VerificationHelper for Helper<'_, '_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.v.directory.certs_for(ids))
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        // Decide here, report after the whole message was read: a bad
        // verdict must not cut the plaintext short in a way that looks
        // like a transport error.
        self.outcome = Some(self.judge_structure(structure));
        Ok(())
    }

    fn inspect(&mut self, pp: &PacketParser<'_>) -> openpgp::Result<()> {
        // Sequoia refuses a second literal data packet; the first one's
        // name is kept all the same, whatever comes after.
        if let (Packet::Literal(literal), None) = (&pp.packet, &self.literal) {
            self.literal = Some(literal.filename().map(<[u8]>::to_vec));
        }
        Ok(())
    }
}

impl Helper<'_, '_> {
    fn judge_structure(&self, structure: MessageStructure) -> Result<Option<Signer>, Rejection> {
        let mut layers = structure.into_iter().peekable();
        if self.expect_encryption {
            match layers.next() {
                Some(MessageLayer::Encryption { .. }) => {}
                Some(MessageLayer::SignatureGroup { .. })
                | Some(MessageLayer::Compression { .. })
                | None => {
                    return reject(
                        Reason::NotEncrypted,
                        "an OpenPGP message that is signed but not encrypted",
                    )
                }
            }
        }
        let mut signer = None;
        let mut groups = 0;
        for layer in layers {
            match layer {
                MessageLayer::Compression { .. } => {}
                MessageLayer::Encryption { .. } => {
                    return reject(Reason::Structure, "encryption nested inside encryption")
                }
                MessageLayer::SignatureGroup { results } => {
                    groups += 1;
                    if groups > 1 {
                        return reject(
                            Reason::Structure,
                            "several signature layers (notarization or nesting)",
                        );
                    }
                    match results.len() {
                        0 => {}
                        1 => {
                            let result = results.into_iter().next().expect("one result");
                            signer = Some(self.judge_signature(result)?);
                        }
                        n => {
                            return reject(
                                Reason::Structure,
                                format!("{n} signatures: exactly one signer is accepted"),
                            )
                        }
                    }
                }
            }
        }
        Ok(signer)
    }

    fn judge_signature(
        &self,
        result: Result<GoodChecksum<'_>, VerificationError<'_>>,
    ) -> Result<Signer, Rejection> {
        let v = self.v;
        match result {
            Ok(GoodChecksum { sig, ka }) => {
                let cert = ka.cert();
                key_valid_now(v, cert, &ka.key().fingerprint())?;
                let signed_at = in_window(v, sig)?;
                Ok(Signer {
                    cert: cert.fingerprint(),
                    key: ka.key().fingerprint(),
                    signed_at,
                    signature_digest: digest(sig)?,
                })
            }
            Err(VerificationError::MissingKey { sig }) => {
                // Name the signer by fingerprint when the signature carries one.
                let handles = sig.get_issuers();
                let fingerprints: Vec<String> = handles
                    .iter()
                    .filter(|h| matches!(h, KeyHandle::Fingerprint(_)))
                    .map(|h| h.to_hex())
                    .collect();
                let issuers = if fingerprints.is_empty() {
                    handles.iter().map(|h| h.to_hex()).collect()
                } else {
                    fingerprints
                };
                reject(
                    Reason::UnknownSigner,
                    format!(
                        "signed by {}, not a key in the directory",
                        issuers.join(", ")
                    ),
                )
            }
            Err(VerificationError::UnboundKey { cert, error, .. }) => reject(
                Reason::BadSignature,
                format!(
                    "the signing key is not validly bound to {} when it signed: {error}",
                    cert.fingerprint()
                ),
            ),
            Err(VerificationError::BadKey { ka, error, .. }) => {
                let revoked = matches!(
                    ka.valid_cert().revocation_status(),
                    RevocationStatus::Revoked(_)
                ) || matches!(ka.revocation_status(), RevocationStatus::Revoked(_));
                let reason = if revoked {
                    Reason::KeyRevoked
                } else {
                    Reason::KeyExpired
                };
                reject(
                    reason,
                    format!(
                        "key {} of {}: {error}",
                        ka.key().fingerprint(),
                        ka.cert().fingerprint()
                    ),
                )
            }
            Err(VerificationError::BadSignature { sig, error, .. }) => {
                in_window(v, sig)?;
                // Sequoia refuses a signature whose intended recipients do not
                // name us as a bad one; it is a message signed for others.
                let own = v.key.cert.fingerprint();
                if sig.intended_recipients().next().is_some()
                    && !sig.intended_recipients().any(|r| *r == own)
                {
                    let named: Vec<String> =
                        sig.intended_recipients().map(|r| r.to_hex()).collect();
                    return reject(
                        Reason::NotForUs,
                        format!(
                            "signed for other recipients ({}), then re-encrypted to the gateway",
                            named.join(", ")
                        ),
                    );
                }
                reject(
                    Reason::BadSignature,
                    format!("the signature does not verify, or the policy refuses it: {error}"),
                )
            }
            Err(VerificationError::MalformedSignature { error, .. }) => reject(
                Reason::BadSignature,
                format!("malformed signature: {error}"),
            ),
            Err(VerificationError::UnknownSignature { .. }) => {
                reject(Reason::BadSignature, "unparsable signature")
            }
            Err(e) => reject(Reason::BadSignature, format!("{e}")),
        }
    }
}

/// Whether `data` is itself an OpenPGP message, armored or binary: it
/// starts (after white space) with a message's armor header line or with
/// an OpenPGP packet. That is nesting at the packet level (a notarization,
/// a second layer, someone else's signed message passed off whole as one's
/// own content), which the policy refuses. OpenPGP data *within* content
/// (a quoted clear-signed message in a reply, an attached `.gpg` file) is
/// content, and not this.
pub fn is_openpgp_message(data: &[u8]) -> bool {
    const ARMOR: [&[u8]; 2] = [
        b"-----BEGIN PGP MESSAGE-----",
        b"-----BEGIN PGP SIGNED MESSAGE-----",
    ];
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    let data = &data[start..];
    if ARMOR.iter().any(|m| data.starts_with(m)) {
        return true;
    }
    // A binary packet's first byte has its high bit set; text never starts so
    // unless it is UTF-8 beyond ASCII, which the packet parser then refuses.
    if data.first().is_none_or(|b| b & 0x80 == 0) {
        return false;
    }
    use openpgp::parse::{PacketParser, PacketParserResult};
    use openpgp::Packet;
    matches!(
        PacketParser::from_bytes(data),
        Ok(PacketParserResult::Some(pp)) if matches!(
            pp.packet,
            Packet::PKESK(_) | Packet::SKESK(_) | Packet::OnePassSig(_) | Packet::Signature(_)
                | Packet::CompressedData(_) | Packet::Literal(_) | Packet::SEIP(_)
        )
    )
}

/// The signer's certificate and signing key must be usable now, not only when it signed.
fn key_valid_now(v: &Verifier<'_>, cert: &Cert, key: &Fingerprint) -> Result<(), Rejection> {
    let fpr = cert.fingerprint();
    let vc = cert.with_policy(v.policy, v.now).map_err(|e| {
        Rejection::new(
            Reason::KeyExpired,
            format!("certificate {fpr} is not valid now: {e}"),
        )
    })?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return reject(Reason::KeyRevoked, format!("certificate {fpr} is revoked"));
    }
    if let Err(e) = vc.alive() {
        return reject(
            Reason::KeyExpired,
            format!("certificate {fpr} is not alive now: {e}"),
        );
    }
    let Some(ka) = vc.keys().key_handle(key.clone()).next() else {
        return reject(
            Reason::KeyExpired,
            format!("signing key {key} is not valid now"),
        );
    };
    if let RevocationStatus::Revoked(_) = ka.revocation_status() {
        return reject(Reason::KeyRevoked, format!("signing key {key} is revoked"));
    }
    if let Err(e) = ka.alive() {
        return reject(
            Reason::KeyExpired,
            format!("signing key {key} is not alive now: {e}"),
        );
    }
    if !ka.for_signing() {
        return reject(
            Reason::BadSignature,
            format!("key {key} is not a signing key"),
        );
    }
    Ok(())
}

/// The signature's creation time must lie within [now - max_age, now + max_future].
fn in_window(v: &Verifier<'_>, sig: &Signature) -> Result<SystemTime, Rejection> {
    let Some(t) = sig.signature_creation_time() else {
        return reject(Reason::BadSignature, "the signature has no creation time");
    };
    if t + v.max_age < v.now {
        return reject(
            Reason::StaleSignature,
            format!(
                "signed {}, more than {} before now",
                crate::rfc3339(t),
                humantime::format_duration(v.max_age)
            ),
        );
    }
    if t > v.now + v.max_future {
        return reject(
            Reason::StaleSignature,
            format!(
                "signed {}, more than {} in the future",
                crate::rfc3339(t),
                humantime::format_duration(v.max_future)
            ),
        );
    }
    Ok(t)
}

/// A stable identifier of a signature: SHA-256 over its serialized packet.
fn digest(sig: &Signature) -> Result<String, Rejection> {
    let fail =
        |e: anyhow::Error| Rejection::new(Reason::Malformed, format!("hashing the signature: {e}"));
    let bytes = sig.to_vec().map_err(fail)?;
    let mut ctx = HashAlgorithm::SHA256.context().map_err(fail)?.for_digest();
    ctx.update(&bytes);
    Ok(openpgp::fmt::hex::encode(ctx.into_digest().map_err(fail)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::armor::{Kind, Writer};
    use std::io::Write;

    fn armored(data: &[u8], headers: &[(&str, &str)]) -> Vec<u8> {
        let mut w = Writer::with_headers(Vec::new(), Kind::Message, headers.to_vec()).unwrap();
        w.write_all(data).unwrap();
        w.finalize().unwrap()
    }

    #[test]
    fn the_fast_dearmor_reads_what_sequoia_writes() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for headers in [&[][..], &[("Comment", "a comment"), ("Version", "x")][..]] {
            let a = armored(&data, headers);
            assert_eq!(dearmor(&a).as_deref(), Some(&data[..]));
            // CRLF, as mail carries it.
            let crlf = String::from_utf8(a).unwrap().replace('\n', "\r\n");
            assert_eq!(dearmor(crlf.as_bytes()).as_deref(), Some(&data[..]));
        }
    }

    /// A gateway certificate made by Sequoia with the given features.
    fn gateway_cert(features: openpgp::types::Features) -> GatewayKey {
        let (cert, _) = CertBuilder::new()
            .add_userid("Gateway <gateway@nfp-network.example>")
            .add_transport_encryption_subkey()
            .set_features(features)
            .unwrap()
            .generate()
            .unwrap();
        GatewayKey::new(cert).unwrap()
    }

    #[test]
    fn a_gateway_key_inviting_ocb_is_refused() {
        use openpgp::types::Features;
        let p = openpgp::policy::StandardPolicy::new();
        let now = SystemTime::now();
        for ok in [
            Features::empty().set_seipdv1(),
            Features::empty().set_seipdv1().set_seipdv2(),
        ] {
            gateway_cert(ok).refuse_librepgp_aead(&p, now).unwrap();
        }
        // Bit 0x02: LibrePGP's AEAD feature, as GnuPG 2.4 sets it.
        let err = gateway_cert(Features::empty().set_seipdv1().set(1))
            .refuse_librepgp_aead(&p, now)
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("LibrePGP AEAD") && text.contains("setpref"),
            "{text}"
        );
    }

    #[test]
    fn anything_unusual_is_left_to_sequoia() {
        let a = String::from_utf8(armored(b"hello world", &[])).unwrap();
        for bad in [
            a.replace("-----END PGP MESSAGE-----", ""),
            a.replace("MESSAGE", "SIGNATURE"),
            format!("{a}trailing text\n"),
            a.replacen("\n\n", "\n", 1),
            a.replacen("aGVs", "a*Vs", 1),
        ] {
            assert_eq!(dearmor(bad.as_bytes()), None, "{bad}");
        }
    }
}
