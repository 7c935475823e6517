//! SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding (`n,,`).
//!
//! Three messages: client-first (username and a fresh nonce), the answer to
//! server-first (salt and iteration count) with the client's proof, and the
//! check of server-final, whose signature only a server that holds the
//! password's keys can compute. A wrong or missing signature fails the
//! exchange even though the server may already have said yes.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

use super::{saslname, Mechanism, SaslError};

/// More than any server uses (Dovecot and Cyrus default to 4096), few
/// enough that a hostile server cannot make one login take minutes.
const MAX_ITERATIONS: u32 = 1_000_000;

/// The client's state between messages.
pub(super) struct Scram {
    password: String,
    nonce: String,
    /// `n=<user>,r=<nonce>`: part of the signed AuthMessage.
    first_bare: String,
    step: Step,
}

enum Step {
    ServerFirst,
    ServerFinal { expected: hmac::Tag },
    Verified,
}

impl Scram {
    /// `nonce` must be printable ASCII without commas; the caller draws it
    /// from the system's random number generator.
    pub(super) fn new(username: &str, password: &str, nonce: String) -> Result<Scram, SaslError> {
        Ok(Scram {
            password: sasl_prep(password)?.to_owned(),
            first_bare: format!("n={},r={nonce}", saslname(username)),
            nonce,
            step: Step::ServerFirst,
        })
    }

    /// The client-first message: no channel binding, no authorization id.
    pub(super) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// The response to server-first or server-final.
    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let text = std::str::from_utf8(challenge).map_err(|_| malformed("not UTF-8"))?;
        match &self.step {
            Step::ServerFirst => self.client_final(text),
            Step::ServerFinal { expected } => {
                verify(text, expected)?;
                self.step = Step::Verified;
                Ok(Vec::new())
            }
            Step::Verified => Err(SaslError::UnexpectedChallenge {
                mechanism: Mechanism::ScramSha256,
            }),
        }
    }

    /// True once server-final carried the right signature.
    pub(super) fn verified(&self) -> bool {
        matches!(self.step, Step::Verified)
    }

    fn client_final(&mut self, server_first: &str) -> Result<Vec<u8>, SaslError> {
        let first = ServerFirst::parse(server_first)?;
        if first.nonce.len() <= self.nonce.len() || !first.nonce.starts_with(&self.nonce) {
            return Err(SaslError::NonceMismatch);
        }
        let iterations = NonZeroU32::new(first.iterations)
            .filter(|n| n.get() <= MAX_ITERATIONS)
            .ok_or(SaslError::IterationCount {
                count: first.iterations.into(),
                max: MAX_ITERATIONS,
            })?;
        let mut salted = [0; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &first.salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c=biws,r={}", first.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = (client_key.as_ref().iter())
            .zip(signature.as_ref())
            .map(|(key, sig)| key ^ sig)
            .collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.step = Step::ServerFinal { expected };
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }
}

/// The fields of server-first that the client uses.
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    fn parse(text: &'a str) -> Result<ServerFirst<'a>, SaslError> {
        let mut fields = text.split(',');
        let mut next = |name: &str| {
            fields
                .next()
                .and_then(|field| field.strip_prefix(name)?.strip_prefix('='))
        };
        if let Some(error) = text.strip_prefix("e=") {
            return Err(SaslError::ServerError(printable(error)));
        }
        let nonce = next("r").ok_or(malformed("no nonce first"))?;
        let salt = next("s").ok_or(malformed("no salt"))?;
        let iterations = next("i").ok_or(malformed("no iteration count"))?;
        Ok(ServerFirst {
            nonce,
            salt: STANDARD.decode(salt).map_err(|_| malformed("salt"))?,
            iterations: iterations
                .parse()
                .map_err(|_| malformed("iteration count"))?,
        })
    }
}

/// Checks server-final: `v=<signature>`, or `e=<error>`.
fn verify(server_final: &str, expected: &hmac::Tag) -> Result<(), SaslError> {
    if let Some(error) = server_final.strip_prefix("e=") {
        return Err(SaslError::ServerError(printable(error)));
    }
    let signature = server_final
        .split(',')
        .next()
        .and_then(|field| field.strip_prefix("v="))
        .ok_or(malformed("no verifier"))?;
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| malformed("verifier"))?;
    if signature != expected.as_ref() {
        return Err(SaslError::ServerSignature);
    }
    Ok(())
}

/// SASLprep (RFC 4013) maps and forbids only characters outside printable
/// ASCII, so on printable ASCII it changes nothing; anything else is
/// refused rather than half-prepared into a proof the server rejects.
pub(super) fn sasl_prep(password: &str) -> Result<&str, SaslError> {
    if password.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(password)
    } else {
        Err(SaslError::SaslPrep)
    }
}

/// A server's error text, safe to show.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

fn malformed(what: &'static str) -> SaslError {
    SaslError::Malformed {
        mechanism: Mechanism::ScramSha256,
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> Scram {
        Scram::new("user", "pencil", NONCE.to_owned()).expect("ASCII password")
    }

    #[test]
    fn rfc_7677_example() {
        let mut scram = rfc_client();
        assert_eq!(scram.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = scram
            .respond(SERVER_FIRST.as_bytes())
            .expect("client-final");
        assert_eq!(String::from_utf8(client_final).unwrap(), CLIENT_FINAL);
        assert!(!scram.verified());
        assert_eq!(scram.respond(SERVER_FINAL.as_bytes()), Ok(Vec::new()));
        assert!(scram.verified());
        assert_eq!(
            scram.respond(b"v=again"),
            Err(SaslError::UnexpectedChallenge {
                mechanism: Mechanism::ScramSha256
            })
        );
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let mut scram = rfc_client();
        scram
            .respond(SERVER_FIRST.as_bytes())
            .expect("client-final");
        let forged = format!("v={}", STANDARD.encode([7u8; 32]));
        assert_eq!(
            scram.respond(forged.as_bytes()),
            Err(SaslError::ServerSignature)
        );
        assert!(!scram.verified());
    }

    #[test]
    fn server_first_is_checked() {
        let cases = [
            ("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
            (
                "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "nonce",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
                "iterations",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
                "iterations",
            ),
            (
                "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "malformed",
            ),
            ("r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096", "malformed"),
            ("e=unknown-user", "server"),
        ];
        for (server_first, kind) in cases {
            let err = rfc_client().respond(server_first.as_bytes()).unwrap_err();
            let matched = match kind {
                "nonce" => err == SaslError::NonceMismatch,
                "iterations" => matches!(err, SaslError::IterationCount { .. }),
                "malformed" => matches!(err, SaslError::Malformed { .. }),
                _ => err == SaslError::ServerError("unknown-user".into()),
            };
            assert!(matched, "{server_first}: {err:?}");
        }
    }

    #[test]
    fn usernames_are_escaped_and_passwords_limited_to_ascii() {
        let scram = Scram::new("a,b=c", "pw", "n".into()).unwrap();
        assert_eq!(scram.client_first(), b"n,,n=a=2Cb=3Dc,r=n");
        assert!(matches!(
            Scram::new("user", "pässword", "n".into()),
            Err(SaslError::SaslPrep)
        ));
        assert!(matches!(
            Scram::new("user", "tab\there", "n".into()),
            Err(SaslError::SaslPrep)
        ));
    }
}
