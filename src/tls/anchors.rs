//! Where trust comes from: the operating system's store, read once per
//! process, or a `ca_file`, which replaces it for one account or relay.
//!
//! The system store is found the way OpenSSL finds it (`SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, else the distribution's usual paths), so a company CA
//! installed with `update-ca-certificates` is trusted like everywhere else
//! on the machine. The Mozilla roots compiled into popferry stand in only
//! where the machine has no store at all.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use super::{load_certificates, TlsConfigError};

/// The anchors a connection checks a chain against, and where they came
/// from, for messages and `popferry check`.
#[derive(Debug, Clone)]
pub(super) struct Anchors {
    pub roots: Arc<RootCertStore>,
    /// The certificates of a `ca_file`, each also trusted as the server's
    /// own certificate when presented byte for byte; empty for the system
    /// store.
    pub listed: Vec<CertificateDer<'static>>,
    pub origin: Origin,
}

/// Where a set of anchors came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// `SSL_CERT_FILE` or `SSL_CERT_DIR`, or the system's own paths.
    System {
        source: String,
        count: usize,
    },
    /// The store was empty or missing.
    WebpkiRoots,
    CaFile {
        path: PathBuf,
        count: usize,
    },
}

impl Origin {
    /// Where a certificate would have to be for the chain to be trusted.
    pub fn place(&self) -> String {
        match self {
            Origin::System { .. } => "the system trust store".to_owned(),
            Origin::WebpkiRoots => "the public roots built into popferry".to_owned(),
            Origin::CaFile { path, .. } => format!("ca_file {}", path.display()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::System { source, count } => {
                write!(f, "system trust store: {source} ({})", certificates(*count))
            }
            Origin::WebpkiRoots => f.write_str("webpki-roots (no system trust store found)"),
            Origin::CaFile { path, count } => {
                write!(f, "ca_file {} ({})", path.display(), certificates(*count))
            }
        }
    }
}

fn certificates(count: usize) -> String {
    match count {
        1 => "1 certificate".to_owned(),
        n => format!("{n} certificates"),
    }
}

/// The system store, loaded on first use and kept for the process's life.
pub(super) fn system() -> &'static Anchors {
    static SYSTEM: OnceLock<Anchors> = OnceLock::new();
    SYSTEM.get_or_init(load_system)
}

fn load_system() -> Anchors {
    let source = system_source();
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::debug!(%error, "skipped part of the system trust store");
    }
    let mut roots = RootCertStore::empty();
    let (count, _unusable) = roots.add_parsable_certificates(loaded.certs);
    let origin = if count == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Origin::WebpkiRoots
    } else {
        Origin::System { source, count }
    };
    Anchors {
        roots: Arc::new(roots),
        listed: Vec::new(),
        origin,
    }
}

/// The file or folders the store is read from, named as the administrator
/// would look for them. `rustls-native-certs` makes the same choice.
fn system_source() -> String {
    let env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let file = env("SSL_CERT_FILE").map(|file| format!("SSL_CERT_FILE={}", show(&file)));
    let dir = env("SSL_CERT_DIR").map(|dir| format!("SSL_CERT_DIR={}", show(&dir)));
    if file.is_some() || dir.is_some() {
        return [file, dir]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
    }
    let probed = openssl_probe::probe();
    let places: Vec<String> = (probed.cert_file.iter())
        .chain(probed.cert_dir.iter())
        .map(|path| path.display().to_string())
        .collect();
    if places.is_empty() {
        "none found".to_owned()
    } else {
        places.join(", ")
    }
}

fn show(value: &std::ffi::OsStr) -> String {
    Path::new(value).display().to_string()
}

/// The certificates of `path`, as anchors for chains and as certificates
/// trusted when presented exactly.
pub(super) fn ca_file(path: &Path) -> Result<Anchors, TlsConfigError> {
    let listed = load_certificates(path)?;
    let mut roots = RootCertStore::empty();
    for cert in &listed {
        if x509_parser::parse_x509_certificate(cert).is_err() {
            return Err(TlsConfigError::NotCertificate {
                path: path.to_owned(),
            });
        }
        // A certificate webpki cannot use as an anchor (a version 1
        // certificate, say) is still trusted when presented exactly.
        if roots.add(cert.clone()).is_err() {
            tracing::debug!(path = %path.display(), "a ca_file entry is not usable as a CA");
        }
    }
    let count = listed.len();
    Ok(Anchors {
        roots: Arc::new(roots),
        listed,
        origin: Origin::CaFile {
            path: path.to_owned(),
            count,
        },
    })
}
