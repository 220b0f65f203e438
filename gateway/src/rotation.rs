//! After a rotation of the gateway's key: the stored content still
//! encrypted to a previous key (`previous-secret-keys`) is re-encrypted to
//! the current one, page by page, each page in one transaction and audited.
//! Resumable: what is done stays done, and a new run skips it (a message's
//! ciphertext names the keys it is encrypted to). Once no stored content
//! needs a previous key, the operator removes it from the configuration.

use std::time::SystemTime;

use anyhow::{Context, Result};
use sequoia_openpgp::KeyHandle;

use crate::check::Gateway;
use crate::openpgp::seal;
use crate::outbound::mime::{Body, Entity};
use crate::store::reencrypt::Stored;
use crate::store::{Audit, Store};

/// What a run found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Messages read.
    pub examined: usize,
    /// Of those, messages with content encrypted to none of the current keys.
    pub old: usize,
    /// Of those, messages re-encrypted now.
    pub reencrypted: usize,
    /// Of those, the messages (ids) that no configured key decrypts: left
    /// as they are, named in the audit trail, and found again by each run.
    pub unreadable: Vec<i64>,
}

/// Re-encrypts, `batch` messages per transaction, every message whose
/// stored content the current key cannot read; with `dry_run`, only counts.
/// A message that no configured key decrypts (a previous key removed too
/// early, a damaged row) is left as it is and counted, and the run goes on.
pub async fn reencrypt(
    store: &Store,
    gw: &Gateway,
    batch: i64,
    dry_run: bool,
    now: SystemTime,
) -> Result<Outcome> {
    let storage = gw.key.cert.clone().strip_secret_key_material();
    let current: Vec<KeyHandle> = storage.keys().map(|k| k.key().key_handle()).collect();
    let fingerprint = storage.fingerprint().to_hex();
    let mut outcome = Outcome::default();
    let mut after = 0;
    loop {
        let page = store.stored_after(after, batch.max(1)).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut done = Vec::new();
        let mut skipped = Vec::new();
        for row in &page {
            outcome.examined += 1;
            let raw_old = needs(&row.raw_enc, &current);
            let content_old = row
                .content_enc
                .as_deref()
                .is_some_and(|c| needs(c, &current));
            if !(raw_old || content_old) {
                continue;
            }
            outcome.old += 1;
            // A dry run decrypts too, to count what no key reads.
            let again = |data: &[u8]| -> Result<Vec<u8>> {
                let plain = crate::post::decrypt_stored(gw, data)?;
                match dry_run {
                    true => Ok(Vec::new()),
                    false => seal::encrypt_for_storage(&storage, &gw.policy, now, &plain),
                }
            };
            let raw_enc = match raw_old {
                true => again(&row.raw_enc),
                false => Ok(row.raw_enc.clone()),
            };
            let content_enc = match (&row.content_enc, content_old) {
                (Some(c), true) => again(c).map(Some),
                (c, _) => Ok(c.clone()),
            };
            match (raw_enc, content_enc) {
                (Ok(raw_enc), Ok(content_enc)) => done.push((
                    row,
                    Stored {
                        id: row.id,
                        raw_enc,
                        content_enc,
                    },
                )),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(id = row.id, "not re-encrypted: {e:#}");
                    skipped.push(row.id);
                }
            }
        }
        if dry_run || (done.is_empty() && skipped.is_empty()) {
            outcome.unreadable.extend(skipped);
            continue;
        }
        let mut tx = store.begin().await?;
        let mut n = 0;
        for (old, new) in &done {
            n += usize::from(tx.replace_stored(old, new).await?);
        }
        let mut detail = match done.first().zip(done.last()) {
            Some((first, last)) => format!(
                "{n} stored messages (ids {} to {}) re-encrypted to the gateway's key {fingerprint}",
                first.0.id, last.0.id
            ),
            None => format!("no stored message re-encrypted to the gateway's key {fingerprint}"),
        };
        if !skipped.is_empty() {
            detail.push_str(&format!(
                "; left as they are, no configured key decrypts them: ids {}",
                ids(&skipped)
            ));
        }
        tx.audit(&Audit {
            at: Some(now),
            event: "key_reencrypt",
            fingerprint: Some(&fingerprint),
            detail: &detail,
            ..Audit::default()
        })
        .await?;
        tx.commit()
            .await
            .context("Committing re-encrypted messages")?;
        outcome.reencrypted += n;
        outcome.unreadable.extend(skipped);
    }
    Ok(outcome)
}

