//! Another process holding SQLite's own write lock on the ledger: Python's
//! sqlite3 module in `BEGIN EXCLUSIVE`, as a backup script or a curious
//! operator with the sqlite3 shell might.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Holds the lock from `acquire` until `release` or drop.
#[derive(Debug)]
pub struct SqliteLock {
    child: Child,
    stdin: Option<ChildStdin>,
}

const HOLDER: &str = "import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute('BEGIN EXCLUSIVE')
print('locked', flush=True)
sys.stdin.read()
c.execute('ROLLBACK')
print('released', flush=True)
";

impl SqliteLock {
    /// Returns once the other process holds the lock.
    pub fn acquire(ledger: &Path) -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(HOLDER)
            .arg(ledger)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with its sqlite3 module (needed for the lock test)");
        let stdin = child.stdin.take();
        let mut line = String::new();
        let stdout = child.stdout.as_mut().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read from the lock holder");
        assert_eq!(line.trim(), "locked", "the lock holder failed");
        Self { child, stdin }
    }

    /// Ends the transaction and waits for the process to exit.
    pub fn release(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for the lock holder");
        assert!(status.success(), "the lock holder failed: {status}");
    }
}

impl Drop for SqliteLock {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
