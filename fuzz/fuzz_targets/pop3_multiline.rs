//! The POP3 decoder on a fuzzer-chosen conversation: status lines, listings
//! and message bodies in any order, under small limits, fed in one read and
//! in fuzzer-chosen pieces. Both must decode the same, and the invariants
//! checked by the driver (bounded output, unstuffing never grows the data)
//! must hold.
//!
//! Input: max_line byte, max_message byte, step-count byte and one byte per
//! step (mod 3: status, listing, body), then the chunking (see
//! `take_sizes`), then the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popferry_fuzz::pop3::codec::Limits;
use popferry_fuzz::{decode_pop3_any_chunking, take_sizes, Pop3Step};

fuzz_target!(|data: &[u8]| {
    let [max_line, max_message, count, rest @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_line: usize::from(*max_line) + 1,
        max_message: u64::from(*max_message) * 16,
    };
    let count = usize::from(count % 16).min(rest.len());
    let (steps, rest) = rest.split_at(count);
    let steps: Vec<Pop3Step> = steps
        .iter()
        .map(|b| match b % 3 {
            0 => Pop3Step::Status,
            1 => Pop3Step::Listing,
            _ => Pop3Step::Body,
        })
        .collect();
    let (sizes, wire) = take_sizes(rest);
    decode_pop3_any_chunking(limits, &steps, wire, &sizes);
});
