//! The operator's keys (issue 15): the gateway's own key made with Sequoia
//! (`nfp-gateway keys generate`), and every key the gateway depends on
//! checked before it is needed (`nfp-gateway keys check`, and at start-up):
//! its own key can sign and decrypt now and for the next
//! `key-expiry-warning`, and invites no encryption mode it cannot read;
//! every party's certificate was read whole and can encrypt and sign now.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::policy::Policy;
use openpgp::serialize::SerializeInto;
use openpgp::types::{Features, KeyFlags};
use openpgp::Cert;
use openpgp::Profile;
use sequoia_openpgp as openpgp;

use crate::config::Config;
use crate::directory::Directory;
use crate::openpgp::seal;
use crate::openpgp::GatewayKey;

/// When mail can no longer be encrypted to `cert`: the primary key's
/// expiry, or the last of its transport-encryption keys' (None: never).
pub fn expiry(cert: &Cert, policy: &dyn Policy, now: SystemTime) -> Option<SystemTime> {
    let vc = cert.with_policy(policy, now).ok()?;
    let primary = vc.primary_key().key_expiration_time();
    let keys: Vec<Option<SystemTime>> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .map(|k| k.key_expiration_time())
        .collect();
    let subkeys = if keys.iter().any(Option::is_none) {
        None
    } else {
        keys.into_iter().flatten().max()
    };
    match (primary, subkeys) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Works now; needs the operator's attention before it stops working.
    Warning,
    /// Does not work now: mail to or from this party, or the gateway's own
    /// signing or decryption, fails.
    Error,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// One key's line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// `gateway`, or the party's id.
    pub who: String,
    pub fingerprint: String,
    pub encrypt: bool,
    pub sign: bool,
    pub expires: Option<SystemTime>,
    /// What is wrong, most serious first.
    pub findings: Vec<(Level, String)>,
}

impl Row {
    pub fn level(&self) -> Level {
        self.findings
            .iter()
            .map(|(l, _)| *l)
            .max()
            .unwrap_or(Level::Ok)
    }

    fn finding(&mut self, level: Level, what: impl Into<String>) {
        self.findings.push((level, what.into()));
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.0));
    }
}

/// Whether `cert` has a signing key usable at `at` (alive, not revoked).
fn can_sign(cert: &Cert, policy: &dyn Policy, at: SystemTime, secret: bool) -> bool {
    let Ok(vc) = cert.with_policy(policy, at) else {
        return false;
    };
    if vc.alive().is_err()
        || matches!(
            vc.revocation_status(),
            openpgp::types::RevocationStatus::Revoked(_)
        )
    {
        return false;
    }
    let mut keys = vc.keys().supported().alive().revoked(false).for_signing();
    match secret {
        true => keys.unencrypted_secret().next().is_some(),
        false => keys.next().is_some(),
    }
}

/// Whether the gateway holds the secret of an encryption key that peers
/// would encrypt to at `at`.
fn can_decrypt(cert: &Cert, policy: &dyn Policy, at: SystemTime) -> bool {
    seal::transport_keys(cert, policy, at).is_ok_and(|keys| {
        keys.iter().any(|k| {
            cert.keys()
                .unencrypted_secret()
                .any(|s| s.key().fingerprint() == k.key().fingerprint())
        })
    })
}

