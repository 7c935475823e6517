//! Saving a message the relay rejected, so it can leave the POP3 server.
//!
//! A quarantined message is deleted from the server afterwards, so the
//! file must be durable before the ledger records it: it is written to a
//! temporary name, fsynced, renamed into place and the folder fsynced.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Write `message` to `<dir>/<account>/<uid>-<unix time>.eml`, mode 0600,
/// durably. Returns the final path.
pub async fn save(
    dir: &Path,
    account: &str,
    uid: &str,
    message: Vec<u8>,
) -> std::io::Result<PathBuf> {
    let folder = dir.join(account);
    let name = format!("{}-{}.eml", file_safe(uid), unix_now());
    tokio::task::spawn_blocking(move || write_durably(&folder, &name, &message))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn write_durably(folder: &Path, name: &str, message: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let path = folder.join(name);
    let temp = folder.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(message)?;
    file.sync_all()?;
    std::fs::rename(&temp, &path)?;
    std::fs::File::open(folder)?.sync_all()?;
    Ok(path)
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
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
