//! No input makes the gateway panic, and no change to a real message makes
//! it accept something it would not have accepted: property tests over
//! arbitrary bytes and over mutations of the GnuPG-made fixtures.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

use proptest::prelude::*;
use serde_json::Value;

use nfp_gateway::check::{judge, Gateway, MemoryReplayGuard, Verdict};

struct World {
    gw: Gateway,
    now: SystemTime,
    /// Small fixtures of the Secretariat's network, with their original decision.
    messages: Vec<(String, Vec<u8>, Value)>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let fx = common::fixtures();
        let gw =
            Gateway::load(&fx.dir.join("secretariat/gateway.toml")).expect("fixture config loads");
        let now: SystemTime = chrono::DateTime::parse_from_rfc3339(&fx.now)
            .unwrap()
            .with_timezone(&chrono::Utc)
            .into();
        let mut messages = Vec::new();
        for case in fx.cases() {
            if case["config"] != "secretariat/gateway.toml" {
                continue;
            }
            let path: PathBuf = fx.dir.join(case["file"].as_str().unwrap());
            let raw = std::fs::read(&path).unwrap();
            if raw.len() > 256 * 1024 || case["name"].as_str().unwrap().contains("bomb") {
                continue;
            }
            let decision =
                serde_json::to_value(judge(&gw, &raw, now, &mut MemoryReplayGuard::default()))
                    .unwrap();
            messages.push((case["name"].as_str().unwrap().to_string(), raw, decision));
        }
        assert!(messages.len() > 20, "enough fixtures to mutate");
        World { gw, now, messages }
    })
}

/// The parts of a decision that may only come from authenticated content.
/// An attachment name the decision marks as read outside the encryption
/// (and the type told by it) is not one of them.
fn authenticated_view(d: &Value) -> Value {
    let attachments: Vec<Value> = d["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| match a["name_unprotected"] == true {
            true => serde_json::json!({"size": a["size"], "name_unprotected": true}),
            false => a.clone(),
        })
        .collect();
    serde_json::json!({
        "sender": d["sender"], "signed_at": d["signed_at"], "kind": d["kind"], "topics": d["topics"],
        "target": d["target"], "route": d["route"], "attachments": attachments, "language": d["language"],
    })
}

/// Refusals that no change to the message can overturn without the signer's key.
const CRYPTOGRAPHIC: [&str; 9] = [
    "not_encrypted",
    "not_signed",
    "bad_signature",
    "unknown_signer",
    "key_expired",
    "key_revoked",
    "integrity_failure",
    "not_for_us",
    "stale_signature",
];

/// Whether the decision read a GpgOL message (its attachments encrypted
/// and signed each on its own).
fn repaired_as_gpgol(d: &Value) -> bool {
    d["repairs"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "gpgol_inline_attachments"))
}

/// The attachment whose own signature or encryption refused a GpgOL
/// message (its detail begins "attachment NAME: ").
fn refused_attachment(d: &Value) -> Option<String> {
    let detail = d["detail"].as_str()?.strip_prefix("attachment ")?;
    repaired_as_gpgol(d).then(|| detail.split(": ").next().unwrap().to_string())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..32)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(raw: &mut Vec<u8>, m: &Mutation) {
    if raw.is_empty() {
        return;
    }
    let n = raw.len();
    match m {
        Mutation::Flip { at, bit } => raw[at % n] ^= 1 << bit,
        Mutation::Set { at, byte } => raw[at % n] = *byte,
        Mutation::Delete { at, len } => {
            let s = at % n;
            raw.drain(s..(s + len).min(n));
        }
        Mutation::Insert { at, bytes } => {
            let s = at % n;
            raw.splice(s..s, bytes.iter().copied());
        }
        Mutation::Truncate { at } => raw.truncate(at % n),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_quarantined_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..8192)) {
        let w = world();
        let d = judge(&w.gw, &bytes, w.now, &mut MemoryReplayGuard::default());
        prop_assert_eq!(d.verdict, Verdict::Quarantined);
    }

    #[test]
    fn a_mutated_message_is_quarantined_or_says_exactly_what_the_original_said(
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let w = world();
        let (name, original, before) = &w.messages[pick % w.messages.len()];
        let mut raw = original.clone();
        for m in &mutations {
            apply(&mut raw, m);
        }
        let after = serde_json::to_value(judge(&w.gw, &raw, w.now, &mut MemoryReplayGuard::default())).unwrap();
        says_what_the_original_said(name, original, before, &after)?;
    }
}

