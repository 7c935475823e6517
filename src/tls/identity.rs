//! A client certificate and its private key (`client_cert`, `client_key`),
//! for servers that ask the client to prove who it is.
//!
//! Both files are read and checked when the configuration is loaded, so a
//! wrong path, a file that is not PEM or a key that belongs to another
//! certificate is reported with the line to fix, not at the first poll.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{provider, CertificateInfo};

/// A certificate chain and the key it certifies, as loaded from PEM files.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: Arc<PrivateKeyDer<'static>>,
}

/// Why `client_cert` / `client_key` cannot be used. Never shows key bytes.
/// The PEM errors are not `source`s: their text is in the message, once.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read client_cert {}: {}", path.display(), pem_problem(error))]
    ReadCert { path: PathBuf, error: pem::Error },
    #[error("cannot read client_key {}: {}", path.display(), pem_problem(error))]
    ReadKey { path: PathBuf, error: pem::Error },
    #[error(
        "client_key {} is not a private key popferry can use (RSA, ECDSA P-256/P-384 or Ed25519, \
         in PEM)",
        path.display()
    )]
    UnusableKey { path: PathBuf },
    #[error(
        "client_key {} does not belong to client_cert {}: the key's public half differs from \
         the certificate's",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// pem's errors print as Debug; these are the ones a person meets.
fn pem_problem(error: &pem::Error) -> String {
    match error {
        pem::Error::Io(io) => io.to_string(),
        pem::Error::NoItemsFound => "it holds no PEM item of the expected kind".to_owned(),
        _ => "it is not a valid PEM file".to_owned(),
    }
}

impl ClientIdentity {
    /// Reads both files and checks that the key matches the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ClientIdentity, IdentityError> {
        let read_cert = |error| IdentityError::ReadCert {
            path: cert_path.to_owned(),
            error,
        };
        let chain = CertificateDer::pem_file_iter(cert_path)
            .map_err(read_cert)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_cert)?;
        if chain.is_empty() {
            return Err(read_cert(pem::Error::NoItemsFound));
        }
        let key =
            PrivateKeyDer::from_pem_file(key_path).map_err(|error| IdentityError::ReadKey {
                path: key_path.to_owned(),
                error,
            })?;
        let unusable = || IdentityError::UnusableKey {
            path: key_path.to_owned(),
        };
        let signing = provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|_| unusable())?;
        match CertifiedKey::new(chain.clone(), signing).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => {
                return Err(IdentityError::Mismatch {
                    cert: cert_path.to_owned(),
                    key: key_path.to_owned(),
                })
            }
        }
        Ok(ClientIdentity {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            chain,
            key: Arc::new(key),
        })
    }
}

impl ClientIdentity {
    /// The client's own certificate, the first of the chain, for
    /// `popferry check` to show and to warn of its expiry.
    pub fn certificate(&self) -> Option<CertificateInfo> {
        self.chain.first().and_then(CertificateInfo::of)
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Equal when the files and what they held at load time are: a reload
/// that finds a renewed certificate counts as a change.
impl PartialEq for ClientIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.cert_path == other.cert_path
            && self.key_path == other.key_path
            && self.chain == other.chain
            && self.key.secret_der() == other.key.secret_der()
    }
}

impl Eq for ClientIdentity {}

impl Hash for ClientIdentity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cert_path.hash(state);
        self.key_path.hash(state);
        self.chain.hash(state);
    }
}
