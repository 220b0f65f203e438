//! `gateway.toml`: the one configuration file.
//!
//! Every key is kebab-case; unknown keys are errors that name the key and the
//! file. Relative paths resolve against the folder of the file that names
//! them, so a configuration can be moved as a whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

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
    secret_key_passphrase_file: Option<PathBuf>,
    #[serde(default)]
    previous_secret_keys: Vec<PathBuf>,
    directory: PathBuf,
    database: Option<String>,
    classify_rules: Option<PathBuf>,
    templates: Option<PathBuf>,
    #[serde(with = "humantime_serde", default = "default_overlap")]
    certificate_overlap: Duration,
    #[serde(with = "humantime_serde", default = "default_quiet")]
    circular_quiet_period: Duration,
    #[serde(with = "humantime_serde", default = "default_key_warning")]
    key_expiry_warning: Duration,
    #[serde(with = "humantime_serde", default = "default_digest")]
    quarantine_digest: Duration,
    #[serde(default = "default_true")]
    key_expiry_watch: bool,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    limits: Limits,
    imap: Option<Imap>,
    smtp: Option<Smtp>,
    #[serde(default)]
    daemon: Daemon,
    #[serde(default)]
    retention: BTreeMap<String, String>,
    #[serde(default)]
    cases: Cases,
    #[serde(default)]
    rollcall: Rollcall,
    #[serde(default)]
    report: ReportConfig,
}

/// The Secretariat's periodic report ([report]): whether the daemon sends
/// it, and its period (whole days, counted from a Monday 00:00 UTC).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReportConfig {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub every: Duration,
}

impl Default for ReportConfig {
    fn default() -> ReportConfig {
        ReportConfig {
            enabled: true,
            every: Duration::from_secs(7 * 86_400),
        }
    }
}

/// The roll call ([rollcall]): how long NFPs have to confirm their entry,
/// how long before the end the silent ones are reminded, and how often the
/// daemon starts a round by itself (never, unless `every` is set).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rollcall {
    #[serde(with = "humantime_serde")]
    pub answer_within: Duration,
    #[serde(with = "humantime_serde")]
    pub remind_before: Duration,
    #[serde(with = "humantime_serde")]
    pub every: Option<Duration>,
}

impl Default for Rollcall {
    fn default() -> Rollcall {
        const DAY: u64 = 86_400;
        Rollcall {
            answer_within: Duration::from_secs(30 * DAY),
            remind_before: Duration::from_secs(7 * DAY),
            every: None,
        }
    }
}

/// The Secretariat's cases ([cases]): how long the debtor has to answer an
/// assistance request and an information request, and how long before
/// the due time the reminder goes out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Cases {
    /// Whether accepted requests open cases (Secretariat role only).
    pub enabled: bool,
    #[serde(rename = "assistance_request", with = "humantime_serde")]
    pub assistance_request: Duration,
    #[serde(rename = "information_request", with = "humantime_serde")]
    pub information_request: Duration,
    #[serde(with = "humantime_serde")]
    pub remind_before: Duration,
    /// Reminder mails in any hour, to keep a backlog of due dates from
    /// flooding the network; the rest go out in the hours after.
    pub reminders_per_hour: u32,
}

impl Default for Cases {
    fn default() -> Cases {
        const DAY: u64 = 86_400;
        Cases {
            enabled: true,
            assistance_request: Duration::from_secs(30 * DAY),
            information_request: Duration::from_secs(14 * DAY),
            remind_before: Duration::from_secs(3 * DAY),
            reminders_per_hour: 100,
        }
    }
}

impl Cases {
    /// How long the debtor has for a request of `kind`; None: no case.
    pub fn period(&self, kind: crate::vocab::Kind) -> Option<Duration> {
        use crate::vocab::Kind;
        match kind {
            Kind::AssistanceRequest => Some(self.assistance_request),
            Kind::InformationRequest => Some(self.information_request),
            _ => None,
        }
    }
}

/// How to protect a connection to a mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain connection upgraded with STARTTLS before anything else is said.
    Starttls,
    /// No TLS at all: only to a loopback address, for tests.
    Plaintext,
}

