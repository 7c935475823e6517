//! Bearer tokens the `dovecot-oauth` server of `scripts/services.sh`
//! accepts: HS256 JWTs signed with the key it checks them with, standing in
//! for the access tokens of an identity provider.

use std::fmt;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::hmac;

use super::real::env;

/// Signs tokens with the lab's HS256 key; the key never reaches `Debug`.
pub struct JwtSigner {
    key: hmac::Key,
    issuer: String,
    azp: String,
    kid: String,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("issuer", &self.issuer)
            .field("azp", &self.azp)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The strings go into the JSON unescaped, so they must need no escaping.
fn assert_json_safe(what: &str, value: &str) {
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
        "{what} {value:?} would need JSON escaping"
    );
}

impl JwtSigner {
    /// The key, issuer, `azp` and `kid` the server was configured with
    /// (`POPFERRY_TEST_JWT_*`).
    pub fn from_env() -> Self {
        let oauth = &env().oauth;
        let path = &oauth.jwt_key_file;
        let text = fs::read_to_string(path)
            .unwrap_or_else(|err| panic!("JWT key {}: {err}", path.display()));
        let secret = STANDARD
            .decode(text.trim())
            .unwrap_or_else(|_| panic!("JWT key {}: not base64", path.display()));
        for (what, value) in [
            ("issuer", &oauth.jwt_issuer),
            ("azp", &oauth.jwt_azp),
            ("kid", &oauth.jwt_kid),
        ] {
            assert_json_safe(what, value);
        }
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            issuer: oauth.jwt_issuer.clone(),
            azp: oauth.jwt_azp.clone(),
            kid: oauth.jwt_kid.clone(),
        }
    }

    /// A token for the mailbox `sub` that expires `lifetime_secs` from now
    /// (negative: expired that long ago), made longer than `pad_to` bytes
    /// with a `pad` claim when needed (real Microsoft tokens are ~2.5 KB,
    /// over Postfix's 2048-byte command line).
    pub fn mint(&self, sub: &str, lifetime_secs: i64, pad_to: usize) -> String {
        assert_json_safe("sub", sub);
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs(),
        )
        .expect("time fits i64");
        let exp = now + lifetime_secs;
        // Issued a minute before it expires, if that is earlier than now, so
        // an expired token is expired and nothing else.
        let iat = now.min(exp - 60);
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#,
            self.kid
        ));
        let mut pad_len = 0;
        loop {
            let pad = if pad_len == 0 {
                String::new()
            } else {
                format!(r#","pad":"{}""#, "x".repeat(pad_len))
            };
            let claims = format!(
                r#"{{"sub":"{sub}","iss":"{}","azp":"{}","iat":{iat},"nbf":{iat},"exp":{exp}{pad}}}"#,
                self.issuer, self.azp
            );
            let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
            let signature = hmac::sign(&self.key, signed.as_bytes());
            let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
            if token.len() > pad_to {
                return token;
            }
            // Base64 makes 4 bytes of every 3: enough padding to pass pad_to.
            pad_len += (pad_to + 1 - token.len()) * 3 / 4 + 1;
        }
    }
}
