//! 8-bit bodies and long lines (issue 12, part 6), seen from the scripted
//! aiosmtpd: a message with 8-bit bytes goes out with `BODY=8BITMIME` to a
//! relay that offers it, and a 3000-byte line is refused by aiosmtpd
//! (`500 Line too long`), so the message stays on the server, recorded
//! rejected.
#![cfg(feature = "real-servers")]

mod support;

use std::time::Duration;

use support::mail::{message, TestMessage};
use support::receivers::{
    aio_address, aio_delivered_to, aio_dumps, aiosmtpd, assert_each_once_intact,
    assert_status_mentions_refusal, relay_table, scenario, tag,
};

fn aio_table() -> String {
    let aio = aiosmtpd();
    relay_table("localhost", aio.port, "starttls")
        + &format!(
            "username = \"{}\"\npassword = \"{}\"\n",
            aio.user, aio.password
        )
}

#[test]
fn eight_bit_message_is_declared_8bitmime_to_a_relay_that_offers_it() {
    let s = scenario(
        "aio-8bit",
        aio_table(),
        |tag| vec![aio_address("ok", tag)],
        |tag| vec![message(tag, 0, 1_000)],
    );
    assert!(
        s.messages[0].bytes.iter().any(|b| *b >= 0x80),
        "premise: 8-bit bytes"
    );
    let out = s.config.fetch();
    assert_eq!(out.code, Some(0), "{out}");
    let ok = aio_address("ok", &tag(&s));
    assert_each_once_intact(&s.messages, &aio_delivered_to(&tag(&s), &ok), "8-bit");
    let dumps = aio_dumps(&tag(&s));
    assert!(
        dumps[0].mail_options().iter().any(|o| o == "BODY=8BITMIME"),
        "MAIL FROM parameters: {:?}",
        dumps[0].mail_options()
    );
}

/// A message whose body has one line of `len` bytes.
fn long_line_message(tag: &str, len: usize) -> TestMessage {
    let message_id = format!("<{tag}.long@popferry-test.example.org>");
    let mut bytes = format!(
        "From: sender@example.org\nTo: {tag}@example.org\nSubject: long line\n\
         Message-ID: {message_id}\n\n"
    )
    .into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', len));
    bytes.extend_from_slice(b"\nend\n");
    TestMessage { message_id, bytes }
}

#[test]
fn line_of_3000_bytes_is_refused_by_aiosmtpd_and_the_message_stays_recorded_rejected() {
    let s = scenario(
        "aio-longline",
        aio_table(),
        |tag| vec![aio_address("ok", tag)],
        |tag| vec![long_line_message(tag, 3_000)],
    );
    let out = s.config.fetch();
    assert!(matches!(out.code, Some(0 | 1)), "{out}");
    assert!(
        aio_dumps(&tag(&s)).is_empty(),
        "aiosmtpd kept the message\n{out}"
    );
    assert_eq!(
        s.mailbox.wait_for_count(1, Duration::from_secs(5)),
        1,
        "the message must stay on the server\n{out}"
    );
    assert_status_mentions_refusal(&s);
}
