//! What a TLS connection and its certificates are, as `popferry check`
//! shows them (mpop's `--serverinfo` facts): protocol version, cipher
//! suite, and per certificate subject, issuer, validity and fingerprint.
//!
//! Kept here rather than in the CLI so that nothing outside `tls` and
//! `net` needs to reach into a rustls connection or parse X.509.

use std::fmt;

use rustls::pki_types::CertificateDer;
use rustls::ClientConnection;
use x509_parser::time::ASN1Time;

use super::refusal::date;
use super::Fingerprint;

/// The negotiated parameters of one TLS connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// As the RFCs name it: `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The server's own certificate; `None` only if it sent none (rustls
    /// refuses that, so in practice it is always there).
    pub certificate: Option<CertificateInfo>,
}

impl ConnectionInfo {
    /// The facts of an established client connection.
    pub fn of(connection: &ClientConnection) -> ConnectionInfo {
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_owned(),
        };
        let cipher_suite = connection.negotiated_cipher_suite().map_or_else(
            || "unknown".to_owned(),
            |suite| format!("{:?}", suite.suite()),
        );
        let certificate = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(CertificateInfo::of);
        ConnectionInfo {
            version,
            cipher_suite,
            certificate,
        }
    }
}

/// One X.509 certificate, as an administrator compares it with
/// `openssl x509 -noout -subject -issuer -dates -fingerprint -sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// `YYYY-MM-DD hh:mm:ss UTC`.
    pub not_before: String,
    pub not_after: String,
    pub validity: Validity,
    pub fingerprint: Fingerprint,
}

/// Where now falls in a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    NotYetValid,
    Expired,
}

impl CertificateInfo {
    /// `None` if `der` is not an X.509 certificate.
    pub fn of(der: &CertificateDer<'_>) -> Option<CertificateInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let period = cert.validity();
        let now = ASN1Time::now();
        let validity = if now < period.not_before {
            Validity::NotYetValid
        } else if now > period.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        };
        Some(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: date(period.not_before),
            not_after: date(period.not_after),
            validity,
            fingerprint: Fingerprint::of(der),
        })
    }

    /// Whether the certificate can be used today.
    pub fn is_valid(&self) -> bool {
        self.validity == Validity::Valid
    }

    /// The validity period in words, naming the problem when there is one.
    pub fn period(&self) -> String {
        let (from, until) = (&self.not_before, &self.not_after);
        match self.validity {
            Validity::Valid => format!("valid from {from} until {until}"),
            Validity::NotYetValid => format!("not valid before {from} (valid until {until})"),
            Validity::Expired => format!("expired at {until} (valid from {from})"),
        }
    }
}

/// Subject, issuer, period and fingerprint on one line.
impl fmt::Display for CertificateInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject {}, issuer {}, {}, SHA-256 {}",
            self.subject,
            self.issuer,
            self.period(),
            self.fingerprint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_before: (i32, u8), not_after: (i32, u8)) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(vec!["pop.example.org".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, 1);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("sign").der().clone()
    }

    #[test]
    fn tells_expired_current_and_future_certificates_apart() {
        let expired = CertificateInfo::of(&certificate((2000, 1), (2001, 1))).expect("parse");
        assert_eq!(expired.validity, Validity::Expired);
        assert!(
            expired
                .period()
                .starts_with("expired at 2001-01-01 00:00:00 UTC"),
            "{}",
            expired.period()
        );
        let current = CertificateInfo::of(&certificate((2000, 1), (4000, 1))).expect("parse");
        assert!(current.is_valid(), "{current}");
        let future = CertificateInfo::of(&certificate((3999, 1), (4000, 1))).expect("parse");
        assert_eq!(future.validity, Validity::NotYetValid);
        assert!(current.subject.contains("rcgen"), "{current}");
    }

    #[test]
    fn fingerprint_is_of_the_der_bytes() {
        let der = certificate((2000, 1), (4000, 1));
        let info = CertificateInfo::of(&der).expect("parse");
        assert_eq!(info.fingerprint, Fingerprint::of(&der));
        assert!(CertificateInfo::of(&CertificateDer::from(vec![1, 2, 3])).is_none());
    }
}
