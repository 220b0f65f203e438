//! Judgement throughput (issue 6, row 1): the whole `check` decision on the
//! fixed corpus of `bench/corpus.py`, one class of messages at a time, on
//! one core and on two; and, as the floor to compare with, raw Sequoia
//! decrypt+verify of the same messages' OpenPGP parts (a minimal helper: the
//! gateway's keys, the directory's certificates, one good signature).
//!
//! ```sh
//! python3 bench/corpus.py /tmp/corpus
//! NFP_BENCH_CORPUS=/tmp/corpus cargo bench --bench judge
//! ```
//! `bench/run.sh` does both and turns criterion's estimates into messages
//! per second. Without NFP_BENCH_CORPUS there is nothing to measure;
//! NFP_BENCH_LABEL prefixes the group names (criterion's result folders).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sequoia_openpgp as openpgp;

use nfp_gateway::check::{judge, Gateway, MemoryReplayGuard, Verdict};
use nfp_gateway::mime::outer;
use openpgp::crypto::{KeyPair, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};

struct Class {
    name: String,
    messages: Vec<Vec<u8>>,
    ciphertexts: Vec<Vec<u8>>,
}

struct Corpus {
    gw: Gateway,
    now: SystemTime,
    classes: Vec<Class>,
    keypairs: Vec<KeyPair>,
    certs: Vec<Cert>,
}

fn load(dir: &Path) -> Corpus {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .expect("manifest.json parses");
    let gw =
        Gateway::load(&dir.join("secretariat/gateway.toml")).expect("the corpus gateway loads");
    let now: SystemTime = chrono::DateTime::parse_from_rfc3339(manifest["now"].as_str().unwrap())
        .expect("now is RFC 3339")
        .into();
    let mut classes = Vec::new();
    for (name, class) in manifest["classes"].as_object().expect("classes") {
        let mut messages = Vec::new();
        let mut ciphertexts = Vec::new();
        for file in class["files"].as_array().unwrap() {
            let raw = std::fs::read(dir.join(file.as_str().unwrap())).unwrap();
            let d = judge(&gw, &raw, now, &mut MemoryReplayGuard::default());
            assert_eq!(d.verdict, Verdict::Accepted, "{file}: {}", d.detail);
            let envelope = outer::examine(&raw, &gw.config.limits, &gw.config.address).unwrap();
            ciphertexts.push(envelope.ciphertext);
            messages.push(raw);
        }
        classes.push(Class {
            name: name.clone(),
            messages,
            ciphertexts,
        });
    }
    let p = StandardPolicy::new();
    let tsk = Cert::from_file(&gw.config.secret_key).expect("the gateway key");
    let keypairs = tsk
        .keys()
        .with_policy(&p, None)
        .secret()
        .for_transport_encryption()
        .for_storage_encryption()
        .filter_map(|k| k.key().clone().into_keypair().ok())
        .collect();
    let certs = gw
        .directory
        .parties()
        .iter()
        .map(|p| p.cert.clone())
        .collect();
    Corpus {
        gw,
        now,
        classes,
        keypairs,
        certs,
    }
}

/// The least a decrypt+verify needs: our keys, the directory's certificates,
/// one good signature.
struct Raw<'a> {
    keypairs: &'a [KeyPair],
    certs: &'a [Cert],
}

impl VerificationHelper for Raw<'_> {
    fn get_certs(&mut self, _: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.to_vec())
    }
    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure {
            if let MessageLayer::SignatureGroup { results } = layer {
                if results.iter().any(|r| r.is_ok()) {
                    return Ok(());
                }
            }
        }
        Err(anyhow::anyhow!("no good signature"))
    }
}

impl DecryptionHelper for Raw<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for pkesk in pkesks {
            for pair in self.keypairs {
                let mut pair = pair.clone();
                if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                    if decrypt(algo, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow::anyhow!("no key"))
    }
}

fn raw_sequoia(c: &Corpus, p: &StandardPolicy, ciphertext: &[u8]) -> usize {
    use std::io::Read;
    let helper = Raw {
        keypairs: &c.keypairs,
        certs: &c.certs,
    };
    // As the gateway does: liveness at the end of the accepted clock skew.
    let horizon = c.now + c.gw.config.policy.signature_max_future;
    let mut d = DecryptorBuilder::from_bytes(ciphertext)
        .unwrap()
        .with_policy(p, horizon, helper)
        .expect("decrypts and verifies");
    let mut out = Vec::new();
    d.read_to_end(&mut out).unwrap();
    out.len()
}

fn judge_all(c: &Corpus, messages: &[Vec<u8>]) {
    for raw in messages {
        let d = judge(&c.gw, raw, c.now, &mut MemoryReplayGuard::default());
        assert_eq!(d.verdict, Verdict::Accepted);
    }
}

fn benches(cr: &mut Criterion) {
    let Some(dir) = std::env::var_os("NFP_BENCH_CORPUS").map(PathBuf::from) else {
        eprintln!("NFP_BENCH_CORPUS is not set: make a corpus with bench/corpus.py first");
        return;
    };
    let c = load(&dir);
    // A second corpus (another gateway key, say) keeps its own results.
    let label = std::env::var("NFP_BENCH_LABEL").unwrap_or_default();
    let p = StandardPolicy::new();
    for class in &c.classes {
        let mut g = cr.benchmark_group(format!("{label}{}", class.name));
        g.throughput(Throughput::Elements(class.messages.len() as u64));
        g.sample_size(10);
        g.bench_function("judge", |b| b.iter(|| judge_all(&c, &class.messages)));
        g.bench_function("judge-2-threads", |b| {
            let half = class.messages.len().div_ceil(2);
            b.iter(|| {
                std::thread::scope(|s| {
                    for chunk in class.messages.chunks(half) {
                        let c = &c;
                        s.spawn(move || judge_all(c, chunk));
                    }
                })
            })
        });
        g.bench_function("sequoia", |b| {
            b.iter(|| {
                for ct in &class.ciphertexts {
                    raw_sequoia(&c, &p, ct);
                }
            })
        });
        g.finish();
    }
}

criterion_group!(judgement, benches);
criterion_main!(judgement);