/// A mutant is quarantined, or accepted only where the original was or
/// could have been, saying exactly what the original's authenticated
/// content said.
fn says_what_the_original_said(
    name: &str,
    original: &[u8],
    before: &Value,
    after: &Value,
) -> Result<(), TestCaseError> {
    if after["verdict"] == "accepted" {
        // Unauthenticated wrapping can be repaired by a mutation (an
        // Auto-Submitted header deleted, an extra part cut off); a
        // cryptographic refusal never can.
        let reason = before["reason"].as_str().unwrap_or("");
        match refused_attachment(before) {
            // GpgOL encrypts and signs each attachment on its own: a
            // mutation that cuts the refused attachment off whole
            // leaves what the text's signer really sent, which is
            // accepted. It must be gone, never read as good.
            Some(refused) => {
                let names: Vec<&str> = after["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["name"].as_str().unwrap())
                    .collect();
                prop_assert!(
                    !names.contains(&refused.as_str()),
                    "{}: a mutation turned {} of attachment {} into accepted",
                    name,
                    reason,
                    refused
                );
                let attached = original.windows(9).filter(|w| w == b"filename=").count();
                prop_assert!(
                    names.len() < attached,
                    "{}: {} attachments accepted of {}",
                    name,
                    names.len(),
                    attached
                );
            }
            None => prop_assert!(
                !CRYPTOGRAPHIC.contains(&reason),
                "{}: a mutation turned {} into accepted",
                name,
                reason
            ),
        }
        if before["verdict"] == "accepted" {
            prop_assert_eq!(
                authenticated_view(before),
                authenticated_view(after),
                "{}: a mutation changed authenticated content",
                name
            );
        }
    }
    Ok(())
}

/// What the property above met in CI (stop 29): one byte of a GpgOL
/// attachment's name changed, and the decision listed the changed name as
/// if it were signed. Every byte of every accepted GpgOL message, changed
/// in turn, leaves what the original's authenticated content said, or
/// refuses it.
#[test]
fn every_byte_of_a_gpgol_message_changed_in_turn_leaves_its_authenticated_content() {
    let w = world();
    let mut swept = 0;
    for (name, original, before) in &w.messages {
        if before["verdict"] != "accepted" || !repaired_as_gpgol(before) {
            continue;
        }
        for at in 0..original.len() {
            let mut raw = original.clone();
            raw[at] = if raw[at] == b'!' { b'?' } else { b'!' };
            let after =
                serde_json::to_value(judge(&w.gw, &raw, w.now, &mut MemoryReplayGuard::default()))
                    .unwrap();
            if let Err(e) = says_what_the_original_said(name, original, before, &after) {
                panic!("byte {at} changed: {e}");
            }
        }
        swept += 1;
    }
    assert!(swept >= 3, "{swept} accepted GpgOL messages swept");
}

/// What the property above met in CI: a GpgOL message whose attachment
/// Mallory signed, cut off just after the last boundary line, is AT's own
/// text and attachment, and accepted as such; the refused attachment is
/// gone, not read. Cut inside that attachment, it is refused.
#[test]
fn cutting_off_a_refused_gpgol_attachment_leaves_the_senders_own_message() {
    let w = world();
    let (_, raw, before) = w
        .messages
        .iter()
        .find(|(name, _, _)| name == "unknown_signer_gpgol_attachment_signed_by_mallory")
        .expect("the fixture");
    assert_eq!(before["reason"], "unknown_signer");
    let text = std::str::from_utf8(raw).unwrap();
    let last = text
        .rfind("\nContent-Type: application/octet-stream; name=\"anhang.pdf.pgp\"")
        .unwrap();
    let judged = |raw: &[u8]| {
        serde_json::to_value(judge(&w.gw, raw, w.now, &mut MemoryReplayGuard::default())).unwrap()
    };
    let cut = judged(&raw[..last]);
    assert_eq!(cut["verdict"], "accepted", "{cut}");
    assert_eq!(cut["sender"]["party"], "AT");
    assert_eq!(cut["attachments"].as_array().unwrap().len(), 1, "{cut}");
    assert_eq!(cut["attachments"][0]["name"], "bericht.pdf");
    let body = text[last..].find("\r\n\r\n").unwrap() + last + 4;
    let inside = judged(&raw[..body + 40]);
    assert_eq!(inside["verdict"], "quarantined", "{inside}");
}
