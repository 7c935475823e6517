//! What scripted SASL servers share across POP3 (RFC 5034) and SMTP
//! (RFC 4954): the exchanges are the same, only the framing of a challenge
//! (`+ ` or `334 `) and of the final reply differ, so these helpers deal in
//! base64 payloads and leave the framing to the test.

use std::error::Error;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use popferry::sasl::SaslError;

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The text inside a base64 line a client sent.
pub fn unb64(line: &str) -> String {
    String::from_utf8(STANDARD.decode(line).expect("base64")).expect("UTF-8")
}

/// The failure challenge of a refused XOAUTH2 token, as Dovecot, Microsoft
/// and Google send it.
pub fn xoauth2_failure_status() -> String {
    b64(br#"{"status":"401","schemes":"bearer","scope":"mail"}"#)
}

/// What a client sends for XOAUTH2 as alice@example.org when the server
/// refuses `token`: the bare AUTH line (never an initial response), the
/// token after the server's empty continuation, and the empty answer to the
/// failure challenge.
pub fn refused_xoauth2_lines(token: &str) -> [String; 3] {
    let response = format!("user=alice@example.org\x01auth=Bearer {token}\x01\x01");
    [
        "AUTH XOAUTH2".to_owned(),
        b64(response.as_bytes()),
        String::new(),
    ]
}

/// A SCRAM-SHA-256 server that knows the client's nonce but not the
/// password: the base64 challenge it sends after `line`, or `None` when
/// the client cancels (`*`). An inline client-first gets a server-first
/// that continues its nonce; anything else gets a server-final whose
/// signature cannot be right.
pub fn forging_scram_challenge(line: &str) -> Option<String> {
    if line == "*" {
        return None;
    }
    let Some(first) = line.strip_prefix("AUTH SCRAM-SHA-256 ") else {
        return Some(b64(format!("v={}", b64(&[0; 32])).as_bytes()));
    };
    let first = unb64(first);
    let nonce = first.rsplit("r=").next().expect("nonce");
    let server_first = format!("r={nonce}server,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    Some(b64(server_first.as_bytes()))
}

/// The SASL error behind a POP3 or SMTP error, which must have one.
pub fn sasl_cause<'e>(err: &'e (dyn Error + 'static)) -> &'e SaslError {
    err.source()
        .and_then(|source| source.downcast_ref::<SaslError>())
        .unwrap_or_else(|| panic!("not a SASL error: {err:?}"))
}
