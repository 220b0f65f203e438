//! The directory of the network's parties: the Secretariat, each State's
//! NFP and, in a national deployment, the competent national services.
//!
//! A party is identified by its certificate's fingerprint, never by a user
//! ID: the directory is the only trust root of the gateway.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use openpgp::parse::Parse;
use openpgp::{Cert, Fingerprint, KeyHandle};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};

use crate::classify::{Language, Topic};
use crate::config::is_state_code;

/// What a party is in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Secretariat,
    Nfp,
    Service,
}

/// A contact person of a party.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Contact {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParty {
    id: String,
    kind: PartyKind,
    name: String,
    email: String,
    cert: PathBuf,
    language: Language,
    state: Option<String>,
    #[serde(default)]
    topics: Vec<Topic>,
    #[serde(default)]
    languages: Vec<Language>,
    address: Option<String>,
    timezone: Option<String>,
    working_hours: Option<String>,
    #[serde(default)]
    organigram: Vec<PathBuf>,
    last_confirmed: Option<String>,
    #[serde(default)]
    contact: Vec<Contact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDirectory {
    #[serde(default)]
    network: BTreeMap<String, String>,
    #[serde(default)]
    party: Vec<RawParty>,
}

/// One party of the network, its certificate parsed.
#[derive(Debug, Clone)]
pub struct Party {
    pub id: String,
    pub kind: PartyKind,
    pub name: String,
    /// Registered address, lower case.
    pub email: String,
    pub cert_path: PathBuf,
    pub cert: Cert,
    /// The language the party is written to in.
    pub language: Language,
    pub state: Option<String>,
    pub topics: Vec<Topic>,
    pub languages: Vec<Language>,
    pub address: Option<String>,
    pub timezone: Option<String>,
    pub working_hours: Option<String>,
    pub organigram: Vec<PathBuf>,
    pub last_confirmed: Option<String>,
    pub contacts: Vec<Contact>,
}

/// The whole directory, indexed.
#[derive(Debug, Clone)]
pub struct Directory {
    pub path: PathBuf,
    pub network: BTreeMap<String, String>,
    parties: Vec<Party>,
    by_id: HashMap<String, usize>,
    /// Every key's fingerprint (primary and subkeys) to the owning party.
    by_key: HashMap<Fingerprint, usize>,
}

