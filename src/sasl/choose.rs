//! Which mechanism a login uses: one rule for POP3 and SMTP.

use std::fmt;

use super::{scram, Mechanism, SaslError};

/// The protocol a login is for. POP3's last resort is USER/PASS, so `auto`
/// never picks SASL LOGIN there; SMTP has nothing below LOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Pop3,
    Smtp,
}

/// What the account logs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Password,
    /// A password beyond printable ASCII, which popferry cannot prepare for
    /// SCRAM-SHA-256 (SASLprep), so `auto` passes SCRAM over.
    UnpreparedPassword,
    /// An OAuth 2.0 access token.
    Token,
}

impl SecretKind {
    /// The kind of `password`.
    pub fn of_password(password: &str) -> SecretKind {
        if scram::sasl_prep(password).is_ok() {
            SecretKind::Password
        } else {
            SecretKind::UnpreparedPassword
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::Password | SecretKind::UnpreparedPassword => "password",
            SecretKind::Token => "OAuth access token",
        })
    }
}

/// Picks the mechanism of one login.
///
/// `wanted` is the configured mechanism, `None` for `auto`; `offered` is
/// what the server lists (CAPA's `SASL`, EHLO's `AUTH`), `None` when it
/// could not say (a POP3 server without CAPA), and then a configured
/// mechanism is simply tried.
///
/// `auto` takes the strongest offered mechanism that works with the
/// secret: SCRAM-SHA-256 first, as it proves the server too (for a
/// password [`SecretKind::of_password`] finds it can prepare); then over TLS
/// PLAIN, CRAM-MD5, LOGIN, and without TLS CRAM-MD5 before PLAIN, since it
/// keeps the password itself off an unencrypted link. Its
/// [`SaslError::NothingUsable`] is where POP3 falls back to USER/PASS.
pub fn choose(
    wanted: Option<Mechanism>,
    offered: Option<&[String]>,
    secret: SecretKind,
    tls: bool,
    protocol: Protocol,
) -> Result<Mechanism, SaslError> {
    let offers = |m: Mechanism| {
        offered.is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(m.name())))
    };
    if let Some(wanted) = wanted {
        return if offered.is_none() || offers(wanted) {
            Ok(wanted)
        } else {
            Err(SaslError::NotOffered {
                wanted,
                offered: describe(offered),
            })
        };
    }
    let ranking: &[Mechanism] = match (secret, tls) {
        (SecretKind::Token, _) => &[Mechanism::XOAuth2, Mechanism::OAuthBearer],
        (_, true) => &[
            Mechanism::ScramSha256,
            Mechanism::Plain,
            Mechanism::CramMd5,
            Mechanism::Login,
        ],
        (_, false) => &[
            Mechanism::ScramSha256,
            Mechanism::CramMd5,
            Mechanism::Plain,
            Mechanism::Login,
        ],
    };
    (ranking.iter().copied())
        .filter(|&m| !(protocol == Protocol::Pop3 && m == Mechanism::Login))
        .filter(|&m| !(secret == SecretKind::UnpreparedPassword && m == Mechanism::ScramSha256))
        .find(|&m| offers(m))
        .ok_or_else(|| SaslError::NothingUsable {
            secret,
            offered: describe(offered),
        })
}

/// The server's list for an error message.
fn describe(offered: Option<&[String]>) -> String {
    match offered {
        None => "no list of mechanisms".to_owned(),
        Some([]) => "no SASL mechanism".to_owned(),
        Some(names) => names.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mechanism::*;

    fn names(list: &str) -> Vec<String> {
        list.split_whitespace().map(str::to_owned).collect()
    }

    fn auto(offered: &str, tls: bool, protocol: Protocol) -> Result<Mechanism, SaslError> {
        let offered = names(offered);
        choose(None, Some(&offered), SecretKind::Password, tls, protocol)
    }

    #[test]
    fn auto_prefers_scram_then_depends_on_tls() {
        let all = "LOGIN plain cram-md5 SCRAM-SHA-256 XOAUTH2";
        assert_eq!(auto(all, true, Protocol::Smtp), Ok(ScramSha256));
        assert_eq!(
            auto("LOGIN PLAIN CRAM-MD5", true, Protocol::Smtp),
            Ok(Plain)
        );
        assert_eq!(
            auto("LOGIN PLAIN CRAM-MD5", false, Protocol::Smtp),
            Ok(CramMd5)
        );
        assert_eq!(auto("LOGIN PLAIN", false, Protocol::Pop3), Ok(Plain));
        assert_eq!(auto("LOGIN", true, Protocol::Smtp), Ok(Login));
    }

    #[test]
    fn auto_never_picks_login_for_pop3_and_says_what_is_offered() {
        let err = auto("LOGIN XOAUTH2", true, Protocol::Pop3).unwrap_err();
        assert_eq!(
            err,
            SaslError::NothingUsable {
                secret: SecretKind::Password,
                offered: "LOGIN XOAUTH2".into()
            }
        );
        assert!(err.to_string().contains("LOGIN XOAUTH2"), "{err}");
        let none = choose(None, None, SecretKind::Password, true, Protocol::Pop3);
        assert!(matches!(none, Err(SaslError::NothingUsable { .. })));
    }

    #[test]
    fn auto_passes_scram_over_for_a_password_it_cannot_prepare() {
        let offered = names("SCRAM-SHA-256 PLAIN");
        let secret = SecretKind::of_password("pässword");
        assert_eq!(secret, SecretKind::UnpreparedPassword);
        let chosen = choose(None, Some(&offered), secret, true, Protocol::Smtp);
        assert_eq!(chosen, Ok(Plain));
        let secret = SecretKind::of_password("password");
        let chosen = choose(None, Some(&offered), secret, true, Protocol::Smtp);
        assert_eq!(chosen, Ok(ScramSha256));
    }

    #[test]
    fn tokens_use_only_the_oauth_mechanisms() {
        let offered = names("PLAIN OAUTHBEARER");
        let chosen = choose(
            None,
            Some(&offered),
            SecretKind::Token,
            true,
            Protocol::Pop3,
        );
        assert_eq!(chosen, Ok(OAuthBearer));
        let offered = names("PLAIN SCRAM-SHA-256");
        let chosen = choose(
            None,
            Some(&offered),
            SecretKind::Token,
            true,
            Protocol::Smtp,
        );
        assert!(matches!(chosen, Err(SaslError::NothingUsable { .. })));
    }

    #[test]
    fn a_configured_mechanism_must_be_offered_when_the_server_lists_any() {
        let offered = names("PLAIN LOGIN");
        let err = choose(
            Some(ScramSha256),
            Some(&offered),
            SecretKind::Password,
            true,
            Protocol::Smtp,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server does not offer SCRAM-SHA-256 (it offers PLAIN LOGIN); \
             choose one of those in `auth`"
        );
        let empty = choose(
            Some(Plain),
            Some(&[]),
            SecretKind::Password,
            true,
            Protocol::Pop3,
        );
        assert!(empty.unwrap_err().to_string().contains("no SASL mechanism"));
        let unknown = choose(
            Some(CramMd5),
            None,
            SecretKind::Password,
            false,
            Protocol::Pop3,
        );
        assert_eq!(unknown, Ok(CramMd5), "without CAPA it is tried");
    }
}