/// A password, from a file or from a command's output; never inline (the
/// keys of [imap] and [smtp]).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<Vec<String>>,
}

/// The mailbox the gateway watches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Imap {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<Vec<String>>,
    #[serde(default = "default_inbox")]
    pub folder: String,
    #[serde(default = "default_processed")]
    pub processed_folder: String,
    #[serde(default = "default_quarantine")]
    pub quarantine_folder: String,
    /// Without IDLE: how often to look for new mail.
    #[serde(with = "humantime_serde", default = "default_poll")]
    pub poll_interval: Duration,
    /// With IDLE: re-issue it this often (RFC 2177: servers may drop it after 30 minutes).
    #[serde(with = "humantime_serde", default = "default_idle")]
    pub idle_timeout: Duration,
    /// A PEM CA certificate to trust besides the usual roots.
    pub ca_file: Option<PathBuf>,
}

impl Imap {
    pub fn credentials(&self) -> Credentials {
        Credentials::of(&self.username, &self.password_file, &self.password_command)
    }
}

/// The submission server the gateway sends through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<Vec<String>>,
    pub ca_file: Option<PathBuf>,
    /// Waits between attempts; after the last, the mail fails and the Secretariat is alerted.
    #[serde(default = "default_retry")]
    pub retry: Vec<HumanDuration>,
}

impl Smtp {
    pub fn credentials(&self) -> Credentials {
        Credentials::of(&self.username, &self.password_file, &self.password_command)
    }
}

/// A duration written like "5m".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct HumanDuration(#[serde(with = "humantime_serde")] pub Duration);

/// The daemon's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Daemon {
    /// Where /healthz and /metrics answer (loopback).
    pub listen: Option<std::net::SocketAddr>,
    /// How long a shutdown waits for the work in hand.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// This instance's name among the gateway instances sharing one store
    /// (letters, digits, `.`, `-`, `_`); the host's name when absent. Each
    /// instance needs its own: at a start, work left claimed under the
    /// name is taken back at once.
    pub instance: Option<String>,
    /// How long claimed work (inbox messages, outgoing mail) stays with an
    /// instance that does not renew its claim: after that, another instance
    /// takes it over (the first was stopped, or died).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long the daemon keeps feeding systemd's watchdog while it makes
    /// no progress for a bad reason: its store cannot be written, or the
    /// outbox sender fails round after round. After that it stops, and
    /// systemd (`WatchdogSec`) restarts it. Waiting for mail, or for an
    /// unreachable server, is not a bad reason.
    #[serde(with = "humantime_serde")]
    pub stalled_after: Duration,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            listen: None,
            shutdown_timeout: Duration::from_secs(30),
            instance: None,
            lease: Duration::from_secs(300),
            stalled_after: Duration::from_secs(600),
        }
    }
}

impl Daemon {
    /// The instance's name: the configured one, or the host's.
    pub fn instance(&self) -> Result<String> {
        let name = match &self.instance {
            Some(name) => name.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        };
        let name = if name.is_empty() {
            "gateway".to_string()
        } else {
            name
        };
        anyhow::ensure!(
            name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
            "[daemon] instance = {name:?}: letters, digits, '.', '-' and '_' only (at most 64)"
        );
        Ok(name)
    }
}

