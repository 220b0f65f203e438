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
    Ok(ExitCode::SUCCESS)
}

/// The rows of `keys check`: the directory the store holds (or the file's,
/// before the first start).
pub async fn check(config_path: &Path, now: SystemTime) -> Result<Vec<keys::Row>> {
    let config = Config::load(config_path)?;
    let directory = super::current_directory(&config).await?;
    Ok(keys::check_config(&config, &directory, now))
}
