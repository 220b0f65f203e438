//! The directory between its file and the store: `directory import` writes
//! the file's parties into the store (showing what changes first), and the
//! gateway reads its directory from the store.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::serialize::SerializeInto;
use sequoia_openpgp::Cert;

use super::{Change, Directory, Entry, Party};
use crate::store::{Audit, Store};

/// What an import changes, party by party.
#[derive(Debug, Default)]
pub struct ImportPlan {
    pub added: Vec<(String, Vec<Change>)>,
    pub changed: Vec<(String, Vec<Change>)>,
    pub removed: Vec<String>,
    /// Entries whose current version came by mail (a contact update) that
    /// the file would change back: (party, who made the current version).
    pub overrides: Vec<(String, String)>,
}

impl ImportPlan {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// A readable account, one line per changed field.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (id, changes) in &self.added {
            out.push_str(&format!("+ {id} (new, {} fields)\n", changes.len()));
        }
        for (id, changes) in &self.changed {
            out.push_str(&format!("~ {id}\n"));
            for c in changes {
                out.push_str(&format!(
                    "    {}: {:?} -> {:?}\n",
                    c.field, c.before, c.after
                ));
            }
        }
        for id in &self.removed {
            out.push_str(&format!("- {id} (removed)\n"));
        }
        for (id, actor) in &self.overrides {
            out.push_str(&format!(
                "! {id}: the store's entry was changed by \"{actor}\"; this file would undo that\n"
            ));
        }
        if out.is_empty() {
            out.push_str("no change\n");
        }
        out
    }
}

/// Writes the parties of a directory file into the store; with `dry_run`,
/// only says what would change. An entry last changed by a contact update
/// is not changed back by a file that predates it, unless `force`. Idempotent: importing the same file twice
/// changes nothing the second time. A party whose certificate changed keeps
/// its earlier one for `overlap` (mail in flight), then it is retired.
pub async fn import(
    store: &Store,
    file: &Directory,
    actor: &str,
    dry_run: bool,
    force: bool,
    overlap: Duration,
) -> Result<ImportPlan> {
    let current: HashMap<String, Entry> = store
        .entries()
        .await?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let mut plan = ImportPlan::default();
    for party in file.parties() {
        let entry = party.entry();
        match current.get(&party.id) {
            None => plan
                .added
                .push((party.id.clone(), entry.changes_from(None))),
            Some(before) if *before != entry => plan
                .changed
                .push((party.id.clone(), entry.changes_from(Some(before)))),
            Some(_) => {}
        }
    }
    plan.removed = current
        .keys()
        .filter(|id| file.get(id).is_none())
        .cloned()
        .collect();
    plan.removed.sort();
    let touched: Vec<&String> = plan
        .changed
        .iter()
        .map(|(id, _)| id)
        .chain(&plan.removed)
        .collect();
    plan.overrides = store
        .latest_actors()
        .await?
        .into_iter()
        .filter(|(id, actor)| actor.starts_with("update by") && touched.contains(&id))
        .collect();
    plan.overrides.sort();
    if dry_run || plan.is_empty() {
        return Ok(plan);
    }
    if !plan.overrides.is_empty() && !force {
        bail!(
            "{}the file would undo contact updates applied by mail (marked !): bring them into the file \
             (`directory show ID` shows them), or run again with --force",
            plan.describe()
        );
    }
    let now = SystemTime::now();
    let mut tx = store.begin().await?;
    for id in plan.added.iter().chain(&plan.changed).map(|(id, _)| id) {
        let party = file.get(id).context("a planned party is in the file")?;
        let entry = party.entry();
        tx.put_entry(&entry, actor, None, now).await?;
        let armored = party
            .cert
            .armored()
            .to_vec()
            .context("Serialising a certificate")?;
        tx.put_cert(id, &entry.cert, &armored, now).await?;
        tx.retire_other_certs(id, &entry.cert, now + overlap)
            .await?;
        for doc in &entry.organigram {
            let data = file
                .documents
                .get(&doc.sha256)
                .context("an organigram document was read")?;
            tx.put_document(doc, data, now).await?;
        }
    }
    for id in &plan.removed {
        tx.remove_entry(id, actor, now).await?;
        tx.retire_other_certs(id, "", now).await?;
    }
    let network: Vec<(String, String)> = file
        .network
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tx.put_network_info(&network).await?;
    let detail = format!(
        "{actor}: {} added, {} changed, {} removed",
        plan.added.len(),
        plan.changed.len(),
        plan.removed.len()
    );
    tx.audit(&Audit {
        at: Some(now),
        event: "directory_import",
        detail: &detail,
        ..Audit::default()
    })
    .await?;
    tx.commit().await?;
    Ok(plan)
}

/// The directory as the store holds it at `now`; None while it holds none.
pub async fn from_store(store: &Store, now: SystemTime) -> Result<Option<Directory>> {
    let entries = store.entries().await?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut certs: HashMap<String, Vec<(String, Cert)>> = HashMap::new();
    for c in store.live_certs(now).await? {
        let cert = Cert::from_bytes(&c.cert)
            .with_context(|| format!("Reading the stored certificate {}", c.fingerprint))?;
        certs
            .entry(c.party_id)
            .or_default()
            .push((c.fingerprint, cert));
    }
    let mut parties = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut mine = certs.remove(&entry.id).unwrap_or_default();
        let Some(pos) = mine.iter().position(|(f, _)| *f == entry.cert) else {
            bail!(
                "the store has no certificate {} for {}",
                entry.cert,
                entry.id
            );
        };
        let (_, cert) = mine.remove(pos);
        let old = mine.into_iter().map(|(_, c)| c).collect();
        let id = entry.id.clone();
        parties.push(
            Party::from_entry(entry, cert, old)
                .with_context(|| format!("The stored entry of {id}"))?,
        );
    }
    let network: BTreeMap<String, String> = store.network_info().await?.into_iter().collect();
    Directory::new(PathBuf::from("(store)"), network, parties).map(Some)
}

/// The directory the gateway works with: the store's, seeded from the
/// directory file the first time (when the store holds none yet).
pub async fn current(
    store: &Store,
    file: &std::path::Path,
    overlap: Duration,
) -> Result<Directory> {
    let now = SystemTime::now();
    if let Some(d) = from_store(store, now).await? {
        return Ok(d);
    }
    let seed = Directory::load(file)?;
    let plan = import(
        store,
        &seed,
        &format!("seed from {}", file.display()),
        false,
        false,
        overlap,
    )
    .await?;
    // The first directory is not news: no circular announces it.
    store.mark_all_announced().await?;
    tracing::info!(parties = plan.added.len(), file = %file.display(), "directory seeded from its file");
    from_store(store, now)
        .await?
        .context("The seeded directory is empty")
}
