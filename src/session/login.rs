//! How a new connection logs in: STLS where configured, CAPA unless the
//! run knows the server's answer (`known.rs`), then the login the account
//! asks for, or the best the server offers.

use std::sync::Arc;

use rustls::ClientConfig;
use tracing::debug;

use super::known::{Answer, KnownCapabilities};
use super::LoginMethod;
use crate::config::{Account, AuthMethod, TlsMode};
use crate::credential::LoginSecret;
use crate::poll::PollError;
use crate::pop3::{Capabilities, Client, Endpoint, Pop3Error};
use crate::sasl::{self, Credentials, Exchange, Mechanism, Protocol, SaslError, SecretKind};

/// Connects and logs in. An answer `known` had is forgotten when the
/// login with it fails, for whatever reason; one asked for is remembered
/// once the login with it succeeded.
pub(super) async fn on_new_connection(
    account: &Account,
    endpoint: &Endpoint,
    tls_config: Option<Arc<ClientConfig>>,
    known: &KnownCapabilities,
    secret: &LoginSecret,
) -> Result<(Client, Answer, LoginMethod), PollError> {
    let server = &account.pop3;
    let remembered = known.recall(server);
    let from_memory = remembered.is_some();
    let client = Client::connect(endpoint).await?;
    let outcome = secure_and_authenticate(client, account, tls_config, secret, remembered).await;
    match &outcome {
        Ok((_, capa, _)) if !from_memory => known.remember(server, capa.clone()),
        Err(_) if from_memory => {
            debug!("the login failed; the server's capabilities will be asked again");
            known.forget(server);
        }
        _ => {}
    }
    outcome
}

/// Upgrades the link with STLS where the account says so and logs in.
/// CAPA is asked (before STLS, to see it offered, and after it) unless
/// `remembered` holds the server's answer; a remembered server offered
/// STLS, since only a login that succeeded is remembered, and a refused
/// STLS still fails closed.
async fn secure_and_authenticate(
    mut client: Client,
    account: &Account,
    tls_config: Option<Arc<ClientConfig>>,
    secret: &LoginSecret,
    remembered: Option<Answer>,
) -> Result<(Client, Answer, LoginMethod), PollError> {
    if let (TlsMode::StartTls, Some(config)) = (account.pop3.tls, tls_config) {
        if remembered.is_none() && !client.capa().await?.is_some_and(|caps| caps.has("STLS")) {
            return Err(Pop3Error::NoStls {
                peer: client.peer().to_owned(),
            }
            .into());
        }
        client = client.starttls(config).await?;
    }
    let capa = match remembered {
        Some(answer) => answer,
        None => client.capa().await?,
    };
    let login = authenticate(&mut client, account, capa.as_ref(), secret).await?;
    Ok((client, capa, login))
}

/// Logs in as the account says. A server without CAPA, or without a
/// mechanism `auto` would take, gets USER/PASS.
pub(super) async fn authenticate(
    client: &mut Client,
    account: &Account,
    capa: Option<&Capabilities>,
    secret: &LoginSecret,
) -> Result<LoginMethod, Pop3Error> {
    let user = &account.username;
    let password = secret.expose();
    let wanted = match account.auth {
        AuthMethod::User => return user_pass(client, user, password).await,
        AuthMethod::Apop => {
            client.login_apop(user, password).await?;
            return Ok(LoginMethod::Apop);
        }
        AuthMethod::Auto => None,
        AuthMethod::Plain => Some(Mechanism::Plain),
        AuthMethod::CramMd5 => Some(Mechanism::CramMd5),
        AuthMethod::ScramSha256 => Some(Mechanism::ScramSha256),
        AuthMethod::XOAuth2 => Some(Mechanism::XOAuth2),
        AuthMethod::OAuthBearer => Some(Mechanism::OAuthBearer),
    };
    let offered = capa.map(|caps| caps.args("SASL").unwrap_or_default());
    let tls = client.is_tls();
    let kind = secret.kind();
    let mechanism = match sasl::choose(wanted, offered, kind, tls, Protocol::Pop3) {
        Ok(mechanism) => mechanism,
        Err(SaslError::NothingUsable { .. }) if kind != SecretKind::Token => {
            return user_pass(client, user, password).await
        }
        Err(source) => return Err(client.sasl_error(source)),
    };
    let credentials = Credentials {
        username: user,
        secret: password,
        host: &account.pop3.host,
        port: account.pop3.port,
    };
    let exchange = Exchange::new(mechanism, &credentials).map_err(|e| client.sasl_error(e))?;
    client.authenticate(exchange).await?;
    Ok(LoginMethod::Sasl(mechanism))
}

async fn user_pass(
    client: &mut Client,
    user: &str,
    password: &str,
) -> Result<LoginMethod, Pop3Error> {
    client.login_user(user, password).await?;
    Ok(LoginMethod::User)
}

pub(super) async fn login_secret(account: &Account) -> Result<LoginSecret, PollError> {
    LoginSecret::fetch(&account.credential, &account.name)
        .await
        .map_err(PollError::Credential)
}