fn default_true() -> bool {
    true
}
fn default_key_warning() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_quiet() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_digest() -> Duration {
    Duration::from_secs(60 * 60)
}
fn default_overlap() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_inbox() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_quarantine() -> String {
    "Quarantine".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(60)
}
fn default_idle() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_retry() -> Vec<HumanDuration> {
    [60, 300, 1800, 7200, 21600]
        .into_iter()
        .map(|s| HumanDuration(Duration::from_secs(s)))
        .collect()
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
    /// Bytes of one part's header section (Postfix's `header_size_limit`).
    pub max_header_size: usize,
    /// Accepted messages one party may send in any hour; beyond, the daemon
    /// quarantines them as `rate_limited` (an operator may release them).
    pub sender_messages_per_hour: u32,
    /// Accepted messages of all parties together in any hour; the same.
    pub messages_per_hour: u32,
    /// Quarantine notices (one mail to the Secretariat per quarantined
    /// message) in any hour; further quarantines wait for the digest.
    pub notices_per_hour: u32,
    /// Quarantine notices about mail claiming one envelope sender, in any hour.
    pub notices_per_sender_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 32 << 20,
            max_decrypted_size: 64 << 20,
            max_mime_depth: 20,
            max_mime_parts: 500,
            max_header_size: 100 << 10,
            sender_messages_per_hour: 120,
            messages_per_hour: 2000,
            notices_per_hour: 10,
            notices_per_sender_per_hour: 3,
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
    /// The file whose first line unlocks a passphrase-protected secret key.
    pub secret_key_passphrase_file: Option<PathBuf>,
    /// Keys the gateway had before a rotation: they still decrypt what was
    /// encrypted to them (mail in flight, stored content) and never sign.
    pub previous_secret_keys: Vec<PathBuf>,
    pub directory: PathBuf,
    pub database: String,
    pub classify_rules: Option<PathBuf>,
    /// A folder of templates overriding the shipped ones.
    pub templates: Option<PathBuf>,
    /// How long a party's previous certificate still verifies after a rotation.
    pub certificate_overlap: Duration,
    /// How long the directory must stay unchanged before a circular announces
    /// the changes (changes close together share one circular).
    pub circular_quiet_period: Duration,
    /// At most one quarantine digest per this period: it lists the
    /// quarantined messages that got no notice of their own.
    pub quarantine_digest: Duration,
    /// How long before a party's certificate expires the daily watch warns.
    pub key_expiry_warning: Duration,
    /// Whether the daemon runs the daily key-expiry watch.
    pub key_expiry_watch: bool,
    pub policy: Policy,
    pub limits: Limits,
    pub imap: Option<Imap>,
    pub smtp: Option<Smtp>,
    pub daemon: Daemon,
    pub retention: Retention,
    pub cases: Cases,
    pub rollcall: Rollcall,
    pub report: ReportConfig,
}

/// How long stored content is kept ([retention]): after it, a message's
/// content is deleted and its metadata and audit trail stay. None: kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// `content`: every accepted kind not named on its own.
    pub content: Option<Duration>,
    /// `quarantined`: quarantined messages.
    pub quarantined: Option<Duration>,
    /// Per kind code (`assistance_request = "10y"`).
    pub kinds: BTreeMap<String, Duration>,
}

impl Retention {
    /// The period for accepted messages of `kind` (a kind code).
    pub fn for_kind(&self, kind: &str) -> Option<Duration> {
        self.kinds.get(kind).copied().or(self.content)
    }

