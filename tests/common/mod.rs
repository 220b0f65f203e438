//! Shared by the integration tests: the GnuPG-made fixture network, and
//! running the real `nfp-gateway` binary on it.
#![allow(dead_code)]

pub mod corpus;
pub mod pg;
pub mod tmpfs;

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
        generate("make_fixtures.py", dir)
    })
}

/// Runs a generator of `tests/fixtures/` (`make_fixtures.py`,
/// `make_limits.py`) into `dir` and reads its manifest.
pub fn generate(script: &str, dir: PathBuf) -> Fixtures {
    let _ = std::fs::remove_dir_all(&dir);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .arg(&dir)
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
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
}

/// Every case of the manifest gets what it expects ([`case_failure`]);
/// the failures are listed together.
pub fn assert_every_case(fx: &Fixtures) {
    let failures: Vec<String> = fx
        .cases()
        .iter()
        .filter_map(|case| case_failure(fx, case))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        fx.cases().len(),
        failures.join("\n")
    );
}

/// Runs `check` on one manifest case (after the messages of its
/// `check_with`, in the same call); None when the decision matches every
/// expectation, contains none of the case's `absent` strings and the exit
/// status matches the verdict, else what differs.
pub fn case_failure(fx: &Fixtures, case: &Value) -> Option<String> {
    let name = case["name"].as_str().unwrap();
    let mut files: Vec<String> = case["check_with"]
        .as_array()
        .map(|a| a.iter().map(|f| f.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    files.push(case["file"].as_str().unwrap().to_string());
    let (status, decisions) = run_check(fx, case["config"].as_str().unwrap(), &files);
    let decision = decisions.last().expect("one decision per message");
    let expect = &case["expect"];
    let mut wrong = Vec::new();
    for (key, want) in expect.as_object().unwrap() {
        if key == "detail_has" {
            // Phrases the detail must contain (where a tag was read, what was repaired).
            let detail = decision["detail"].as_str().unwrap_or("");
            for phrase in want.as_array().unwrap() {
                let phrase = phrase.as_str().unwrap();
                if !detail.contains(phrase) {
                    wrong.push(format!("detail lacks {phrase:?}"));
                }
            }
            continue;
        }
        let got = project(decision, key);
        if got != *want {
            wrong.push(format!("{key}: want {want}, got {got}"));
        }
    }
    // What an unauthenticated header or an injected line must never
    // become: any part of the decision.
    let printed = decision.to_string();
    for absent in case["absent"].as_array().into_iter().flatten() {
        let absent = absent.as_str().unwrap();
        if printed.contains(absent) {
            wrong.push(format!("the decision contains {absent:?}"));
        }
    }
    let all_accepted = decisions.iter().all(|d| d["verdict"] == "accepted");
    let want_status = if expect["verdict"] == "accepted" && all_accepted {
        0
    } else {
        1
    };
    if status != want_status {
        wrong.push(format!("exit status {status}, want {want_status}"));
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "{name}: {}\n    detail: {}",
            wrong.join("; "),
            decision["detail"]
        )
    })
}

/// The value a manifest key is compared with: `sender` is the party id,
/// `route` the list of party ids, `attachments` name and type (and
/// `name_unprotected` when the name was read outside the encryption).
fn project(decision: &Value, key: &str) -> Value {
    match key {
        "sender" => decision["sender"]["party"].clone(),
        "route" => Value::Array(
            decision["route"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["party"].clone())
                .collect(),
        ),
        "attachments" => Value::Array(
            decision["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let mut seen = serde_json::json!({"name": a["name"], "type": a["type"]});
                    if a["name_unprotected"] == true {
                        seen["name_unprotected"] = true.into();
                    }
                    seen
                })
                .collect(),
        ),
        other => decision[other].clone(),
    }
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
