//! TLS client configuration for the mail servers: the usual web PKI roots
//! plus, optionally, one operator-supplied CA (a private PKI, or tests).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

/// A rustls client configuration trusting the web PKI and `extra_ca`.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_certificates(extra_ca)? {
        roots.add(cert).context("Adding the CA certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("Choosing TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (none when no file is given).
pub fn extra_certificates(
    path: Option<&Path>,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let pem =
        std::fs::read(path).with_context(|| format!("Reading the CA file {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("Parsing the CA file {}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}
