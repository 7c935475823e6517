//! `popferry demo`: a POP3 server and an SMTP receiver on loopback, made
//! for one run, so the real fetch path can be watched end to end on a
//! machine with nothing else installed.
//!
//! The POP3 side speaks implicit TLS with a certificate from a throwaway
//! CA; the generated config points `ca_file` at that CA, so the demo also
//! shows certificate verification working rather than switched off.

pub mod pop3_server;
mod samples;
pub mod smtp_receiver;

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use pop3_server::Pop3Server;
use smtp_receiver::{Envelope, Mailbox, SmtpReceiver, Verdict};

const USER: &str = "demo";
const PASSWORD: &str = "demo-password";

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo folder {} is not empty; name a new one with --dir", .0.display())]
    NotEmpty(PathBuf),
    #[error("cannot make the demo folder {}: {source}; name another with --dir", path.display())]
    Folder { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(io::Error),
    #[error("cannot make the demo certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot set up the demo TLS server: {}", crate::tls::describe(.0))]
    Tls(#[from] rustls::Error),
}

/// A message the receiver accepted and where it wrote it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub file: PathBuf,
    pub envelope: Envelope,
    pub subject: String,
    pub size: usize,
}

/// The running demo: both servers and the files that describe them.
#[derive(Debug)]
pub struct Demo {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub pop3: Pop3Server,
    pub smtp: SmtpReceiver,
    folder: Arc<Folder>,
}

impl DemoError {
    /// True when the folder given with `--dir` is the problem: a usage
    /// error, not a demo that failed.
    pub fn is_usage(&self) -> bool {
        matches!(self, DemoError::NotEmpty(_) | DemoError::Folder { .. })
    }
}

impl Demo {
    /// Writes the CA, the config and the delivery folder under `dir` (which
    /// must be new or empty, so an old ledger cannot change the story),
    /// starts both servers and puts the first batch of mail in the mailbox.
    pub async fn start(dir: &Path) -> Result<Demo, DemoError> {
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DemoError::Write { path, source }
        };
        if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(DemoError::NotEmpty(dir.to_path_buf()));
        }
        let delivered = dir.join("delivered");
        fs::create_dir_all(&delivered).map_err(|source| DemoError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let (ca_pem, acceptor) = throwaway_tls()?;
        let ca_file = dir.join("demo-ca.pem");
        fs::write(&ca_file, ca_pem).map_err(write_error(&ca_file))?;

        let pop3 = Pop3Server::start(acceptor, USER, PASSWORD)
            .await
            .map_err(DemoError::Listen)?;
        let folder = Arc::new(Folder {
            dir: delivered,
            delivered: Mutex::new(Vec::new()),
        });
        let smtp = SmtpReceiver::start(Arc::clone(&folder) as Arc<dyn Mailbox>)
            .await
            .map_err(DemoError::Listen)?;
        let config = dir.join("popferry.toml");
        write_private(&config, config_text(pop3.port(), smtp.port()).as_bytes())
            .map_err(write_error(&config))?;
        samples::first_batch()
            .into_iter()
            .for_each(|m| pop3.deposit(m));
        Ok(Demo {
            dir: dir.to_path_buf(),
            config,
            pop3,
            smtp,
            folder,
        })
    }

    /// New mail arrives in the mailbox.
    pub fn second_batch(&self) {
        samples::second_batch()
            .into_iter()
            .for_each(|m| self.pop3.deposit(m));
    }

    /// Everything the receiver accepted so far, in order.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.folder
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A throwaway CA, and a TLS acceptor whose certificate it signed for
/// 127.0.0.1 and localhost. Returns the CA in PEM for `ca_file`.
pub fn throwaway_tls() -> Result<(String, TlsAcceptor), DemoError> {
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "popferry demo CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&server_key, &ca)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![server.der().clone()], key)?;
    Ok((ca.pem(), TlsAcceptor::from(Arc::new(config))))
}

fn config_text(pop3_port: u16, smtp_port: u16) -> String {
    format!(
        "# Written by `popferry demo` for one run: the servers it names lived\n\
         # only while the demo ran. Paths are relative to this file.\n\
         state = \"popferry.db\"\n\
         \n\
         [smtp]\n\
         host = \"127.0.0.1\"\n\
         port = {smtp_port}\n\
         tls = \"none\"\n\
         \n\
         [[account]]\n\
         name = \"demo\"\n\
         host = \"127.0.0.1\"\n\
         port = {pop3_port}\n\
         tls = \"implicit\"\n\
         ca_file = \"demo-ca.pem\"\n\
         username = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n\
         deliver_to = [\"demo@demo.example\"]\n"
    )
}

/// Creates `path` readable by its owner only, as popferry demands of a
/// config that holds a password.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

/// The receiver's mailbox: one `.eml` file per accepted message.
#[derive(Debug)]
struct Folder {
    dir: PathBuf,
    delivered: Mutex<Vec<Delivered>>,
}

impl Mailbox for Folder {
    fn receive(&self, envelope: Envelope, data: Vec<u8>) -> Verdict {
        let mut delivered = self
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let file = self.dir.join(format!("{:04}.eml", delivered.len() + 1));
        // A relay that cannot store a message must not say 250; a 451
        // makes popferry keep it on the POP3 server and try again.
        if fs::write(&file, &data).is_err() {
            return Verdict::Defer;
        }
        delivered.push(Delivered {
            file,
            envelope,
            subject: subject(&data),
            size: data.len(),
        });
        Verdict::Accept
    }
}

/// The Subject header's value, or "" (the samples' subjects are one line).
fn subject(message: &[u8]) -> String {
    String::from_utf8_lossy(message)
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned()
}
