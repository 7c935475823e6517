//! What the relay's EHLO reply offers.

use super::reply::Reply;

/// The service extensions of RFC 5321 §4.1.1.1 that change what we send.
#[derive(Debug, Default, Clone)]
pub(super) struct Extensions {
    pub pipelining: bool,
    pub starttls: bool,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub size: bool,
    /// The largest message the relay's SIZE keyword declares it takes;
    /// `None` without one or for `SIZE 0` (no fixed limit, RFC 1870).
    pub size_limit: Option<u64>,
    /// RFC 3030 BDAT, used only together with PIPELINING (`chunking.rs`).
    pub chunking: bool,
    /// The SASL mechanisms of the AUTH keyword, as the relay spells them.
    pub auth: Vec<String>,
    /// Every extension line as the relay wrote it, for `popferry check`.
    pub lines: Vec<String>,
}

impl Extensions {
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions {
            lines: reply.lines.iter().skip(1).cloned().collect(),
            ..Extensions::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '=']);
            let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "SIZE" => {
                    ext.size = true;
                    ext.size_limit = words.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0);
                }
                "CHUNKING" => ext.chunking = true,
                "AUTH" => ext
                    .auth
                    .extend(words.filter(|w| !w.is_empty()).map(str::to_owned)),
                _ => {}
            }
        }
        ext
    }

    /// Whether the relay said it takes no message of `len` octets.
    pub fn too_large(&self, len: usize) -> bool {
        self.size_limit
            .is_some_and(|limit| u64::try_from(len).unwrap_or(u64::MAX) > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_read_case_blind_in_both_auth_forms() {
        let reply = Reply {
            code: 250,
            lines: [
                "relay.example",
                "pipelining",
                "SIZE 10240000",
                "AUTH=LOGIN CRAM-MD5",
                "8BITMIME",
                "Chunking",
            ]
            .map(String::from)
            .to_vec(),
        };
        let ext = Extensions::from_ehlo(&reply);
        assert!(ext.pipelining && ext.size && ext.eight_bit && ext.chunking);
        assert_eq!(ext.auth, ["LOGIN", "CRAM-MD5"]);
        assert_eq!(ext.lines.len(), 5, "{:?}", ext.lines);
        assert_eq!(ext.lines[1], "SIZE 10240000");
        assert_eq!(ext.size_limit, Some(10_240_000));
        assert!(ext.too_large(10_240_001) && !ext.too_large(10_240_000));
        for unlimited in ["SIZE", "SIZE 0"] {
            let reply = Reply {
                code: 250,
                lines: vec!["relay.example".into(), unlimited.into()],
            };
            let ext = Extensions::from_ehlo(&reply);
            assert!(ext.size && !ext.too_large(usize::MAX), "{unlimited}");
        }
        assert!(!ext.starttls && !ext.smtputf8);
        let greeting_only = Reply {
            code: 250,
            lines: vec!["STARTTLS".into()],
        };
        assert!(
            !Extensions::from_ehlo(&greeting_only).starttls,
            "the first line is the greeting"
        );
    }
}