/// The gateway's own key.
pub fn check_gateway(
    key: &GatewayKey,
    policy: &dyn Policy,
    now: SystemTime,
    warning: Duration,
) -> Row {
    let cert = &key.cert;
    let horizon = now + warning;
    let mut row = Row {
        who: "gateway".into(),
        fingerprint: cert.fingerprint().to_hex(),
        encrypt: can_decrypt(cert, policy, now),
        sign: can_sign(cert, policy, now, true),
        expires: expiry(cert, policy, now),
        findings: Vec::new(),
    };
    if !row.encrypt {
        row.finding(
            Level::Error,
            "no valid encryption key with its secret: peers cannot encrypt to the gateway",
        );
    } else if !can_decrypt(cert, policy, horizon) {
        row.finding(
            Level::Warning,
            format!(
                "no valid encryption key on {}: extend the key or rotate it before then",
                crate::utc_day(horizon)
            ),
        );
    }
    if !row.sign {
        row.finding(
            Level::Error,
            "no valid signing key with its secret: the gateway cannot sign what it sends",
        );
    } else if !can_sign(cert, policy, horizon, true) {
        row.finding(
            Level::Warning,
            format!(
                "no valid signing key on {}: extend the key or rotate it before then",
                crate::utc_day(horizon)
            ),
        );
    }
    if let Err(e) = key.refuse_librepgp_aead(policy, now) {
        row.finding(Level::Error, format!("{e:#}"));
    }
    row
}

/// A key the gateway had before a rotation: it must still decrypt (its
/// expiry does not matter to decryption), and it never signs.
fn check_previous(cert: &Cert, policy: &dyn Policy, now: SystemTime) -> Row {
    let decrypts = cert
        .keys()
        .unencrypted_secret()
        .any(|k| k.key().pk_algo().for_encryption());
    let mut row = Row {
        who: "previous".into(),
        fingerprint: cert.fingerprint().to_hex(),
        encrypt: decrypts,
        sign: false,
        expires: expiry(cert, policy, now),
        findings: Vec::new(),
    };
    match decrypts {
        true => row.finding(
            Level::Warning,
            "a previous key: it still decrypts mail and stored content encrypted to it; \
             remove it from `previous-secret-keys` once the overlap is over and stored \
             content no longer needs it",
        ),
        false => row.finding(
            Level::Error,
            "a previous key without a secret encryption key",
        ),
    }
    row
}

/// A party's certificate (read whole already: [`Directory::load`] refuses
/// a damaged one).
pub fn check_party(
    who: &str,
    cert: &Cert,
    policy: &dyn Policy,
    now: SystemTime,
    warning: Duration,
) -> Row {
    let horizon = now + warning;
    let usable = seal::transport_keys(cert, policy, now);
    let mut row = Row {
        who: who.into(),
        fingerprint: cert.fingerprint().to_hex(),
        encrypt: usable.is_ok(),
        sign: can_sign(cert, policy, now, false),
        expires: expiry(cert, policy, now),
        findings: Vec::new(),
    };
    if let Err(e) = usable {
        row.finding(
            Level::Error,
            format!("{}: mail to it is held, never sent in clear", e.0),
        );
    } else if seal::transport_keys(cert, policy, horizon).is_err() {
        row.finding(
            Level::Warning,
            format!(
                "no valid encryption key on {}: ask for an extended or new certificate",
                crate::utc_day(horizon)
            ),
        );
    }
    if !row.sign {
        row.finding(
            Level::Error,
            "no valid signing key: every mail from it is quarantined",
        );
    }
    row
}

/// Every key of a gateway: its own (or why it cannot be read), then every
/// party's in the directory's order.
pub fn check_all(
    key: Result<&GatewayKey, &anyhow::Error>,
    directory: &Directory,
    policy: &dyn Policy,
    now: SystemTime,
    warning: Duration,
) -> Vec<Row> {
    let mut rows = Vec::new();
    match key {
        Ok(key) => rows.push(check_gateway(key, policy, now, warning)),
        Err(e) => rows.push(Row {
            who: "gateway".into(),
            fingerprint: "-".into(),
            encrypt: false,
            sign: false,
            expires: None,
            findings: vec![(Level::Error, format!("{e:#}"))],
        }),
    }
    if let Ok(key) = key {
        if let Some(p) = directory.party_of_key(&key.cert.fingerprint()) {
            rows[0].finding(
                Level::Error,
                format!("the gateway's own key is listed as {}'s certificate", p.id),
            );
        }
        for old in &key.previous {
            rows.push(check_previous(old, policy, now));
        }
    }
    for p in directory.parties() {
        rows.push(check_party(&p.id, &p.cert, policy, now, warning));
    }
    rows
}

