//! The server certificate check: a CA chain, a certificate listed in
//! `ca_file`, or one pinned certificate.
//!
//! Every refusal names the SHA-256 fingerprint of the certificate the
//! server presented, so an administrator facing a self-signed certificate
//! can compare it with what the server's own `openssl x509 -fingerprint
//! -sha256` prints, instead of turning verification off.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::anchors::Anchors;
use super::refusal::{cause, out_of_date, wrong_name, Cause, Refused};
use super::Fingerprint;

/// How a certificate earns trust.
#[derive(Debug)]
pub(super) enum Check {
    /// A chain to one of the anchors, or a certificate `ca_file` lists
    /// byte for byte; either way valid now and for the server's name.
    /// `webpki` is `None` when no listed certificate can serve as a CA.
    Chain {
        webpki: Option<Arc<WebPkiServerVerifier>>,
        anchors: Anchors,
    },
    /// Exactly this certificate. The pin replaces the CA, name and date
    /// checks, which is what makes self-signed certificates usable; the
    /// handshake signature is still verified, so only the holder of the
    /// pinned certificate's key can complete it.
    Pinned(Fingerprint),
}

#[derive(Debug)]
pub(super) struct Verifier {
    pub check: Check,
    pub algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = |cause| Refused {
            host: server_name.to_str().into_owned(),
            presented: Fingerprint::of(end_entity),
            cause,
        };
        let (webpki, anchors) = match &self.check {
            Check::Pinned(pinned) if *pinned == Fingerprint::of(end_entity) => {
                return Ok(ServerCertVerified::assertion())
            }
            Check::Pinned(pinned) => {
                return Err(refuse(refused(Cause::NotPinned { pinned: *pinned })))
            }
            Check::Chain { webpki, anchors } => (webpki, anchors),
        };
        if anchors.listed.iter().any(|listed| listed == end_entity) {
            return listed(end_entity, server_name, now)
                .map(|()| ServerCertVerified::assertion())
                .map_err(|cause| refuse(refused(cause)));
        }
        let verdict = match webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        verdict.map_err(|error| match error {
            rustls::Error::InvalidCertificate(reason) => {
                let cause = cause(&reason, end_entity, intermediates, now, &anchors.origin);
                refuse(refused(cause))
            }
            other => other,
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The checks left for a certificate the administrator listed in
/// `ca_file` itself: it must be valid now and name the server. Being
/// listed replaces the chain, so a self-signed `CA:TRUE` certificate
/// (what `openssl req -x509` makes) is trusted as the server's own.
fn listed(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Cause> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(end_entity).map_err(|_| Cause::Malformed)?;
    if let Some(cause) = out_of_date(&cert, now) {
        return Err(cause);
    }
    let parsed = ParsedCertificate::try_from(end_entity).map_err(|_| Cause::Malformed)?;
    verify_server_name(&parsed, server_name).map_err(|_| wrong_name(&cert))
}

/// Carried as `rustls::Error::Other` because that is the one variant whose
/// message rustls prints with `Display`; [`crate::net::Stream::tls`]
/// unwraps it again.
fn refuse(refused: Refused) -> rustls::Error {
    rustls::Error::Other(OtherError(Arc::new(refused)))
}
