//! The SMTP reply decoder on arbitrary bytes, in one read and in
//! fuzzer-chosen pieces: the same replies (or the same error) either way,
//! and every reply within the decoder's bounds and free of control
//! characters.
//!
//! Input: the chunking (see `take_sizes`), then the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popferry_fuzz::{decode_smtp_any_chunking, take_sizes};

fuzz_target!(|data: &[u8]| {
    let (sizes, wire) = take_sizes(data);
    decode_smtp_any_chunking(wire, &sizes);
});
