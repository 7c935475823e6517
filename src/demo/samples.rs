//! The messages the demo mailbox is seeded with. Each one shows something
//! popferry has to get right: a plain note, lines that need dot-stuffing,
//! 8-bit text, a large attachment, and a Return-Path that becomes the SMTP
//! envelope sender.

use base64::Engine as _;

use super::pop3_server::Message;

const FROM: &str = "Demo Sender <sender@demo.example>";
const TO: &str = "demo@demo.example";

/// A message in wire form: CRLF line ends, no dot-stuffing.
fn message(uid: &str, extra_headers: &str, subject: &str, body: &str) -> Message {
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let text = format!(
        "{extra_headers}From: {FROM}\nTo: {TO}\nSubject: {subject}\nDate: {date}\n\
         Message-ID: <{uid}.{}@demo.example>\nMIME-Version: 1.0\n{body}",
        now.unix_timestamp()
    );
    Message {
        uid: uid.to_owned(),
        bytes: text.replace('\n', "\r\n").into_bytes(),
    }
}

/// The first batch, waiting before the first fetch.
pub fn first_batch() -> Vec<Message> {
    vec![
        message(
            "demo-0001",
            "",
            "Welcome to popferry",
            "Content-Type: text/plain; charset=us-ascii\n\n\
             This message travelled from a POP3 server over TLS to an SMTP receiver.\n\
             popferry recorded its unique-id in the ledger before deleting it.\n",
        ),
        message(
            "demo-0002",
            "",
            "Lines that start with a dot",
            "Content-Type: text/plain; charset=us-ascii\n\n\
             POP3 and SMTP both end a message with a line holding a single dot,\n\
             so lines that start with one are escaped on the wire. These survive:\n\
             .\n..\n.hidden\n",
        ),
        message(
            "demo-0003",
            "",
            "8-bit text",
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
             Grüße aus Köln. Ça marche. こんにちは. Bytes pass through untouched.\n",
        ),
        message("demo-0004", "", "A 256 KiB attachment", &attachment()),
        message(
            "demo-0005",
            "Return-Path: <bounces@demo.example>\n",
            "The envelope sender comes from Return-Path",
            "Content-Type: text/plain; charset=us-ascii\n\n\
             The SMTP receiver saw MAIL FROM:<bounces@demo.example> for this one.\n",
        ),
    ]
}

/// The mail that arrives between the two fetches.
pub fn second_batch() -> Vec<Message> {
    (6..=7)
        .map(|n| {
            message(
                &format!("demo-{n:04}"),
                "",
                &format!("New mail number {n}"),
                "Content-Type: text/plain; charset=us-ascii\n\n\
                 Only this message and its sibling are new; the ledger knows the rest.\n",
            )
        })
        .collect()
}

/// A multipart body with about 256 KiB of attachment, base64 in 76-column
/// lines.
fn attachment() -> String {
    let data: Vec<u8> = (0u32..192 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut body = String::from(
        "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n\
         Content-Type: text/plain; charset=us-ascii\n\nA large attachment follows.\n\
         --b1\nContent-Type: application/octet-stream; name=\"noise.bin\"\n\
         Content-Transfer-Encoding: base64\n\n",
    );
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).unwrap_or_default());
        body.push('\n');
    }
    body.push_str("--b1--\n");
    body
}
