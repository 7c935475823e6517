//! The device authorization grant (RFC 8628): the device authorization
//! endpoint, the user's decision, and polling the token endpoint.

use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use super::reply::{Params, Reply};
use super::server::Inbound;
use super::state::{random_token, State};

pub(super) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long the user has to enter the code, as Microsoft gives.
const EXPIRES_IN: Duration = Duration::from_secs(900);

/// The polling interval the server asks for, short for tests.
const INTERVAL: Duration = Duration::from_secs(1);

/// What RFC 8628 §3.5 adds to the interval with each `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Consonants only, as RFC 8628 §6.1 suggests, so no word is spelt.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Status {
    Pending,
    Approved(String),
    Denied,
    Expired,
    /// The tokens were handed out; the device code is spent.
    Redeemed,
}

/// What the user does with a code, on the test's command.
#[derive(Debug)]
pub(super) enum Settle {
    Approve(String),
    Deny,
    Expire,
}

/// One device authorization request.
#[derive(Debug)]
pub(super) struct Device {
    device_code: String,
    /// As shown to the user, `XXXX-XXXX`.
    user_code: String,
    client_id: String,
    scope: String,
    status: Status,
    expires_at: Instant,
    /// Grows by [`SLOW_DOWN_STEP`] with each `slow_down`.
    interval: Duration,
    last_poll: Option<Instant>,
}

impl State {
    pub(super) fn device_authorization(
        &mut self,
        inbound: &Inbound,
        params: &Params,
    ) -> Result<Reply, Reply> {
        let client_id = self.authenticate(inbound, params)?;
        let scope = params.get("scope")?.unwrap_or_default().to_owned();
        let device = Device {
            device_code: random_token("dc_"),
            user_code: user_code(),
            client_id,
            scope,
            status: Status::Pending,
            expires_at: inbound.at + EXPIRES_IN,
            interval: INTERVAL,
            last_poll: None,
        };
        let verification_uri = format!("{}/device", self.base_url);
        let reply = Reply::json(
            200,
            &json!({
                "device_code": device.device_code,
                "user_code": device.user_code,
                "verification_uri": verification_uri,
                "verification_uri_complete":
                    format!("{verification_uri}?user_code={}", device.user_code),
                "expires_in": EXPIRES_IN.as_secs(),
                "interval": INTERVAL.as_secs(),
            }),
        );
        self.devices.push(device);
        Ok(reply)
    }

    /// A poll of the token endpoint (RFC 8628 §3.4, §3.5).
    pub(super) fn device_token(
        &mut self,
        client_id: &str,
        params: &Params,
        now: Instant,
    ) -> Result<Reply, Reply> {
        let device_code = params.require("device_code")?;
        let device = self
            .devices
            .iter_mut()
            .find(|d| d.device_code == device_code && d.client_id == client_id)
            .ok_or_else(|| Reply::invalid_grant("unknown device_code"))?;
        if now >= device.expires_at && device.status != Status::Redeemed {
            device.status = Status::Expired;
        }
        let too_soon = device
            .last_poll
            .is_some_and(|last| now.duration_since(last) < device.interval);
        device.last_poll = Some(now);
        let pending = |code, description| Err(Reply::error(400, code, description));
        match device.status.clone() {
            Status::Expired => pending("expired_token", "the device code expired"),
            Status::Denied => pending("access_denied", "the user declined"),
            Status::Pending if too_soon => {
                device.interval += SLOW_DOWN_STEP;
                pending("slow_down", "polled faster than the interval")
            }
            Status::Pending => pending("authorization_pending", "the user has not decided yet"),
            Status::Approved(sub) => {
                device.status = Status::Redeemed;
                let scope = device.scope.clone();
                let refresh_token = self.new_refresh_token(&sub, &scope);
                Ok(self.tokens(&sub, &scope, Some(refresh_token)))
            }
            Status::Redeemed => Err(Reply::invalid_grant("the device code is spent")),
        }
    }

    pub(super) fn settle_device(&mut self, user_code: &str, settle: Settle) {
        let wanted = normalized(user_code);
        let device = self
            .devices
            .iter_mut()
            .find(|d| d.status == Status::Pending && normalized(&d.user_code) == wanted)
            .unwrap_or_else(|| panic!("no pending device authorization has user code {user_code}"));
        device.status = match settle {
            Settle::Approve(sub) => Status::Approved(sub),
            Settle::Deny => Status::Denied,
            Settle::Expire => Status::Expired,
        };
    }

    pub(super) fn pending_user_codes(&self) -> Vec<String> {
        let now = Instant::now();
        self.devices
            .iter()
            .filter(|d| d.status == Status::Pending && now < d.expires_at)
            .map(|d| d.user_code.clone())
            .collect()
    }
}

/// Eight random consonants, `XXXX-XXXX`.
fn user_code() -> String {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes from the system");
    let letters: String = bytes
        .iter()
        .map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()]))
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// Users type codes in any case, with or without the dash (RFC 8628 §6.1).
fn normalized(user_code: &str) -> String {
    user_code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
