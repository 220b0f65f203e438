//! The operator's commands (issue 15). `keys`: a key made by `keys generate` as GnuPG 2.2
//! and rnp read it (they encrypt to it, GnuPG decrypts with it, its
//! revocation certificate revokes it); `keys check` on the demo network, and
//! a certificate with one damaged base64 line, which GnuPG refuses ("CRC
//! error") and Sequoia alone would read without its encryption subkey,
//! refused by `keys check` and `directory import --dry-run`. `config check`:
//! what `run` would refuse, each named. The store: never created by a
//! mistyped path, `db backup` and `db restore`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn gateway(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("nfp-gateway runs")
}

/// What a command that must succeed said.
#[track_caller]
fn succeeds(config: &Path, args: &[&str]) -> String {
    let out = gateway(config, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    text(&out)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The demo network's configuration, directory and keys in a temporary folder.
fn demo_network() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for name in ["gateway.toml", "directory.toml"] {
        std::fs::copy(examples.join(name), dir.path().join(name)).unwrap();
    }
    for sub in ["certs", "keys"] {
        let to = dir.path().join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(examples.join(sub)).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let config = dir.path().join("gateway.toml");
    (dir, config)
}

/// GnuPG with its own home, never the user's.
fn gpg(home: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty", "--trust-model", "always"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gpg runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn a_generated_key_is_read_by_gnupg_and_rnp() {
    let (dir, config) = demo_network();
    let secret = dir.path().join("keys/gw2.sec.asc");
    let out = gateway(
        &config,
        &[
            "keys",
            "generate",
            "--address",
            "gateway@nfp-network.example",
            "--out",
            secret.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    let fpr = printed
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint  "))
        .expect("the fingerprint is printed")
        .to_string();
    let public = dir.path().join("keys/gw2.pub.asc");
    let revocation = dir.path().join("keys/gw2.rev.asc");

    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = gpg(h, &["--import", public.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    // Only SEIPDv1 (MDC) is invited: no AEAD mode the gateway cannot read.
    let o = gpg(h, &["--list-packets", public.to_str().unwrap()], None);
    let packets = text(&o);
    assert!(packets.contains("features: 01"), "{packets}");
    assert!(packets.contains("version 4"), "{packets}");
    // GnuPG encrypts to it, and decrypts with its secret key.
    let o = gpg(
        h,
        &["--armor", "--encrypt", "-r", "gateway@nfp-network.example"],
        Some(b"Statistik der Zurueckweisungen, Q3\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let message = o.stdout;
    let o = gpg(h, &["--import", secret.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = gpg(h, &["--decrypt"], Some(&message));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, b"Statistik der Zurueckweisungen, Q3\n");
    // rnp encrypts to it too.
    let rnp_home = tempfile::tempdir().unwrap();
    let o = Command::new("rnpkeys")
        .arg("--homedir")
        .arg(rnp_home.path())
        .arg("--import")
        .arg(&public)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plain = rnp_home.path().join("plain.txt");
    std::fs::write(&plain, "x").unwrap();
    let o = Command::new("rnp")
        .arg("--homedir")
        .arg(rnp_home.path())
        .args(["--encrypt", "-r", &fpr])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(rnp_home.path().join("plain.txt.pgp").exists());
    // The revocation certificate revokes it.
    let o = gpg(h, &["--import", revocation.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = gpg(h, &["--list-keys", &fpr], None);
    assert!(text(&o).contains("revoked"), "{}", text(&o));
    // Modes: the secret and the revocation are the operator's alone.
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(&secret, 0o600), (&revocation, 0o600), (&public, 0o644)] {
        let m = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "{}", p.display());
    }
    // Never over an existing key.
    let again = gateway(
        &config,
        &["keys", "generate", "--out", secret.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
}

#[test]
fn keys_check_reports_every_key_and_a_damaged_certificate() {
    let (dir, config) = demo_network();
    let out = gateway(&config, &["keys", "check"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for who in ["gateway", "secretariat", "AT", "FR", "RU"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(who) && l.ends_with(" ok")),
            "{who}: {report}"
        );
    }
    // Near the demo keys' expiry: warnings, still exit 0.
    let out = gateway(&config, &["keys", "check", "--now", "2031-11-10T00:00:00Z"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("WARNING FR: no valid encryption key on 2031-12-10"),
        "{}",
        text(&out)
    );
    // After it: errors, exit 1.
    let out = gateway(&config, &["keys", "check", "--now", "2032-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("ERROR gateway"), "{}", text(&out));

    // One base64 character of FR's certificate changed, in the line that
    // carries its encryption subkey's binding signature.
    let fr = dir.path().join("certs/FR.asc");
    let armored = std::fs::read_to_string(&fr).unwrap();
    let mut lines: Vec<String> = armored.lines().map(str::to_string).collect();
    let body = lines.iter().position(|l| l.is_empty()).unwrap() + 1;
    let n = lines.len();
    let i = body + (n - body) / 2;
    let mut chars: Vec<char> = lines[i].chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    lines[i] = chars.into_iter().collect();
    std::fs::write(&fr, lines.join("\n") + "\n").unwrap();
    // GnuPG refuses the file: the damage is real.
    let home = tempfile::tempdir().unwrap();
    let o = gpg(home.path(), &["--import", fr.to_str().unwrap()], None);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("CRC error"), "{}", text(&o));
    assert!(gateway(&config, &["migrate"]).status.success());
    for args in [
        &["keys", "check"][..],
        &["directory", "import", "--dry-run"][..],
    ] {
        let out = gateway(&config, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("FR") && said.contains("certs/FR.asc") && said.contains("CRC-24"),
            "{args:?}: {said}"
        );
    }
}

/// `config check`: ready on a complete configuration; then each thing `run`
/// would refuse or that would lose mail, found and named, exit status 1;
/// it never creates the store.
#[test]
fn config_check_finds_what_run_would_refuse() {
    let (dir, config) = demo_network();
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "\n[imap]\nhost = \"127.0.0.1\"\nport = 143\nsecurity = \"plaintext\"\n\
         username = \"gateway@nfp-network.example\"\npassword-file = \"imap-password\"\n\
         \n[smtp]\nhost = \"127.0.0.1\"\nport = 587\nsecurity = \"plaintext\"\n\
         username = \"gateway@nfp-network.example\"\npassword-file = \"smtp-password\"\n",
    );
    std::fs::write(&config, &toml).unwrap();
    let d = dir.path();
    std::fs::write(d.join("imap-password"), "s3cret\n").unwrap();
    std::fs::write(d.join("smtp-password"), "s3cret\n").unwrap();
    let check = || {
        let out = gateway(&config, &["config", "check"]);
        (out.status.code(), text(&out))
    };
    let line = |report: &str, what: &str| -> String {
        report
            .lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line: {report}"))
            .to_string()
    };

    let (code, report) = check();
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("config check: ready, with warnings"),
        "{report}"
    );
    assert!(
        line(&report, "store").contains("does not exist: `nfp-gateway migrate` creates it"),
        "{report}"
    );
    assert!(
        line(&report, "templates").contains("rendered in 6 languages"),
        "{report}"
    );
    assert!(
        !d.join("nfp-gateway.db").exists(),
        "config check created the store"
    );

    // A migrated store readable by others: a warning; mode 0600: ready.
    assert!(gateway(&config, &["migrate"]).status.success());
    use std::os::unix::fs::PermissionsExt;
    let db = d.join("nfp-gateway.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = check();
    assert_eq!(code, Some(0), "{report}");
    assert!(
        line(&report, "store").contains("readable by others (mode 0644)"),
        "{report}"
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, report) = check();
    assert_eq!(code, Some(0), "{report}");
    assert!(report.ends_with("config check: ready\n"), "{report}");

    // The SMTP password file is missing.
    std::fs::remove_file(d.join("smtp-password")).unwrap();
    let (code, report) = check();
    assert_eq!(code, Some(1), "{report}");
    assert!(line(&report, "smtp").contains("ERROR"), "{report}");
    assert!(line(&report, "smtp").contains("smtp-password"), "{report}");
    std::fs::write(d.join("smtp-password"), "s3cret\n").unwrap();

    // An operator's template that does not compile.
    std::fs::create_dir_all(d.join("templates/fr")).unwrap();
    std::fs::write(
        d.join("templates/fr/acknowledgement.hbs"),
        "Subject: Accusé de réception {{reference}\n\nBonjour\n",
    )
    .unwrap();
    std::fs::write(&config, format!("templates = \"templates\"\n{toml}")).unwrap();
    let (code, report) = check();
    assert_eq!(code, Some(1), "{report}");
    assert!(
        line(&report, "templates").contains("fr/acknowledgement"),
        "{report}"
    );
    std::fs::write(&config, &toml).unwrap();

    // A damaged certificate in the directory file.
    let fr = d.join("certs/FR.asc");
    let armored = std::fs::read_to_string(&fr).unwrap();
    std::fs::write(&fr, armored.replacen("\n\n", "\n\nAB", 1)).unwrap();
    let (code, report) = check();
    assert_eq!(code, Some(1), "{report}");
    assert!(
        line(&report, "directory").contains("certs/FR.asc"),
        "{report}"
    );
}

/// A mistyped `database` path is an error, never a new empty store; `migrate`
/// creates the store with mode 0600.
#[test]
fn a_missing_store_is_an_error_and_migrate_creates_it_0600() {
    let (dir, config) = demo_network();
    let db = dir.path().join("nfp-gateway.db");
    for args in [&["status"][..], &["directory", "import"][..]] {
        let out = gateway(&config, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("does not exist: `nfp-gateway migrate` creates it"),
            "{}",
            text(&out)
        );
        assert!(!db.exists(), "{args:?} created the store");
    }
    let out = gateway(&config, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = gateway(&config, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// `db backup` writes a copy that reads back whole (mode 0600, never over a
/// file); `db restore` puts it back in place of a store changed since, which
/// it keeps aside; a damaged backup is refused and the store left as it was.
#[test]
fn db_backup_and_restore() {
    let (dir, config) = demo_network();
    let d = dir.path();
    let ok = |args: &[&str]| succeeds(&config, args);
    ok(&["migrate"]);
    ok(&["directory", "import"]);
    let backup = d.join("backup.db");
    let said = ok(&["db", "backup", backup.to_str().unwrap()]);
    assert!(said.contains("integrity ok"), "{said}");
    assert!(
        said.lines()
            .any(|l| l.trim_start().starts_with("party_version") && !l.ends_with(" 0 rows")),
        "{said}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = gateway(&config, &["db", "backup", backup.to_str().unwrap()]);
    assert!(!again.status.success(), "a backup over a file");

    // The store changes after the backup.
    let file = d.join("directory.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        before.replace("Herrengasse 7, 1010 Wien", "Minoritenplatz 9, 1010 Wien"),
    )
    .unwrap();
    ok(&["directory", "import"]);
    assert!(ok(&["directory", "export", "--format", "json"]).contains("Minoritenplatz 9"));

    // A damaged copy of the backup is refused; the store is untouched.
    let damaged = d.join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    let half = bytes.len() / 2;
    bytes.truncate(half);
    std::fs::write(&damaged, &bytes).unwrap();
    let out = gateway(&config, &["db", "restore", damaged.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(ok(&["directory", "export", "--format", "json"]).contains("Minoritenplatz 9"));

    let said = ok(&["db", "restore", backup.to_str().unwrap()]);
    assert!(said.contains("the store it replaced is kept as"), "{said}");
    let json = ok(&["directory", "export", "--format", "json"]);
    assert!(
        json.contains("Herrengasse 7") && !json.contains("Minoritenplatz 9"),
        "{json}"
    );
    let aside = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("nfp-gateway.db.before-restore-")
        })
        .count();
    assert_eq!(aside, 1, "the replaced store is kept");
}

/// The gateway's key passphrase-protected and both it and its passphrase
/// given as systemd credentials (`credential:NAME` in $CREDENTIALS_DIRECTORY,
/// as `LoadCredentialEncrypted=` provides them): no secret in the
/// configuration, the key file useless without the passphrase, GnuPG reads it
/// with the passphrase.
#[test]
fn the_key_and_its_passphrase_as_systemd_credentials() {
    let (dir, config) = demo_network();
    let d = dir.path();
    let creds = d.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(d.join("pass"), "Grenzschutz-2026 Wien\n").unwrap();
    let key = creds.join("gateway.key");
    let out = gateway(
        &config,
        &[
            "keys",
            "generate",
            "--address",
            "gateway@nfp-network.example",
            "--out",
            key.to_str().unwrap(),
            "--passphrase-file",
            d.join("pass").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    std::fs::rename(d.join("pass"), creds.join("gateway.pass")).unwrap();
    let toml = std::fs::read_to_string(&config).unwrap();
    let start = toml.find("\nsecret-key = ").unwrap() + 1;
    let end = start + toml[start..].find('\n').unwrap();
    let toml = format!(
        "{}secret-key = \"credential:gateway.key\"\nsecret-key-passphrase-file = \"credential:gateway.pass\"{}",
        &toml[..start],
        &toml[end..]
    );
    std::fs::write(&config, toml).unwrap();

    let with_creds = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("CREDENTIALS_DIRECTORY", &creds)
            .output()
            .unwrap()
    };
    let out = with_creds(&["keys", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .lines()
            .any(|l| l.starts_with("gateway") && l.ends_with(" ok")),
        "{}",
        text(&out)
    );
    // Without the credentials: said, not guessed.
    let out = gateway(&config, &["keys", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("LoadCredentialEncrypted=gateway.key"),
        "{}",
        text(&out)
    );
    // A wrong passphrase: the gateway's row is an error.
    std::fs::write(creds.join("gateway.pass"), "wrong\n").unwrap();
    let out = with_creds(&["keys", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong passphrase"), "{}", text(&out));

    // GnuPG imports the protected key and decrypts with it, given the passphrase.
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(d.join("pass"), "Grenzschutz-2026 Wien\n").unwrap();
    let pass_file = d.join("pass");
    let pass = [
        "--pinentry-mode",
        "loopback",
        "--passphrase-file",
        pass_file.to_str().unwrap(),
    ];
    let o = gpg(
        h,
        &[&pass[..], &["--import", key.to_str().unwrap()]].concat(),
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gpg(
        h,
        &["--armor", "--encrypt", "-r", "gateway@nfp-network.example"],
        Some(b"x\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gpg(h, &[&pass[..], &["--decrypt"]].concat(), Some(&o.stdout));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, b"x\n");
}

/// `audit list` and `audit export`: what the store audited, shown and
/// exported as a chain that `audit verify` checks; a changed line is found.
#[test]
fn the_audit_trail_is_listed_exported_and_verified() {
    let (dir, config) = demo_network();
    let d = dir.path();
    let ok = |args: &[&str]| succeeds(&config, args);
    ok(&["migrate"]);
    ok(&["directory", "import"]);
    let file = d.join("directory.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        before.replace("Herrengasse 7, 1010 Wien", "Minoritenplatz 9, 1010 Wien"),
    )
    .unwrap();
    ok(&["directory", "import"]);
    let list = ok(&["audit", "list"]);
    let entries: Vec<&str> = list
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(" entries"))
        .collect();
    assert!(entries.len() >= 2, "{list}");
    let party_at = ok(&["audit", "list", "--party", "AT"]);
    assert!(
        party_at
            .lines()
            .skip(1)
            .all(|l| l.contains(" AT ") || l.ends_with(" entries")),
        "{party_at}"
    );

    let export = d.join("audit.jsonl");
    let said = ok(&["audit", "export", "--out", export.to_str().unwrap()]);
    assert!(said.contains("audit entries exported"), "{said}");
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), entries.len());
    let verified = ok(&["audit", "verify", export.to_str().unwrap()]);
    assert!(verified.contains("chain intact"), "{verified}");
    // One changed character in the first entry's detail: found.
    let first = lines.lines().next().unwrap();
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    let detail = v["detail"].as_str().unwrap().to_string();
    let changed = lines.replacen(
        &serde_json::to_string(&detail).unwrap(),
        &serde_json::to_string(&format!("{detail}.")).unwrap(),
        1,
    );
    assert_ne!(changed, lines);
    let tampered = d.join("tampered.jsonl");
    std::fs::write(&tampered, changed).unwrap();
    let out = gateway(&config, &["audit", "verify", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("line 1"), "{}", text(&out));
    // A line removed: found too.
    let removed = d.join("removed.jsonl");
    std::fs::write(
        &removed,
        lines
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let out = gateway(&config, &["audit", "verify", removed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // The store's own chain, sealed by the commands above: intact; then an
    // entry edited in the database by someone who dropped the trigger.
    let said = ok(&["audit", "verify"]);
    assert!(said.contains("chain intact"), "{said}");
    let url = format!("sqlite://{}", d.join("nfp-gateway.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DROP TRIGGER audit_no_update")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE audit SET detail = detail || '.' WHERE id = 1")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let out = gateway(&config, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("entry 1 (seal 1) was changed"),
        "{}",
        text(&out)
    );
}

/// Error messages an operator meets first: each says what is wrong, once.
#[test]
fn first_errors_say_what_is_wrong() {
    let (dir, config) = demo_network();
    let d = dir.path();
    let empty = d.join("empty.eml");
    std::fs::write(&empty, "").unwrap();
    let out = gateway(&config, &["check", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is empty (0 bytes)"), "{}", text(&out));
    assert!(gateway(&config, &["migrate"]).status.success());
    let out = gateway(&config, &["outbox", "list", "--state", "bogus"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("possible values"), "{}", text(&out));
    let out = gateway(&config, &["directory", "show", "FR"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("holds no directory yet"),
        "{}",
        text(&out)
    );
    // A missing key file: the OS error once.
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replace("keys/gateway.sec.asc", "keys/missing.asc"),
    )
    .unwrap();
    let out = gateway(&config, &["keys", "check"]);
    let said = text(&out);
    assert_eq!(
        said.matches("No such file or directory").count(),
        1,
        "{said}"
    );
}

/// `directory export --format wkd DIR`: each address's file is where GnuPG
/// looks it up (`gpg-wks-client --print-wkd-url`), GnuPG reads it as the
/// directory's certificate with that address and no secret; the gateway's
/// own certificate is there; a certificate without its address is not
/// published and says so; a second export replaces the first.
#[test]
fn the_directory_is_published_as_a_web_key_directory() {
    let (dir, config) = demo_network();
    let wkd = dir.path().join("wkd");
    let out = succeeds(
        &config,
        &[
            "directory",
            "export",
            "--format",
            "wkd",
            wkd.to_str().unwrap(),
        ],
    );
    let home = dir.path().join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let mut published = 0;
    for line in out.lines().filter(|l| l.contains(".well-known/")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (email, file) = (fields[1], fields[2]);
        let url = Command::new("/usr/lib/gnupg/gpg-wks-client")
            .args(["--print-wkd-url", email])
            .output()
            .expect("gpg-wks-client runs (scripts/install-deps.sh installs it)");
        let url = String::from_utf8(url.stdout).unwrap();
        let (_, domain) = email.split_once('@').unwrap();
        let path = url
            .trim()
            .strip_prefix(&format!("https://openpgpkey.{domain}/"))
            .and_then(|p| p.split_once('?'))
            .map(|(p, _)| p)
            .unwrap_or_else(|| panic!("{url}"));
        assert_eq!(path, file, "{email}: GnuPG looks for {url}");
        let shown = gpg(
            &home,
            &["--show-keys", "--with-colons"],
            Some(&std::fs::read(wkd.join(file)).unwrap()),
        );
        let shown = String::from_utf8_lossy(&shown.stdout).to_string();
        assert_eq!(
            shown.lines().filter(|l| l.starts_with("pub:")).count(),
            1,
            "{email}: {shown}"
        );
        assert!(
            !shown.contains("sec:") && !shown.contains("ssb:"),
            "{email}: {shown}"
        );
        assert!(shown.contains(&format!("<{email}>")), "{email}: {shown}");
        assert!(wkd
            .join(file)
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("policy")
            .is_file());
        published += 1;
    }
    // The gateway and every party of the demo directory.
    assert!(out.contains("gateway@"), "{out}");
    assert_eq!(published, out.lines().count() - 1, "{out}");
    assert!(
        out.contains(&format!("{published} of {published} addresses published")),
        "{out}"
    );
    // The gateway's own file is its certificate, not its key.
    let own = out.lines().find(|l| l.starts_with("gateway")).unwrap();
    let own_file = wkd.join(own.split_whitespace().nth(2).unwrap());
    let cert = nfp_gateway::openpgp::GatewayKey::load(&dir.path().join("keys/gateway.sec.asc"))
        .map(|k| k.cert.fingerprint().to_hex())
        .unwrap_or_default();
    let shown = gpg(
        &home,
        &["--show-keys", "--with-colons"],
        Some(&std::fs::read(&own_file).unwrap()),
    );
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(&cert),
        "the gateway's own certificate"
    );

    // FR's certificate replaced by one for another address: not published,
    // exit status 1, and FR's earlier file is gone.
    let fr_line = out
        .lines()
        .find(|l| l.starts_with("FR "))
        .unwrap()
        .to_string();
    let fr_file = wkd.join(fr_line.split_whitespace().nth(2).unwrap());
    assert!(fr_file.is_file());
    let stranger = gpg(
        &home,
        &[
            "--quick-generate-key",
            "--passphrase",
            "",
            "Stranger <someone@elsewhere.example>",
            "ed25519",
            "default",
            "1y",
        ],
        None,
    );
    assert!(stranger.status.success(), "{}", text(&stranger));
    let exported = gpg(
        &home,
        &["--armor", "--export", "someone@elsewhere.example"],
        None,
    );
    std::fs::write(dir.path().join("certs/FR.asc"), &exported.stdout).unwrap();
    let again = gateway(
        &config,
        &[
            "directory",
            "export",
            "--format",
            "wkd",
            wkd.to_str().unwrap(),
        ],
    );
    let said = text(&again);
    assert_eq!(again.status.code(), Some(1), "{said}");
    assert!(
        said.contains("NOT PUBLISHED: certificate") && said.contains("no valid user ID <"),
        "{said}"
    );
    assert!(
        !fr_file.exists(),
        "FR's earlier certificate is no longer published"
    );
    // The formats that print take no directory; wkd needs one.
    assert!(!gateway(
        &config,
        &[
            "directory",
            "export",
            "--format",
            "json",
            wkd.to_str().unwrap()
        ]
    )
    .status
    .success());
    assert!(
        !gateway(&config, &["directory", "export", "--format", "wkd"])
            .status
            .success()
    );
}