/// Every key of the gateway that `config` describes, against `directory`:
/// `keys check`, and the keys of `config check`.
pub fn check_config(config: &Config, directory: &Directory, now: SystemTime) -> Vec<Row> {
    let key = GatewayKey::for_config(config);
    let policy = openpgp::policy::StandardPolicy::new();
    check_all(
        key.as_ref(),
        directory,
        &policy,
        now,
        config.key_expiry_warning,
    )
}

/// The report as a table, then one line per finding.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<12} {:<40} {:<7} {:<4} {:<10} {}\n",
        "key", "fingerprint", "encrypt", "sign", "expires", "status"
    );
    let yes = |b: bool| if b { "yes" } else { "NO" };
    for r in rows {
        out.push_str(&format!(
            "{:<12} {:<40} {:<7} {:<4} {:<10} {}\n",
            r.who,
            r.fingerprint,
            yes(r.encrypt),
            yes(r.sign),
            r.expires
                .map(crate::utc_day)
                .unwrap_or_else(|| "never".into()),
            r.level().word()
        ));
    }
    for r in rows {
        for (level, what) in &r.findings {
            out.push_str(&format!("{} {}: {what}\n", level.word(), r.who));
        }
    }
    let errors = rows.iter().filter(|r| r.level() == Level::Error).count();
    let warnings = rows.iter().filter(|r| r.level() == Level::Warning).count();
    out.push_str(&format!(
        "{} keys: {errors} with errors, {warnings} with warnings\n",
        rows.len()
    ));
    out
}

/// What `keys generate` wrote.
#[derive(Debug)]
pub struct Generated {
    pub fingerprint: String,
    pub secret: PathBuf,
    pub public: PathBuf,
    pub revocation: PathBuf,
}

