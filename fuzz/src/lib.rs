//! The sans-IO half of popferry compiled on its own, the decoder drivers
//! shared with tests/codec_properties.rs, and the reading of a fuzzer's
//! byte string as decoder inputs.
//!
//! The modules below are popferry's own source files, included by path: the
//! codecs have no I/O and need nothing else from the crate, and under the
//! name `popferry` (the `extern crate self` alias) the shared driver
//! compiles here exactly as it does in the tests.
//!
//! A fuzz input is read as a few control bytes followed by the wire bytes,
//! so a seed can be a recorded reply with a short prefix and the fuzzer can
//! mutate the chunking and the limits along with the bytes.

extern crate self as popferry;

#[path = "../../src/pop3"]
pub mod pop3 {
    pub mod codec;
    pub mod reply;

    pub use reply::{Capabilities, Reply};
}

#[path = "../../src/smtp"]
pub mod smtp {
    pub mod data;
    pub mod reply;
}

#[path = "../../tests/codec_drive/mod.rs"]
mod drive;

pub use drive::*;

/// Splits `data` into chunk sizes and the rest: one count byte (up to 7
/// sizes, 0 meaning one read), then one byte per size.
pub fn take_sizes(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let count = usize::from(count % 8).min(rest.len());
    let (sizes, rest) = rest.split_at(count);
    (sizes.iter().map(|&s| usize::from(s)).collect(), rest)
}
