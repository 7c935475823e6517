//! rustls client configuration, shared by the POP3 client and SMTP delivery.
//!
//! Verification is always on. A certificate is trusted when it chains to an
//! anchor, when `ca_file` lists it byte for byte (the server's own
//! self-signed certificate), or when its fingerprint is the one the account
//! pins (`tls_fingerprint`). The anchors are the operating system's trust
//! store, or, when `ca_file` is set, the certificates of that file instead
//! (as with `curl --cacert`). There is no setting that accepts any
//! certificate.

mod anchors;
mod explain;
mod fingerprint;
mod identity;
mod info;
mod refusal;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;

pub use anchors::Origin;
pub use explain::{describe, plain};
pub use fingerprint::{BadFingerprint, Fingerprint};
pub use identity::{ClientIdentity, IdentityError};
pub use info::{CertificateInfo, ConnectionInfo, Validity};
use verify::{Check, Verifier};

/// Which server certificates a connection accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// One that chains to the system's trust store, or, with `ca_file`,
    /// to a certificate of that file or is one of them.
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
    /// Not a `source`: its text is already in the message, once.
    #[error("cannot read ca_file {}: {}", path.display(), pem_problem(error))]
    Read {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("ca_file {} holds no PEM certificate", path.display())]
    Empty { path: PathBuf },
    #[error("ca_file {} holds something that is not an X.509 certificate", path.display())]
    NotCertificate { path: PathBuf },
    #[error("TLS setup failed: {}", describe(.0))]
    Rustls(#[from] rustls::Error),
}

fn pem_problem(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        _ => "it is not a valid PEM file".to_owned(),
    }
}

/// The crypto provider every TLS connection in popferry uses: ring's, with
/// TLS 1.3's AES-128-GCM offered first, as browsers offer it (ring's own
/// order puts AES-256-GCM first). The suites are the same, and a server
/// with an order of its own still picks by it. Why: TLS 1.3 runs its key
/// schedule on the suite's hash, and ring computes SHA-256 with the CPU's
/// SHA instructions but SHA-384 in plain code; with AES-256's SHA-384 that
/// was the daemon's costliest function at 10,000 accounts logging in afresh.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    // A stable sort: the rest keep ring's order.
    (provider.cipher_suites)
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

/// Read every certificate in a PEM file.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let read_error = |error| TlsConfigError::Read {
        path: path.to_owned(),
        error,
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

/// Which anchors `trust` stands for, for `popferry check`: the system
/// store with where it was found, a `ca_file`, or the pin.
pub fn trust_source(trust: &Trust) -> Result<String, TlsConfigError> {
    Ok(match trust {
        Trust::Pinned(fingerprint) => format!("pinned SHA-256 {fingerprint}"),
        Trust::Roots { ca_file: None } => anchors::system().origin.to_string(),
        Trust::Roots {
            ca_file: Some(path),
        } => anchors::ca_file(path)?.origin.to_string(),
    })
}

/// What each certificate of a `ca_file` is, for `popferry check`; the
/// same errors as a connection using the file would meet.
pub fn ca_file_certificates(path: &Path) -> Result<Vec<CertificateInfo>, TlsConfigError> {
    let anchors = anchors::ca_file(path)?;
    Ok(anchors
        .listed
        .iter()
        .filter_map(CertificateInfo::of)
        .collect())
}

/// A client configuration that accepts what `trust` says and, when the
/// server asks, presents `identity`.
///
/// Built once for each setting and shared by every connection that uses
/// it: building one copies the trust store and sets up a verifier, which
/// thousands of accounts logging in every few minutes would pay each
/// time, and only a shared configuration lets rustls resume TLS sessions
/// (RFC 8446 tickets), which spares both ends the certificate check and
/// signature of a full handshake. A `ca_file` that changes on disk (its
/// size or modification time) gets a new configuration.
pub fn client_config(
    trust: &Trust,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    static BUILT: LazyLock<Mutex<HashMap<Setting, Arc<ClientConfig>>>> =
        LazyLock::new(Mutex::default);
    let setting = Setting {
        trust: trust.clone(),
        identity: identity.cloned(),
        ca_file: match trust {
            Trust::Roots {
                ca_file: Some(path),
            } => std::fs::metadata(path)
                .ok()
                .map(|meta| (meta.len(), meta.modified().ok())),
            _ => None,
        },
    };
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(config) = built.get(&setting) {
        return Ok(Arc::clone(config));
    }
    let config = build(trust, identity)?;
    built.retain(|old, _| old.trust != setting.trust || old.identity != setting.identity);
    built.insert(setting, Arc::clone(&config));
    Ok(config)
}

/// What a shared client configuration was built from.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Setting {
    trust: Trust,
    identity: Option<ClientIdentity>,
    /// The `ca_file`'s size and modification time when it was read.
    ca_file: Option<(u64, Option<std::time::SystemTime>)>,
}

fn build(
    trust: &Trust,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = provider();
    let check = match trust {
        Trust::Pinned(fingerprint) => Check::Pinned(*fingerprint),
        Trust::Roots { ca_file } => {
            let anchors = match ca_file {
                Some(path) => anchors::ca_file(path)?,
                None => anchors::system().clone(),
            };
            // Empty when ca_file lists only certificates that cannot act
            // as a CA; those are still trusted when presented exactly.
            let webpki = (!anchors.roots.is_empty())
                .then(|| {
                    WebPkiServerVerifier::builder_with_provider(
                        anchors.roots.clone(),
                        provider.clone(),
                    )
                    .build()
                })
                .transpose()
                .map_err(|_| rustls::Error::General("no usable trust anchors".to_owned()))?;
            Check::Chain { webpki, anchors }
        }
    };
    let verifier = Verifier {
        check,
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match identity {
        Some(identity) => {
            builder.with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.self_signed(&key).expect("certificate").pem()
    }

    #[test]
    fn aes_128_gcm_is_offered_first_and_no_suite_is_dropped() {
        let ours: Vec<_> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        let ring: Vec<_> = (rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter())
        .map(|s| s.suite())
        .collect();
        assert_eq!(ours[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        let (mut sorted, mut expected) = (ours.clone(), ring);
        sorted.sort_by_key(|s| u16::from(*s));
        expected.sort_by_key(|s| u16::from(*s));
        assert_eq!(sorted, expected, "the same suites: {ours:?}");
    }

    #[test]
    fn one_setting_shares_one_configuration_until_its_ca_file_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_pem("a.example")).expect("write");
        let trust = Trust::Roots {
            ca_file: Some(path.clone()),
        };
        let first = client_config(&trust, None).expect("config");
        let again = client_config(&trust, None).expect("config");
        assert!(Arc::ptr_eq(&first, &again), "built once, shared");
        let system = client_config(&Trust::default(), None).expect("system trust");
        assert!(
            !Arc::ptr_eq(&first, &system),
            "another setting, another one"
        );

        let longer = ca_pem("a-longer-name.example");
        std::fs::write(&path, longer).expect("rewrite");
        let changed = client_config(&trust, None).expect("config");
        assert!(
            !Arc::ptr_eq(&first, &changed),
            "a changed ca_file is read again"
        );
    }
}
