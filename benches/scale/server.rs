//! The servers popferry talks to in the scale bench: the test POP3 server
//! with `any_user` and Dovecot's capabilities behind its rustls TLS front, and the test SMTP receiver,
//! in a child process (this binary again, chosen by `POPFERRY_BENCH_ROLE`)
//! so that none of their CPU is counted as popferry's.
//!
//! The parent speaks to the child one line at a time over its stdin and
//! stdout: `add USER UID` puts a message in a mailbox, `stats` and
//! `check` answer with one line of numbers.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::pop3_server::{Extensions, Options, Pop3Server, TlsFront};
use crate::smtp_receiver::SmtpReceiver;

pub const ROLE: &str = "POPFERRY_BENCH_ROLE";
const SERVER_ROLE: &str = "scale-server";
/// Set (to anything) for a server with SLEE/WAKE.
const SLEEP_VARIABLE: &str = "POPFERRY_SCALE_SLEEP";
const DIR_VARIABLE: &str = "POPFERRY_SCALE_DIR";

/// Whether this process was started as the server child.
pub fn is_server_role() -> bool {
    std::env::var_os(ROLE).is_some_and(|role| role == SERVER_ROLE)
}

/// What stock Dovecot 2.3 (`auth_mechanisms = plain`) lists before login,
/// the server the figures were measured on: AUTH PLAIN logs in in
/// one round trip and PIPELINING sends UIDL and LIST together, where the
/// test server's own short list (USER, UIDL, TOP) would cost two more.
const DOVECOT_CAPABILITIES: [&str; 8] = [
    "CAPA",
    "TOP",
    "UIDL",
    "RESP-CODES",
    "PIPELINING",
    "AUTH-RESP-CODE",
    "USER",
    "SASL PLAIN",
];

/// The bytes of a trickled message; the uid in a header of its own is how
/// the receiver's side tells which message arrived.
fn message(uid: &str) -> Vec<u8> {
    format!("Subject: scale bench\r\nX-Bench-Uid: {uid}\r\n\r\nhello\r\n").into_bytes()
}

fn uid_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let line = text.lines().find(|l| l.starts_with("X-Bench-Uid: "))?;
    Some(line["X-Bench-Uid: ".len()..].trim().to_owned())
}

/// The child's main: prints `POP3S_PORT POP3_PORT SMTP_PORT`, then answers commands
/// until its stdin closes.
pub fn serve() {
    let dir = std::env::var_os(DIR_VARIABLE).expect("POPFERRY_SCALE_DIR");
    let extensions = if std::env::var_os(SLEEP_VARIABLE).is_some() {
        Extensions::all()
    } else {
        Extensions::default()
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (pop3, front, smtp) = runtime.block_on(async {
        let pop3 = Pop3Server::start(Options {
            any_user: true,
            capabilities: DOVECOT_CAPABILITIES.map(str::to_owned).to_vec(),
            extensions,
            ..Options::default()
        })
        .await;
        let front = TlsFront::start(&pop3, acceptor(Path::new(&dir))).await;
        (pop3, front, SmtpReceiver::start().await)
    });
    println!("{} {} {}", front.port(), pop3.port(), smtp.port());
    let mut added: Vec<(String, String)> = Vec::new();
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { return };
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["add", user, uid] => {
                pop3.add_for(user, uid, &message(uid));
                added.push(((*user).to_owned(), (*uid).to_owned()));
            }
            ["stats"] => {
                let (users, last) = pop3.first_logins();
                println!(
                    "{} {} {} {} {}",
                    pop3.logins(),
                    pop3.commands("WAKE"),
                    users,
                    last.unwrap_or(0),
                    pop3.busiest_second(),
                );
            }
            ["check"] => println!("{}", check(&pop3, &smtp, &added)),
            _ => return,
        }
    }
}

