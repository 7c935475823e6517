//! Whether the files and folders an account needs are usable by the user
//! running `check`, decided without creating, changing or running
//! anything: `check` must be safe to run on a live system.

use std::fs::{self, File, TryLockError};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{access, Access};

/// Whether popferry could write files into `dir`, creating it (and any
/// missing parents) if need be. Asking the kernel with `access` rather than
/// reading mode bits gets root, ACLs and read-only mounts right. The
/// outcome does not name `dir`: the caller's line does.
pub(super) fn folder(dir: &Path) -> Result<String, String> {
    let shown = dir.display();
    let Some(existing) = first_existing(dir)? else {
        return Err("no part of the path exists".to_owned());
    };
    let missing = existing != dir;
    if !fs::metadata(&existing).is_ok_and(|meta| meta.is_dir()) {
        return Err(format!(
            "{} is a file, not a folder, so nothing can be written under it: fix the path",
            existing.display()
        ));
    }
    match (
        access(&existing, Access::WRITE_OK | Access::EXEC_OK),
        missing,
    ) {
        (Ok(()), false) => Ok("writable".to_owned()),
        (Ok(()), true) => Ok(format!(
            "does not exist yet; popferry will create it ({} is writable)",
            existing.display()
        )),
        (Err(e), false) => Err(format!(
            "not writable by this user ({}): `chown` {shown} to the user popferry runs as",
            io::Error::from(e)
        )),
        (Err(e), true) => Err(format!(
            "does not exist and cannot be created: {} is not writable by this user ({}); \
             run `mkdir -p {shown}` as root and `chown` it to the user popferry runs as",
            existing.display(),
            io::Error::from(e)
        )),
    }
}

/// A [`folder`] outcome, said of `dir` by name.
fn in_folder(dir: &Path, outcome: &str) -> String {
    format!("folder {}: {outcome}", dir.display())
}

/// `path` or its nearest ancestor that exists. A file on the way (ENOTDIR)
/// counts as missing below it, so the caller finds the file itself.
fn first_existing(path: &Path) -> Result<Option<PathBuf>, String> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for candidate in absolute.ancestors() {
        match fs::symlink_metadata(candidate) {
            Ok(_) => return Ok(Some(candidate.to_path_buf())),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            Err(e) => return Err(format!("cannot look at {}: {e}", candidate.display())),
        }
    }
    Ok(None)
}

/// What the ledger at `path` is: to be created, usable, or in use by a
/// running popferry, which is information rather than a failure: an
/// administrator checking a live daemon's configuration expects it.
pub(super) fn ledger(path: &Path) -> Result<String, String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    match fs::metadata(path) {
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            let folder = folder(parent).map_err(|problem| in_folder(parent, &problem))?;
            return Ok(format!("not created yet; {}", in_folder(parent, &folder)));
        }
        Err(e) => return Err(format!("cannot look at it: {e}")),
        Ok(meta) if !meta.is_file() => {
            return Err("is not a file: point `state` at a file".to_owned())
        }
        Ok(_) => {}
    }
    access(path, Access::READ_OK | Access::WRITE_OK).map_err(|e| {
        format!(
            "cannot be read and written by this user ({}): `chown` it to the user popferry \
             runs as",
            io::Error::from(e)
        )
    })?;
    // SQLite writes its -wal and -shm files next to the database.
    folder(parent).map_err(|problem| {
        format!(
            "{} (SQLite keeps its -wal file there)",
            in_folder(parent, &problem)
        )
    })?;
    let mut file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let mut header = Vec::new();
    (&mut file)
        .take(16)
        .read_to_end(&mut header)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !header.is_empty() && header != b"SQLite format 3\0" {
        return Err("is not a SQLite database: is `state` pointing at the right file?".to_owned());
    }
    // A shared lock taken and dropped at once: it never stops the daemon
    // polling, and meets the exclusive lock a polling popferry holds.
    match file.try_lock_shared() {
        Ok(()) => Ok("opens, not in use".to_owned()),
        Err(TryLockError::WouldBlock) => Ok("in use by a running popferry (`popferry run` or \
                                             a `fetch`); another `fetch` would be refused \
                                             until it stops"
            .to_owned()),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock it: {e}")),
    }
}

