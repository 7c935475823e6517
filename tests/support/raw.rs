//! Raw POP3 and SMTP sessions, line by line over TCP or TLS, for tests
//! that check the servers of `scripts/services.sh` themselves, without
//! popferry's code in between.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WantsClientCert;
use rustls::crypto::{self, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, ConfigBuilder, DigitallySignedStruct, RootCertStore,
    StreamOwned, WantsVerifier,
};

/// Dovecot may take a while to answer a failed login (see services.sh).
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Line-at-a-time POP3/SMTP over any stream.
#[derive(Debug)]
pub struct Wire<S: Read + Write> {
    io: BufReader<S>,
}

impl<S: Read + Write> Wire<S> {
    pub fn new(stream: S) -> Self {
        Self {
            io: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, line: &str) {
        let stream = self.io.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| stream.flush())
            .expect("send a line");
    }

    pub fn try_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.io.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    pub fn line(&mut self) -> String {
        self.try_line().expect("read a line")
    }

    /// One SMTP reply, all its lines.
    pub fn reply(&mut self) -> Vec<String> {
        let mut lines = vec![self.line()];
        while lines
            .last()
            .is_some_and(|l| l.as_bytes().get(3) == Some(&b'-'))
        {
            lines.push(self.line());
        }
        lines
    }

    pub fn reply_to(&mut self, command: &str) -> Vec<String> {
        self.send(command);
        self.reply()
    }

    /// The stream, for STARTTLS / STLS: the server has sent nothing more.
    pub fn into_inner(self) -> S {
        assert!(self.io.buffer().is_empty(), "data after the TLS go-ahead");
        self.io.into_inner()
    }
}

/// A connection to 127.0.0.1:`port` whose reads give up after [`TIMEOUT`].
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|err| panic!("connect 127.0.0.1:{port}: {err}"));
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

pub fn pem_cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Accepts exactly one certificate, byte for byte, with the handshake
/// signature still checked: what webpki will not do for a CA:TRUE one.
#[derive(Debug)]
struct ExactCert {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ExactCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client whose only trust anchor is the certificate in `pem`: what
/// `ca_file = PEM` means to plain webpki.
pub fn anchored_on(pem: &Path) -> Arc<ClientConfig> {
    roots_of(pem).with_no_client_auth().into()
}

/// The same roots, for a client that still has to choose its certificate.
pub fn roots_of(pem: &Path) -> ConfigBuilder<ClientConfig, WantsClientCert> {
    let mut roots = RootCertStore::empty();
    roots.add(pem_cert(pem)).expect("add trust anchor");
    builder().with_root_certificates(roots)
}

/// A client that accepts exactly the certificate in `pem` and nothing
/// else, CA:TRUE or not.
pub fn pinned_on(pem: &Path) -> Arc<ClientConfig> {
    let verifier = ExactCert {
        cert: pem_cert(pem),
        algorithms: provider().signature_verification_algorithms,
    };
    builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth()
        .into()
}

fn builder() -> ConfigBuilder<ClientConfig, WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
}

/// TLS over `stream` to "localhost", the handshake done (or its error).
pub fn tls(stream: TcpStream, config: Arc<ClientConfig>) -> io::Result<Tls> {
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}
