//! Any message stuffed for SMTP DATA and unstuffed by the POP3 body decoder
//! (fed in fuzzer-chosen pieces) comes back as it was, give or take the
//! CRLF added to a message that does not end with a line feed.
//!
//! Input: the chunking (see `take_sizes`), then the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popferry_fuzz::{expected_after_round_trip, stuff_then_unstuff, take_sizes};

fuzz_target!(|data: &[u8]| {
    let (sizes, message) = take_sizes(data);
    assert_eq!(
        stuff_then_unstuff(message, &sizes),
        expected_after_round_trip(message)
    );
});
