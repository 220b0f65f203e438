//! The Debian package (issue 17): `scripts/package.sh` builds it from the
//! binary under test, and `tests/package/install.sh` installs it on this
//! machine with apt-get, checks what an operator meets (the service's user
//! and directories, nothing enabled or started, man pages, completions),
//! starts it as the README's "Install on a server" says, runs the demo
//! network on the installed binary, then removes and purges it.

use std::process::Command;

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn the_package_installs_starts_as_documented_and_purges_cleanly() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = tempfile::tempdir().unwrap();
    let built = run(
        "scripts/package.sh",
        Command::new("bash")
            .arg(format!("{root}/scripts/package.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_nfp-gateway"), "--out"])
            .arg(out.path()),
    );
    let deb = built.lines().last().unwrap_or_default().trim().to_string();
    assert!(deb.ends_with(".deb"), "{built}");
    let contents = run("dpkg-deb -c", Command::new("dpkg-deb").args(["-c", &deb]));
    for path in [
        "./usr/bin/nfp-gateway",
        "./usr/lib/systemd/system/nfp-gateway.service",
        "./usr/share/doc/nfp-gateway/copyright",
        "./usr/share/man/man1/nfp-gateway-rollcall-start.1.gz",
        "./usr/share/bash-completion/completions/nfp-gateway",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    assert!(
        !contents.contains("./etc/"),
        "the package ships files in /etc:\n{contents}"
    );
    let text = run(
        "tests/package/install.sh",
        Command::new("bash")
            .arg(format!("{root}/tests/package/install.sh"))
            .arg(&deb)
            .current_dir(root),
    );
    assert!(
        text.contains(
            "the package installs, starts as documented, runs the demo, removes and purges cleanly"
        ),
        "{text}"
    );
}
