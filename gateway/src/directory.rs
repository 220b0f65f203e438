//! The directory of the network's parties: the Secretariat, each State's
//! NFP and, in a national deployment, the competent national services.
//!
//! A party is identified by its certificate's fingerprint, never by a user
//! ID: the directory is the only trust root of the gateway.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use openpgp::{Cert, Fingerprint, KeyHandle};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};

use crate::config::is_state_code;
use crate::vocab::{Language, Topic};

pub mod entry;
pub mod export;
pub mod sync;
pub mod update;
pub mod wkd;

pub use entry::{Change, Document, Entry};

/// The largest organigram document the directory keeps.
pub const MAX_DOCUMENT_SIZE: u64 = 10 << 20;

/// What a party is in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Secretariat,
    Nfp,
    Service,
}

/// A contact person of a party.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
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
    #[serde(default)]
    unprotected_parts: UnprotectedParts,
}

/// What the gateway does with parts added outside the encryption of a
/// party's genuine message (an organisation's disclaimer or footer, added
/// by its mail server in transit). An operator's setting, per party: never
/// changed by a contact update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnprotectedParts {
    /// The message is quarantined as `structure` (EFAIL, MIME wrapping).
    #[default]
    Refuse,
    /// They are discarded unread, their types and sizes audited, and the
    /// forward says how many bytes were discarded.
    Discard,
}

impl UnprotectedParts {
    pub fn is_refuse(&self) -> bool {
        *self == UnprotectedParts::Refuse
    }
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
    /// The current certificate: mail to the party is encrypted to it.
    pub cert: Cert,
    /// Earlier certificates within their overlap after a rotation: mail
    /// signed with them still verifies, nothing is encrypted to them.
    pub old_certs: Vec<Cert>,
    /// The language the party is written to in.
    pub language: Language,
    pub state: Option<String>,
    pub topics: Vec<Topic>,
    pub languages: Vec<Language>,
    pub address: Option<String>,
    pub timezone: Option<String>,
    pub working_hours: Option<String>,
    pub organigram: Vec<Document>,
    pub last_confirmed: Option<String>,
    pub contacts: Vec<Contact>,
    pub unprotected_parts: UnprotectedParts,
}

/// The whole directory, indexed.
#[derive(Debug, Clone)]
pub struct Directory {
    pub path: PathBuf,
    pub network: BTreeMap<String, String>,
    parties: Vec<Party>,
    /// Organigram documents read from the directory file's folder (empty
    /// for a directory read from the store, which keeps them itself).
    pub documents: HashMap<String, Vec<u8>>,
    by_id: HashMap<String, usize>,
    /// Every key's fingerprint (primary and subkeys) to the owning party.
    by_key: HashMap<Fingerprint, usize>,
}

