//! rustls errors in plain words.
//!
//! rustls prints most of its errors with `Debug` ("received fatal alert:
//! CertificateRequired", "peer is incompatible: NoCipherSuitesInCommon"),
//! which tells a mail administrator little. Every TLS error on its way to a
//! log or a terminal passes through [`plain`] instead.

use std::io;

use rustls::{AlertDescription, OtherError};

/// The same error with a message a person can act on; errors that do not
/// come from rustls pass unchanged.
pub fn plain(error: io::Error) -> io::Error {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return error;
    };
    io::Error::new(error.kind(), describe(tls))
}

/// What went wrong, in words; popferry's own certificate refusals come
/// through whole.
pub fn describe(error: &rustls::Error) -> String {
    use rustls::Error as E;
    match error {
        E::Other(OtherError(inner)) => inner.to_string(),
        E::AlertReceived(alert) => alert_words(*alert),
        E::PeerIncompatible(_) => "the server offers no TLS version or cipher suite popferry \
                                   accepts (TLS 1.2 or 1.3 with a modern cipher)"
            .to_owned(),
        E::NoCertificatesPresented => "the server presented no certificate".to_owned(),
        E::InvalidCertificate(_) => "the server's certificate was refused".to_owned(),
        E::InconsistentKeys(_) => "client_key does not belong to client_cert".to_owned(),
        E::DecryptError | E::InvalidMessage(_) | E::PeerMisbehaved(_) => {
            "the server broke the TLS protocol (a faulty server, or something on the path \
             tampering with the connection)"
                .to_owned()
        }
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server sent a TLS message out of order".to_owned()
        }
        E::PeerSentOversizedRecord => "the server sent an oversized TLS record".to_owned(),
        E::General(text) => text.clone(),
        _ => "the TLS connection failed".to_owned(),
    }
}

fn alert_words(alert: AlertDescription) -> String {
    use AlertDescription as A;
    let words = match alert {
        A::CertificateRequired => {
            "the server requires a client certificate: set client_cert and client_key"
        }
        A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => {
            "the server refused popferry's client certificate (check client_cert and client_key)"
        }
        A::CertificateExpired => "the server says popferry's client certificate has expired",
        A::CertificateRevoked => "the server says popferry's client certificate was revoked",
        A::UnknownCA => {
            "the server does not trust the CA that issued popferry's client certificate"
        }
        A::AccessDenied => "the server denied access after checking the client certificate",
        // OpenSSL servers also answer a missing client certificate so
        // under TLS 1.2.
        A::HandshakeFailure => {
            "the server broke off the TLS handshake: it may require a client certificate \
             (client_cert, client_key), or share no TLS version or cipher suite with popferry"
        }
        A::InsufficientSecurity | A::ProtocolVersion => {
            "the server and popferry have no TLS version or cipher suite in common"
        }
        A::UnrecognisedName => "the server does not know the host name popferry asked for",
        A::DecryptError | A::BadRecordMac | A::DecodeError | A::IllegalParameter => {
            "the server could not decode popferry's TLS messages"
        }
        _ => "the server ended the TLS connection with an error",
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_and_protocol_errors_read_as_words_not_variant_names() {
        let cases = [
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "requires a client certificate",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                "does not trust the CA",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                "client certificate",
            ),
            (
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
                "no TLS version or cipher suite",
            ),
        ];
        for (error, words) in cases {
            let io = io::Error::new(io::ErrorKind::InvalidData, error);
            let text = plain(io).to_string();
            assert!(text.contains(words), "{text}");
            for name in [
                "CertificateRequired",
                "UnknownCA",
                "HandshakeFailure",
                "NoCipher",
            ] {
                assert!(!text.contains(name), "{text}");
            }
        }
    }
}
