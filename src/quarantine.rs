//! Saving a message the relay rejected, so it can leave the POP3 server.
//!
//! A quarantined message is deleted from the server afterwards, so the
//! file must be durable before the ledger records it: it is written to a
//! temporary name, fsynced, linked into place under a name no other file
//! has, and the folder fsynced. Linking rather than renaming is what keeps
//! an earlier file safe: two unique-ids can map to the same file name (`a/b`
//! and `a_b`, in the same second), and a rename would silently replace the
//! first message, which is already gone from the server.

use std::fs::DirBuilder;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Write `message` to `<dir>/<account>/<uid>-<unix time>.eml` (with `-1`,
/// `-2`, ... before `.eml` if that name is taken), mode 0600, in a folder
/// only the owner can list, durably. Returns the final path.
pub async fn save(
    dir: &Path,
    account: &str,
    uid: &str,
    message: Vec<u8>,
) -> std::io::Result<PathBuf> {
    let folder = dir.join(account);
    let stem = format!("{}-{}", file_safe(uid), unix_now());
    crate::blocking::run(move || write_durably(&folder, &stem, &message)).await
}

fn write_durably(folder: &Path, stem: &str, message: &[u8]) -> std::io::Result<PathBuf> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)?;
    let temp = folder.join(format!(".{stem}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(message)?;
    file.sync_all()?;
    let path = link_unused_name(&temp, folder, stem)?;
    std::fs::remove_file(&temp)?;
    std::fs::File::open(folder)?.sync_all()?;
    Ok(path)
}

/// Hard-links `temp` as `<stem>.eml`, or `<stem>-N.eml` for the first N
/// that is free; `link` fails rather than replace an existing file.
fn link_unused_name(temp: &Path, folder: &Path, stem: &str) -> std::io::Result<PathBuf> {
    let mut n = 0u32;
    loop {
        let name = match n {
            0 => format!("{stem}.eml"),
            n => format!("{stem}-{n}.eml"),
        };
        let path = folder.join(name);
        match std::fs::hard_link(temp, &path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Unique-ids are printable ASCII but may hold `/` or start with `.`.
fn file_safe(uid: &str) -> String {
    uid.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn saves_private_file_with_safe_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(
            dir.path(),
            "alice",
            "../x/y",
            b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
        )
        .await
        .unwrap();
        assert!(path.starts_with(dir.path().join("alice")), "{path:?}");
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("___x_y-"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"Subject: hi\r\n\r\nbody\r\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("alice")), 0o700);
    }

    #[tokio::test]
    async fn uids_with_the_same_file_name_keep_separate_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (uid, body) in [("a/b", "first"), ("a_b", "second"), ("a.b", "third")] {
            let message = body.as_bytes().to_vec();
            paths.push(save(dir.path(), "alice", uid, message).await.unwrap());
        }
        let bodies: Vec<String> = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(bodies, ["first", "second", "third"]);
        let files = std::fs::read_dir(dir.path().join("alice")).unwrap().count();
        assert_eq!(files, 3, "three messages, three files, no temporaries");
    }
}
