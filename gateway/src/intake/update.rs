//! Contact updates, as intake applies them: the sender's new entry worked
//! out against the entry the store holds, inside the message's transaction.

use super::*;

/// What became of a contact update.
#[derive(Debug, Clone)]
pub enum UpdateOutcome {
    Applied {
        after: Box<crate::directory::Entry>,
        changes: Vec<crate::directory::Change>,
        /// (fingerprint, armored certificate) of a rotated certificate.
        new_cert: Option<(String, Vec<u8>)>,
        /// Until when the previous certificate verifies.
        until: Option<SystemTime>,
    },
    /// Read, but it changes nothing.
    Unchanged,
    Unparseable(String),
}

/// Reads a contact update and works out the sender's new entry, against the
/// entry the store holds (inside the transaction that will write it).
pub(super) async fn contact_update(
    tx: &mut Tx,
    ctx: &Ctx,
    party: &str,
    content: &check::SignedContent,
    now: SystemTime,
) -> Result<UpdateOutcome> {
    use crate::directory::update::{self, Parsed};
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::SerializeInto;
    let u = match update::parse(&content.bytes, content.form == Form::PgpMime) {
        Parsed::Unparseable(why) => return Ok(UpdateOutcome::Unparseable(why)),
        Parsed::Update(u) => u,
    };
    let Some((before, _)) = tx.entry(party).await? else {
        return Ok(UpdateOutcome::Unparseable(format!(
            "the directory has no entry {party}"
        )));
    };
    let mut after = update::apply(&before, &u);
    let mut new_cert = None;
    let mut refreshed = None;
    let mut cert = ctx.gw.directory.get(party).map(|p| p.cert.clone());
    if let Some(bytes) = &u.new_cert {
        let c = sequoia_openpgp::Cert::from_bytes(bytes).context("Reading the new certificate")?;
        if seal::transport_keys(&c, &ctx.gw.policy, now).is_err() {
            return Ok(UpdateOutcome::Unparseable(
                "the new certificate has no usable encryption key".into(),
            ));
        }
        let fingerprint = c.fingerprint().to_hex();
        if fingerprint != before.cert {
            after.cert = fingerprint.clone();
            new_cert = Some((
                fingerprint,
                c.armored().to_vec().context("Serialising a certificate")?,
            ));
            cert = Some(c);
        } else if let Some(current) = cert.take() {
            // The same certificate with new self-signatures (its validity
            // extended): merged into the stored one, no overlap needed.
            let merged = current
                .clone()
                .merge_public(c)
                .context("Merging the refreshed certificate")?;
            let expiry = |c: &sequoia_openpgp::Cert| {
                crate::keys::expiry(c, &ctx.gw.policy, now)
                    .map(rfc3339)
                    .unwrap_or_else(|| "never".into())
            };
            if merged != current {
                refreshed = Some(crate::directory::Change {
                    field: "cert expiry".into(),
                    before: expiry(&current),
                    after: expiry(&merged),
                });
                new_cert = Some((
                    fingerprint,
                    merged
                        .armored()
                        .to_vec()
                        .context("Serialising a certificate")?,
                ));
            }
            cert = Some(merged);
        }
    }
    let Some(cert) = cert else {
        return Ok(UpdateOutcome::Unparseable(format!(
            "no certificate is known for {party}"
        )));
    };
    if let Err(e) = Party::from_entry(after.clone(), cert, Vec::new()) {
        return Ok(UpdateOutcome::Unparseable(format!(
            "the updated entry is not valid: {e:#}"
        )));
    }
    let mut changes = after.changes_from(Some(&before));
    changes.extend(refreshed.clone());
    if changes.is_empty() {
        return Ok(UpdateOutcome::Unchanged);
    }
    // A new certificate's predecessor verifies during the overlap; a
    // refreshed one replaces itself.
    let until = new_cert
        .as_ref()
        .filter(|_| refreshed.is_none())
        .map(|_| now + ctx.gw.config.certificate_overlap);
    Ok(UpdateOutcome::Applied {
        after: Box::new(after),
        changes,
        new_cert,
        until,
    })
}
