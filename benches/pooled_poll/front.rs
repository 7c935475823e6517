//! stunnel4 as the bench's TLS front: a real terminator in its own
//! process, so its handshakes and record crypto are not counted as the
//! client's CPU. It starts in milliseconds (Debian: `apt-get install
//! stunnel4`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::CertificateDer;

/// Overrides the ephemeral port stunnel listens on.
const PORT_VARIABLE: &str = "POPFERRY_BENCH_TLS_PORT";

pub struct Stunnel {
    child: Child,
    pub port: u16,
    /// The CA that signed stunnel's certificate, for the account's `ca_file`.
    pub ca_file: PathBuf,
    pub ca: CertificateDer<'static>,
}

impl Stunnel {
    /// Starts stunnel in `dir` in front of 127.0.0.1:`upstream` and waits
    /// until it accepts connections.
    pub fn start(dir: &Path, upstream: u16) -> Stunnel {
        let (ca, [ca_file, cert, key]) = certificates(dir);
        let port = match std::env::var(PORT_VARIABLE) {
            Ok(port) => port.parse().expect("POPFERRY_BENCH_TLS_PORT is a port"),
            Err(_) => free_port(),
        };
        let config = dir.join("stunnel.conf");
        // Nagle off on both legs, as a POP3 server has it; `debug = 0`
        // keeps its notices (and the probe's early EOF) out of the output.
        let text = format!(
            "foreground = yes\npid =\ndebug = 0\n\
             socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n\
             [pop3s]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{upstream}\n\
             cert = {cert}\nkey = {key}\n",
            cert = cert.display(),
            key = key.display(),
        );
        std::fs::write(&config, text).expect("write stunnel.conf");
        let child = Command::new("stunnel4")
            .arg(&config)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run stunnel4 ({e}): apt-get install stunnel4"));
        let stunnel = Stunnel {
            child,
            port,
            ca_file,
            ca,
        };
        stunnel.wait_until_listening();
        stunnel
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "stunnel4 did not start listening"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn stop(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A port nobody listens on now; the race with another process taking it
/// before stunnel does is what [`PORT_VARIABLE`] is there for.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A throwaway CA and a certificate it signed for 127.0.0.1: the CA, and
/// the files written to `dir`: the CA, the certificate and its key.
fn certificates(dir: &Path) -> (CertificateDer<'static>, [PathBuf; 3]) {
    let mut ca_params = CertificateParams::new(Vec::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let files = [
        (dir.join("ca.pem"), ca.pem()),
        (dir.join("cert.pem"), cert.pem()),
        (dir.join("key.pem"), key.serialize_pem()),
    ];
    for (path, pem) in &files {
        std::fs::write(path, pem).expect("write a PEM file");
    }
    (ca.der().clone(), files.map(|(path, _)| path))
}
