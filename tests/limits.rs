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

use common::{assert_every_case, Fixtures};

/// The generated cases; the directory (over 100 MB) goes when the test ends.
struct Generated(Fixtures);

impl Drop for Generated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

fn generate() -> Generated {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("limits-{}", std::process::id()));
    Generated(common::generate("make_limits.py", dir))
}

/// Every case gets the verdict and reason its generator wrote down (and,
/// for the accepted controls, the sender and kind), with the matching exit
/// status.
#[test]
fn every_resource_limit_attack_is_quarantined() {
    let generated = generate();
    let fx = &generated.0;
    assert!(!fx.cases().is_empty(), "make_limits.py wrote no cases");
    assert_every_case(fx);
}
