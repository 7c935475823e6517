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
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Extensions {
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '=']);
            let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "SIZE" => ext.size = true,
                "AUTH" => {
                    for mechanism in words {
                        ext.auth_plain |= mechanism.eq_ignore_ascii_case("PLAIN");
                        ext.auth_login |= mechanism.eq_ignore_ascii_case("LOGIN");
                    }
                }
                _ => {}
            }
        }
        ext
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
                "AUTH=LOGIN",
                "8BITMIME",
            ]
            .map(String::from)
            .to_vec(),
        };
        let ext = Extensions::from_ehlo(&reply);
        assert!(ext.pipelining && ext.size && ext.eight_bit && ext.auth_login);
        assert!(!ext.starttls && !ext.smtputf8 && !ext.auth_plain);
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
