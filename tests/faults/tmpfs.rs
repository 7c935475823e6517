//! A small tmpfs mounted for one test, so the ledger's disk can be filled
//! without touching any real filesystem. Needs root (CI runs as root);
//! without it the test fails rather than skips.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted (and its folder removed) when dropped, also
/// when the test fails.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (the disk-full test needs root): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Writes zeros to `dir/filler` until the filesystem is full; returns the
/// file, to be removed when space should come back.
pub fn fill_up(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("create filler");
    let block = vec![0u8; 4096];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::StorageFull => break,
            Err(err) => panic!("filling {}: {err}", path.display()),
        }
    }
    path
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = Command::new("umount").arg(self.dir.path()).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            // Busy (a child still has a file open): detach it instead.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .output();
        }
    }
}