/// Whether a `password_file` would yield a password, without reading it.
pub(super) fn secret_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(format!(
                "does not exist: write the password into it, then run `chmod 600 {shown}`"
            ))
        }
        Err(e) => return Err(format!("cannot look at it: {e}")),
    };
    if !meta.is_file() {
        return Err("is not a file".to_owned());
    }
    access(path, Access::READ_OK).map_err(|e| {
        format!(
            "not readable by this user ({}): `chown` {shown} to the user popferry runs as",
            io::Error::from(e)
        )
    })?;
    if let Some(mode) = crate::config::exposed_mode(&meta) {
        return Err(format!(
            "readable by group/others (mode {mode:04o}): run `chmod 600 {shown}`"
        ));
    }
    if meta.len() == 0 {
        return Err("is empty: write the password into it".to_owned());
    }
    let mode = meta.permissions().mode() & 0o7777;
    Ok(format!("readable by its owner only (mode {mode:04o})"))
}

/// Whether `password_command` (or `access_token_command`) names a program
/// that exists. The command is not run: it may ask for a passphrase or
/// unlock a vault, and `check --connect` runs it anyway when it logs in.
pub(super) fn command(command: &str) -> Result<String, String> {
    let Some(program) = program(command) else {
        return Ok(format!(
            "`{command}` is shell syntax popferry cannot look into without running it; \
             `check --connect` runs it"
        ));
    };
    if SH_BUILTINS.contains(&program) {
        return Ok(format!("`{program}` is a shell builtin (not run)"));
    }
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|path| path.exists())
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    };
    let Some(found) = found else {
        return Err(format!(
            "`{program}` is not found on PATH: install it, or give its full path"
        ));
    };
    match access(&found, Access::EXEC_OK) {
        Ok(()) if found.is_file() => Ok(format!(
            "`{program}` is {} (not run: `check --connect` runs it)",
            found.display()
        )),
        Ok(()) => Err(format!("{} is not a file", found.display())),
        Err(_) => Err(format!(
            "{} is not executable: run `chmod +x {}`",
            found.display(),
            found.display()
        )),
    }
}

/// The few `sh` builtins a password command plausibly starts with.
const SH_BUILTINS: &[&str] = &["echo", "printf", "read", "eval", "."];

/// The program `sh -c command` would start: the first word after any
/// `NAME=value` assignments and an `exec`; `None` when quoting, expansion
/// or grouping makes that uncertain without a shell.
fn program(command: &str) -> Option<&str> {
    let mut words = command
        .split_whitespace()
        .skip_while(|word| word.split_once('=').is_some_and(|(name, _)| is_name(name)));
    let mut word = words.next()?;
    if word == "exec" {
        word = words.next()?;
    }
    let shell_syntax = |c: char| "\"'`$\\(){};|&<>*?[]~!#".contains(c);
    (!word.contains(shell_syntax)).then_some(word)
}

fn is_name(word: &str) -> bool {
    !word.is_empty()
        && !word.starts_with(|c: char| c.is_ascii_digit())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_program_a_shell_would_start() {
        assert_eq!(program("pass show mail/alice"), Some("pass"));
        assert_eq!(
            program("GNUPGHOME=/x exec /usr/bin/gpg -d f"),
            Some("/usr/bin/gpg")
        );
        assert_eq!(program("\"$HOME/bin/pw\""), None);
        assert_eq!(program("(cd /x && pw)"), None);
        assert_eq!(program(""), None);
    }

    #[test]
    fn a_file_on_the_way_is_not_a_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain");
        fs::write(&file, "x").expect("write");
        let problem = folder(&file.join("sub/ledger")).unwrap_err();
        assert!(problem.contains("is a file, not a folder"), "{problem}");
        assert!(folder(&dir.path().join("new/deeper"))
            .unwrap()
            .contains("will create it"));
    }
}
