//! Certificate fingerprints: what `tls_fingerprint` pins, and what every
//! refusal names so an administrator can compare it with the server's own.

use std::fmt;
use std::str::FromStr;

/// The SHA-256 digest of a certificate's DER encoding: what `openssl x509
/// -noout -fingerprint -sha256` prints, and what `tls_fingerprint` holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(certificate: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

/// Colon-separated upper-case hex pairs, as OpenSSL prints them.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a `tls_fingerprint` value is not a SHA-256 fingerprint.
#[derive(Debug, thiserror::Error)]
#[error(
    "not a SHA-256 fingerprint: expected 64 hex digits, optionally in colon-separated \
     pairs and prefixed with \"sha256:\" (e.g. the output of \
     `openssl x509 -noout -fingerprint -sha256 -in server.pem`)"
)]
pub struct BadFingerprint;

/// Accepts `AB:CD:...`, `abcd...` and either with a `sha256:` or OpenSSL's
/// `sha256 Fingerprint=` in front, so a value can be pasted from wherever
/// the administrator found it.
impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(text: &str) -> Result<Self, BadFingerprint> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let hex = ["sha256 fingerprint=", "sha256:"]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix).map(|_| &text[prefix.len()..]))
            .unwrap_or(text);
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(BadFingerprint);
        }
        let nibble = |digit: u8| (digit as char).to_digit(16).map_or(0, |n| n as u8);
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            *byte = nibble(pair[0]) << 4 | nibble(pair[1]);
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn fingerprint_accepts_the_forms_openssl_and_people_write() {
        let plain: Fingerprint = HEX.parse().unwrap();
        let colons = plain.to_string();
        assert_eq!(&colons[..8], "00:11:22");
        for text in [
            colons.clone(),
            format!("sha256:{colons}"),
            format!("SHA256:{HEX}"),
            format!("sha256 Fingerprint={colons}"),
            format!("  {colons}\n"),
        ] {
            assert_eq!(text.parse::<Fingerprint>().unwrap(), plain, "{text:?}");
        }
    }

    #[test]
    fn fingerprint_refuses_wrong_lengths_and_digits() {
        let signed = format!("+{}", &HEX[1..]);
        for text in [
            "",
            "00:11",
            &HEX[2..],
            &format!("{HEX}00"),
            &HEX.replace('a', "g"),
            &signed,
        ] {
            assert!(text.parse::<Fingerprint>().is_err(), "{text:?}");
        }
        let sha1 = "sha1:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33";
        assert!(sha1.parse::<Fingerprint>().is_err());
    }

    #[test]
    fn fingerprint_is_the_sha256_of_the_der_bytes() {
        // SHA-256 of the empty input, a well-known value.
        let empty: Fingerprint = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(Fingerprint::of(b""), empty);
    }
}