/// `ADDED DELIVERED DUPLICATES PENDING LOST`: a message still on the
/// server may have been delivered already (popferry was stopped between
/// its ledger commit and the QUIT); one neither delivered nor on the
/// server is lost.
fn check(pop3: &Pop3Server, smtp: &SmtpReceiver, added: &[(String, String)]) -> String {
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for offer in smtp.accepted() {
        if let Some(uid) = uid_of(&offer.data) {
            *delivered.entry(uid).or_default() += 1;
        }
    }
    let duplicates: usize = delivered.values().map(|n| n.saturating_sub(1)).sum();
    let (mut pending, mut lost) = (0, 0);
    for (user, uid) in added {
        let on_server = pop3.maildrop_of(user).contains(uid);
        pending += usize::from(on_server);
        lost += usize::from(!on_server && !delivered.contains_key(uid));
    }
    let arrived = added.iter().filter(|(_, uid)| delivered.contains_key(uid));
    format!(
        "{} {} {duplicates} {pending} {lost}",
        added.len(),
        arrived.count()
    )
}

/// A CA of its own, written to `dir/ca.pem` for the accounts' `ca_file`,
/// and a certificate for 127.0.0.1 it signed.
fn acceptor(dir: &Path) -> TlsAcceptor {
    let mut ca_params = CertificateParams::new(Vec::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &ca)
        .expect("server certificate");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

/// What `stats` reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub logins: u64,
    pub wakes: u64,
    /// Users that logged in at least once, and the last first login
    /// (milliseconds since the Unix epoch).
    pub users: u64,
    pub last_first_ms: u64,
    pub busiest_second: u64,
}

impl Stats {
    /// Polls as the server sees them: fresh logins plus pooled WAKEs.
    pub fn polls(&self) -> u64 {
        self.logins + self.wakes
    }
}

/// What `check` reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Check {
    pub added: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub pending: u64,
    pub lost: u64,
}

/// The server child, spoken to over its stdin and stdout.
pub struct ServerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub pop3s_port: u16,
    /// Plain POP3, for the pooled scenarios: through the TLS front each
    /// parked session would hold three descriptors of the server process,
    /// and 10,000 of them would pass the usual hard limit of 20,000.
    pub pop3_port: u16,
    pub smtp_port: u16,
}

impl ServerProcess {
    pub fn start(dir: &Path, sleep_wake: bool) -> ServerProcess {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command.env(ROLE, SERVER_ROLE).env(DIR_VARIABLE, dir);
        if sleep_wake {
            command.env(SLEEP_VARIABLE, "1");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let ports = numbers(&mut stdout);
        ServerProcess {
            child,
            stdin,
            stdout,
            pop3s_port: u16::try_from(ports[0]).expect("a port"),
            pop3_port: u16::try_from(ports[1]).expect("a port"),
            smtp_port: u16::try_from(ports[2]).expect("a port"),
        }
    }

    pub fn add(&mut self, user: &str, uid: &str) {
        writeln!(self.stdin, "add {user} {uid}").expect("tell the server");
    }

    pub fn stats(&mut self) -> Stats {
        writeln!(self.stdin, "stats").expect("ask the server");
        let n = numbers(&mut self.stdout);
        Stats {
            logins: n[0],
            wakes: n[1],
            users: n[2],
            last_first_ms: n[3],
            busiest_second: n[4],
        }
    }

    pub fn check(&mut self) -> Check {
        writeln!(self.stdin, "check").expect("ask the server");
        let n = numbers(&mut self.stdout);
        Check {
            added: n[0],
            delivered: n[1],
            duplicates: n[2],
            pending: n[3],
            lost: n[4],
        }
    }

    /// Closing its stdin is what ends it.
    pub fn stop(self) {
        let ServerProcess {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        child.wait().ok();
    }
}

fn numbers(stdout: &mut BufReader<ChildStdout>) -> Vec<u64> {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the server");
    let numbers: Vec<u64> = (line.split_whitespace())
        .map(|word| word.parse().expect("a number from the server"))
        .collect();
    assert!(!numbers.is_empty(), "the server process ended");
    numbers
}
