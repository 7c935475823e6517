//! Test messages: generated with LF line ends (Dovecot serves them with
//! CRLF), each with a unique `Message-ID`, plus the byte-level helpers used
//! to compare what the SMTP sink received with what was put in the mailbox.

/// One message as written into a maildir.
#[derive(Debug, Clone)]
pub struct TestMessage {
    /// The value of the `Message-ID` header, angle brackets included.
    pub message_id: String,
    /// The whole message, LF line ends, no CR anywhere.
    pub bytes: Vec<u8>,
}

/// Lines that exercise dot-stuffing and 8-bit transport. Every generated
/// body starts with them, so even the smallest message carries a line that
/// is exactly ".", lines starting with dots and bytes >= 0x80.
const TRICKY_LINES: &[&[u8]] = &[
    b"First line of the body.",
    b".",
    b".leading dot",
    b"..two leading dots",
    b"...",
    b". space after a dot",
    b"caf\xe9 na\xefve \xff\x80\xa0 8-bit latin-1 bytes",
    b"From the start of a line (mbox would quote this)",
    b"trailing blanks   \t",
    b"",
];

/// Message sizes for [`mixed_messages`], in bytes (approximate for the
/// smallest: the headers alone take about 300 bytes).
pub const MIXED_SIZES: &[usize] = &[
    200,
    4 * 1024,
    100 * 1024,
    2 * 1024 * 1024,
    1_000,
    64 * 1024,
    30_000,
    8 * 1024,
    500_000,
    513,
    12_345,
    1_500,
];

/// `count` messages whose sizes cycle through [`MIXED_SIZES`].
pub fn mixed_messages(tag: &str, count: usize) -> Vec<TestMessage> {
    (0..count)
        .map(|index| message(tag, index, MIXED_SIZES[index % MIXED_SIZES.len()]))
        .collect()
}

/// `count` messages of about `size` bytes each.
pub fn messages_of_size(tag: &str, count: usize, size: usize) -> Vec<TestMessage> {
    (0..count).map(|index| message(tag, index, size)).collect()
}

/// Message number `index` of the test tagged `tag`, at least `size` bytes
/// long (plus at most one line), ending with a line end.
pub fn message(tag: &str, index: usize, size: usize) -> TestMessage {
    let message_id = format!("<{tag}.{index}@popferry-test.example.org>");
    let mut bytes = format!(
        "From: Sender {index} <sender@example.org>\n\
         To: {tag}@example.org\n\
         Subject: popferry test {tag} #{index} ({size} bytes)\n\
         Date: Mon, 23 Nov 2026 11:33:29 +0000\n\
         Message-ID: {message_id}\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=iso-8859-1\n\
         Content-Transfer-Encoding: 8bit\n\
         \n"
    )
    .into_bytes();
    for line in TRICKY_LINES {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    // Deterministic filler: varying line lengths, an occasional dotted or
    // 8-bit line, so large messages are not one repeated pattern.
    let mut state = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut line_no = 0usize;
    while bytes.len() < size {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = 1 + (state >> 33) as usize % 76;
        match line_no % 97 {
            13 => bytes.push(b'.'),
            41 => bytes.extend_from_slice(b"\xe4\xf6\xfc "),
            _ => {}
        }
        bytes.extend(
            (0..len).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789 -"[(i * 7 + line_no) % 38]),
        );
        bytes.push(b'\n');
        line_no += 1;
    }
    TestMessage { message_id, bytes }
}

/// The header section of `message` (up to the first empty line).
fn header_section(message: &[u8]) -> &[u8] {
    let end = find(message, b"\n\n").map_or(message.len(), |at| at + 1);
    &message[..end]
}

/// The value of the first `Message-ID` header, trimmed.
pub fn message_id(message: &[u8]) -> Option<String> {
    let headers = String::from_utf8_lossy(header_section(message)).into_owned();
    headers.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_owned())
    })
}

/// Splits off the first header of `message` together with its
/// continuation lines (lines starting with a space or a tab). Returns
/// (that header, the rest).
pub fn split_first_header(message: &[u8]) -> (&[u8], &[u8]) {
    let mut end = 0;
    loop {
        let Some(newline) = message[end..].iter().position(|&b| b == b'\n') else {
            return (message, &[]);
        };
        end += newline + 1;
        if !matches!(message.get(end), Some(b' ' | b'\t')) {
            return (&message[..end], &message[end..]);
        }
    }
}

/// `bytes` with every CR removed, as smtp-sink stores a message.
pub fn without_cr(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(|&b| b != b'\r').collect()
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Panics with the first differing offset and some context, rather than
/// printing two multi-megabyte byte strings.
pub fn assert_same_bytes(expected: &[u8], actual: &[u8], what: &str) {
    if expected == actual {
        return;
    }
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let context = |bytes: &[u8]| {
        let from = at.saturating_sub(60);
        let to = (at + 60).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..to])
            .escape_debug()
            .to_string()
    };
    panic!(
        "{what}: differs at byte {at} (expected {} bytes, got {})\n expected: ...{}...\n      got: ...{}...",
        expected.len(),
        actual.len(),
        context(expected),
        context(actual),
    );
}
