//! In-process TLS servers and the certificates to give them, for tests of
//! which certificates popferry trusts and what it says about the others.
//!
//! * [`Ca`] and [`Leaf`]: certificates made with rcgen, valid or broken on
//!   purpose (expired, not yet valid, wrong name, unknown issuer);
//!   [`openssl_self_signed`]: the `CA:TRUE` certificate `openssl req -x509`
//!   makes, the way administrators make them;
//! * [`acceptor`]: a rustls server presenting one of them, optionally
//!   demanding a client certificate;
//! * [`Mailbox`]: the demo POP3 server over that TLS and the demo SMTP
//!   receiver, both on loopback;
//! * [`SetupRelay`]: an SMTP relay whose setup fails (its certificate, or
//!   AUTH), counting its connections.
//!
//! Each test binary uses part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::popferry::{run_popferry_with, RunOutput};
use popferry::demo::pop3_server::{Message, Pop3Server};
use popferry::demo::smtp_receiver::{self, Envelope, SmtpReceiver, Verdict};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "pop-secret";

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
            .expect("CA certificate");
        Ca { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names`, valid from a day ago for a year.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        self.issue_with(names, |_| {})
    }

    /// A server certificate whose parameters `adjust` may change first.
    pub fn issue_with(&self, names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = leaf_params(names);
        adjust(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf::new(cert.der().clone(), cert.pem(), &key)
    }
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, "popferry test server");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    params
}

/// A server certificate and its key.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl Leaf {
    fn new(der: CertificateDer<'static>, pem: String, key: &KeyPair) -> Leaf {
        Leaf {
            der,
            pem,
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// Signed by itself, CA:FALSE, as rcgen makes it by default.
    pub fn self_signed(names: &[&str]) -> Leaf {
        Leaf::self_signed_with(names, |_| {})
    }

    /// Self-signed, with parameters `adjust` may change first.
    pub fn self_signed_with(names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = leaf_params(names);
        adjust(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-sign");
        Leaf::new(cert.der().clone(), cert.pem(), &key)
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The SHA-256 fingerprint as popferry prints it.
    pub fn fingerprint(&self) -> String {
        popferry::tls::Fingerprint::of(&self.der).to_string()
    }
}

/// What `openssl req -x509 -newkey rsa:2048 -nodes` makes for localhost
/// and 127.0.0.1: a self-signed certificate marked `CA:TRUE`. Written to
/// `dir` as `selfsigned.pem` and `selfsigned.key`.
pub fn openssl_self_signed(dir: &Path) -> Leaf {
    let cert = dir.join("selfsigned.pem");
    let key = dir.join("selfsigned.key");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(status.status.success(), "openssl req -x509: {status:?}");
    let pem = std::fs::read_to_string(&cert).expect("read openssl certificate");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("openssl certificate");
    let key = PrivateKeyDer::from_pem_file(&key).expect("openssl key");
    let key_pem = std::fs::read_to_string(dir.join("selfsigned.key")).expect("read key");
    Leaf {
        der,
        pem,
        key_pem,
        key_der: key.secret_der().to_vec(),
    }
}

/// A rustls server presenting `leaf`; with `client_ca`, it demands a
/// client certificate that CA issued.
pub fn acceptor(leaf: &Leaf, client_ca: Option<&Ca>) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).expect("client CA");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::try_from(leaf.key_der.clone()).expect("key");
    let config = builder
        .with_single_cert(vec![leaf.der.clone()], key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

/// A configuration for one account at `host`:`port` with implicit TLS;
/// `smtp` is the body of the `[smtp]` table, `extra` adds account keys.
pub fn config(dir: &Path, host: &str, port: u16, smtp: &str, extra: &str) -> PathBuf {
    let text = format!(
        "state = \"popferry.db\"\n\n[smtp]\n{smtp}\n\n[[account]]\nname = \"alice\"\n\
         host = \"{host}\"\nport = {port}\ntls = \"implicit\"\nusername = \"{USER}\"\n\
         password = \"{PASSWORD}\"\ndeliver_to = [\"alice@example.org\"]\ntimeout = \"5s\"\n\
         {extra}\n"
    );
    let path = write(dir, "popferry.toml", &text);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod config");
    path
}

/// The `[smtp]` table of a relay on loopback without TLS.
pub fn plain_relay(port: u16) -> String {
    format!("host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout = \"5s\"")
}

/// Runs the binary off the test's runtime, so the servers keep serving.
/// `vars` as for [`run_popferry_with`].
pub async fn popferry(config: &Path, args: &[&str], vars: &[(&str, Option<&Path>)]) -> RunOutput {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let vars: Vec<(String, Option<PathBuf>)> = (vars.iter())
        .map(|(name, value)| ((*name).to_owned(), value.map(Path::to_path_buf)))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, Option<&Path>)> = (vars.iter())
            .map(|(name, value)| (name.as_str(), value.as_deref()))
            .collect();
        run_popferry_with(&config, &args, &vars)
    })
    .await
    .expect("popferry runner")
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// Records what the demo SMTP receiver accepted.
#[derive(Default)]
pub struct Accepted(Mutex<Vec<Vec<u8>>>);

impl smtp_receiver::Mailbox for Accepted {
    fn receive(&self, _envelope: Envelope, data: Vec<u8>) -> Verdict {
        self.0.lock().expect("accepted").push(data);
        Verdict::Accept
    }
}

impl Accepted {
    pub fn count(&self) -> usize {
        self.0.lock().expect("accepted").len()
    }
}

/// A POP3S server holding `messages` test messages, and a plain relay.
pub struct Mailbox {
    pub pop3: Pop3Server,
    pub relay: SmtpReceiver,
    pub accepted: Arc<Accepted>,
}

impl Mailbox {
    pub async fn start(tls: TlsAcceptor, messages: usize) -> Mailbox {
        let pop3 = Pop3Server::start(tls, USER, PASSWORD)
            .await
            .expect("POP3 server");
        for i in 0..messages {
            pop3.deposit(Message {
                uid: format!("m{i}"),
                bytes: format!("Subject: tls test {i}\r\n\r\nbody {i}\r\n").into_bytes(),
            });
        }
        let accepted = Arc::new(Accepted::default());
        let relay = SmtpReceiver::start(accepted.clone() as Arc<dyn smtp_receiver::Mailbox>)
            .await
            .expect("SMTP receiver");
        Mailbox {
            pop3,
            relay,
            accepted,
        }
    }
}

/// An SMTP relay that fails every connection during setup, counting the
/// connections: with TLS it offers STARTTLS and presents its certificate;
/// without, it offers AUTH PLAIN and refuses every login with 535.
pub struct SetupRelay {
    pub port: u16,
    connections: Arc<AtomicUsize>,
}

impl SetupRelay {
    pub async fn start(tls: Option<TlsAcceptor>) -> SetupRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_setup(stream, tls.clone()));
            }
        });
        SetupRelay { port, connections }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve_setup(stream: TcpStream, tls: Option<TlsAcceptor>) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    stream.write_all(b"220 relay ready\r\n").await?;
    let mut line = String::new();
    while stream.read_line(&mut line).await? > 0 {
        let verb = line.trim().to_ascii_uppercase();
        line.clear();
        let reply: &[u8] = match (&tls, verb.as_str()) {
            (Some(_), v) if v.starts_with("EHLO") => b"250-relay\r\n250 STARTTLS\r\n",
            (None, v) if v.starts_with("EHLO") => b"250-relay\r\n250 AUTH PLAIN\r\n",
            (Some(tls), "STARTTLS") => {
                stream.write_all(b"220 go ahead\r\n").await?;
                let _ = tls.accept(stream.into_inner()).await;
                return Ok(());
            }
            (None, v) if v.starts_with("AUTH") => b"535 5.7.8 authentication failed\r\n",
            (_, "QUIT") => b"221 bye\r\n",
            _ => b"502 5.5.1 not here\r\n",
        };
        stream.write_all(reply).await?;
    }
    Ok(())
}