    fn parse(raw: &BTreeMap<String, String>) -> Result<Retention> {
        let mut r = Retention::default();
        for (key, value) in raw {
            let d = humantime::parse_duration(value).with_context(|| {
                format!("[retention] {key} = {value:?}: not a duration (\"5y\", \"18months\")")
            })?;
            if d < Duration::from_secs(86_400) {
                bail!("[retention] {key} = {value:?}: less than a day; content would be deleted as it arrives");
            }
            match key.as_str() {
                "content" => r.content = Some(d),
                "quarantined" => r.quarantined = Some(d),
                k if crate::vocab::Kind::from_code(k).is_some() => {
                    r.kinds.insert(k.to_string(), d);
                }
                k => bail!(
                    "[retention] {k}: not `content`, `quarantined` or a kind ({})",
                    crate::vocab::Kind::ALL.map(|k| k.code()).join(", ")
                ),
            }
        }
        Ok(r)
    }
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
        // A secret may be a systemd credential: `credential:NAME` is the
        // file NAME in $CREDENTIALS_DIRECTORY (LoadCredential=,
        // LoadCredentialEncrypted= in the unit).
        let secret =
            |p: &Path| -> Result<PathBuf> { credential(p).unwrap_or_else(|| Ok(base.join(p))) };

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
        if !crate::address::is_plain_address(&raw.address) {
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
        Config {
            path: path.to_path_buf(),
            role: raw.role,
            state,
            address: raw.address.to_ascii_lowercase(),
            secret_key: secret(&raw.secret_key)
                .with_context(|| format!("{}: `secret-key`", path.display()))?,
            secret_key_passphrase_file: raw
                .secret_key_passphrase_file
                .as_deref()
                .map(secret)
                .transpose()
                .with_context(|| format!("{}: `secret-key-passphrase-file`", path.display()))?,
            previous_secret_keys: raw
                .previous_secret_keys
                .iter()
                .map(|p| secret(p))
                .collect::<Result<_>>()
                .with_context(|| format!("{}: `previous-secret-keys`", path.display()))?,
            directory: at(&raw.directory),
            database,
            classify_rules: raw.classify_rules.as_deref().map(at),
            templates: raw.templates.as_deref().map(at),
            certificate_overlap: raw.certificate_overlap,
            circular_quiet_period: raw.circular_quiet_period,
            key_expiry_warning: raw.key_expiry_warning,
            quarantine_digest: raw.quarantine_digest,
            key_expiry_watch: raw.key_expiry_watch,
            policy: raw.policy,
            limits: raw.limits,
            imap: raw
                .imap
                .map(|mut i| {
                    i.password_file = password_path(i.password_file.as_deref(), base)?;
                    i.ca_file = i.ca_file.as_deref().map(at);
                    Ok::<_, anyhow::Error>(i)
                })
                .transpose()
                .with_context(|| format!("{}: [imap]", path.display()))?,
            smtp: raw
                .smtp
                .map(|mut s| {
                    s.password_file = password_path(s.password_file.as_deref(), base)?;
                    s.ca_file = s.ca_file.as_deref().map(at);
                    Ok::<_, anyhow::Error>(s)
                })
                .transpose()
                .with_context(|| format!("{}: [smtp]", path.display()))?,
            daemon: raw.daemon,
            retention: Retention::parse(&raw.retention)
                .with_context(|| format!("{}", path.display()))?,
            cases: raw.cases,
            rollcall: raw.rollcall,
            report: raw.report,
        }
        .validated()
    }
}

impl Config {
    /// The prefix of this gateway's reference numbers: `BSM` at the
    /// Secretariat, `BSM-AT` at Austria's national gateway, so that no two
    /// gateways of the network ever hand out the same reference.
    pub fn reference_prefix(&self) -> String {
        match (&self.role, &self.state) {
            (Role::National, Some(state)) => format!("BSM-{state}"),
            _ => "BSM".to_string(),
        }
    }

    fn validated(self) -> Result<Config> {
        let file = self.path.display();
        let servers = [
            self.imap
                .as_ref()
                .map(|i| ("imap", &i.host, i.security, i.credentials())),
            self.smtp
                .as_ref()
                .map(|s| ("smtp", &s.host, s.security, s.credentials())),
        ];
        for (section, host, security, creds) in servers.into_iter().flatten() {
            if security == Security::Plaintext && !is_loopback(host) {
                bail!("{file}: [{section}] security = \"plaintext\" is only allowed to a loopback address, not {host:?}");
            }
            if creds.password_file.is_some() == creds.password_command.is_some() {
                bail!("{file}: [{section}] needs exactly one of `password-file` and `password-command`");
            }
        }
        if let Some(smtp) = &self.smtp {
            if smtp.retry.is_empty() {
                bail!("{file}: [smtp] `retry` needs at least one wait");
            }
        }
        let c = &self.cases;
        let shortest = c.assistance_request.min(c.information_request);
        if shortest < Duration::from_secs(86_400) {
            bail!("{file}: [cases] a request's period must be at least a day");
        }
        if c.remind_before >= shortest {
            bail!("{file}: [cases] `remind-before` must be shorter than every request's period, or the reminder would come before the request");
        }
        let r = &self.rollcall;
        if r.answer_within < Duration::from_secs(86_400) {
            bail!("{file}: [rollcall] `answer-within` must be at least a day");
        }
        if r.remind_before >= r.answer_within {
            bail!("{file}: [rollcall] `remind-before` must be shorter than `answer-within`, or the reminder would come with the request");
        }
        if r.every.is_some_and(|e| e <= r.answer_within) {
            bail!("{file}: [rollcall] `every` must be longer than `answer-within`: one round ends before the next starts");
        }
        let every = self.report.every.as_secs();
        if every < 86_400 || every % 86_400 != 0 {
            bail!("{file}: [report] `every` must be a whole number of days (7d: weekly, Monday to Monday)");
        }
        Ok(self)
    }
}

