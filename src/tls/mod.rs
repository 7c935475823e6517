//! rustls client configuration, shared by the POP3 client and SMTP delivery.
//!
//! Verification is always on: the trust anchors are the Mozilla roots
//! shipped in `webpki-roots`, plus the certificates of an optional `ca_file`
//! for servers with a private CA; or, for a self-signed certificate, the
//! one certificate whose fingerprint the account pins (`tls_fingerprint`).
//! There is no setting that accepts any certificate.

mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

pub use verify::{BadFingerprint, Fingerprint};
use verify::{Check, Verifier};

/// Which server certificates a connection accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// One that chains to a public root or to a certificate of `ca_file`.
    Roots { ca_file: Option<PathBuf> },
    /// Exactly the certificate with this fingerprint.
    Pinned(Fingerprint),
}

impl Default for Trust {
    fn default() -> Self {
        Trust::Roots { ca_file: None }
    }
}

/// A trust anchor file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read ca_file {path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("ca_file {path} holds no PEM certificate")]
    Empty { path: PathBuf },
    #[error("ca_file {path}: certificate not usable as a trust anchor: {source}")]
    Anchor {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS setup failed: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// The crypto provider every TLS connection in popferry uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read every certificate in a PEM file.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let read_error = |source| TlsConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsConfigError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// A client configuration that accepts what `trust` says.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = provider();
    let check = match trust {
        Trust::Pinned(fingerprint) => Check::Pinned(*fingerprint),
        Trust::Roots { ca_file } => {
            let roots = roots(ca_file.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()?;
            Check::Chain(webpki)
        }
    };
    let verifier = Verifier {
        check,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The public roots plus the certificates of `ca_file`.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in load_certificates(path)? {
            roots.add(cert).map_err(|source| TlsConfigError::Anchor {
                path: path.to_owned(),
                source,
            })?;
        }
    }
    Ok(roots)
}
