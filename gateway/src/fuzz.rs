//! The fuzzed entry points: one function per cargo-fuzz target in `fuzz/`,
//! shared with `tests/fuzz_corpus.rs`, which runs every committed corpus
//! input through them in CI (the corpus as a regression test, not the fuzzer).
//!
//! Each takes arbitrary bytes, must return without panicking, and checks the
//! invariants that must hold whatever the input. They run in the demo
//! network (`examples/`: its configuration, directory and committed DEMO
//! gateway key) at the fixed time [`NOW`], just after the seed corpus was
//! signed, so that the seeds get through decryption and verification and the
//! fuzzer explores from accepted messages outward.
//!
//! A panic in this crate's own code is a bug even where [`check::judge`]
//! catches it: [`panic_policy`] makes it abort, which the fuzzer records as a
//! crash. Panics inside dependencies (Sequoia 2.4.2 has one on truncated
//! SEIPDv1, see `openpgp::decrypt`) are what the gateway's `catch_unwind`
//! guards exist for: they are printed and the guard turns them into a refusal.

use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};
use std::time::SystemTime;

use crate::check::{self, Gateway, MemoryReplayGuard, Verdict};
use crate::config::Config;
use crate::directory::{self, update, Directory, Entry};
use crate::mime::{inner, outer};
use crate::openpgp;
use crate::reason::Reason;

/// The fuzzing clock: a few minutes after `fuzz/corpus/` was made by
/// `fuzz/make_corpus.sh` (signatures older than 7 days are stale).
pub const NOW: &str = "2026-11-27T01:30:00Z";

struct World {
    gw: Gateway,
    now: SystemTime,
    /// Austria's entry, which contact updates are applied to.
    entry: Entry,
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        panic_policy();
        let gw = Gateway::load(&examples().join("gateway.toml"))
            .expect("the demo network in examples/ loads");
        let now = chrono::DateTime::parse_from_rfc3339(NOW)
            .expect("NOW is RFC 3339")
            .into();
        let entry = gw.directory.get("AT").expect("the demo has AT").entry();
        World { gw, now, entry }
    })
}

/// Aborts on a panic in this crate's code (`gateway/src/`); lets any other
/// panic unwind: a dependency's to the guard that catches it (libFuzzer's
/// harness aborts on one that no guard catches), a test's to the test.
pub fn panic_policy() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The standard hook, not whatever was set before (libFuzzer's
        // aborts on every panic, even one a guard catches).
        let _ = std::panic::take_hook();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            let file = info.location().map(|l| l.file()).unwrap_or("");
            if file.contains("gateway/src/") {
                eprintln!("nfp-gateway's own code panicked: a bug, whatever the input");
                std::process::abort();
            }
        }));
    });
}

/// The whole `check` decision, as the daemon takes it, and the envelope the
/// daemon records for every message before judging it.
pub fn check(data: &[u8]) {
    let w = world();
    let _ = crate::intake::envelope_of(data);
    let d = check::judge(&w.gw, data, w.now, &mut MemoryReplayGuard::default());
    match d.verdict {
        Verdict::Accepted => {
            assert!(d.reason.is_none(), "an accepted message has no reason");
            let sender = d.sender.as_ref().expect("an accepted message has a sender");
            let party =
                w.gw.directory
                    .get(&sender.party)
                    .expect("a directory party");
            assert_eq!(
                party.email, sender.email,
                "the sender is the signer's party"
            );
            assert!(!d.route.is_empty(), "an accepted message goes somewhere");
        }
        Verdict::Quarantined => {
            assert!(d.reason.is_some(), "a quarantined message has a reason");
            assert!(d.sender.is_none() || d.reason != Some(Reason::UnknownSigner));
        }
    }
    serde_json::to_string(&d).expect("a decision serialises");
}

/// The MIME layers without the cryptography: the outer shape, and the same
/// bytes read as decrypted content (PGP/MIME entity or inline text).
///
/// Guarded as `check::judge` guards them in the gateway: a panic inside
/// mail-parser (0.11.9 has one, "Invalid part ID, could not find
/// multipart", found by this target; `fuzz/regressions/mime`) unwinds to
/// this guard, while one in the gateway's own code still aborts.
pub fn mime(data: &[u8]) {
    let _ = std::panic::catch_unwind(|| mime_unguarded(data));
}

