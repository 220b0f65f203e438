//! `nfp-gateway directory`: the directory imported into the store, shown
//! as it is or was, and exported (json, csv, vCard, html, a Web Key
//! Directory).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use clap::Subcommand;

use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Write a directory file's parties into the store (idempotent).
    Import {
        /// The directory file; the configuration's `directory` when absent.
        file: Option<PathBuf>,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
        /// Also change back entries that contact updates changed since.
        #[arg(long)]
        force: bool,
    },
    /// The directory, or one party's entry and its history.
    Show {
        /// A party's id (FR, secretariat); the whole directory when absent.
        id: Option<String>,
        /// As it was at this time (RFC 3339).
        #[arg(long, value_parser = super::parse_time)]
        at: Option<SystemTime>,
    },
    /// The whole directory as json, csv, vcard (one card per contact person) or html; or, with
    /// `--format wkd DIR`, every party's and the gateway's current certificate as a Web Key
    /// Directory under DIR (each domain's web server serves its part as https://openpgpkey.DOMAIN/).
    Export {
        /// json, csv, vcard, html or wkd.
        #[arg(long, value_parser = ["json", "csv", "vcard", "html", "wkd"])]
        format: String,
        /// As it was at this time (RFC 3339); not for wkd, which publishes the current certificates.
        #[arg(long, value_parser = super::parse_time)]
        at: Option<SystemTime>,
        /// Where the Web Key Directory is written (wkd only; an earlier export there is replaced).
        dir: Option<PathBuf>,
    },
}

pub async fn run(config_path: &Path, command: DirectoryCommand) -> Result<ExitCode> {
    use crate::directory::{export, sync, Directory};
    if let DirectoryCommand::Export { format, at, dir } = &command {
        match (format.as_str(), dir, at) {
            ("wkd", None, _) => anyhow::bail!("--format wkd writes a directory: give its path"),
            ("wkd", _, Some(_)) => anyhow::bail!(
                "--format wkd publishes the current certificates: --at does not apply"
            ),
            ("wkd", Some(dir), None) => return export_wkd(config_path, dir).await,
            (_, Some(_), _) => {
                anyhow::bail!("only --format wkd writes a directory; the other formats print")
            }
            _ => {}
        }
    }
    let config = crate::config::Config::load(config_path)?;
    let store = Store::open(&config.database).await?;
    let result = async {
        match command {
            DirectoryCommand::Import {
                file,
                dry_run,
                force,
            } => {
                let path = file.unwrap_or_else(|| config.directory.clone());
                let parsed = Directory::load(&path)?;
                let actor = format!("import {}", path.display());
                let plan = sync::import(
                    &store,
                    &parsed,
                    &actor,
                    dry_run,
                    force,
                    config.certificate_overlap,
                )
                .await?;
                print!("{}", plan.describe());
                if dry_run && !plan.is_empty() {
                    println!("(dry run: nothing written)");
                }
            }
            DirectoryCommand::Show {
                id: Some(id),
                at: None,
            } => {
                let history = store.entry_history(&id).await?;
                let Some((_, _, _, _, latest)) = history.last() else {
                    if sync::from_store(&store, SystemTime::now()).await?.is_none() {
                        anyhow::bail!(
                            "the store holds no directory yet: `nfp-gateway directory import` \
                             seeds it from {} (the daemon does at its first start)",
                            config.directory.display()
                        )
                    }
                    anyhow::bail!("no party {id} in the directory")
                };
                println!("{}", serde_json::to_string_pretty(latest)?);
                println!("history:");
                let mut previous: Option<&crate::directory::Entry> = None;
                for (version, at, actor, removed, entry) in &history {
                    let what = if *removed {
                        "removed".to_string()
                    } else {
                        let fields: Vec<String> = entry
                            .changes_from(previous)
                            .into_iter()
                            .map(|c| c.field)
                            .collect();
                        fields.join(", ")
                    };
                    println!("  v{version} {at} {actor}: {what}");
                    previous = Some(entry);
                }
            }
            DirectoryCommand::Show { id, at } => {
                let entries = match at {
                    Some(t) => store.entries_at(t).await?,
                    None => store.entries().await?,
                };
                for e in export::ordered(entries)
                    .iter()
                    .filter(|e| id.as_ref().is_none_or(|i| *i == e.id))
                {
                    println!(
                        "{:<14} {:<11} {:<3} {:<40} <{}>",
                        e.id,
                        format!("{:?}", e.kind).to_lowercase(),
                        e.state.as_deref().unwrap_or(""),
                        e.name,
                        e.email
                    );
                }
            }
            DirectoryCommand::Export { format, at, .. } => {
                let entries = export::ordered(match at {
                    Some(t) => store.entries_at(t).await?,
                    None => store.entries().await?,
                });
                let text = match format.as_str() {
                    "json" => export::json(&entries),
                    "csv" => export::csv(&entries),
                    "vcard" => export::vcard(&entries),
                    _ => {
                        let generated = match at {
                            Some(t) => crate::rfc3339(t),
                            None => store.directory_changed_at().await?.unwrap_or_default(),
                        };
                        export::html(&entries, &store.network_info().await?, &generated)
                    }
                };
                print!("{text}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    store.close().await;
    result
}

/// `directory export --format wkd DIR`: the store's directory (the file's
/// before the first start) and the gateway's own certificate. Exit status 1
/// when an address could not be published.
async fn export_wkd(config_path: &Path, dir: &Path) -> Result<ExitCode> {
    let config = crate::config::Config::load(config_path)?;
    let directory = super::current_directory(&config).await?;
    let own = crate::openpgp::GatewayKey::for_config(&config)?;
    let mut certs = vec![(
        "gateway".to_string(),
        config.address.clone(),
        own.cert.clone(),
    )];
    certs.extend(
        directory
            .parties()
            .iter()
            .map(|p| (p.id.clone(), p.email.clone(), p.cert.clone())),
    );
    let published = crate::directory::wkd::export(dir, &certs)?;
    let mut failed = 0;
    for p in &published {
        match &p.outcome {
            Ok(file) => println!("{:<12} {:<40} {file}", p.who, p.email),
            Err(why) => {
                failed += 1;
                println!("{:<12} {:<40} NOT PUBLISHED: {why}", p.who, p.email);
            }
        }
    }
    println!(
        "{} of {} addresses published under {}",
        published.len() - failed,
        published.len(),
        dir.display()
    );
    Ok(match failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}
