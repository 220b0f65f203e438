//! A real PostgreSQL server for the tests of the second store engine.
//!
//! `NFP_TEST_POSTGRES` (the URL of a server, as a superuser) names one;
//! without it, the first test that asks starts a private cluster with
//! `tests/pg/cluster.sh` (the Debian package `postgresql`, which
//! `scripts/install-deps.sh` installs) under /tmp, on a free loopback port,
//! and a watchdog stops and removes it when this test process has exited.
//! Each test gets a new empty database of its own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The server's URL (its `nfp` database, as the superuser `nfp`).
pub fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("NFP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => start_private(),
    })
}

fn start_private() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pg/cluster.sh");
    // Short: the server's unix socket lives in it.
    let dir = format!("/tmp/nfp-pg-{}", std::process::id());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let out = Command::new("bash")
        .arg(&script)
        .args(["start", &dir, &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("bash runs tests/pg/cluster.sh");
    assert!(
        out.status.success(),
        "tests/pg/cluster.sh start {dir} {port} failed (is the package postgresql installed? scripts/install-deps.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stops the cluster once this process is gone (tests have no global teardown).
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; bash '{script}' stop '{dir}'; rm -rf '{dir}'",
        pid = std::process::id(),
        script = script.display(),
    );
    // setsid -f: the watchdog runs in a session of its own and outlives this process.
    let started = Command::new("setsid")
        .args(["-f", "bash", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the cluster's watchdog starts");
    assert!(started.success(), "setsid -f: {started}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new, empty database on the server, named after `name`; its URL.
pub fn database(name: &str) -> String {
    let server = server();
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let db = format!("t_{clean}_{}_{n}", std::process::id());
    psql(server, &format!("CREATE DATABASE \"{db}\""));
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    format!("{base}/{db}")
}

/// Runs one SQL command with psql; panics with its error.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("psql runs (package postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
