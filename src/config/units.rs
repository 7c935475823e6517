//! Byte sizes written with units, as in `max_message_size = "64MiB"`.

/// The units `parse_size` understands, matched without regard to case.
/// Both decimal and binary prefixes are accepted because administrators
/// write either and mean what they wrote.
const UNITS: [(&str, u64); 7] = [
    ("b", 1),
    ("kb", 1000),
    ("mb", 1000 * 1000),
    ("gb", 1000 * 1000 * 1000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
];

/// Parses a whole number followed by an optional unit, with optional space
/// between them: `"1048576"`, `"512 KiB"`, `"64MiB"`, `"1GB"`.
///
/// Returns `None` for anything else, including fractions and values that do
/// not fit in a `u64`; the caller words the error because it knows the key.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let number: u64 = digits.parse().ok()?;
    let unit = unit.trim_start();
    if unit.is_empty() {
        return Some(number);
    }
    let (_, factor) = UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))?;
    number.checked_mul(*factor)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn plain_numbers_are_bytes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1048576"), Some(1_048_576));
        assert_eq!(parse_size(" 12 "), Some(12));
        assert_eq!(parse_size("12B"), Some(12));
    }

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("10KB"), Some(10_000));
        assert_eq!(parse_size("3MB"), Some(3_000_000));
        assert_eq!(parse_size("1gb"), Some(1_000_000_000));
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "64 parsecs",
            "64MiBs",
            "1 2",
            "0x10",
        ] {
            assert_eq!(parse_size(text), None, "{text:?}");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(parse_size("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), None);
        assert_eq!(parse_size("17179869184GiB"), None);
    }
}
