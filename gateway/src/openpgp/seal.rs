//! Outbound OpenPGP: the gateway signs and encrypts what it sends, and
//! encrypts what it stores.
//!
//! Recipient keys are chosen in one reviewed function, [`transport_keys`]:
//! only keys that are valid, alive and unrevoked now, on a certificate that
//! is itself alive and unrevoked, and capable of transport encryption. No
//! such key means nothing is sent.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::packet::key;
use openpgp::policy::Policy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::RevocationStatus;
use openpgp::Cert;
use sequoia_openpgp as openpgp;

/// Why a certificate cannot receive mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no usable encryption key: {0}")]
pub struct NoUsableKey(pub String);

/// The keys of `cert` that may encrypt mail to it now.
pub fn transport_keys<'a>(
    cert: &'a Cert,
    policy: &'a dyn Policy,
    now: SystemTime,
) -> Result<Vec<ValidErasedKeyAmalgamation<'a, key::PublicParts>>, NoUsableKey> {
    let vc = cert.with_policy(policy, now).map_err(|e| {
        NoUsableKey(format!(
            "certificate {} is not valid now: {e}",
            cert.fingerprint()
        ))
    })?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(NoUsableKey(format!(
            "certificate {} is revoked",
            cert.fingerprint()
        )));
    }
    vc.alive().map_err(|e| {
        NoUsableKey(format!(
            "certificate {} is expired: {e}",
            cert.fingerprint()
        ))
    })?;
    let keys: Vec<_> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .collect();
    if keys.is_empty() {
        return Err(NoUsableKey(format!(
            "certificate {} has no valid transport-encryption key",
            cert.fingerprint()
        )));
    }
    Ok(keys)
}

/// The gateway's signing key, valid now.
pub fn signing_keypair(cert: &Cert, policy: &dyn Policy, now: SystemTime) -> Result<KeyPair> {
    let ka = cert
        .keys()
        .with_policy(policy, now)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .unencrypted_secret()
        .next()
        .ok_or_else(|| {
            anyhow!(
                "the gateway key {} has no valid unprotected signing key",
                cert.fingerprint()
            )
        })?;
    ka.key()
        .clone()
        .into_keypair()
        .context("Preparing the gateway's signing key")
}

/// Signs `data` with the gateway's key (and `co_signer`'s, when there is
/// one: the previous key on the announcement of a rotation) and encrypts it
/// to `recipient`, as one armored OpenPGP message (the signatures inside
/// the encryption).
pub fn sign_and_encrypt(
    signer: &KeyPair,
    co_signer: Option<&KeyPair>,
    recipient: &Cert,
    policy: &dyn Policy,
    now: SystemTime,
    data: &[u8],
) -> Result<Vec<u8>> {
    let keys = transport_keys(recipient, policy, now)?;
    let mut sink = Vec::with_capacity(data.len() * 4 / 3 + 1024);
    {
        let message = Message::new(&mut sink);
        let message = Armorer::new(message).build()?;
        let recipients: Vec<Recipient> = keys.into_iter().map(Recipient::from).collect();
        let message = Encryptor::for_recipients(message, recipients).build()?;
        let mut message = Signer::new(message, signer.clone())?;
        if let Some(co) = co_signer {
            message = message.add_signer(co.clone())?;
        }
        let message = message
            .add_intended_recipient(recipient)
            .creation_time(now)
            .build()?;
        let mut literal = LiteralWriter::new(message).build()?;
        literal.write_all(data)?;
        literal.finalize()?;
    }
    Ok(sink)
}

/// Encrypts `data` for storage at rest, to the storage certificate's
/// storage-capable keys (binary, not armored).
pub fn encrypt_for_storage(
    storage: &Cert,
    policy: &dyn Policy,
    now: SystemTime,
    data: &[u8],
) -> Result<Vec<u8>> {
    let vc = storage
        .with_policy(policy, now)
        .context("The storage key is not valid now")?;
    let keys: Vec<Recipient> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_storage_encryption()
        .map(Recipient::from)
        .collect();
    if keys.is_empty() {
        anyhow::bail!(
            "the storage certificate {} has no valid storage-encryption key",
            storage.fingerprint()
        );
    }
    let mut sink = Vec::with_capacity(data.len() + 512);
    {
        let message = Message::new(&mut sink);
        let message = Encryptor::for_recipients(message, keys).build()?;
        let mut literal = LiteralWriter::new(message).build()?;
        literal.write_all(data)?;
        literal.finalize()?;
    }
    Ok(sink)
}
