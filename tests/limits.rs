//! Resource limits (issue 5): the attack inputs of
//! `tests/fixtures/make_limits.py` (compression recursion, bzip2, ZIP and
//! zlib bombs, MIME nested 10,000 deep, 100,000 MIME parts, 100 MB parts,
//! outside and inside the encryption), judged by the real `nfp-gateway
//! check`. Each is quarantined as `limits`; the control just under the caps
//! is accepted.
//!
//! The inputs are too big to commit: make_limits.py makes them (GnuPG keys,
//! signatures and ciphertext, a few seconds) in Cargo's target tmpdir, and
//! they are removed afterwards. Time and memory are measured by hand
//! (`make_limits.py --huge DIR`, then `/usr/bin/time -v nfp-gateway check
//! ...`), never asserted here.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::{run_check, Fixtures};

/// The generated cases; the directory (over 100 MB) goes when the test ends.
struct Generated(Fixtures);

impl Drop for Generated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

fn generate() -> Generated {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("limits-{}", std::process::id()));
    let mut generated = Generated(Fixtures {
        dir: dir.clone(),
        now: String::new(),
        manifest: Value::Null,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/make_limits.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "make_limits.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("manifest.json written"),
    )
    .expect("manifest.json parses");
    generated.0.now = manifest["now"]
        .as_str()
        .expect("manifest has now")
        .to_string();
    generated.0.manifest = manifest;
    generated
}

/// Every case gets the verdict and reason its generator wrote down (and,
/// for the accepted controls, the sender and kind), with the matching exit
/// status.
#[test]
fn every_resource_limit_attack_is_quarantined() {
    let generated = generate();
    let fx = &generated.0;
    assert!(!fx.cases().is_empty(), "make_limits.py wrote no cases");
    let mut failures = Vec::new();
    for case in fx.cases() {
        let name = case["name"].as_str().unwrap();
        let file = case["file"].as_str().unwrap().to_string();
        let (status, decisions) = run_check(fx, case["config"].as_str().unwrap(), &[file]);
        let decision = &decisions[0];
        let mut wrong = Vec::new();
        for (key, want) in case["expect"].as_object().unwrap() {
            let got = match key.as_str() {
                "sender" => decision["sender"]["party"].clone(),
                other => decision[other].clone(),
            };
            if got != *want {
                wrong.push(format!("{key}: want {want}, got {got}"));
            }
        }
        let want_status = if case["expect"]["verdict"] == "accepted" {
            0
        } else {
            1
        };
        if status != want_status {
            wrong.push(format!("exit status {status}, want {want_status}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{name}: {}\n    detail: {}",
                wrong.join("; "),
                decision["detail"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        fx.cases().len(),
        failures.join("\n")
    );
}
