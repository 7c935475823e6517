//! POP3 status lines and the listing-line parsers (UIDL, LIST, STAT, CAPA)
//! on arbitrary bytes: never a panic, every decoded reply safe to log, every
//! accepted unique-id within RFC 1939's bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popferry_fuzz::pop3::codec::Limits;
use popferry_fuzz::pop3::reply::{parse_list_line, parse_stat, parse_uidl_line};
use popferry_fuzz::pop3::Capabilities;
use popferry_fuzz::{decode_pop3, Pieces, Pop3Step};

fuzz_target!(|data: &[u8]| {
    let steps = vec![Pop3Step::Status; data.len() + 1];
    decode_pop3(Limits::default(), &steps, Pieces::new(data, &[]));

    let lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    for line in &lines {
        if let Ok((_, uid)) = parse_uidl_line(line) {
            assert!((1..=70).contains(&uid.len()));
            assert!(uid.bytes().all(|b| b.is_ascii_graphic()));
        }
        let _ = parse_list_line(line);
        let _ = parse_stat(&String::from_utf8_lossy(line));
    }
    let capabilities = Capabilities::from_lines(&lines);
    let _ = capabilities.sasl_supports("PLAIN");
});