impl Directory {
    /// Reads the directory file and every certificate it names.
    pub fn load(path: &Path) -> Result<Directory> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Reading the directory {}", path.display()))?;
        Directory::parse(&text, path)
    }

    /// Parses directory text as if read from `path`; the certificates and
    /// organigrams it names are read from `path`'s folder.
    pub fn parse(text: &str, path: &Path) -> Result<Directory> {
        let raw: RawDirectory = toml::from_str(text)
            .with_context(|| format!("Parsing the directory {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut parties = Vec::with_capacity(raw.party.len());
        let mut documents = HashMap::new();
        for p in raw.party {
            let id = p.id.clone();
            let party = Party::from_raw(p, base, &mut documents)
                .with_context(|| format!("{}: party {id:?}", path.display()))?;
            parties.push(party);
        }
        let mut directory = Directory::new(path.to_path_buf(), raw.network, parties)?;
        directory.documents = documents;
        Ok(directory)
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
            for key in std::iter::once(&p.cert)
                .chain(&p.old_certs)
                .flat_map(|c| c.keys())
            {
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
            documents: HashMap::new(),
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
        // A party's current certificate and those still in their overlap
        // after a rotation, each only if it holds one of the keys.
        idx.into_iter()
            .flat_map(|i| std::iter::once(&self.parties[i].cert).chain(&self.parties[i].old_certs))
            .filter(|c| {
                c.keys()
                    .key_handles(handles.iter().cloned())
                    .next()
                    .is_some()
            })
            .cloned()
            .collect()
    }
}

/// A certificate is a few KiB; a file this large is a mistake, not a key.
const MAX_CERTIFICATE_SIZE: u64 = 1 << 20;

/// Reads a regular file of at most `limit` bytes (a directory file that names
/// `/dev/zero` or a huge file gets an error, not a hang).
fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    // stat before open: opening a FIFO would block.
    let meta = std::fs::metadata(path).with_context(|| format!("Reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let file = std::fs::File::open(path).with_context(|| format!("Reading {}", path.display()))?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("Reading {}", path.display()))?;
    if data.len() as u64 > limit {
        bail!("{} is larger than {limit} bytes", path.display());
    }
    Ok(data)
}

impl Party {
    /// A party from the directory file: its certificate and organigram files
    /// are read from the file's folder (documents go to `documents`).
    fn from_raw(
        p: RawParty,
        base: &Path,
        documents: &mut HashMap<String, Vec<u8>>,
    ) -> Result<Party> {
        let cert_path = base.join(&p.cert);
        let cert =
            crate::openpgp::whole::certificate(&read_capped(&cert_path, MAX_CERTIFICATE_SIZE)?)
                .with_context(|| format!("Reading the certificate {}", cert_path.display()))?;
        let mut organigram = Vec::new();
        for file in &p.organigram {
            let path = base.join(file);
            let data = read_capped(&path, MAX_DOCUMENT_SIZE)?;
            let size = data.len() as u64;
            let sha256 = crate::store::sha256_hex(&data);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            organigram.push(Document {
                content_type: content_type_of(&name).into(),
                name,
                size,
                sha256: sha256.clone(),
            });
            documents.insert(sha256, data);
        }
        let entry = Entry {
            id: p.id,
            kind: p.kind,
            name: p.name,
            email: p.email,
            language: p.language,
            state: p.state,
            topics: p.topics,
            languages: p.languages,
            address: p.address,
            timezone: p.timezone,
            working_hours: p.working_hours,
            last_confirmed: p.last_confirmed,
            contacts: p.contact,
            organigram,
            cert: cert.fingerprint().to_hex(),
            unprotected_parts: p.unprotected_parts,
        };
        Party::from_entry(entry, cert, Vec::new())
    }

    /// A party from its entry and certificates, validated.
    pub fn from_entry(e: Entry, cert: Cert, old_certs: Vec<Cert>) -> Result<Party> {
        let email = e.email.trim().to_ascii_lowercase();
        if !crate::address::is_plain_address(&email) {
            bail!("`email` is not a mailbox address: {:?}", e.email);
        }
        let state = e.state.map(|s| s.to_ascii_uppercase());
        match e.kind {
            PartyKind::Secretariat if e.id != "secretariat" => {
                bail!("the secretariat's id must be \"secretariat\"")
            }
            PartyKind::Nfp if !(is_state_code(&e.id) && e.id == e.id.to_ascii_uppercase()) => {
                bail!("an NFP's id is its State's ISO 3166 alpha-2 code in upper case")
            }
            PartyKind::Nfp if state.as_deref() != Some(e.id.as_str()) => {
                bail!("an NFP's `state` must equal its id")
            }
            PartyKind::Service if state.as_deref().is_none_or(|s| !is_state_code(s)) => {
                bail!("a national service needs `state` (ISO 3166 alpha-2)")
            }
            PartyKind::Service if e.topics.is_empty() => {
                bail!("a national service needs `topics`")
            }
            _ => {}
        }
        for c in std::iter::once(&cert).chain(&old_certs) {
            if c.is_tsk() {
                bail!("certificate {} holds secret key material: a directory lists public certificates only", c.fingerprint());
            }
        }
        if cert.fingerprint().to_hex() != e.cert {
            bail!(
                "the entry names certificate {}, not {}",
                e.cert,
                cert.fingerprint()
            );
        }
        let mut languages = e.languages;
        if !languages.contains(&e.language) {
            languages.insert(0, e.language);
        }
        Ok(Party {
            id: e.id,
            kind: e.kind,
            name: e.name,
            email,
            cert,
            old_certs,
            language: e.language,
            state,
            topics: e.topics,
            languages,
            address: e.address,
            timezone: e.timezone,
            working_hours: e.working_hours,
            organigram: e.organigram,
            last_confirmed: e.last_confirmed,
            contacts: e.contacts,
            unprotected_parts: e.unprotected_parts,
        })
    }

    /// The party as an entry (what the store keeps and exports show).
    pub fn entry(&self) -> Entry {
        Entry {
            id: self.id.clone(),
            kind: self.kind,
            name: self.name.clone(),
            email: self.email.clone(),
            language: self.language,
            state: self.state.clone(),
            topics: self.topics.clone(),
            languages: self.languages.clone(),
            address: self.address.clone(),
            timezone: self.timezone.clone(),
            working_hours: self.working_hours.clone(),
            last_confirmed: self.last_confirmed.clone(),
            contacts: self.contacts.clone(),
            organigram: self.organigram.clone(),
            cert: self.cert.fingerprint().to_hex(),
            unprotected_parts: self.unprotected_parts,
        }
    }
}

/// A content type from a file name, for organigram documents.
pub fn content_type_of(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("odt") => "application/vnd.oasis.opendocument.text",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}
