use super::*;
use crate::pop3::reply::Status;

fn decoder() -> Decoder {
    Decoder::new(Limits::default())
}

/// Feed `wire` in pieces of `step` bytes and decode one message body.
fn body_in_steps(wire: &[u8], step: usize) -> Vec<u8> {
    let mut d = decoder();
    let mut out = Vec::new();
    for piece in wire.chunks(step) {
        d.feed(piece);
        if d.body(&mut out).unwrap().is_some() {
            assert_eq!(d.buffered(), 0, "bytes left after the terminator");
            return out;
        }
    }
    panic!("terminator not found in {wire:?}");
}

#[test]
fn status_lines_with_and_without_codes() {
    let mut d = decoder();
    d.feed(b"+OK POP3 ready\r\n-ERR [SYS/TEMP] try later\r\n-ERR [IN-USE]\r\n+\r\n+ dGVzdA==\r\n");
    let ok = d.reply().unwrap().unwrap();
    assert_eq!(
        (ok.status, ok.code, ok.text.as_str()),
        (Status::Ok, None, "POP3 ready")
    );
    let err = d.reply().unwrap().unwrap();
    assert_eq!(err.status, Status::Err);
    assert_eq!(err.code.as_deref(), Some("SYS/TEMP"));
    assert_eq!(err.text, "try later");
    assert!(err.has_code("SYS") && err.has_code("sys/temp") && !err.has_code("AUTH"));
    let bare = d.reply().unwrap().unwrap();
    assert_eq!(
        (bare.code.as_deref(), bare.text.as_str()),
        (Some("IN-USE"), "")
    );
    let empty_continue = d.reply().unwrap().unwrap();
    assert_eq!(
        (empty_continue.status, empty_continue.text.as_str()),
        (Status::Continue, "")
    );
    let challenge = d.reply().unwrap().unwrap();
    assert_eq!(
        (challenge.status, challenge.text.as_str()),
        (Status::Continue, "dGVzdA==")
    );
    assert_eq!(d.reply().unwrap(), None);
}

#[test]
fn bracket_without_close_is_text_not_code() {
    let mut d = decoder();
    d.feed(b"-ERR [oops no close\r\n");
    let reply = d.reply().unwrap().unwrap();
    assert_eq!(reply.code, None);
    assert_eq!(reply.text, "[oops no close");
}

#[test]
fn malformed_status_lines_are_errors() {
    for line in [
        &b"HELLO\r\n"[..],
        b"+OKAY\r\n",
        b"ERR x\r\n",
        b"\r\n",
        b"OK\r\n",
    ] {
        let mut d = decoder();
        d.feed(line);
        assert!(
            matches!(d.reply(), Err(DecodeError::Malformed { .. })),
            "{line:?} should be malformed"
        );
    }
}

#[test]
fn control_bytes_and_bad_utf8_in_text_are_neutralised() {
    let mut d = decoder();
    d.feed(b"-ERR bad \x1b[31m\xff\x00 text\r\n");
    let reply = d.reply().unwrap().unwrap();
    assert!(
        !reply.text.chars().any(char::is_control),
        "{:?}",
        reply.text
    );
    assert!(reply.text.contains('\u{fffd}'));
}

#[test]
fn status_line_split_at_every_byte() {
    let wire = b"+OK 2 messages (320 octets)\r\n";
    let mut d = decoder();
    for (i, b) in wire.iter().enumerate() {
        d.feed(&[*b]);
        let got = d.reply().unwrap();
        assert_eq!(got.is_some(), i == wire.len() - 1, "at byte {i}");
    }
}

#[test]
fn overlong_status_line_is_a_typed_error_without_waiting_for_lf() {
    let mut d = Decoder::new(Limits {
        max_line: 64,
        max_message: 1024,
    });
    d.feed(&[b'x'; 63]);
    assert_eq!(d.reply().unwrap(), None);
    d.feed(b"x");
    assert_eq!(d.reply(), Err(DecodeError::LineTooLong { limit: 64 }));
}

#[test]
fn line_exactly_at_the_limit_is_accepted() {
    let mut d = Decoder::new(Limits {
        max_line: 8,
        max_message: 1024,
    });
    d.feed(b"+OK abc\n");
    assert!(d.reply().unwrap().unwrap().is_ok());
}

#[test]
fn body_dot_unstuffing_and_terminator() {
    let wire = b"Subject: x\r\n\r\n..leading dot\r\n...\r\n.\r\n";
    assert_eq!(
        body_in_steps(wire, 1000),
        b"Subject: x\r\n\r\n.leading dot\r\n..\r\n"
    );
}