/// A password file's path: a systemd credential's, or relative to the
/// configuration's folder.
fn password_path(file: Option<&Path>, base: &Path) -> Result<Option<PathBuf>> {
    file.map(|p| credential(p).unwrap_or_else(|| Ok(base.join(p))))
        .transpose()
}

impl Credentials {
    /// The credentials of [imap] or [smtp], from the section's keys.
    fn of(
        username: &str,
        password_file: &Option<PathBuf>,
        password_command: &Option<Vec<String>>,
    ) -> Credentials {
        Credentials {
            username: username.to_string(),
            password_file: password_file.clone(),
            password_command: password_command.clone(),
        }
    }
    /// Reads the password: the file's first line, or the command's output's first line.
    pub fn password(&self) -> Result<String> {
        let text = match (&self.password_file, &self.password_command) {
            (Some(file), _) => return first_line(file, "the password file"),
            (None, Some(cmd)) => {
                let (program, args) = cmd.split_first().context("`password-command` is empty")?;
                let out = std::process::Command::new(program)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .with_context(|| format!("Running the password command {program}"))?;
                if !out.status.success() {
                    bail!("the password command {program} failed ({})", out.status);
                }
                String::from_utf8(out.stdout).context("The password command printed non-UTF-8")?
            }
            (None, None) => bail!("no password configured"),
        };
        Ok(text.lines().next().unwrap_or("").to_string())
    }
}

/// The first line of a file that holds a secret (a password, a key's
/// passphrase), `what` naming it in the error.
pub fn first_line(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Reading {what} {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// The file of a systemd credential, for a path written `credential:NAME`
/// (None for any other path).
fn credential(p: &Path) -> Option<Result<PathBuf>> {
    let name = p.to_str()?.strip_prefix("credential:")?;
    Some((|| {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            bail!("credential:{name}: a credential's name is one file name");
        }
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").with_context(|| {
            format!(
                "credential:{name} is a systemd credential, but $CREDENTIALS_DIRECTORY is not set: \
                 give it to the service with LoadCredentialEncrypted={name}:FILE (or LoadCredential=)"
            )
        })?;
        Ok(Path::new(&dir).join(name))
    })())
}

/// localhost, 127.0.0.0/8 or ::1.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

    const SERVERS: &str = r#"
[imap]
host = "127.0.0.1"
port = 1143
security = "plaintext"
username = "gateway@example.org"
password-file = "secrets/imap"

