//! Properties of the sans-IO codecs over generated inputs: SMTP DATA
//! stuffing undone by the POP3 body decoder gives back any message; every
//! way of cutting a reply stream into reads decodes like one read; the
//! limits are exact. The drivers in codec_drive also check, on every
//! input, that decoded text is safe to log and output stays bounded.
//!
//! The fuzz targets in fuzz/ run the same drivers on fuzzer-made inputs.

mod codec_drive;

use codec_drive::{
    decode_pop3_any_chunking, decode_smtp_any_chunking, expected_after_round_trip,
    stuff_then_unstuff, Pop3Event, Pop3Step,
};
use popferry::pop3::codec::{dot_stuff, DecodeError, Limits};
use popferry::smtp::data::CHUNK;
use popferry::smtp::reply::Reply as SmtpReply;
use proptest::collection::vec;
use proptest::prelude::*;

/// Bytes with the ones that matter to framing (dot, CR, LF) made common.
fn wire_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()]
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    vec(wire_byte(), 0..300)
}

/// Read sizes; an empty list means one read of everything.
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(1..40usize, 0..6)
}

/// Pieces that make framing interesting, for streams that need not be
/// well-formed.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"+OK 2 200\r\n".to_vec()),
        Just(b"-ERR [SYS/TEMP] later\r\n".to_vec()),
        Just(b"+ dGVzdA==\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"..\r\n".to_vec()),
        Just(b".x\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"250-a\r\n".to_vec()),
        Just(b"250 b\r\n".to_vec()),
        Just(b"550 5.1.1 no\r\n".to_vec()),
        vec(wire_byte(), 0..20),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    vec(fragment(), 0..20).prop_map(|parts| parts.concat())
}

fn step() -> impl Strategy<Value = Pop3Step> {
    prop_oneof![
        Just(Pop3Step::Status),
        Just(Pop3Step::Listing),
        Just(Pop3Step::Body)
    ]
}

/// Text a well-behaved server or relay puts after a status or code.
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

fn wire_of(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = b"+OK listing follows\r\n".to_vec();
    for line in lines {
        if line.first() == Some(&b'.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

fn encode_smtp(replies: &[SmtpReply]) -> Vec<u8> {
    let mut wire = Vec::new();
    for reply in replies {
        for (i, line) in reply.lines.iter().enumerate() {
            let more = if i + 1 < reply.lines.len() { '-' } else { ' ' };
            wire.extend_from_slice(format!("{}{more}{line}\r\n", reply.code).as_bytes());
        }
    }
    wire
}

proptest! {
    #[test]
    fn stuffing_then_unstuffing_gives_back_any_message(message in message(), sizes in sizes()) {
        prop_assert_eq!(stuff_then_unstuff(&message, &sizes), expected_after_round_trip(&message));
    }

    #[test]
    fn a_message_ending_in_a_line_feed_comes_back_byte_for_byte(
        mut message in message(),
        sizes in sizes(),
    ) {
        message.push(b'\n');
        prop_assert_eq!(stuff_then_unstuff(&message, &sizes), message);
    }

    #[test]
    fn a_message_without_a_final_line_feed_gains_one_crlf(
        mut message in message(),
        last in any::<u8>().prop_filter("not LF", |b| *b != b'\n'),
    ) {
        message.push(last);
        let back = stuff_then_unstuff(&message, &[]);
        prop_assert_eq!(&back[..message.len()], &message[..]);
        prop_assert_eq!(&back[message.len()..], b"\r\n");
    }

    #[test]
    fn pop3_status_lines_decode_alike_in_any_chunking(
        lines in vec((0..3usize, text(), any::<bool>()), 0..10),
        sizes in sizes(),
    ) {
        let mut wire = Vec::new();
        for (status, text, bare_lf) in &lines {
            let status = ["+OK", "-ERR", "+"][*status];
            let end = if *bare_lf { "\n" } else { "\r\n" };
            wire.extend_from_slice(format!("{status} {text}{end}").as_bytes());
        }
        let steps = vec![Pop3Step::Status; lines.len() + 1];
        let events = decode_pop3_any_chunking(Limits::default(), &steps, &wire, &sizes);
        prop_assert_eq!(events.len(), lines.len() + 1);
        let cut = Pop3Event::Cut { lines: Vec::new(), body: Vec::new() };
        prop_assert_eq!(events.last(), Some(&cut));
    }

    #[test]
    fn pop3_listings_decode_to_their_lines_in_any_chunking(
        lines in vec(vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..30), 0..10),
        sizes in sizes(),
    ) {
        let wire = wire_of(&lines);
        let steps = [Pop3Step::Status, Pop3Step::Listing];
        let events = decode_pop3_any_chunking(Limits::default(), &steps, &wire, &sizes);
        prop_assert!(matches!(&events[0], Pop3Event::Status(reply) if reply.is_ok()));
        prop_assert_eq!(&events[1], &Pop3Event::Listing(lines));
    }

    #[test]
    fn pipelined_retr_replies_decode_alike_in_any_chunking(
        messages in vec(message(), 1..4),
        sizes in sizes(),
    ) {
        let mut wire = Vec::new();
        for message in &messages {
            wire.extend_from_slice(b"+OK message follows\r\n");
            dot_stuff(message, &mut wire);
        }
        let steps: Vec<Pop3Step> = messages.iter().flat_map(|_| [Pop3Step::Status, Pop3Step::Body]).collect();
        let events = decode_pop3_any_chunking(Limits::default(), &steps, &wire, &sizes);
        let bodies: Vec<&Pop3Event> = events.iter().skip(1).step_by(2).collect();
        let expected: Vec<Pop3Event> = messages.iter().map(|m| Pop3Event::Body(expected_after_round_trip(m))).collect();
        prop_assert_eq!(bodies, expected.iter().collect::<Vec<_>>());
    }

    #[test]
    fn any_pop3_conversation_decodes_alike_in_any_chunking(
        steps in vec(step(), 0..8),
        wire in stream(),
        sizes in sizes(),
        max_line in 1..64usize,
        max_message in 0..128u64,
    ) {
        let limits = Limits { max_line, max_message };
        decode_pop3_any_chunking(limits, &steps, &wire, &sizes);
    }

    #[test]
    fn a_body_cut_short_has_handed_out_every_line_before_the_cut(
        mut message in message(),
        sizes in sizes(),
    ) {
        message.push(b'\n');
        let mut wire = Vec::new();
        dot_stuff(&message, &mut wire);
        wire.truncate(wire.len() - b".\r\n".len());
        let events = decode_pop3_any_chunking(Limits::default(), &[Pop3Step::Body], &wire, &sizes);
        prop_assert_eq!(&events[..], &[Pop3Event::Cut { lines: Vec::new(), body: message }]);
    }

    #[test]
    fn a_listing_cut_short_has_handed_out_every_line_before_the_cut(
        lines in vec("[ -~]{0,20}", 0..6),
        sizes in sizes(),
    ) {
        let lines: Vec<Vec<u8>> = lines.into_iter().map(String::into_bytes).collect();
        let mut wire = wire_of(&lines);
        wire.truncate(wire.len() - b".\r\n".len());
        let events = decode_pop3_any_chunking(Limits::default(), &[Pop3Step::Status, Pop3Step::Listing], &wire, &sizes);
        prop_assert_eq!(&events[1], &Pop3Event::Cut { lines, body: Vec::new() });
    }

    #[test]
    fn a_body_is_accepted_exactly_when_it_fits_max_message(
        message in message(),
        max_message in 0..320u64,
        sizes in sizes(),
    ) {
        let mut wire = Vec::new();
        dot_stuff(&message, &mut wire);
        let limits = Limits { max_line: 64, max_message };
        let events = decode_pop3_any_chunking(limits, &[Pop3Step::Body], &wire, &sizes);
        let expected = expected_after_round_trip(&message);
        if expected.len() as u64 <= max_message {
            prop_assert_eq!(&events[..], &[Pop3Event::Body(expected)]);
        } else {
            prop_assert_eq!(&events[..], &[Pop3Event::Failed(DecodeError::MessageTooLarge { limit: max_message })]);
        }
    }

    #[test]
    fn a_listing_line_is_accepted_exactly_when_it_fits_max_line(
        line in "[ -~]{0,40}",
        max_line in 1..48usize,
        sizes in sizes(),
    ) {
        let wire = format!("{line}\r\n");
        let limits = Limits { max_line, max_message: 0 };
        let events = decode_pop3_any_chunking(limits, &[Pop3Step::Listing], wire.as_bytes(), &sizes);
        if wire.len() <= max_line {
            let lines = if line == "." { Vec::new() } else { vec![line.strip_prefix('.').unwrap_or(&line).as_bytes().to_vec()] };
            let done = line == ".";
            let event = if done { Pop3Event::Listing(lines) } else { Pop3Event::Cut { lines, body: Vec::new() } };
            prop_assert_eq!(&events[..], &[event]);
        } else {
            prop_assert_eq!(&events[..], &[Pop3Event::Failed(DecodeError::LineTooLong { limit: max_line })]);
        }
    }

    #[test]
    fn smtp_replies_decode_to_what_was_sent_in_any_chunking(
        replies in vec((200..600u16, vec(text(), 1..5)), 0..5),
        sizes in sizes(),
    ) {
        let replies: Vec<SmtpReply> = replies.into_iter().map(|(code, lines)| SmtpReply { code, lines }).collect();
        let decoded = decode_smtp_any_chunking(&encode_smtp(&replies), &sizes);
        prop_assert_eq!(decoded, replies.into_iter().map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn any_smtp_stream_decodes_alike_in_any_chunking(wire in stream(), sizes in sizes()) {
        decode_smtp_any_chunking(&wire, &sizes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// DATA is produced in chunks of about [`CHUNK`] bytes; a dot or a line
    /// end falling on the seam must be stuffed as anywhere else.
    #[test]
    fn stuffing_round_trips_across_the_data_chunk_seam(
        filler in (CHUNK - 4)..(CHUNK + 4),
        tail in message(),
        sizes in vec(1000..9000usize, 0..3),
    ) {
        let mut message = vec![b'a'; filler - 2];
        message.extend_from_slice(b"\r\n");
        message.extend_from_slice(&tail);
        prop_assert_eq!(stuff_then_unstuff(&message, &sizes), expected_after_round_trip(&message));
    }
}
