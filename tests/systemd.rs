//! The systemd unit stays sandboxed: `systemd-analyze security` rates its
//! exposure (0 safest, 10 unsafe); a change that loosens the sandbox past
//! 1.5 fails here.

use std::process::Command;

#[test]
fn the_service_unit_exposure_stays_at_most_1_5() {
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../systemd/nfp-gateway.service"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=15", unit])
        .output()
        .expect("systemd-analyze runs (scripts/install-deps.sh installs systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rating = text.lines().last().unwrap_or("");
    assert!(out.status.success(), "exposure above 1.5: {rating}\n{text}");
    assert!(rating.contains("Overall exposure level"), "{text}");
}