[smtp]
host = "mail.example.org"
port = 587
security = "starttls"
username = "gateway@example.org"
password-command = ["pass", "show", "smtp"]
retry = ["1m", "5m"]
"#;

    #[test]
    fn server_sections_parse() {
        let c = Config::parse(
            &format!("{MINIMAL}{SERVERS}"),
            Path::new("/etc/nfp/gateway.toml"),
        )
        .unwrap();
        let imap = c.imap.unwrap();
        assert_eq!(
            imap.password_file.as_deref(),
            Some(Path::new("/etc/nfp/secrets/imap"))
        );
        assert_eq!(imap.folder, "INBOX");
        assert_eq!(c.smtp.unwrap().retry.len(), 2);
    }

    #[test]
    fn unknown_keys_in_server_sections_are_errors() {
        let text = format!(
            "{MINIMAL}{}",
            SERVERS.replace("port = 1143", "port = 1143\npasword-file = \"x\"")
        );
        let msg = format!(
            "{:#}",
            Config::parse(&text, Path::new("g.toml")).unwrap_err()
        );
        assert!(msg.contains("pasword-file"), "{msg}");
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let text = format!(
            "{MINIMAL}{}",
            SERVERS.replace("host = \"127.0.0.1\"", "host = \"imap.example.org\"")
        );
        let msg = format!(
            "{:#}",
            Config::parse(&text, Path::new("g.toml")).unwrap_err()
        );
        assert!(msg.contains("loopback"), "{msg}");
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

    #[test]
    fn retention_periods_per_kind() {
        let c = Config::parse(
            &format!("{MINIMAL}\n[retention]\ncontent = \"5y\"\nquarantined = \"1y\"\nassistance_request = \"10y\"\n"),
            Path::new("/etc/nfp/gateway.toml"),
        )
        .unwrap();
        let year = |n: u64| Some(humantime::parse_duration(&format!("{n}y")).unwrap());
        assert_eq!(c.retention.for_kind("assistance_request"), year(10));
        assert_eq!(c.retention.for_kind("best_practice"), year(5));
        assert_eq!(c.retention.quarantined, year(1));
        for (bad, says) in [
            ("contents = \"5y\"", "not `content`"),
            ("content = \"5\"", "not a duration"),
            ("quarantined = \"2h\"", "less than a day"),
        ] {
            let e = Config::parse(
                &format!("{MINIMAL}\n[retention]\n{bad}\n"),
                Path::new("/x/g.toml"),
            )
            .unwrap_err();
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
        }
        let none = Config::parse(MINIMAL, Path::new("/x/g.toml")).unwrap();
        assert_eq!(none.retention, Retention::default());
    }

    #[test]
    fn report_defaults_to_weekly_and_is_checked() {
        let c = Config::parse(MINIMAL, Path::new("/x/g.toml")).unwrap();
        assert_eq!(c.report, ReportConfig::default());
        assert_eq!(c.report.every, Duration::from_secs(7 * 86_400));
        for (bad, says) in [
            ("every = \"12h\"", "whole number of days"),
            ("every = \"36h\"", "whole number of days"),
            ("weekly = true", "unknown field"),
        ] {
            let e = Config::parse(
                &format!("{MINIMAL}\n[report]\n{bad}\n"),
                Path::new("/x/g.toml"),
            )
            .unwrap_err();
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
        }
    }

    #[test]
    fn rollcall_defaults_and_is_checked() {
        let day = |n: u64| Duration::from_secs(n * 86_400);
        let c = Config::parse(MINIMAL, Path::new("/x/g.toml")).unwrap();
        assert_eq!(
            (
                c.rollcall.answer_within,
                c.rollcall.remind_before,
                c.rollcall.every
            ),
            (day(30), day(7), None)
        );
        let c = Config::parse(
            &format!("{MINIMAL}\n[rollcall]\nevery = \"365d\"\nanswer-within = \"6weeks\"\n"),
            Path::new("/x/g.toml"),
        )
        .unwrap();
        assert_eq!(
            (c.rollcall.every, c.rollcall.answer_within),
            (Some(day(365)), day(42))
        );
        for (bad, says) in [
            ("answer-within = \"12h\"", "at least a day"),
            ("remind-before = \"30d\"", "shorter than `answer-within`"),
            ("every = \"20d\"", "longer than `answer-within`"),
            ("evry = \"365d\"", "unknown field"),
        ] {
            let e = Config::parse(
                &format!("{MINIMAL}\n[rollcall]\n{bad}\n"),
                Path::new("/x/g.toml"),
            )
            .unwrap_err();
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
        }
    }

    #[test]
    fn case_periods_default_and_are_checked() {
        use crate::vocab::Kind;
        let day = |n: u64| Duration::from_secs(n * 86_400);
        let c = Config::parse(MINIMAL, Path::new("/x/g.toml")).unwrap();
        assert_eq!(c.cases.period(Kind::InformationRequest), Some(day(14)));
        assert_eq!(c.cases.period(Kind::AssistanceRequest), Some(day(30)));
        assert_eq!(c.cases.period(Kind::InformationReply), None);
        let c = Config::parse(
            &format!("{MINIMAL}\n[cases]\ninformation_request = \"3weeks\"\n"),
            Path::new("/x/g.toml"),
        )
        .unwrap();
        assert_eq!(c.cases.period(Kind::InformationRequest), Some(day(21)));
        assert_eq!(c.cases.remind_before, day(3));
        for (bad, says) in [
            ("information_request = \"12h\"", "at least a day"),
            (
                "remind-before = \"30d\"",
                "shorter than every request's period",
            ),
            ("remind_before = \"1d\"", "unknown field"),
        ] {
            let e = Config::parse(
                &format!("{MINIMAL}\n[cases]\n{bad}\n"),
                Path::new("/x/g.toml"),
            )
            .unwrap_err();
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
        }
    }
}
