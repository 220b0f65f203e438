//! `nfp-gateway config check` (issue 15, item 3): everything `run` would
//! refuse, found without running and without changing anything: the
//! configuration, the directory file (every certificate read whole), the
//! templates (every one rendered in every language with sample data), the
//! classification rules, the store (reachable, migrated, not readable by
//! others), the mail servers' settings and passwords, and the checks of
//! `keys check`. A new operator runs it before the first start; the systemd
//! unit runs it as `ExecStartPre=`.

use std::path::Path;
use std::time::SystemTime;

use crate::config::Config;
use crate::directory::Directory;
use crate::keys::{self, Level};
use crate::store::{Schema, Store};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Item {
    pub what: &'static str,
    pub level: Level,
    pub detail: String,
}

fn item(what: &'static str, level: Level, detail: impl Into<String>) -> Item {
    Item {
        what,
        level,
        detail: detail.into(),
    }
}

/// The report: its items, then the keys' rows (none when the configuration
/// cannot be read).
pub struct Report {
    pub items: Vec<Item>,
    pub keys: Vec<keys::Row>,
}

impl Report {
    pub fn level(&self) -> Level {
        self.items
            .iter()
            .map(|i| i.level)
            .chain(self.keys.iter().map(keys::Row::level))
            .max()
            .unwrap_or(Level::Ok)
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for i in &self.items {
            out.push_str(&format!(
                "{:<10} {:<7} {}\n",
                i.what,
                i.level.word(),
                i.detail
            ));
        }
        if !self.keys.is_empty() {
            out.push('\n');
            out.push_str(&keys::table(&self.keys));
        }
        out
    }
}

pub async fn run(config_path: &Path, now: SystemTime) -> Report {
    let mut items = Vec::new();
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            items.push(item("config", Level::Error, format!("{e:#}")));
            return Report {
                items,
                keys: Vec::new(),
            };
        }
    };
    items.push(item("config", Level::Ok, config.path.display().to_string()));
    for (section, present) in [
        ("imap", config.imap.is_some()),
        ("smtp", config.smtp.is_some()),
    ] {
        if !present {
            items.push(item(
                section,
                Level::Error,
                format!("no [{section}] section: `run` needs one"),
            ));
        }
    }
    if let Some(imap) = &config.imap {
        items.push(password("imap", &imap.credentials(), &imap.host, imap.port));
    }
    if let Some(smtp) = &config.smtp {
        items.push(password("smtp", &smtp.credentials(), &smtp.host, smtp.port));
    }

    let file_directory = match Directory::load(&config.directory) {
        Ok(d) => {
            items.push(item(
                "directory",
                Level::Ok,
                format!(
                    "{}: {} parties, every certificate read whole",
                    config.directory.display(),
                    d.parties().len()
                ),
            ));
            Some(d)
        }
        Err(e) => {
            items.push(item("directory", Level::Error, format!("{e:#}")));
            None
        }
    };
    items.push(templates(&config));
    items.push(match &config.classify_rules {
        None => item("rules", Level::Ok, "the shipped classification rules"),
        Some(path) => match crate::classify::rules::Rules::load(path) {
            Ok(_) => item("rules", Level::Ok, path.display().to_string()),
            Err(e) => item("rules", Level::Error, format!("{e:#}")),
        },
    });
    let (store_item, live_directory) = store(&config, now).await;
    items.push(store_item);

    // The keys against the directory the gateway would use: the store's, or
    // the file's before the first start.
    let keys = match live_directory.or(file_directory) {
        Some(directory) => keys::check_config(&config, &directory, now),
        None => Vec::new(),
    };
    Report { items, keys }
}

fn password(
    what: &'static str,
    credentials: &crate::config::Credentials,
    host: &str,
    port: u16,
) -> Item {
    match credentials.password() {
        Ok(p) if p.is_empty() => item(what, Level::Error, "the password is empty"),
        Ok(_) => item(
            what,
            Level::Ok,
            format!("{}@{host}:{port}, password readable", credentials.username),
        ),
        Err(e) => item(what, Level::Error, format!("{e:#}")),
    }
}

/// Every template in every language, rendered with sample data.
fn templates(config: &Config) -> Item {
    use crate::classify::Language;
    use crate::outbound::render::{samples, Templates, NAMES};
    let t = match Templates::load(config.templates.as_deref()) {
        Ok(t) => t,
        Err(e) => return item("templates", Level::Error, format!("{e:#}")),
    };
    let mut failed = Vec::new();
    for lang in Language::ALL {
        for name in NAMES {
            let (data, _) = samples::sample(name);
            if let Err(e) = t.render(name, lang, &data) {
                failed.push(format!("{e:#}"));
            }
        }
    }
    let source = match &config.templates {
        Some(dir) => format!("{} over the shipped ones", dir.display()),
        None => "the shipped ones".to_string(),
    };
    let complete = t.complete_languages();
    match failed.as_slice() {
        [] if complete.len() == Language::ALL.len() => item(
            "templates",
            Level::Ok,
            format!(
                "{source}: {} templates rendered in {} languages",
                NAMES.len(),
                Language::ALL.len()
            ),
        ),
        [] => item(
            "templates",
            Level::Warning,
            format!(
                "{source}: every template renders, but only {} languages have all of them (the others get English)",
                complete.len()
            ),
        ),
        [first, ..] => item(
            "templates",
            Level::Error,
            format!("{} of {} fail; the first: {first}", failed.len(), NAMES.len() * Language::ALL.len()),
        ),
    }
}

/// The store as `run` would meet it, and the directory it holds.
async fn store(config: &Config, now: SystemTime) -> (Item, Option<Directory>) {
    let url = crate::store::redact(&config.database);
    let schema = match Store::inspect(&config.database).await {
        Ok(s) => s,
        Err(e) => return (item("store", Level::Error, format!("{e:#}")), None),
    };
    let engine = crate::store::Engine::of(&config.database).ok();
    let sqlite = engine == Some(crate::store::Engine::Sqlite);
    let mut found = match &schema {
        Schema::Missing => item(
            "store",
            Level::Warning,
            format!("{url} does not exist: `nfp-gateway migrate` creates it"),
        ),
        Schema::Current(v) => item("store", Level::Ok, format!("{url}: schema version {v}")),
        Schema::Behind(missing) if sqlite => item(
            "store",
            Level::Warning,
            format!("{url} lacks schema version(s) {missing:?}: `run` applies them at start"),
        ),
        Schema::Behind(missing) => item(
            "store",
            Level::Error,
            format!("{url} lacks schema version(s) {missing:?}: run `nfp-gateway migrate` first"),
        ),
        Schema::Newer(v) => item(
            "store",
            Level::Error,
            format!(
                "{url} is at schema version {v}, newer than this release knows: run that release"
            ),
        ),
    };
    if sqlite && schema != Schema::Missing {
        use std::os::unix::fs::PermissionsExt;
        let path = crate::store::sqlite_path(&config.database);
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 && found.level < Level::Warning {
                found = item(
                    "store",
                    Level::Warning,
                    format!("{url}: readable by others (mode {mode:04o}): `chmod 600` it"),
                );
            }
        }
    }
    let directory = match schema {
        Schema::Current(_) => match Store::open_existing(&config.database).await {
            Ok(Some(store)) => {
                let d = crate::directory::sync::from_store(&store, now).await;
                store.close().await;
                d.ok().flatten()
            }
            _ => None,
        },
        _ => None,
    };
    (found, directory)
}