/// The gateway's key, made with Sequoia: a v4 certificate (RFC 4880: GnuPG
/// 2.2, rnp, OpenPGP.js and Sequoia all read it) on Curve25519, a primary key
/// that only certifies, a signing subkey and an encryption subkey (for
/// transport and for the stored copies), valid for `validity`; the features
/// invite only SEIPDv1 (no AEAD mode that a peer would pick and the gateway
/// could not read). Written beside each other: the secret key (mode 0600,
/// never over an existing file), the public certificate, and the revocation
/// certificate (the certificate with its revocation signature: importing it
/// revokes the key; keep it offline).
///
/// With a `passphrase`, the secret keys are protected by it (S2K, as GnuPG
/// reads them); the gateway then reads it from `secret-key-passphrase-file`.
pub fn generate(
    address: &str,
    name: &str,
    validity: Duration,
    secret: &Path,
    passphrase: Option<openpgp::crypto::Password>,
) -> Result<Generated> {
    if !crate::address::is_plain_address(address) {
        bail!("{address:?} is not a plain mail address");
    }
    let (public, revocation) = beside(secret);
    for p in [secret, &public, &revocation] {
        if p.exists() {
            bail!("{} exists already: nothing was written", p.display());
        }
    }
    let (cert, rev) = CertBuilder::new()
        .set_profile(Profile::RFC4880)?
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_features(Features::empty().set_seipdv1())?
        .set_primary_key_flags(KeyFlags::empty().set_certification())
        .set_validity_period(validity)
        .set_password(passphrase)
        .add_userid(format!("{name} <{address}>"))
        .add_signing_subkey()
        .add_subkey(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .generate()
        .context("Generating the key")?;
    let tsk = cert.as_tsk().armored().to_vec()?;
    let public_cert = cert.clone().strip_secret_key_material();
    let revoked = public_cert.clone().insert_packets(rev)?.0;
    write_new(secret, &tsk, 0o600)?;
    write_new(&public, &public_cert.armored().to_vec()?, 0o644)?;
    write_new(&revocation, &revoked.armored().to_vec()?, 0o600)?;
    Ok(Generated {
        fingerprint: cert.fingerprint().to_hex(),
        secret: secret.to_path_buf(),
        public,
        revocation,
    })
}

/// `keys/gateway.sec.asc` -> `keys/gateway.pub.asc`, `keys/gateway.rev.asc`.
fn beside(secret: &Path) -> (PathBuf, PathBuf) {
    let name = secret
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".sec.asc")
        .or_else(|| name.strip_suffix(".asc"))
        .unwrap_or(&name);
    (
        secret.with_file_name(format!("{stem}.pub.asc")),
        secret.with_file_name(format!("{stem}.rev.asc")),
    )
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("Creating {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("Writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::policy::StandardPolicy;

    #[test]
    fn a_generated_key_passes_its_own_check() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("gateway.sec.asc");
        let g = generate(
            "gateway@nfp-network.example",
            "NFP network gateway",
            Duration::from_secs(2 * 365 * 86_400),
            &secret,
            None,
        )
        .unwrap();
        assert_eq!(g.public, dir.path().join("gateway.pub.asc"));
        let key = GatewayKey::load(&secret).unwrap();
        assert_eq!(key.cert.fingerprint().to_hex(), g.fingerprint);
        let p = StandardPolicy::new();
        let now = SystemTime::now();
        let row = check_gateway(&key, &p, now, Duration::from_secs(30 * 86_400));
        assert_eq!(row.level(), Level::Ok, "{:?}", row.findings);
        // A year and 11 months on, the warning horizon passes the expiry.
        let later = now + Duration::from_secs((2 * 365 - 20) * 86_400);
        let row = check_gateway(&key, &p, later, Duration::from_secs(30 * 86_400));
        assert_eq!(row.level(), Level::Warning, "{:?}", row.findings);
        let after = now + Duration::from_secs((2 * 365 + 1) * 86_400);
        let row = check_gateway(&key, &p, after, Duration::from_secs(30 * 86_400));
        assert_eq!(row.level(), Level::Error, "{:?}", row.findings);
        // The revocation certificate revokes it.
        let revoked =
            crate::openpgp::whole::certificate(&std::fs::read(&g.revocation).unwrap()).unwrap();
        assert!(matches!(
            revoked.revocation_status(&p, now),
            openpgp::types::RevocationStatus::Revoked(_)
        ));
        let row = check_party("X", &revoked, &p, now, Duration::ZERO);
        assert_eq!(row.level(), Level::Error);
        // Never over an existing key.
        let again = generate(
            "gateway@nfp-network.example",
            "x",
            Duration::from_secs(86_400),
            &secret,
            None,
        );
        assert!(format!("{:#}", again.unwrap_err()).contains("exists already"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_protected_key_is_unlocked_only_with_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("gateway.sec.asc");
        generate(
            "gateway@nfp-network.example",
            "NFP network gateway",
            Duration::from_secs(365 * 86_400),
            &secret,
            Some("correct horse battery staple".into()),
        )
        .unwrap();
        let e = GatewayKey::load(&secret).err().expect("locked");
        assert!(format!("{e:#}").contains("passphrase-protected"), "{e:#}");
        let right = dir.path().join("pass");
        std::fs::write(&right, "correct horse battery staple\n").unwrap();
        let key = GatewayKey::load_protected(&secret, Some(&right)).unwrap();
        let p = StandardPolicy::new();
        let row = check_gateway(&key, &p, SystemTime::now(), Duration::from_secs(86_400));
        assert_eq!(row.level(), Level::Ok, "{:?}", row.findings);
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, "Tr0ub4dor&3\n").unwrap();
        let e = GatewayKey::load_protected(&secret, Some(&wrong))
            .err()
            .expect("wrong");
        assert!(format!("{e:#}").contains("wrong passphrase"), "{e:#}");
        // The file on disk stays protected.
        let text = std::fs::read_to_string(&secret).unwrap();
        let cert = crate::openpgp::whole::certificate(text.as_bytes()).unwrap();
        assert!(cert
            .keys()
            .secret()
            .all(|k| !k.key().has_unencrypted_secret()));
    }
}