fn mime_unguarded(data: &[u8]) {
    let w = world();
    let limits = &w.gw.config.limits;
    let _ = outer::examine(data, limits, &w.gw.config.address);
    if let Ok(msg) = inner::parse_entity(data, limits) {
        let _ = inner::signed_layer(&msg);
        let _ = inner::refuse_nested_openpgp(&msg);
        if let Ok(content) = inner::mime_content(&msg) {
            for a in &content.attachments {
                let shown = |c: char| !c.is_control() && !crate::mime::is_invisible_format(c);
                assert!(
                    !a.name.is_empty() && a.name.chars().all(|c| shown(c) && c != '/' && c != '\\'),
                    "an attachment name is shown sanitized: {:?}",
                    a.name
                );
                assert!(a.content_type.chars().all(shown), "{:?}", a.content_type);
            }
        }
    }
    let _ = inner::inline_content(data);
    repairs(data);
}

/// The repairs before judgement, each on its own: a repair that rebuilds
/// the armor gives one that reads back as itself (the discard repair passes
/// an RFC 3156 part's content on as it is, as the canonical shape does),
/// and only the discard repair discards parts.
fn repairs(data: &[u8]) {
    use crate::mime::repair::{self, Armor, Repair};
    if let Ok(msg) = crate::mime::parse(data) {
        for r in [
            repair::repair(&msg),
            repair::unprotected_parts(&msg, "nfp@bmi.at.example"),
        ]
        .into_iter()
        .flatten()
        {
            if r.repair != Repair::UnprotectedPartsDiscarded {
                let text = std::str::from_utf8(&r.ciphertext).expect("a repair writes ASCII armor");
                assert!(
                    Armor::parse(text).is_some(),
                    "a repair writes armor it reads"
                );
            }
            assert!(
                r.discarded.is_empty() || r.repair == Repair::UnprotectedPartsDiscarded,
                "only the discard repair discards"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(a) = Armor::parse(text) {
            assert_eq!(Armor::parse(&a.to_string()), Some(a), "armor reads back");
        }
        let _ = repair::html_text(text);
    }
}

/// An OpenPGP message as the gateway decrypts and verifies it.
pub fn openpgp(data: &[u8]) {
    let w = world();
    let cfg = &w.gw.config;
    let v = openpgp::Verifier {
        policy: &w.gw.policy,
        now: w.now,
        max_age: cfg.policy.signature_max_age,
        max_future: cfg.policy.signature_max_future,
        key: &w.gw.key,
        directory: &w.gw.directory,
        max_plaintext: cfg.limits.max_decrypted_size,
    };
    if let Ok(d) = openpgp::decrypt(&v, data) {
        assert!(d.plaintext.len() <= cfg.limits.max_decrypted_size);
    }
}

/// A contact update (vCard 4.0/3.0 or the text form, in MIME or inline),
/// applied to an entry, and the entry exported as vCard and HTML.
pub fn contact(data: &[u8]) {
    let w = world();
    for is_mime in [true, false] {
        if let update::Parsed::Update(u) = update::parse(data, is_mime) {
            let after = update::apply(&w.entry, &u);
            let _ = after.changes_from(Some(&w.entry));
            let entries = [after];
            let _ = directory::export::vcard(&entries);
            let _ = directory::export::html(&entries, &[], crate::rfc3339(w.now).as_str());
        }
    }
}

/// `gateway.toml`, as if it were the demo's.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, &examples().join("gateway.toml"));
    }
}

/// `directory.toml`, as if it were the demo's (certificates from its folder).
pub fn directory(data: &[u8]) {
    panic_policy();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Directory::parse(text, &examples().join("directory.toml"));
    }
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The targets by name, for the corpus test.
pub const TARGETS: [(&str, Target); 6] = [
    ("check", check),
    ("mime", mime),
    ("openpgp", openpgp),
    ("contact", contact),
    ("config", config),
    ("directory", directory),
];
