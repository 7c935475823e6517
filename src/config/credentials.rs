//! Who logs in, and with what: the password keys, the `oauth2` tables and
//! `auth`, checked together for an account and for a relay.

use std::ops::Range;

use toml::Spanned;

use super::raw::{PasswordKey, PasswordKeys, RawAccount, RawSmtp};
use super::validate::Scope;
use super::{
    AuthMethod, ConfigError, Credential, PasswordSource, Secret, SmtpAuth, SmtpCredentials,
};
use crate::oauth::Use;

const PASSWORD_KEYS_HINT: &str = "password, password_file, password_env or password_command";

impl Scope<'_> {
    /// The relay's login, if it has one: a username with a password or an
    /// `[smtp.oauth2]` table, and an `auth` that fits them.
    pub(super) fn smtp_credentials(
        &self,
        raw: &RawSmtp,
    ) -> Result<Option<SmtpCredentials>, ConfigError> {
        let password = self.password(raw.password_keys())?;
        let credential = match (password, &raw.oauth2) {
            (Some(password), Some(_)) => {
                let problem = "set either a password or an [smtp.oauth2] table, not both";
                return Err(self.table_error(password.span(), problem));
            }
            (Some(password), None) => {
                Some((password.span(), Credential::Password(password.into_inner())))
            }
            (None, Some(table)) => Some((
                table.span(),
                Credential::OAuth2(self.oauth2(table, Use::Smtp)?),
            )),
            (None, None) => None,
        };
        let auth = raw
            .auth
            .as_ref()
            .map_or(SmtpAuth::Auto, |auth| *auth.get_ref());
        if let (Some(raw_auth), Some((_, credential))) = (&raw.auth, &credential) {
            let oauth = matches!(credential, Credential::OAuth2(_));
            let problem = match (auth.uses_oauth2(), oauth) {
                (true, false) => Some(
                    "logs in with OAuth2 tokens: replace the password with an [smtp.oauth2] table",
                ),
                (false, true) if auth != SmtpAuth::Auto => {
                    Some("an [smtp.oauth2] table needs auth = \"xoauth2\" or \"oauthbearer\"")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(self.error(raw_auth.span(), "auth", problem.to_owned()));
            }
        }
        let credentials = match (&raw.username, credential) {
            (Some(username), Some((_, credential))) => Some(SmtpCredentials {
                username: self.non_empty("username", username)?,
                credential,
                auth,
            }),
            (None, None) => {
                if let Some(auth) = &raw.auth {
                    let problem = "is set but there is no `username` and password to log in with";
                    return Err(self.error(auth.span(), "auth", problem.to_owned()));
                }
                None
            }
            (Some(username), None) => {
                let problem = format!(
                    "needs a password: set one of {PASSWORD_KEYS_HINT}, or an [smtp.oauth2] table"
                );
                return Err(self.error(username.span(), "username", problem));
            }
            (None, Some((span, credential))) => {
                let problem = match credential {
                    Credential::Password(_) => "a password is set but `username` is missing",
                    Credential::OAuth2(_) => {
                        "an [smtp.oauth2] table is set but `username` (the address to log in \
                         as) is missing"
                    }
                };
                return Err(self.table_error(span, problem));
            }
        };
        Ok(credentials)
    }

    /// A password or an OAuth2 table, whichever the account has, and in
    /// agreement with its `auth`.
    pub(super) fn account_credential(
        &self,
        raw: &RawAccount,
        table: Range<usize>,
        auth: AuthMethod,
    ) -> Result<Credential, ConfigError> {
        let password = self.password(raw.password_keys())?;
        match (password, &raw.oauth2) {
            (Some(password), Some(_)) => {
                let problem = "set either a password or an [account.oauth2] table, not both";
                Err(self.table_error(password.span(), problem))
            }
            (Some(password), None) if auth.uses_oauth2() => {
                let problem = "this auth method logs in with OAuth2 tokens: replace the \
                               password with an [account.oauth2] table";
                Err(self.table_error(password.span(), problem))
            }
            (Some(password), None) => Ok(Credential::Password(password.into_inner())),
            (None, Some(oauth2)) if auth.uses_oauth2() || auth == AuthMethod::Auto => {
                Ok(Credential::OAuth2(self.oauth2(oauth2, Use::Pop3)?))
            }
            (None, Some(oauth2)) => {
                let problem = "an [account.oauth2] table needs auth = \"xoauth2\" or \
                               \"oauthbearer\"";
                Err(self.table_error(oauth2.span(), problem))
            }
            (None, None) if auth.uses_oauth2() => {
                let problem = "auth = \"xoauth2\" and \"oauthbearer\" need an \
                               [account.oauth2] table (see the README's Microsoft 365 and \
                               Gmail sections)";
                Err(self.table_error(table, problem))
            }
            (None, None) => {
                let problem = format!(
                    "no password: set one of {PASSWORD_KEYS_HINT}, or an [account.oauth2] table"
                );
                Err(self.table_error(table, &problem))
            }
        }
    }

    /// The one password source a table sets, if any, spanned so a caller
    /// can point at it.
    pub(super) fn password(
        &self,
        keys: PasswordKeys<'_>,
    ) -> Result<Option<Spanned<PasswordSource>>, ConfigError> {
        let mut set: Vec<(PasswordKey, &Spanned<String>)> = (keys.into_iter())
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        // Point at the second key in file order: reading from the top, that
        // is where the conflict appears.
        set.sort_by_key(|(_, value)| value.span().start);
        let (key, value) = match set.as_slice() {
            [] => return Ok(None),
            [only] => *only,
            [(first, _), (second, value), ..] => {
                let problem = format!(
                    "`{}` is already set: use only one of {PASSWORD_KEYS_HINT}",
                    first.name()
                );
                return Err(self.error(value.span(), second.name(), problem));
            }
        };
        let text = self.non_empty(key.name(), value)?;
        let source = match key {
            PasswordKey::Password => PasswordSource::Inline(Secret::new(text)),
            PasswordKey::File => PasswordSource::File(self.doc.base.join(text)),
            PasswordKey::Env => PasswordSource::Env(text),
            PasswordKey::Command => PasswordSource::Command(text),
        };
        Ok(Some(Spanned::new(value.span(), source)))
    }
}
