//! One SASL exchange, from the AUTH line to the server's final status.
//!
//! The driver asks for the initial response once ([`Exchange::initial_response`]),
//! passes every challenge line to [`Exchange::answer`] and sends what comes
//! back, and calls [`Exchange::finish`] on the server's success. When
//! `answer` fails, the driver cancels with `*` (RFC 5034 §4, RFC 4954 §4)
//! and reports that error rather than the server's reply to the cancel.

use std::collections::VecDeque;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use md5::Md5;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::scram::Scram;
use super::{oauth, Mechanism, SaslError};

/// Who logs in, with what. `Debug` hides the secret.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub username: &'a str,
    /// The password; for XOAUTH2 and OAUTHBEARER the access token.
    pub secret: &'a str,
    /// The server as the client dialled it, which OAUTHBEARER names in its
    /// message (RFC 7628 §3.1).
    pub host: &'a str,
    pub port: u16,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials({} at {}:{}, secret redacted)",
            self.username, self.host, self.port
        )
    }
}

/// The client half of one exchange. `Debug` shows the mechanism only.
pub struct Exchange {
    mechanism: Mechanism,
    /// The client-first message until it is sent, inline or on the
    /// server's first challenge.
    initial: Option<Vec<u8>>,
    state: State,
    oauth_status: Option<String>,
}

enum State {
    /// Nothing more to say: another challenge is an error.
    Done,
    /// LOGIN: the answers to the username and password prompts, in order.
    Prompts(VecDeque<Vec<u8>>),
    CramMd5 {
        username: String,
        password: String,
    },
    Scram(Box<Scram>),
    /// After the token, the failure challenge gets this answer.
    OAuth {
        failure_answer: &'static [u8],
    },
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Exchange({})", self.mechanism)
    }
}

impl Exchange {
    pub fn new(mechanism: Mechanism, credentials: &Credentials<'_>) -> Result<Exchange, SaslError> {
        let Credentials {
            username,
            secret,
            host,
            port,
        } = *credentials;
        let (initial, state) = match mechanism {
            Mechanism::Plain => (
                Some(format!("\0{username}\0{secret}").into_bytes()),
                State::Done,
            ),
            Mechanism::Login => (
                None,
                State::Prompts(VecDeque::from([username.into(), secret.into()])),
            ),
            Mechanism::CramMd5 => (
                None,
                State::CramMd5 {
                    username: username.to_owned(),
                    password: secret.to_owned(),
                },
            ),
            Mechanism::ScramSha256 => {
                let scram = Scram::new(username, secret, client_nonce()?)?;
                (Some(scram.client_first()), State::Scram(Box::new(scram)))
            }
            Mechanism::XOAuth2 => (
                Some(oauth::xoauth2(username, secret)),
                State::OAuth {
                    failure_answer: b"",
                },
            ),
            Mechanism::OAuthBearer => (
                Some(oauth::oauthbearer(username, secret, host, port)),
                State::OAuth {
                    failure_answer: b"\x01",
                },
            ),
        };
        Ok(Exchange {
            mechanism,
            initial,
            state,
            oauth_status: None,
        })
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The base64 initial response to put on the AUTH line, if this
    /// mechanism sends one there and `AUTH <mechanism> <response>` with its
    /// CRLF fits in `line_limit` octets (POP3: 255, RFC 5034 §4; SMTP: 512,
    /// RFC 4954 §4). Otherwise `None`: the response waits for the server's
    /// first, empty challenge.
    pub fn initial_response(&mut self, line_limit: usize) -> Option<String> {
        if !self.mechanism.inline_initial_response() {
            return None;
        }
        let encoded = encode(self.initial.as_deref()?);
        let line = "AUTH ".len() + self.mechanism.name().len() + 1 + encoded.len() + 2;
        if line > line_limit {
            return None;
        }
        self.initial = None;
        Some(encoded)
    }

    /// The response line (base64, possibly empty) to one challenge line,
    /// the base64 text after `+ ` or `334 `.
    pub fn answer(&mut self, challenge: &str) -> Result<String, SaslError> {
        if let Some(initial) = self.initial.take() {
            return Ok(encode(&initial));
        }
        let mechanism = self.mechanism;
        let unexpected = SaslError::UnexpectedChallenge { mechanism };
        let response = match &mut self.state {
            State::Done => return Err(unexpected),
            State::Prompts(answers) => answers.pop_front().ok_or(unexpected)?,
            State::CramMd5 { username, password } => {
                let challenge = decode(mechanism, challenge)?;
                let mut mac = Hmac::<Md5>::new_from_slice(password.as_bytes())
                    .expect("HMAC takes keys of any length");
                mac.update(&challenge);
                let digest: String = (mac.finalize().into_bytes().iter())
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let response = format!("{username} {digest}").into_bytes();
                self.state = State::Done;
                response
            }
            State::Scram(scram) => scram.respond(&decode(mechanism, challenge)?)?,
            State::OAuth { failure_answer } => {
                let answer = failure_answer.to_vec();
                self.oauth_status = decode(mechanism, challenge)
                    .ok()
                    .and_then(|json| oauth::failure_status(&json));
                self.state = State::Done;
                answer
            }
        };
        Ok(encode(&response))
    }

    /// Checks the exchange on the server's success: SCRAM-SHA-256 must have
    /// seen the server's proof.
    pub fn finish(&self) -> Result<(), SaslError> {
        match &self.state {
            State::Scram(scram) if !scram.verified() => Err(SaslError::Unverified),
            _ => Ok(()),
        }
    }

    /// The `status` of an OAuth failure challenge, once one came.
    pub fn oauth_status(&self) -> Option<&str> {
        self.oauth_status.as_deref()
    }
}

/// 18 random bytes: 24 base64 characters, none of them a comma.
fn client_nonce() -> Result<String, SaslError> {
    let mut bytes = [0; 18];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SaslError::NoRandomness)?;
    Ok(STANDARD.encode(bytes))
}

fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn decode(mechanism: Mechanism, challenge: &str) -> Result<Vec<u8>, SaslError> {
    STANDARD
        .decode(challenge.trim())
        .map_err(|_| SaslError::Malformed {
            mechanism,
            what: "not base64",
        })
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
