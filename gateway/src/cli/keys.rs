//! `nfp-gateway keys`: the gateway's own key and every certificate it
//! depends on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Subcommand;

use crate::config::Config;
use crate::keys::{self, Level};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make the gateway's key with Sequoia (Curve25519, v4, readable by
    /// GnuPG 2.2 and every peer of the network; no AEAD feature), with its
    /// public certificate and a revocation certificate beside it; prints the
    /// fingerprint. Never writes over an existing file.
    Generate {
        /// The gateway's address (default: `address` of the configuration).
        #[arg(long)]
        address: Option<String>,
        /// The name in the key's user ID.
        #[arg(long, default_value = "NFP network gateway")]
        name: String,
        /// How long the key is valid (e.g. `2y`, `18months`).
        #[arg(long, default_value = "2y", value_parser = humantime::parse_duration)]
        validity: Duration,
        /// The secret key's file (default: `secret-key` of the configuration).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Protect the secret key with the passphrase on this file's first
        /// line (then name the file, or a systemd credential holding it, as
        /// `secret-key-passphrase-file`).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Check the gateway's key (signs and decrypts now and through
    /// `key-expiry-warning`, invites no mode it cannot read) and every
    /// party's certificate (read whole, encrypts and signs now): a table,
    /// then one line per finding. Exit status 1 on any error.
    Check {
        /// The clock (RFC 3339), to see what a later day will find.
        #[arg(long, value_parser = super::parse_time)]
        now: Option<SystemTime>,
    },
    /// Rotate the gateway's key to NEW (a key made by `keys generate`: its
    /// path, or `credential:NAME`): checked first; then a circular to every
    /// NFP and the Secretariat, in each one's language, signed by the old
    /// and the new key, the new certificate attached; then gateway.toml
    /// rewritten (comments kept): NEW as `secret-key`, the old key added to
    /// `previous-secret-keys`, where it still decrypts. Restart the daemon
    /// afterwards; `keys reencrypt` once the overlap is over.
    Rotate {
        /// The new secret key's file (or `credential:NAME`).
        new: String,
        /// Show who would receive the announcement and the new
        /// configuration; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// After a rotation: re-encrypt to the current key every stored message
    /// that only a previous key (`previous-secret-keys`) can read, in
    /// batches, each one transaction, audited; an interrupted run is taken
    /// up by the next. When it reports none left, the previous keys can be
    /// removed from the configuration.
    Reencrypt {
        /// Messages per transaction.
        #[arg(long, default_value_t = 100)]
        batch: i64,
        /// Only count what needs it.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(config_path: &Path, command: KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Generate {
            address,
            name,
            validity,
            out,
            passphrase_file,
        } => {
            let passphrase = match &passphrase_file {
                None => None,
                Some(f) => {
                    let line = crate::config::first_line(f, "the passphrase file")?;
                    if line.is_empty() {
                        anyhow::bail!("{}: the passphrase is empty", f.display());
                    }
                    Some(line.into())
                }
            };
            let (address, out) = match (address, out) {
                (Some(a), Some(o)) => (a, o),
                (a, o) => {
                    let config = Config::load(config_path)?;
                    (a.unwrap_or(config.address), o.unwrap_or(config.secret_key))
                }
            };
            let g = keys::generate(&address, &name, validity, &out, passphrase)?;
            println!("fingerprint  {}", g.fingerprint);
            println!(
                "secret key   {} (mode 0600: the gateway reads it)",
                g.secret.display()
            );
            println!(
                "certificate  {} (publish it: every party encrypts to it)",
                g.public.display()
            );
            println!(
                "revocation   {} (move it offline now: whoever holds it can revoke the key)",
                g.revocation.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate { new, dry_run } => {
            super::runtime()?.block_on(rotate(config_path, &new, dry_run))
        }
        KeysCommand::Reencrypt { batch, dry_run } => {
            super::runtime()?.block_on(reencrypt(config_path, batch, dry_run))
        }
        KeysCommand::Check { now } => {
            let now = now.unwrap_or_else(SystemTime::now);
            let rows = super::runtime()?.block_on(check(config_path, now))?;
            print!("{}", keys::table(&rows));
            Ok(match rows.iter().any(|r| r.level() == Level::Error) {
                true => ExitCode::from(1),
                false => ExitCode::SUCCESS,
            })
        }
    }
}

/// `keys rotate NEW`.
async fn rotate(config_path: &Path, new: &str, dry_run: bool) -> Result<ExitCode> {
    use anyhow::Context;
    let now = SystemTime::now();
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("Reading {}", config_path.display()))?;
    let rotated = crate::rotation::rotated_config(&text, new)?;
    // The new configuration, read as `run` will read it, from a file beside
    // the old one (relative paths resolve alike).
    let name = config_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pending = config_path.with_file_name(format!(".{name}.rotating"));
    std::fs::write(&pending, &rotated).with_context(|| format!("Writing {}", pending.display()))?;
    let outcome = announce(config_path, &pending, dry_run, now).await;
    if dry_run || outcome.is_err() {
        let _ = std::fs::remove_file(&pending);
    }
    let (old, new_fpr, id, previews) = outcome?;
    for p in &previews {
        println!("{}", p.line());
    }
    println!("the gateway's key: {old} -> {new_fpr}");
    match id {
        None => {
            println!("(dry run: nothing queued, the configuration unchanged); it would read:\n");
            print!("{rotated}");
        }
        Some(id) => {
            if let Ok(meta) = std::fs::metadata(config_path) {
                let _ = std::fs::set_permissions(&pending, meta.permissions());
            }
            std::fs::rename(&pending, config_path)
                .with_context(|| format!("Replacing {}", config_path.display()))?;
            println!("circular {id} queued for {} recipients", previews.len());
            println!(
                "{} now names {new_fpr} as `secret-key` and {old} among `previous-secret-keys`: \
                 restart the daemon to sign with the new key",
                config_path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the new key and queues (or previews) the announcement; returns
/// the old and new fingerprints, the circular's id and who gets it.
async fn announce(
    config_path: &Path,
    pending: &Path,
    dry_run: bool,
    now: SystemTime,
) -> Result<(String, String, Option<i64>, Vec<crate::circular::Preview>)> {
    let (old_gw, store) = crate::check::Gateway::load_with_store(config_path).await?;
    let result = async {
        let new_config = Config::load(pending)?;
        let new_gw = crate::check::Gateway::with_directory(new_config, old_gw.directory.clone())?;
        let row = keys::check_gateway(
            &new_gw.key,
            &new_gw.policy,
            now,
            new_gw.config.key_expiry_warning,
        );
        if let Some((_, e)) = row.findings.iter().find(|(l, _)| *l == Level::Error) {
            anyhow::bail!("the new key {}: {e}", row.fingerprint);
        }
        let co_signer =
            crate::openpgp::seal::signing_keypair(&old_gw.key.cert, &old_gw.policy, now)?;
        let (file, attachment) = crate::rotation::certificate_attachment(&new_gw.key.cert)?;
        let old = old_gw.key.cert.fingerprint().to_hex();
        let new = row.fingerprint.clone();
        let data = serde_json::json!({
            "old_fingerprint": old,
            "new_fingerprint": new,
            "new_expires_at": row.expires.map(crate::rfc3339),
            "certificate_file": file,
        });
        let ctx = std::sync::Arc::new(crate::post::Ctx::new(new_gw, store.clone()).await?);
        let extras = crate::circular::Extras {
            kind: Some("key_rotation"),
            co_signer: Some(co_signer),
            attachment: Some(attachment),
        };
        let (id, previews) =
            crate::circular::send_as(&ctx, "gateway_key_rotation", data, extras, dry_run, now)
                .await?;
        Ok((old, new, id, previews))
    }
    .await;
    store.close().await;
    result
}

/// `keys reencrypt`.
async fn reencrypt(config_path: &Path, batch: i64, dry_run: bool) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = crate::store::Store::open(&config.database).await?;
    let directory = super::current_directory(&config).await?;
    let gw = crate::check::Gateway::with_directory(config, directory)?;
    let outcome = crate::rotation::reencrypt(&store, &gw, batch, dry_run, SystemTime::now()).await;
    store.close().await;
    let o = outcome?;
    println!("stored messages read: {}", o.examined);
    println!("encrypted to a previous key only: {}", o.old);
    match dry_run {
        true => println!("(dry run: nothing re-encrypted)"),
        false => println!(
            "re-encrypted to {}: {}",
            gw.key.cert.fingerprint().to_hex(),
            o.reencrypted
        ),
    }
    if o.unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "no configured key decrypts: {} (ids {}): they stay as they are; add the key they \
         were encrypted to under `previous-secret-keys` and run again",
        o.unreadable.len(),
        crate::rotation::ids(&o.unreadable)
    );
    Ok(ExitCode::FAILURE)
}

/// The rows of `keys check`: the directory the store holds (or the file's,
/// before the first start).
pub async fn check(config_path: &Path, now: SystemTime) -> Result<Vec<keys::Row>> {
    let config = Config::load(config_path)?;
    let directory = super::current_directory(&config).await?;
    Ok(keys::check_config(&config, &directory, now))
}
