//! What popferry reads from a message and puts in front of it: the
//! envelope sender from `Return-Path:`, and its own `Received:` header.

use crate::headers;
use crate::smtp;

/// The envelope sender from the message's `Return-Path:` header, which the
/// final delivery agent on the POP3 side wrote from the original envelope.
/// `<>` (a bounce) stays a null sender; a missing or unparsable header also
/// gives a null sender, the choice that cannot create mail loops.
pub fn return_path(message: &[u8]) -> Option<String> {
    let field = headers::fields(message).find(|field| field.is("Return-Path"))?;
    let value = std::str::from_utf8(field.value()).ok()?.trim();
    let addr = value.trim_start_matches('<').trim_end_matches('>').trim();
    smtp::is_address(addr).then(|| addr.to_owned())
}

/// The `Received:` trace header popferry adds, naming the POP3 server and
/// the account the message came from. CRLF-terminated like the message.
pub fn trace_header(pop3_host: &str, account: &str, uid: &str, tls: bool) -> Vec<u8> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let with = if tls { "POP3S" } else { "POP3" };
    format!(
        "Received: from {pop3_host} by popferry ({version}) with {with}\r\n\tfor account {account} id {uid}; {date}\r\n",
        version = env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_read_from_the_header_block_only() {
        let msg = b"Return-Path: <bob@example.org>\r\nSubject: x\r\n\r\nReturn-Path: <evil@example.org>\r\n";
        assert_eq!(return_path(msg), Some("bob@example.org".to_owned()));
        let body_only = b"Subject: x\r\n\r\nReturn-Path: <evil@example.org>\r\n";
        assert_eq!(return_path(body_only), None);
        assert_eq!(return_path(b"return-path: <>\r\n\r\n"), None);
    }

    #[test]
    fn trace_header_names_server_and_account() {
        let header =
            String::from_utf8(trace_header("pop.example.com", "alice", "U1", true)).unwrap();
        assert!(header.starts_with("Received: from pop.example.com by popferry"));
        assert!(header.contains("account alice id U1"));
        assert!(header.ends_with("\r\n") && header.matches("\r\n").count() == 2);
    }
}
