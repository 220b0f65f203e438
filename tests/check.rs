//! `nfp-gateway check` on real mail: every fixture made by GnuPG (and
//! Sequoia's `sq`) as NFP staff would send it, judged by the real binary.
//!
//! The fixtures and their expected decisions come from
//! `tests/fixtures/make_fixtures.py`, run once per test process into
//! Cargo's target tmpdir. It needs `gpg`, `sq` and `python3` (installed by
//! `scripts/test.sh`); a missing tool fails the tests, it never skips them.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::{assert_every_case, fixtures};

/// Each manifest case: the decision printed for the case's file matches
/// every expectation the generator wrote down, contains none of the case's
/// `absent` strings, and the exit status matches the verdict.
#[test]
fn every_fixture_gets_its_expected_decision() {
    let fx = fixtures();
    assert_every_case(fx);
}

/// Every stable reason code is proven by at least one real message.
#[test]
fn every_reason_code_has_a_fixture() {
    let fx = fixtures();
    let covered: BTreeSet<&str> = fx
        .cases()
        .iter()
        .filter_map(|c| c["expect"]["reason"].as_str())
        .collect();
    // rate_limited needs the store's history: `check` never decides it; the
    // daemon scenario `storm_of_forgeries_and_rate_limits` proves it.
    let all: BTreeSet<&str> = nfp_gateway::reason::Reason::ALL
        .iter()
        .map(|r| r.code())
        .filter(|&c| c != "rate_limited")
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "reason codes without a fixture: {missing:?}"
    );
}

/// Both forms, all six languages and every kind appear among accepted fixtures.
#[test]
fn accepted_fixtures_cover_every_language_and_kind() {
    let fx = fixtures();
    let accepted: Vec<&Value> = fx
        .cases()
        .iter()
        .filter(|c| c["expect"]["verdict"] == "accepted")
        .collect();
    let langs: BTreeSet<&str> = accepted
        .iter()
        .filter_map(|c| c["expect"]["language"].as_str())
        .collect();
    assert_eq!(langs.len(), 6, "languages covered: {langs:?}");
    let kinds: BTreeSet<&str> = accepted
        .iter()
        .filter_map(|c| c["expect"]["kind"].as_str())
        .collect();
    for k in [
        "assistance_request",
        "best_practice",
        "contact_update",
        "information_request",
        "information_reply",
        "circular",
        "unclassified",
    ] {
        assert!(kinds.contains(k), "no accepted fixture of kind {k}");
    }
}

/// `--now` makes decisions reproducible: a message accepted at the manifest's
/// time is stale a month later.
#[test]
fn the_clock_is_an_input() {
    let fx = fixtures();
    let case = fx
        .cases()
        .iter()
        .find(|c| c["expect"]["verdict"] == "accepted")
        .unwrap();
    let file = case["file"].as_str().unwrap();
    let config = case["config"].as_str().unwrap();
    let later = common::shift(&fx.now, 30 * 86400);
    let (status, d) = common::run_check_at(fx, config, &[file.to_string()], &later);
    assert_eq!(status, 1);
    assert_eq!(d[0]["reason"], "stale_signature", "{}", d[0]);
    assert!(
        d[0]["sender"].is_null(),
        "nothing about a quarantined message is reported"
    );
    assert!(d[0]["route"].as_array().unwrap().is_empty());
}

/// Runs `check` (on nothing) with the Secretariat's configuration as
/// `edit` changes it, written to `secretariat/NAME`: the exit status must
/// be 2 (the gateway could not start); returns what it said on stderr.
fn check_refuses_to_start(name: &str, edit: impl Fn(&str) -> String) -> String {
    let fx = fixtures();
    let cfg = fx.dir.join("secretariat").join(name);
    let good = std::fs::read_to_string(fx.dir.join("secretariat/gateway.toml")).unwrap();
    let bad = edit(&good);
    assert_ne!(good, bad, "the edit changed nothing");
    std::fs::write(&cfg, bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
        .args(["--config", cfg.to_str().unwrap(), "check", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A configuration error is exit status 2 with a message naming the key.
#[test]
fn a_bad_config_is_exit_2() {
    let err = check_refuses_to_start("bad.toml", |good| format!("{good}\nsecret-keys = \"x\"\n"));
    assert!(
        err.contains("secret-keys") && err.contains("bad.toml"),
        "{err}"
    );
}

/// A gateway key with a secret key the crypto backend cannot use (an
/// ElGamal subkey, made by gpg) is refused at start-up with that reason,
/// instead of every message encrypted to it failing later.
#[test]
fn a_gateway_key_the_backend_cannot_use_is_refused() {
    let err = check_refuses_to_start("gateway-elgamal.toml", |good| {
        good.replace(
            "keys/gateway.sec.asc",
            "../unusable/gateway-elgamal.sec.asc",
        )
    });
    assert!(
        err.contains("ElGamal") && err.contains("cannot use") && err.contains("OpenSSL 3.5"),
        "{err}"
    );
}

/// After a rotation (`secret-key` the new key, `previous-secret-keys` the
/// old one), mail encrypted to the old key during the overlap is still
/// read and accepted; without the old key it is `not_for_us`; `keys check`
/// lists the previous key, which decrypts and never signs.
#[test]
fn a_previous_key_still_decrypts_after_a_rotation() {
    let fx = fixtures();
    let dir = fx.dir.join("secretariat");
    let new = dir.join("keys/rotated.sec.asc");
    if !new.exists() {
        nfp_gateway::keys::generate(
            "gateway@nfp-network.example",
            "NFP Network Gateway (rotated)",
            std::time::Duration::from_secs(2 * 365 * 86_400),
            &new,
            None,
        )
        .unwrap();
    }
    let good = std::fs::read_to_string(dir.join("gateway.toml")).unwrap();
    let config = |name: &str, previous: bool| {
        let mut text = good.replace("keys/gateway.sec.asc", "keys/rotated.sec.asc");
        if previous {
            text = text.replace(
                "secret-key = ",
                "previous-secret-keys = [\"keys/gateway.sec.asc\"]\nsecret-key = ",
            );
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let message = fx.dir.join("messages/pgpmime_protected_assistance_de.eml");
    let check = |cfg: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
            .args(["--config", cfg.to_str().unwrap(), "check", "--now", &fx.now])
            .arg(&message)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let overlap = check(&config("rotated.toml", true));
    assert_eq!(overlap["verdict"], "accepted", "{overlap}");
    let after = check(&config("rotated-alone.toml", false));
    assert_eq!(after["reason"], "not_for_us", "{after}");
    let keys = std::process::Command::new(env!("CARGO_BIN_EXE_nfp-gateway"))
        .args([
            "--config",
            dir.join("rotated.toml").to_str().unwrap(),
            "keys",
            "check",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&keys.stdout);
    let old = nfp_gateway::openpgp::GatewayKey::load(&dir.join("keys/gateway.sec.asc")).unwrap();
    let row = said
        .lines()
        .find(|l| l.starts_with("previous"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        row.contains(&old.cert.fingerprint().to_hex()) && row.contains("yes     NO"),
        "{said}"
    );
}
