//! What a server showed of itself, printed under its login line the way
//! mpop's `--serverinfo` does: TLS, certificate, capabilities, mechanisms.

use super::Report;
use crate::tls::ConnectionInfo;

/// The TLS facts of a connection; fails on a server certificate out of
/// its validity period (only a pinned certificate gets that far).
pub(super) fn tls(report: &mut Report, who: &str, what: &str, info: Option<ConnectionInfo>) {
    let Some(info) = info else {
        report.detail(who, "TLS: none");
        return;
    };
    report.detail(
        who,
        &format!("TLS: {}, {}", info.version, info.cipher_suite),
    );
    let Some(cert) = info.certificate else {
        return;
    };
    report.detail(who, &format!("certificate subject: {}", cert.subject));
    report.detail(who, &format!("certificate issuer: {}", cert.issuer));
    report.detail(
        who,
        &format!(
            "certificate validity: not before {}, not after {}",
            cert.not_before, cert.not_after
        ),
    );
    report.detail(
        who,
        &format!("certificate SHA-256 fingerprint: {}", cert.fingerprint),
    );
    if !cert.is_valid() {
        let problem = format!(
            "its certificate {}: the server must renew it",
            cert.period()
        );
        report.fail(who, what, &problem);
    }
}

/// The capability lines, the SASL mechanisms among them and the one
/// popferry used.
pub(super) fn offers(report: &Report, who: &str, capabilities: &[String], sasl: &[String]) {
    let listed = if capabilities.is_empty() {
        "none listed".to_owned()
    } else {
        capabilities.join(", ")
    };
    report.detail(who, &format!("capabilities: {listed}"));
    let mechanisms = if sasl.is_empty() {
        "none offered".to_owned()
    } else {
        sasl.join(" ")
    };
    report.detail(who, &format!("SASL mechanisms: {mechanisms}"));
}