impl Directory {
    /// Reads the directory file and every certificate it names.
    pub fn load(path: &Path) -> Result<Directory> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Reading the directory {}", path.display()))?;
        let raw: RawDirectory = toml::from_str(&text)
            .with_context(|| format!("Parsing the directory {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut parties = Vec::with_capacity(raw.party.len());
        for p in raw.party {
            let id = p.id.clone();
            let party = Party::from_raw(p, base)
                .with_context(|| format!("{}: party {id:?}", path.display()))?;
            parties.push(party);
        }
        Directory::new(path.to_path_buf(), raw.network, parties)
    }

    /// Indexes and validates a list of parties.
    pub fn new(
        path: PathBuf,
        network: BTreeMap<String, String>,
        parties: Vec<Party>,
    ) -> Result<Directory> {
        let mut by_id = HashMap::new();
        let mut by_email: HashMap<&str, &str> = HashMap::new();
        let mut by_key = HashMap::new();
        for (i, p) in parties.iter().enumerate() {
            if by_id.insert(p.id.clone(), i).is_some() {
                bail!("{}: party id {:?} appears twice", path.display(), p.id);
            }
            if let Some(other) = by_email.insert(&p.email, &p.id) {
                bail!(
                    "{}: {} and {} share the address {}",
                    path.display(),
                    other,
                    p.id,
                    p.email
                );
            }
            for key in p.cert.keys() {
                if let Some(j) = by_key.insert(key.key().fingerprint(), i) {
                    bail!(
                        "{}: parties {} and {} share the key {}",
                        path.display(),
                        parties[j].id,
                        p.id,
                        key.key().fingerprint()
                    );
                }
            }
        }
        let secretariats = parties
            .iter()
            .filter(|p| p.kind == PartyKind::Secretariat)
            .count();
        if secretariats != 1 {
            bail!(
                "{}: needs exactly one party of kind secretariat, has {secretariats}",
                path.display()
            );
        }
        Ok(Directory {
            path,
            network,
            parties,
            by_id,
            by_key,
        })
    }

    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    pub fn get(&self, id: &str) -> Option<&Party> {
        self.by_id.get(id).map(|&i| &self.parties[i])
    }

    pub fn secretariat(&self) -> &Party {
        // `new` guarantees exactly one.
        self.parties
            .iter()
            .find(|p| p.kind == PartyKind::Secretariat)
            .expect("directory validated to hold one secretariat")
    }

    /// The NFP of a State, by its ISO code (any case).
    pub fn nfp(&self, state: &str) -> Option<&Party> {
        let state = state.to_ascii_uppercase();
        self.parties
            .iter()
            .find(|p| p.kind == PartyKind::Nfp && p.id == state)
    }

    /// The party owning a key (primary key or subkey), by fingerprint.
    pub fn party_of_key(&self, fpr: &Fingerprint) -> Option<&Party> {
        self.by_key.get(fpr).map(|&i| &self.parties[i])
    }

    /// The certificates that hold any of these keys: what a verifier needs.
    pub fn certs_for(&self, handles: &[KeyHandle]) -> Vec<Cert> {
        let mut idx: Vec<usize> = Vec::new();
        for h in handles {
            for (fpr, &i) in &self.by_key {
                if h.aliases(KeyHandle::from(fpr)) && !idx.contains(&i) {
                    idx.push(i);
                }
            }
        }
        idx.into_iter()
            .map(|i| self.parties[i].cert.clone())
            .collect()
    }
}

impl Party {
    fn from_raw(p: RawParty, base: &Path) -> Result<Party> {
        let email = p.email.trim().to_ascii_lowercase();
        if !crate::mime::is_plain_address(&email) {
            bail!("`email` is not a mailbox address: {:?}", p.email);
        }
        let state = p.state.map(|s| s.to_ascii_uppercase());
        match p.kind {
            PartyKind::Secretariat if p.id != "secretariat" => {
                bail!("the secretariat's id must be \"secretariat\"")
            }
            PartyKind::Nfp if !(is_state_code(&p.id) && p.id == p.id.to_ascii_uppercase()) => {
                bail!("an NFP's id is its State's ISO 3166 alpha-2 code in upper case")
            }
            PartyKind::Nfp if state.as_deref() != Some(p.id.as_str()) => {
                bail!("an NFP's `state` must equal its id")
            }
            PartyKind::Service if state.as_deref().is_none_or(|s| !is_state_code(s)) => {
                bail!("a national service needs `state` (ISO 3166 alpha-2)")
            }
            PartyKind::Service if p.topics.is_empty() => {
                bail!("a national service needs `topics`")
            }
            _ => {}
        }
        let cert_path = base.join(&p.cert);
        let cert = Cert::from_file(&cert_path)
            .with_context(|| format!("Reading the certificate {}", cert_path.display()))?;
        if cert.is_tsk() {
            bail!(
                "{} holds secret key material: a directory lists public certificates only",
                cert_path.display()
            );
        }
        let mut languages = p.languages;
        if !languages.contains(&p.language) {
            languages.insert(0, p.language);
        }
        Ok(Party {
            id: p.id,
            kind: p.kind,
            name: p.name,
            email,
            cert_path,
            cert,
            language: p.language,
            state,
            topics: p.topics,
            languages,
            address: p.address,
            timezone: p.timezone,
            working_hours: p.working_hours,
            organigram: p.organigram.iter().map(|o| base.join(o)).collect(),
            last_confirmed: p.last_confirmed,
            contacts: p.contact,
        })
    }
}
