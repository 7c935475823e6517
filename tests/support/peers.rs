//! fetchmail, mpop and getmail (Debian's `fetchmail`, `mpop`, `getmail6`)
//! run as a user runs them: a config file in a fresh HOME, keep mode, and
//! their state file where each tool puts it by default. They reach the
//! test Dovecot as `localhost` (its certificate names localhost; fetchmail
//! checks the name and would refuse 127.0.0.1), so the state files name
//! that host.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::real::{env, Mailbox};

/// The host the tools are told, and the one popferry's account must name
/// for `popferry import` to find it without `--account`.
pub const HOST: &str = "localhost";

/// How long one tool run may take; `timeout` kills it after that.
const TOOL_TIMEOUT_SECS: &str = "60";

/// A user's home folder for one tool.
#[derive(Debug)]
pub struct PeerHome {
    dir: tempfile::TempDir,
}

impl PeerHome {
    /// A fresh HOME, readable by everyone: getmail delivers as the mail
    /// user when run as root, and that user must reach the Maildir in it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod home");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `relative` in HOME, mode 0600 (the tools refuse
    /// a password file others can read).
    fn write_private(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write tool config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    /// Runs `program ARGS` with HOME set to this folder; panics with its
    /// output unless it exits 0.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let output = Command::new("timeout")
            .arg(TOOL_TIMEOUT_SECS)
            .arg(program)
            .args(args)
            .env("HOME", self.path())
            .current_dir(self.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {program} (is it installed?): {err}"));
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{text}",
            output.status
        );
        text
    }

    /// `fetchmail --keep` into an MDA that appends to `fetched`; leaves
    /// `~/.fetchids`, which it returns.
    pub fn fetchmail(&self, mailbox: &Mailbox) -> PathBuf {
        let env = env();
        let rc = format!(
            "poll {HOST} with proto POP3 service {} uidl\n  \
             user \"{}\" password \"{}\" ssl sslcertck sslcertfile \"{}\"\n  \
             keep mda \"cat >> {}\"\n",
            env.pop3s_port,
            mailbox.user,
            env.password,
            env.ca_file.display(),
            self.fetched().display()
        );
        let rc = self.write_private(".fetchmailrc", &rc);
        self.run("fetchmail", &["-f", &rc.to_string_lossy()]);
        self.path().join(".fetchids")
    }

    /// `mpop` with `keep on`, delivering to an MDA that appends to
    /// `fetched`; leaves `~/.mpop_uidls/USER_at_HOST`, which it returns.
    pub fn mpop(&self, mailbox: &Mailbox) -> PathBuf {
        let env = env();
        let rc = format!(
            "account default\nhost {HOST}\nport {}\ntls on\ntls_starttls off\n\
             tls_trust_file {}\nuser {}\nauth user\npassword {}\nkeep on\n\
             delivery mda \"cat >> {}\"\n",
            env.pop3s_port,
            env.ca_file.display(),
            mailbox.user,
            env.password,
            self.fetched().display()
        );
        self.write_private(".mpoprc", &rc);
        self.run("mpop", &[]);
        self.path()
            .join(".mpop_uidls")
            .join(format!("{}_at_{HOST}", mailbox.user))
    }

    /// `getmail` (getmail6) with `delete = false` into `~/Maildir`;
    /// leaves `~/.getmail/oldmail-localhost-PORT-USER`, which it returns.
    /// getmail refuses to deliver as root, so as root it delivers as the
    /// test mail user.
    pub fn getmail(&self, mailbox: &Mailbox) -> PathBuf {
        let env = env();
        let maildir = self.path().join("Maildir");
        let as_root = fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
        for sub in ["", "new", "cur", "tmp"] {
            let dir = maildir.join(sub);
            fs::create_dir_all(&dir).expect("create Maildir");
            if as_root {
                chown(&dir, Some(env.mail_uid), Some(env.mail_gid)).expect("chown Maildir");
            }
        }
        let user = if as_root {
            let name = user_name(env.mail_uid);
            format!("user = {name}\n")
        } else {
            String::new()
        };
        let rc = format!(
            "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = {HOST}\nport = {}\n\
             username = {}\npassword = {}\nca_certs = {}\n\n\
             [destination]\ntype = Maildir\npath = {}/\n{user}\n\
             [options]\ndelete = false\nread_all = false\nverbose = 0\n",
            env.pop3s_port,
            mailbox.user,
            env.password,
            env.ca_file.display(),
            maildir.display(),
        );
        self.write_private(".getmail/getmailrc", &rc);
        self.run("getmail", &[]);
        self.path().join(".getmail").join(format!(
            "oldmail-{HOST}-{}-{}",
            env.pop3s_port, mailbox.user
        ))
    }

    /// Where fetchmail's and mpop's MDA append the messages.
    pub fn fetched(&self) -> PathBuf {
        self.path().join("fetched.txt")
    }

    /// How many messages the tool delivered: Message-ID headers in
    /// `fetched` plus files in `~/Maildir/new`.
    pub fn delivered(&self) -> usize {
        let appended = fs::read(self.fetched()).unwrap_or_default();
        let ids = appended
            .split(|&b| b == b'\n')
            .filter(|line| line.starts_with(b"Message-ID:"))
            .count();
        let maildir = fs::read_dir(self.path().join("Maildir/new"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        ids + maildir
    }
}

/// The login name of `uid`, from /etc/passwd.
fn user_name(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
        })
        .unwrap_or_else(|| panic!("no user with uid {uid} in /etc/passwd"))
}
