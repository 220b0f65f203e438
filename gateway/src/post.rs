//! The gateway's own post, below intake and every desk task that writes:
//! the context the daemon's tasks share, the letters the gateway composes
//! (rendered in the recipient's language, signed, encrypted to it), and
//! their queueing in the durable outbox with an audit entry each.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use sequoia_openpgp::crypto::KeyPair;
use sequoia_openpgp::Cert;
use tokio::sync::Notify;

use crate::check::Gateway;
use crate::directory::Party;
use crate::openpgp::seal;
use crate::outbound::compose::{self, Sealed, Sender};
use crate::outbound::render::Templates;
use crate::store::outbox::NewOutbox;
use crate::store::{Audit, Store, Tx};

/// Everything the daemon's tasks share.
pub struct Ctx {
    pub gw: Gateway,
    pub templates: Arc<Templates>,
    pub store: Store,
    pub signer: KeyPair,
    /// The gateway's certificate, which stored content is encrypted to.
    pub storage: Cert,
    /// Wakes the SMTP sender when new mail is queued.
    pub outbox_ready: Arc<Notify>,
}

impl Ctx {
    pub async fn new(gw: Gateway, store: Store) -> Result<Ctx> {
        let templates = Templates::load(gw.config.templates.as_deref())?;
        let signer = seal::signing_keypair(&gw.key.cert, &gw.policy, SystemTime::now())?;
        // Stored content is encrypted to the gateway's own key (its
        // storage-capable subkeys), so only the gateway can read it back.
        let storage = gw.key.cert.clone().strip_secret_key_material();
        seal::encrypt_for_storage(&storage, &gw.policy, SystemTime::now(), b"probe")
            .context("The storage key cannot encrypt")?;
        Ok(Ctx {
            gw,
            templates: Arc::new(templates),
            store,
            signer,
            storage,
            outbox_ready: Arc::new(Notify::new()),
        })
    }

    /// The gateway as the signer and From of the mail it composes at `now`.
    pub fn sender(&self, now: SystemTime) -> Sender<'_> {
        Sender {
            address: &self.gw.config.address,
            signer: &self.signer,
            co_signer: None,
            policy: &self.gw.policy,
            now,
        }
    }

    /// The same context with another directory (after `directory import`
    /// or a contact update): the gateway's key, rules and policy are read
    /// again, the templates, store and outbox wake-up are shared.
    pub fn with_directory(&self, directory: crate::directory::Directory) -> Result<Ctx> {
        let gw = Gateway::with_directory(self.gw.config.clone(), directory)?;
        Ok(Ctx {
            gw,
            templates: self.templates.clone(),
            store: self.store.clone(),
            signer: self.signer.clone(),
            storage: self.storage.clone(),
            outbox_ready: self.outbox_ready.clone(),
        })
    }
}

/// A composed mail for one recipient.
pub struct Planned {
    pub purpose: &'static str,
    pub template: String,
    pub party: String,
    pub email: String,
    pub sealed: Sealed,
}

/// A letter of the gateway's own (no attachment): `template` rendered in
/// the recipient's language, signed and encrypted to it.
pub(crate) fn letter(
    ctx: &Ctx,
    sender: &Sender<'_>,
    purpose: &'static str,
    template: &str,
    to: &Party,
    data: &impl serde::Serialize,
) -> Result<Planned> {
    letter_with(ctx, sender, purpose, template, to, data, None)
}

/// [`letter`] with an attachment.
pub(crate) fn letter_with(
    ctx: &Ctx,
    sender: &Sender<'_>,
    purpose: &'static str,
    template: &str,
    to: &Party,
    data: &impl serde::Serialize,
    attachment: Option<crate::outbound::mime::Entity>,
) -> Result<Planned> {
    let text = ctx.templates.render(template, to.language, data)?;
    Ok(planned(
        purpose,
        template,
        to,
        compose::seal(sender, to, &text, attachment)?,
    ))
}

pub(crate) fn planned(
    purpose: &'static str,
    template: &str,
    to: &Party,
    sealed: Sealed,
) -> Planned {
    Planned {
        purpose,
        template: template.to_string(),
        party: to.id.clone(),
        email: to.email.clone(),
        sealed,
    }
}

/// Queues mail the gateway decided to send on its own (circulars, watch
/// reports, alerts) with one audit entry, commits, and wakes the sender.
pub async fn queue_and_commit(
    ctx: &Ctx,
    mut tx: Tx,
    mails: &[Planned],
    event: &str,
    detail: &str,
    now: SystemTime,
) -> Result<()> {
    queue(&mut tx, None, mails, now).await?;
    tx.audit(&Audit {
        at: Some(now),
        event,
        detail,
        ..Audit::default()
    })
    .await?;
    tx.commit().await?;
    if !mails.is_empty() {
        ctx.outbox_ready.notify_one();
    }
    Ok(())
}

/// Puts composed mail in the outbox, with an audit entry for each.
pub async fn queue(
    tx: &mut Tx,
    inbound_id: Option<i64>,
    mails: &[Planned],
    now: SystemTime,
) -> Result<()> {
    for m in mails {
        let (message, fingerprint) = match &m.sealed.message {
            Ok(bytes) => (Some(bytes.as_slice()), m.sealed.fingerprint.as_str()),
            Err(_) => (None, ""),
        };
        let id = tx
            .insert_outbox(&NewOutbox {
                inbound_id,
                purpose: m.purpose,
                template: &m.template,
                recipient_party: &m.party,
                recipient_email: &m.email,
                recipient_fingerprint: fingerprint,
                message_id: &m.sealed.message_id,
                message,
                created_at: now,
            })
            .await?;
        let (event, detail) = match &m.sealed.message {
            Ok(_) => (
                "queued",
                format!("{} ({}) to <{}>", m.purpose, m.template, m.email),
            ),
            Err(no_key) => (
                "held_no_key",
                format!("{} to <{}> held: {}", m.purpose, m.email, no_key.0),
            ),
        };
        tx.audit(&Audit {
            at: Some(now),
            event,
            inbound_id,
            outbox_id: Some(id),
            party: Some(&m.party),
            fingerprint: (!fingerprint.is_empty()).then_some(fingerprint),
            detail: &detail,
        })
        .await?;
    }
    Ok(())
}

impl Ctx {
    /// Decrypts content the gateway stored (encrypted to its own key).
    pub fn decrypt_stored(&self, data: &[u8]) -> Result<Vec<u8>> {
        decrypt_stored(&self.gw, data)
    }
}

/// Decrypts content the gateway stored, with its current key or a previous one.
pub fn decrypt_stored(gw: &Gateway, data: &[u8]) -> Result<Vec<u8>> {
    let v = crate::openpgp::Verifier {
        policy: &gw.policy,
        now: SystemTime::now(),
        max_age: std::time::Duration::ZERO,
        max_future: std::time::Duration::ZERO,
        key: &gw.key,
        directory: &gw.directory,
        max_plaintext: usize::MAX - 1,
    };
    crate::openpgp::decrypt(&v, data)
        .map(|d| d.plaintext)
        .map_err(|r| anyhow::anyhow!("Decrypting stored content: {r}"))
}
