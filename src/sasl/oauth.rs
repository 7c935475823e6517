//! The two OAuth 2.0 bearer-token messages and their failure challenge.
//!
//! Both send the token once. A server that refuses it does not answer with
//! a final error straight away but with one more challenge, a JSON object
//! whose `status` says why (`"401"` at Google and Dovecot for XOAUTH2,
//! `"invalid_token"` for OAUTHBEARER); the client must answer it (XOAUTH2:
//! empty, OAUTHBEARER: a single `\x01`, RFC 7628 §3.2.3) before the server
//! sends its final error.

use serde::Deserialize;

use super::saslname;

/// `user=U ^A auth=Bearer T ^A ^A`, as Google and Microsoft document it.
pub(super) fn xoauth2(username: &str, token: &str) -> Vec<u8> {
    format!("user={username}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// RFC 7628 §3.1. The authorization id in the GS2 header is not optional
/// in practice: Dovecot 2.3 refuses `n,,`.
pub(super) fn oauthbearer(username: &str, token: &str, host: &str, port: u16) -> Vec<u8> {
    format!(
        "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
        saslname(username)
    )
    .into_bytes()
}

/// The `status` of a failure challenge, if it is the JSON it should be;
/// cut short and stripped to printable ASCII, since it ends up in logs.
pub(super) fn failure_status(challenge: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Failure {
        status: String,
    }
    let failure: Failure = serde_json::from_slice(challenge).ok()?;
    let status: String = (failure.status.chars())
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect();
    (!status.is_empty()).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_layout() {
        assert_eq!(
            xoauth2("alice@example.org", "tok"),
            b"user=alice@example.org\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            oauthbearer("alice@example.org", "tok", "pop.example.org", 995),
            b"n,a=alice@example.org,\x01host=pop.example.org\x01port=995\x01auth=Bearer tok\x01\x01"
        );
    }

    #[test]
    fn failure_status_is_read_from_json_only() {
        let google = br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(failure_status(google).as_deref(), Some("401"));
        let bearer = br#"{"status":"invalid_token"}"#;
        assert_eq!(failure_status(bearer).as_deref(), Some("invalid_token"));
        assert_eq!(failure_status(b"not json"), None);
        assert_eq!(failure_status(br#"{"schemes":"bearer"}"#), None);
        let hostile = "{\"status\":\"4\\u001b[31m01\"}";
        assert_eq!(
            failure_status(hostile.as_bytes()).as_deref(),
            Some("4[31m01")
        );
    }
}
