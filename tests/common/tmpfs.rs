//! A small, real filesystem that fills up: a tmpfs of a given size mounted
//! on a temporary folder (the suite runs as root, as `scripts/test.sh`
//! does), unmounted when dropped.

use std::path::Path;
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `kib` KiB.
    pub fn mount(kib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (scripts/test.sh runs the suite as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills every byte left with a file `filler`; returns its size.
    pub fn fill(&self) -> u64 {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0x5a_u8; 4096];
        let mut written = 0;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        written
    }

    /// Frees what `fill` took.
    pub fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
