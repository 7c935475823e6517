//! A refused server certificate, told the way a mail administrator would
//! tell it: what is wrong with the certificate, its SHA-256 fingerprint,
//! and what to change. webpki's error names ("UnknownIssuer",
//! "CaUsedAsEndEntity") say little to someone who made the certificate
//! with `openssl req -x509`; the facts behind them come from the
//! certificate itself.

use std::fmt;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::CertificateError;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

use super::anchors::Origin;
use super::Fingerprint;

/// Why a certificate is not trusted, with the fingerprint and the fix.
#[derive(Debug)]
pub(super) struct Refused {
    /// The name popferry connected as: `host` of the account or relay.
    pub host: String,
    pub presented: Fingerprint,
    pub cause: Cause,
}

#[derive(Debug)]
pub(super) enum Cause {
    Expired {
        on: String,
    },
    NotYetValid {
        from: String,
    },
    /// A CA certificate the server sent with its own is out of date.
    ChainOutOfDate,
    WrongName {
        names: Vec<String>,
    },
    SelfSigned,
    UntrustedIssuer {
        issuer: String,
        place: String,
    },
    NotPinned {
        pinned: Fingerprint,
    },
    NotForServers,
    Revoked,
    BadSignature,
    Unsupported,
    Malformed,
}

impl std::error::Error for Refused {}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = &self.host;
        let presented = self.presented;
        let its = format!("the certificate of {host}");
        match &self.cause {
            Cause::Expired { on } => write!(f, "{its} expired on {on}"),
            Cause::NotYetValid { from } => write!(f, "{its} is not valid before {from}"),
            Cause::ChainOutOfDate => {
                write!(
                    f,
                    "{its} was issued by a CA certificate that is expired or not yet valid"
                )
            }
            Cause::WrongName { names } if names.is_empty() => {
                write!(f, "{its} names no host at all, not {host}")
            }
            Cause::WrongName { names } => {
                write!(
                    f,
                    "{its} is for another server: it names {}, not {host}",
                    names.join(", ")
                )
            }
            Cause::SelfSigned => write!(f, "{its} is self-signed and not in ca_file"),
            Cause::UntrustedIssuer { issuer, place } => write!(
                f,
                "{its} was issued by {issuer}, which is not trusted (it is not in {place})"
            ),
            Cause::NotPinned { pinned } => write!(
                f,
                "{its} has SHA-256 fingerprint {presented}, which does not match \
                 tls_fingerprint {pinned}"
            ),
            Cause::NotForServers => write!(f, "{its} is not meant for a TLS server"),
            Cause::Revoked => write!(f, "{its} has been revoked"),
            Cause::BadSignature => write!(f, "the signature on {its} does not verify"),
            Cause::Unsupported => {
                write!(
                    f,
                    "{its} is signed with an algorithm popferry does not support"
                )
            }
            Cause::Malformed => write!(f, "{its} is malformed"),
        }?;
        if !matches!(self.cause, Cause::NotPinned { .. }) {
            write!(f, " (SHA-256 fingerprint {presented})")?;
        }
        write!(f, ". Fix: {}", self.fix())
    }
}

impl Refused {
    fn fix(&self) -> String {
        let host = &self.host;
        match &self.cause {
            Cause::Expired { .. } => "renew the server's certificate (or, if this machine's \
                                      clock is wrong, correct it)"
                .to_owned(),
            Cause::NotYetValid { .. } => "check this machine's clock; if it is right, the \
                                          server's certificate must be reissued"
                .to_owned(),
            Cause::ChainOutOfDate => "the server must send current CA certificates".to_owned(),
            Cause::WrongName { .. } => format!(
                "set host to a name the certificate holds, or have the certificate reissued \
                 with {host} in its subjectAltName"
            ),
            Cause::SelfSigned => format!(
                "if this is the server's own certificate (compare the fingerprint with \
                 `openssl x509 -noout -fingerprint -sha256 -in CERT` on the server), set \
                 ca_file to a copy of it, or set tls_fingerprint = \"sha256:{}\"",
                self.presented
            ),
            Cause::UntrustedIssuer { .. } => "set ca_file to the certificate of the CA that \
                                              issued it (or install that CA in the system \
                                              trust store with update-ca-certificates)"
                .to_owned(),
            Cause::NotPinned { .. } => "if the server's certificate was replaced on purpose, \
                                        check the new one and set tls_fingerprint to its \
                                        fingerprint"
                .to_owned(),
            Cause::NotForServers => "have the certificate reissued for server authentication \
                                     (extendedKeyUsage serverAuth)"
                .to_owned(),
            Cause::Revoked | Cause::BadSignature | Cause::Unsupported | Cause::Malformed => {
                "the server's certificate must be replaced".to_owned()
            }
        }
    }
}

/// Turns webpki's verdict into a [`Cause`], reading the dates, names and
/// issuer from the certificates themselves.
pub(super) fn cause(
    error: &CertificateError,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    origin: &Origin,
) -> Cause {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity) else {
        return Cause::Malformed;
    };
    match error {
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            out_of_date(&cert, now).unwrap_or(Cause::ChainOutOfDate)
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            wrong_name(&cert)
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            Cause::NotForServers
        }
        CertificateError::Revoked => Cause::Revoked,
        CertificateError::BadEncoding => Cause::Malformed,
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            Cause::Unsupported
        }
        _ if is_self_signed(&cert) => Cause::SelfSigned,
        CertificateError::BadSignature => Cause::BadSignature,
        // UnknownIssuer, and webpki's own errors such as CaUsedAsEndEntity:
        // either way no trusted CA vouches for the certificate.
        _ => Cause::UntrustedIssuer {
            issuer: top_issuer(&cert, intermediates),
            place: origin.place(),
        },
    }
}

/// The date check for a certificate, `None` while it is valid.
pub(super) fn out_of_date(cert: &X509Certificate<'_>, now: UnixTime) -> Option<Cause> {
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now > validity.not_after.timestamp() {
        Some(Cause::Expired {
            on: date(validity.not_after),
        })
    } else if now < validity.not_before.timestamp() {
        Some(Cause::NotYetValid {
            from: date(validity.not_before),
        })
    } else {
        None
    }
}

/// The certificate is for some other host: the names it does hold.
pub(super) fn wrong_name(cert: &X509Certificate<'_>) -> Cause {
    Cause::WrongName { names: names(cert) }
}

pub(super) fn date(time: ASN1Time) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time.to_datetime()
        .format(format)
        .unwrap_or_else(|_| time.to_string())
}

/// The host names and addresses a certificate is for: its subjectAltName
/// entries, or its common name when it has none.
fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => names.extend(ip(bytes)),
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            (cert.subject().iter_common_name())
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_owned),
        );
    }
    names
}

fn ip(bytes: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(std::net::Ipv4Addr::from(v4).to_string());
    }
    let v6 = <[u8; 16]>::try_from(bytes).ok()?;
    Some(std::net::Ipv6Addr::from(v6).to_string())
}

/// Issued by itself: the subject and issuer are the same name.
fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

/// The issuer at the top of the chain the server sent: the CA that would
/// have to be trusted.
fn top_issuer(end_entity: &X509Certificate<'_>, intermediates: &[CertificateDer<'_>]) -> String {
    let top = intermediates
        .last()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.issuer().to_string());
    top.unwrap_or_else(|| end_entity.issuer().to_string())
}
