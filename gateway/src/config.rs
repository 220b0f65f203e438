//! `gateway.toml`: the one configuration file.
//!
//! Every key is kebab-case; unknown keys are errors that name the key and the
//! file. Relative paths resolve against the folder of the file that names
//! them, so a configuration can be moved as a whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where the gateway runs: at the Secretariat, or at one State's NFP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Secretariat,
    National,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    role: Role,
    state: Option<String>,
    address: String,
    secret_key: PathBuf,
    directory: PathBuf,
    database: Option<String>,
    classify_rules: Option<PathBuf>,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    limits: Limits,
}

/// The time rules of the security policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Policy {
    /// How old a signature may be, e.g. "7d".
    #[serde(with = "humantime_serde")]
    pub signature_max_age: Duration,
    /// How far in the future a signature may be dated (clock skew), e.g. "30m".
    #[serde(with = "humantime_serde")]
    pub signature_max_future: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            signature_max_age: Duration::from_secs(7 * 24 * 3600),
            signature_max_future: Duration::from_secs(30 * 60),
        }
    }
}

/// Resource bounds on one inbound message. Exceeding any is `limits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Limits {
    /// Bytes of the raw message as received.
    pub max_message_size: usize,
    /// Bytes of the decrypted content (after decompression).
    pub max_decrypted_size: usize,
    /// Depth of MIME nesting, outer or inner.
    pub max_mime_depth: usize,
    /// Number of MIME parts, outer or inner.
    pub max_mime_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 32 << 20,
            max_decrypted_size: 64 << 20,
            max_mime_depth: 20,
            max_mime_parts: 500,
        }
    }
}

/// The validated configuration, with every path made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub role: Role,
    /// The State of a national deployment (ISO 3166 alpha-2, upper case).
    pub state: Option<String>,
    /// The gateway's own mailbox address, lower case.
    pub address: String,
    pub secret_key: PathBuf,
    pub directory: PathBuf,
    pub database: String,
    pub classify_rules: Option<PathBuf>,
    pub policy: Policy,
    pub limits: Limits,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Reading the configuration {}", path.display()))?;
        Config::parse(&text, path)
    }

    /// Parses configuration text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .with_context(|| format!("Parsing the configuration {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let at = |p: &Path| base.join(p);

        let state = match (&raw.role, raw.state) {
            (Role::National, None) => {
                bail!(
                    "{}: role = \"national\" needs `state` (ISO 3166 alpha-2)",
                    path.display()
                )
            }
            (_, Some(s)) if !is_state_code(&s) => {
                bail!(
                    "{}: `state` must be an ISO 3166 alpha-2 code, not {s:?}",
                    path.display()
                )
            }
            (_, s) => s.map(|s| s.to_ascii_uppercase()),
        };
        if !crate::mime::is_plain_address(&raw.address) {
            bail!(
                "{}: `address` is not a mailbox address: {:?}",
                path.display(),
                raw.address
            );
        }
        let database = match raw.database {
            None => format!("sqlite://{}", at(Path::new("nfp-gateway.db")).display()),
            Some(url) => resolve_sqlite_url(&url, base),
        };
        Ok(Config {
            path: path.to_path_buf(),
            role: raw.role,
            state,
            address: raw.address.to_ascii_lowercase(),
            secret_key: at(&raw.secret_key),
            directory: at(&raw.directory),
            database,
            classify_rules: raw.classify_rules.as_deref().map(at),
            policy: raw.policy,
            limits: raw.limits,
        })
    }
}

/// Two ASCII letters.
pub fn is_state_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A relative SQLite path in a URL resolves against the configuration's folder.
fn resolve_sqlite_url(url: &str, base: &Path) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.starts_with(':') => {
            format!("sqlite://{}", base.join(rest).display())
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
role = "secretariat"
address = "Gateway@Example.org"
secret-key = "keys/gw.asc"
directory = "directory.toml"
"#;

    #[test]
    fn paths_resolve_against_the_config_folder() {
        let c = Config::parse(MINIMAL, Path::new("/etc/nfp/gateway.toml")).unwrap();
        assert_eq!(c.secret_key, Path::new("/etc/nfp/keys/gw.asc"));
        assert_eq!(c.directory, Path::new("/etc/nfp/directory.toml"));
        assert_eq!(c.database, "sqlite:///etc/nfp/nfp-gateway.db");
        assert_eq!(c.address, "gateway@example.org");
        assert_eq!(c.policy.signature_max_age, Duration::from_secs(604800));
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let text = format!("{MINIMAL}\nsecret-keys = \"x\"\n");
        let err = Config::parse(&text, Path::new("/etc/nfp/gateway.toml")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("secret-keys"), "{msg}");
        assert!(msg.contains("/etc/nfp/gateway.toml"), "{msg}");
    }

    #[test]
    fn unknown_keys_in_sections_are_errors_too() {
        let text = format!("{MINIMAL}\n[limits]\nmax-size = 3\n");
        let msg = format!(
            "{:#}",
            Config::parse(&text, Path::new("g.toml")).unwrap_err()
        );
        assert!(msg.contains("max-size"), "{msg}");
    }

    #[test]
    fn national_role_needs_a_state() {
        let text = MINIMAL.replace("secretariat", "national");
        assert!(Config::parse(&text, Path::new("g.toml")).is_err());
        let text = format!("{text}state = \"at\"\n");
        let c = Config::parse(&text, Path::new("g.toml")).unwrap();
        assert_eq!(c.state.as_deref(), Some("AT"));
    }

    #[test]
    fn durations_are_human_readable() {
        let text = format!(
            "{MINIMAL}\n[policy]\nsignature-max-age = \"2d\"\nsignature-max-future = \"5m\"\n"
        );
        let c = Config::parse(&text, Path::new("g.toml")).unwrap();
        assert_eq!(c.policy.signature_max_age, Duration::from_secs(2 * 86400));
        assert_eq!(c.policy.signature_max_future, Duration::from_secs(300));
    }
}
