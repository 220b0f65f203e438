//! The network's certificates as a Web Key Directory (draft-koch-openpgp-
//! webkey-service, the "advanced" method): for each address,
//! `.well-known/openpgpkey/DOMAIN/hu/HASH` holds the binary certificate
//! (HASH is the z-base-32 SHA-1 of the lower-cased local part) and
//! `.well-known/openpgpkey/DOMAIN/policy` exists; each domain's web server
//! serves that tree as `https://openpgpkey.DOMAIN/`. GnuPG, Thunderbird
//! and Sequoia then find the keys without attachments. The layout and the
//! hash are Sequoia's (sequoia-net), not ours.

use std::path::Path;

use anyhow::{Context, Result};
use sequoia_net::wkd;
use sequoia_openpgp::Cert;

/// One address published, or why not.
#[derive(Debug, Clone)]
pub struct Published {
    /// The party's id, or `gateway`.
    pub who: String,
    pub email: String,
    /// The file written, relative to the directory; or the reason it was not.
    pub outcome: std::result::Result<String, String>,
}

/// Writes each certificate under `dir` for its address, replacing what an
/// earlier export wrote there (a certificate replaced since must not stay
/// beside the current one). A certificate whose valid user IDs do not
/// include its address is not published (a client that looks the address
/// up would refuse it): that is reported, and the others are written. Only
/// public key material is ever written.
pub fn export(dir: &Path, certs: &[(String, String, Cert)]) -> Result<Vec<Published>> {
    let tree = dir.join(".well-known/openpgpkey");
    if tree.exists() {
        std::fs::remove_dir_all(&tree)
            .with_context(|| format!("Removing the earlier export {}", tree.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
    let mut out = Vec::new();
    for (who, email, cert) in certs {
        let public = cert.clone().strip_secret_key_material();
        let outcome = publish(dir, email, &public);
        out.push(Published {
            who: who.clone(),
            email: email.clone(),
            outcome,
        });
    }
    Ok(out)
}

fn publish(dir: &Path, email: &str, cert: &Cert) -> std::result::Result<String, String> {
    let email = &email.to_ascii_lowercase();
    let url = wkd::Url::from(email).map_err(|e| format!("not an address WKD can hold: {e}"))?;
    let file = url
        .to_file_path(wkd::Variant::Advanced)
        .map_err(|e| e.to_string())?;
    let (_, domain) = email.rsplit_once('@').ok_or("no domain")?;
    let policy = sequoia_openpgp::policy::StandardPolicy::new();
    let valid = cert
        .with_policy(&policy, None)
        .map_err(|e| format!("{e}"))?;
    let named = valid.userids().any(|u| {
        u.userid()
            .email()
            .ok()
            .flatten()
            .is_some_and(|a| a.eq_ignore_ascii_case(email))
    });
    if !named {
        return Err(format!(
            "certificate {} has no valid user ID <{email}>: a client looking the address up would refuse it",
            cert.fingerprint()
        ));
    }
    wkd::insert(dir, domain, wkd::Variant::Advanced, cert).map_err(|e| format!("{e:#}"))?;
    Ok(file.display().to_string())
}
