//! The fuzz corpus as a regression test: every committed input of every
//! cargo-fuzz target (`fuzz/seeds/`, the minimised corpus packed in
//! `fuzz/corpus/<target>.tar.gz` and the crashes the fuzzer found,
//! `fuzz/regressions/`) runs through the same entry point as in
//! `fuzz/fuzz_targets/`. The fuzzer itself runs in `fuzz/run.sh`,
//! not in CI.

use std::path::{Path, PathBuf};

use nfp_gateway::check::{judge, Gateway, MemoryReplayGuard, Verdict};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The committed corpus of a target (`fuzz/corpus/<target>.tar.gz`, made
/// by fuzz/pack.sh), unpacked with tar into the test's scratch folder.
fn unpacked_corpus(target: &str) -> Option<PathBuf> {
    let packed = fuzz_dir().join("corpus").join(format!("{target}.tar.gz"));
    if !packed.exists() {
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fuzz-corpus-{}", std::process::id()))
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&packed)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("tar runs");
    assert!(status.success(), "unpacking {}", packed.display());
    Some(dir)
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let dirs = [
        Some(fuzz_dir().join("seeds").join(target)),
        unpacked_corpus(target),
        Some(fuzz_dir().join("regressions").join(target)),
    ];
    for dir in dirs.into_iter().flatten() {
        let Ok(dir) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in dir {
            let path = entry.expect("a readable corpus folder").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_corpus_input_passes_its_target() {
    nfp_gateway::fuzz::panic_policy();
    for (target, run) in nfp_gateway::fuzz::TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "fuzz/seeds/{target} has seeds");
        for file in &files {
            // (A fuzzer running beside the test may remove files it reduced.)
            let Ok(data) = std::fs::read(file) else {
                continue;
            };
            run(&data);
        }
        eprintln!("{target}: {} inputs", files.len());
    }
}

/// The seeds reach past decryption and verification in the fuzzing world:
/// without that the check target would only ever fuzz refusals.
#[test]
fn the_check_seeds_are_accepted_at_the_fuzzing_clock() {
    let gw = Gateway::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gateway.toml"))
        .expect("the demo network loads");
    let now = chrono::DateTime::parse_from_rfc3339(nfp_gateway::fuzz::NOW)
        .unwrap()
        .into();
    let mut accepted = Vec::new();
    for file in std::fs::read_dir(fuzz_dir().join("seeds/check")).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&path).unwrap();
        let d = judge(&gw, &raw, now, &mut MemoryReplayGuard::default());
        // The seeds of the repairs reach past them (fuzz/make_corpus.py).
        if name.starts_with("repaired-") {
            assert!(
                d.verdict == Verdict::Accepted && !d.repairs.is_empty(),
                "{name}: {} {:?}",
                d.detail,
                d.repairs
            );
        }
        if name.starts_with("added-") {
            assert!(
                d.detail.contains("a genuine message signed by"),
                "{name}: {}",
                d.detail
            );
        }
        if d.verdict == Verdict::Accepted {
            accepted.push(name);
        }
    }
    accepted.sort();
    assert!(
        accepted.len() >= 6,
        "only {accepted:?} of the check seeds are accepted at {}",
        nfp_gateway::fuzz::NOW
    );
}