/// Ids as a list for a person: "3, 7, 12".
pub fn ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `data` is an OpenPGP message none of whose recipients is one of
/// `current` (an empty, purged content needs nothing).
fn needs(data: &[u8], current: &[KeyHandle]) -> bool {
    let Some(head) = crate::openpgp::encryption_head(data) else {
        return false;
    };
    let recipients: Vec<_> = head.pkesks.iter().filter_map(|p| p.recipient()).collect();
    !recipients.is_empty()
        && !recipients
            .iter()
            .any(|r| current.iter().any(|c| c.aliases(r)))
}

/// The configuration's text after a rotation to `new_secret` (written as
/// the operator gave it: a path or `credential:NAME`): `secret-key` is the
/// new key, and the old one is added to `previous-secret-keys`. Comments
/// and layout are kept.
pub fn rotated_config(text: &str, new_secret: &str) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("Parsing the configuration")?;
    let old = doc
        .get("secret-key")
        .and_then(|v| v.as_str())
        .context("the configuration has no `secret-key`")?
        .to_string();
    if old == new_secret {
        anyhow::bail!("{new_secret} is already the gateway's `secret-key`");
    }
    doc["secret-key"] = toml_edit::value(new_secret);
    let previous = doc
        .entry("previous-secret-keys")
        .or_insert(toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .context("`previous-secret-keys` is not a list")?;
    if !previous.iter().any(|v| v.as_str() == Some(&old)) {
        previous.push(old);
    }
    Ok(doc.to_string())
}

/// The new certificate as the rotation circular attaches it.
pub fn certificate_attachment(cert: &sequoia_openpgp::Cert) -> Result<(String, Entity)> {
    use sequoia_openpgp::serialize::SerializeInto;
    let name = format!("gateway-{}.asc", cert.fingerprint().to_hex());
    let armored = cert
        .clone()
        .strip_secret_key_material()
        .armored()
        .to_vec()
        .context("Armoring the new certificate")?;
    let entity = Entity {
        headers: vec![
            (
                "Content-Type".into(),
                format!("application/pgp-keys; name=\"{name}\""),
            ),
            ("Content-Transfer-Encoding".into(), "base64".into()),
            (
                "Content-Disposition".into(),
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body: Body::Binary(armored),
    };
    Ok((name, entity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_the_configuration_s_comments_and_adds_the_old_key() {
        let text = "# The gateway\nrole = \"secretariat\"\n# its key\nsecret-key = \"keys/a.sec.asc\"\ndirectory = \"d.toml\"\n\n[imap]\nhost = \"x\"\n";
        let once = rotated_config(text, "keys/b.sec.asc").unwrap();
        assert!(
            once.contains("# its key\nsecret-key = \"keys/b.sec.asc\""),
            "{once}"
        );
        assert!(
            once.contains("previous-secret-keys = [\"keys/a.sec.asc\"]"),
            "{once}"
        );
        assert!(
            once.find("previous-secret-keys").unwrap() < once.find("[imap]").unwrap(),
            "{once}"
        );
        let twice = rotated_config(&once, "credential:gateway-key-2028").unwrap();
        assert!(
            twice.contains("previous-secret-keys = [\"keys/a.sec.asc\", \"keys/b.sec.asc\"]"),
            "{twice}"
        );
        assert!(rotated_config(&twice, "credential:gateway-key-2028").is_err());
        let parsed: toml::Value = toml::from_str(&twice).unwrap();
        assert_eq!(parsed["imap"]["host"].as_str(), Some("x"));
    }
}
