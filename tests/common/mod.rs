//! Shared by the integration tests: the GnuPG-made fixture network, and
//! running the real `nfp-gateway` binary on it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

pub struct Fixtures {
    pub dir: PathBuf,
    pub now: String,
    pub manifest: Value,
}

impl Fixtures {
    pub fn cases(&self) -> &Vec<Value> {
        self.manifest["cases"]
            .as_array()
            .expect("manifest has cases")
    }
}

/// Makes the fixture network once per test process.
pub fn fixtures() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/make_fixtures.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("python3 runs (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "make_fixtures.py failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(dir.join("manifest.json")).expect("manifest.json written"),
        )
        .expect("manifest.json parses");
        let now = manifest["now"]
            .as_str()
            .expect("manifest has now")
            .to_string();
        Fixtures { dir, now, manifest }
    })
}

/// Runs `nfp-gateway check --now <manifest now>` on files; returns the exit
/// status and the decisions, one per file.
pub fn run_check(fx: &Fixtures, config: &str, files: &[String]) -> (i32, Vec<Value>) {
    run_check_at(fx, config, files, &fx.now)
}

pub fn run_check_at(fx: &Fixtures, config: &str, files: &[String], now: &str) -> (i32, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
        .current_dir(&fx.dir)
        .arg("--config")
        .arg(fx.dir.join(config))
        .args(["check", "--now", now])
        .args(files)
        .output()
        .expect("nfp-gateway runs");
    let status = out.status.code().expect("exit status");
    assert!(
        status == 0 || status == 1,
        "check failed to run ({status}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: Vec<Value> = String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(decisions.len(), files.len(), "one decision per message");
    (status, decisions)
}

/// An RFC 3339 time moved by `secs` seconds.
pub fn shift(t: &str, secs: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339");
    (t + chrono::Duration::seconds(secs)).to_rfc3339()
}
