//! The README's first command, `scripts/demo.sh`, is itself a test: it
//! judges the demo samples, runs both demo gateways against a private mail
//! stack, and fails when any mail is missing, extra, or not decryptable by
//! its recipient. This keeps the demo working.

use std::process::Command;

#[test]
fn the_demo_runs_and_every_mail_arrives_where_it_should() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/demo.sh"))
        .current_dir(root)
        .env("NFP_GATEWAY_BIN", env!("CARGO_BIN_EXE_nfp-gateway"))
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scripts/demo.sh failed:\n{text}");
    assert!(
        text.contains("every mail arrived where it should"),
        "{text}"
    );
}
