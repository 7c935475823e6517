//! Passwords, and the places the configuration may fetch them from.
//!
//! Configuration types derive `Debug` freely and get logged; [`Secret`] is
//! what keeps a password out of those logs. Resolving a [`PasswordSource`]
//! is deferred until a connection needs it, so that a rotated password file
//! or a password manager is consulted on every login rather than once at
//! start-up.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// A password held in memory.
///
/// `Debug` prints a placeholder and there is intentionally no `Display`, so
/// the text can only escape through [`Secret::expose`], which is easy to
/// find in review.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The password itself, for the one place that sends it to a server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where a password comes from (`password`, `password_file`, `password_env`
/// or `password_command` in the file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PasswordSource {
    /// Written in the configuration file itself.
    Inline(Secret),
    /// The contents of a file, minus one trailing newline.
    File(PathBuf),
    /// The value of an environment variable.
    Env(String),
    /// The standard output of a `sh -c` command, minus one trailing newline.
    Command(String),
}

/// Why a password could not be obtained.
///
/// Every message names where the password was looked for, so the
/// administrator knows what to fix, and none includes the password or the
/// output of a password command.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read password file {}: {source}", path.display())]
    ReadFile { path: PathBuf, source: io::Error },
    #[error(
        "password file {} is readable by group/others (mode {mode:04o}): run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    FileExposed { path: PathBuf, mode: u32 },
    #[error("environment variable {name} is not set")]
    EnvMissing { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error("cannot run password command `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("password command `{command}` failed ({status}){}", stderr_suffix(.stderr))]
    CommandFailed {
        command: String,
        status: ExitStatus,
        /// The first line of the command's standard error; its standard
        /// output is never kept because it may hold the password.
        stderr: String,
    },
    #[error("password command `{command}` printed output that is not valid UTF-8")]
    CommandNotUnicode { command: String },
    #[error("{origin} yielded an empty password")]
    Empty { origin: String },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl PasswordSource {
    /// [`PasswordSource::resolve`] without blocking the caller: a file or a
    /// command is read on the blocking pool, so a slow disk or command
    /// never stalls other polls, while a password written in the config or
    /// held in the environment is at hand, and the hand-off to the pool and
    /// back would cost a fresh login more than the login's own crypto.
    pub async fn fetch(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Inline(_) | Self::Env(_) => self.resolve(),
            Self::File(_) | Self::Command(_) => {
                let source = self.clone();
                crate::blocking::run(move || source.resolve()).await
            }
        }
    }

    /// Fetches the password.
    ///
    /// This may read a file or run a command and wait for it, so async
    /// callers use [`PasswordSource::fetch`]. An empty result is an
    /// error: it almost always means a missing file entry or an unset
    /// variable rather than a real empty password.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let (value, origin) = match self {
            Self::Inline(secret) => return Ok(secret.clone()),
            Self::File(path) => (
                read_password_file(path)?,
                format!("password file {}", path.display()),
            ),
            Self::Env(name) => (read_env(name)?, format!("environment variable {name}")),
            Self::Command(command) => (
                run_command(command)?,
                format!("password command `{command}`"),
            ),
        };
        if value.is_empty() {
            return Err(SecretError::Empty { origin });
        }
        Ok(Secret::new(value))
    }
}

fn read_password_file(path: &Path) -> Result<String, SecretError> {
    let read_error = |source| SecretError::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    // Checking the handle we read from, not the path, leaves no window for
    // the file to be swapped between the check and the read.
    let metadata = file.metadata().map_err(read_error)?;
    if let Some(mode) = exposed_mode(&metadata) {
        return Err(SecretError::FileExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    Ok(strip_newline(text))
}

fn read_env(name: &str) -> Result<String, SecretError> {
    std::env::var(name).map_err(|err| match err {
        std::env::VarError::NotPresent => SecretError::EnvMissing {
            name: name.to_owned(),
        },
        std::env::VarError::NotUnicode(_) => SecretError::EnvNotUnicode {
            name: name.to_owned(),
        },
    })
}

fn run_command(command: &str) -> Result<String, SecretError> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| SecretError::Spawn {
            command: command.to_owned(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(SecretError::CommandFailed {
            command: command.to_owned(),
            status: output.status,
            stderr: stderr.lines().next().unwrap_or("").trim().to_owned(),
        });
    }
    String::from_utf8(output.stdout)
        .map(strip_newline)
        .map_err(|_| SecretError::CommandNotUnicode {
            command: command.to_owned(),
        })
}

/// Removes exactly one trailing line ending: editors and `echo` add one,
/// but any other whitespace may be part of the password.
fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// The permission bits of a file if group or others have any access to it,
/// `None` if only its owner does.
#[cfg(unix)]
pub(crate) fn exposed_mode(metadata: &Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Without Unix permission bits there is nothing meaningful to check.
#[cfg(not(unix))]
pub(crate) fn exposed_mode(_metadata: &Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_line_ending() {
        assert_eq!(strip_newline("pw\n".into()), "pw");
        assert_eq!(strip_newline("pw\r\n".into()), "pw");
        assert_eq!(strip_newline("pw\n\n".into()), "pw\n");
        assert_eq!(strip_newline(" pw ".into()), " pw ");
    }

    #[test]
    fn debug_redacts() {
        let source = PasswordSource::Inline(Secret::new("hunter2".into()));
        let shown = format!("{source:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn empty_command_output_is_an_error() {
        let err = PasswordSource::Command("true".into()).resolve();
        assert!(matches!(err, Err(SecretError::Empty { .. })), "{err:?}");
    }

    #[test]
    fn missing_variable_is_named() {
        let name = "POPFERRY_TEST_SURELY_UNSET_VARIABLE";
        let err = PasswordSource::Env(name.into()).resolve();
        let message = err.map(|_| ()).unwrap_err().to_string();
        assert!(message.contains(name), "{message}");
    }
}