#[test]
fn body_line_that_is_exactly_a_dot_round_trips() {
    let body = b"a\r\n.\r\nb\r\n";
    let mut wire = Vec::new();
    dot_stuff(body, &mut wire);
    assert_eq!(wire, b"a\r\n..\r\nb\r\n.\r\n");
    assert_eq!(body_in_steps(&wire, 1), body);
}

#[test]
fn body_decodes_identically_for_every_chunking() {
    let body: &[u8] = b"From: a\r\n\r\n.\r\n..two\r\n\xe9\xff 8-bit \x00 bytes\r\n.x\r\nend";
    let mut wire = Vec::new();
    dot_stuff(body, &mut wire);
    let mut expected = body.to_vec();
    expected.extend_from_slice(b"\r\n");
    for step in 1..wire.len() {
        assert_eq!(body_in_steps(&wire, step), expected, "chunk size {step}");
    }
}

#[test]
fn crlf_split_across_reads_before_terminator() {
    let mut d = decoder();
    let mut out = Vec::new();
    d.feed(b"line\r");
    assert_eq!(d.body(&mut out).unwrap(), None);
    d.feed(b"\n.");
    assert_eq!(d.body(&mut out).unwrap(), None);
    d.feed(b"\r");
    assert_eq!(d.body(&mut out).unwrap(), None);
    d.feed(b"\n+OK next\r\n");
    assert_eq!(d.body(&mut out).unwrap(), Some(()));
    assert_eq!(out, b"line\r\n");
    assert!(d.reply().unwrap().unwrap().is_ok(), "next reply intact");
}

#[test]
fn bare_lf_terminator_is_accepted() {
    assert_eq!(body_in_steps(b"a\n..b\n.\n", 2), b"a\n.b\n");
}

#[test]
fn empty_body() {
    assert_eq!(body_in_steps(b".\r\n", 1), b"");
}

#[test]
fn body_over_the_size_limit_is_a_typed_error() {
    let mut d = Decoder::new(Limits {
        max_line: 64,
        max_message: 10,
    });
    let mut out = Vec::new();
    d.feed(b"0123456789");
    assert_eq!(d.body(&mut out).unwrap(), None);
    d.feed(b"X");
    assert_eq!(
        d.body(&mut out),
        Err(DecodeError::MessageTooLarge { limit: 10 })
    );
}

#[test]
fn long_body_lines_stream_without_a_line_limit() {
    let mut d = Decoder::new(Limits {
        max_line: 16,
        max_message: 1 << 20,
    });
    let mut out = Vec::new();
    d.feed(&[b'y'; 100_000]);
    assert_eq!(d.body(&mut out).unwrap(), None);
    assert_eq!(out.len(), 100_000, "bytes are handed out as they arrive");
    d.feed(b"\r\n.\r\n");
    assert_eq!(d.body(&mut out).unwrap(), Some(()));
}

#[test]
fn listing_lines_unstuffed_until_end() {
    let mut d = decoder();
    d.feed(b"1 abc\r\n..2 dotted\r\n.\r\n");
    assert_eq!(
        d.listing_line().unwrap(),
        Some(ListingLine::Line(b"1 abc".to_vec()))
    );
    assert_eq!(
        d.listing_line().unwrap(),
        Some(ListingLine::Line(b".2 dotted".to_vec()))
    );
    assert_eq!(d.listing_line().unwrap(), Some(ListingLine::End));
    assert_eq!(d.listing_line().unwrap(), None);
}

#[test]
fn take_buffered_returns_unread_bytes() {
    let mut d = decoder();
    d.feed(b"+OK go ahead\r\nINJECTED\r\n");
    d.reply().unwrap().unwrap();
    assert_eq!(d.take_buffered(), b"INJECTED\r\n");
    assert_eq!(d.buffered(), 0);
}

#[test]
fn release_gives_back_consumed_memory_and_keeps_unread_bytes() {
    let mut d = decoder();
    let mut wire = b"+OK\r\n".to_vec();
    wire.extend(std::iter::repeat_n(b'x', 1 << 20));
    wire.extend_from_slice(b"\r\n.\r\n+OK next\r\n");
    d.feed(&wire);
    d.reply().expect("reply").expect("status line");
    let mut out = Vec::new();
    d.body(&mut out).expect("body").expect("complete");
    assert!(d.buf.capacity() > 1 << 20);
    d.release();
    assert!(d.buf.capacity() < 64, "{} bytes kept", d.buf.capacity());
    let next = d
        .reply()
        .expect("reply")
        .expect("the unread reply survives");
    assert_eq!(next.text, "next");
}

#[test]
fn printable_escapes_and_truncates() {
    let shown = Printable::new(b"a\x1bb\xff").to_string();
    assert_eq!(shown, "a\\x1bb\\xff");
    let long = Printable::new(&[b'z'; 500]).to_string();
    assert!(long.len() < 130 && long.ends_with("..."));
}
