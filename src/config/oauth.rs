//! `[account.oauth2]` and `[smtp.oauth2]`: where OAuth2 access tokens come
//! from, checked into [`crate::oauth::OAuth2`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use oauth2::url::{Host, Url};
use serde::Deserialize;
use toml::Spanned;

use super::validate::Scope;
use super::{ConfigError, PasswordSource};
use crate::oauth::{OAuth2, Provider, Registration, Use};

/// One `oauth2` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    pub provider: Option<Provider>,
    pub token_url: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub client_secret_file: Option<Spanned<String>>,
    pub refresh_token_file: Option<Spanned<String>>,
    pub scopes: Option<Vec<String>>,
    pub device_authorization_url: Option<Spanned<String>>,
    pub authorization_url: Option<Spanned<String>>,
    pub access_token_command: Option<Spanned<String>>,
}

impl Scope<'_> {
    pub(super) fn oauth2(
        &self,
        table: &Spanned<RawOAuth2>,
        used_for: Use,
    ) -> Result<OAuth2, ConfigError> {
        let raw = table.get_ref();
        if let Some(command) = &raw.access_token_command {
            let token_keys = [
                ("token_url", raw.token_url.is_some()),
                ("client_id", raw.client_id.is_some()),
                ("client_secret_file", raw.client_secret_file.is_some()),
                ("refresh_token_file", raw.refresh_token_file.is_some()),
            ];
            if let Some((key, _)) = token_keys.iter().find(|(_, set)| *set) {
                let problem = format!(
                    "is set together with `{key}`: give either access_token_command (an outside \
                     tool refreshes the tokens) or the token keys (popferry refreshes them), \
                     not both"
                );
                return Err(self.error(command.span(), "access_token_command", problem));
            }
            return Ok(OAuth2::Command(
                self.non_empty("access_token_command", command)?,
            ));
        }
        let provider = raw.provider;
        let name = match used_for {
            Use::Pop3 => "[account.oauth2]",
            Use::Smtp => "[smtp.oauth2]",
        };
        let missing = |key: &str| {
            let what = match key {
                "token_url" => {
                    "the token endpoint, or `provider = \"microsoft\"` or \
                                `\"google\"` to fill it in"
                }
                "client_id" => {
                    "the application (client) ID of your app registration; a \
                                provider preset cannot fill it in"
                }
                _ => {
                    "the file where popferry keeps the refresh token, for example \
                      \"/var/lib/popferry/NAME.refresh\""
                }
            };
            let problem = format!(
                "{name} needs `{key}`: {what} (or only `access_token_command`, if another tool \
                 gets the tokens)"
            );
            self.table_error(table.span(), &problem)
        };
        let url =
            |key: &str, raw: Option<&Spanned<String>>, preset: Option<&str>| match (raw, preset) {
                (Some(raw), _) => self.endpoint(key, raw).map(Some),
                (None, preset) => Ok(preset.map(str::to_owned)),
            };
        let token_url = url(
            "token_url",
            raw.token_url.as_ref(),
            provider.map(Provider::token_url),
        )?
        .ok_or_else(|| missing("token_url"))?;
        let client_id = match &raw.client_id {
            Some(id) => self.non_empty("client_id", id)?,
            None => return Err(missing("client_id")),
        };
        let refresh_token_file = match &raw.refresh_token_file {
            Some(path) => self.path("refresh_token_file", path)?,
            None => return Err(missing("refresh_token_file")),
        };
        let client_secret = (raw.client_secret_file.as_ref())
            .map(|path| {
                self.path("client_secret_file", path)
                    .map(PasswordSource::File)
            })
            .transpose()?;
        let registration = Registration {
            provider,
            token_url,
            client_id,
            client_secret,
            refresh_token_file,
            scopes: (raw.scopes.clone())
                .or_else(|| provider.map(|p| p.scopes(used_for)))
                .unwrap_or_default(),
            device_authorization_url: url(
                "device_authorization_url",
                raw.device_authorization_url.as_ref(),
                provider.and_then(Provider::device_authorization_url),
            )?,
            authorization_url: url(
                "authorization_url",
                raw.authorization_url.as_ref(),
                provider.map(Provider::authorization_url),
            )?,
        };
        Ok(OAuth2::Refresh(Arc::new(registration)))
    }

    /// An endpoint that will receive a refresh token or a client secret:
    /// HTTPS, or plain HTTP to this machine only (tests, local proxies).
    fn endpoint(&self, key: &str, raw: &Spanned<String>) -> Result<String, ConfigError> {
        let text = raw.get_ref();
        let url = Url::parse(text)
            .map_err(|e| self.error(raw.span(), key, format!("{text:?} is not a URL: {e}")))?;
        let loopback = match url.host() {
            Some(Host::Domain(name)) => name == "localhost",
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => Ok(text.clone()),
            "http" if loopback => Ok(text.clone()),
            _ => {
                let problem = format!(
                    "{text:?} must be an https:// URL (http:// is allowed only for 127.0.0.1, \
                     ::1 and localhost): the refresh token and client secret travel in it"
                );
                Err(self.error(raw.span(), key, problem))
            }
        }
    }
}

/// Tables sharing a refresh-token file share its tokens, so they must
/// agree on everything else: otherwise which one refreshes would decide
/// the scopes or the client.
pub(super) fn check_shared_files<'a>(
    registrations: impl IntoIterator<Item = (&'a OAuth2, String)>,
) -> Result<(), String> {
    let mut seen: HashMap<&PathBuf, (&Registration, String)> = HashMap::new();
    for (oauth2, label) in registrations {
        let OAuth2::Refresh(registration) = oauth2 else {
            continue;
        };
        let file = &registration.refresh_token_file;
        match seen.get(file) {
            Some((first, first_label)) if *first != registration.as_ref() => {
                return Err(format!(
                    "{label} and {first_label} use the same refresh_token_file {} with \
                     different oauth2 settings; use the same settings (for Microsoft, scopes \
                     that cover both POP and SMTP) or separate files",
                    file.display()
                ));
            }
            Some(_) => {}
            None => {
                seen.insert(file, (registration.as_ref(), label));
            }
        }
    }
    Ok(())
}
