//! The HTTP client for token and device endpoints: reqwest with the same
//! rustls configuration (and so the same trust anchors) as POP3 and SMTP.
//!
//! A 5xx answer is turned into an error before `oauth2` sees it: the crate
//! would otherwise report it as an unparsable body and lose the status,
//! and the status is what says "try again later".

use std::error::Error;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};

use crate::tls::{client_config, describe, Trust};

/// For each request to a token or device endpoint.
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an HTTP request got no OAuth answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Transport(String),
    #[error("it answered HTTP {0}")]
    Status(u16),
}

/// The one HTTP client of the process (it pools connections).
fn client() -> Result<&'static reqwest::Client, HttpError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        let tls = client_config(&Trust::default(), None).map_err(|e| e.to_string())?;
        reqwest::Client::builder()
            .use_preconfigured_tls(Arc::unwrap_or_clone(tls))
            // RFC 6749 §3.2 endpoints do not redirect; following one could
            // send the refresh token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| words(&e))
    });
    client.as_ref().map_err(|e| HttpError::Setup(e.clone()))
}

/// The HTTP function handed to `oauth2`.
pub(super) async fn send(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let client = client()?;
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError::Setup(words(&e)))?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| HttpError::Transport(words(&e)))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(HttpError::Status(status.as_u16()));
    }
    let mut builder = oauth2::http::Response::builder().status(status.as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError::Transport(words(&e)))?;
    builder
        .body(body.to_vec())
        .map_err(|e| HttpError::Transport(e.to_string()))
}

/// The refusal's own fix speaks of `ca_file`, which is per POP3 server or
/// relay; the token endpoint is always checked against the system store.
const TRUST_NOTE: &str = " (for the token endpoint only the system trust store counts: install \
    the CA with update-ca-certificates or name it in SSL_CERT_FILE; ca_file and tls_fingerprint \
    do not apply)";

/// reqwest's own message repeats the URL (which the caller's message
/// already names) and hyper's layers ("client error (Connect)"); what an
/// operator can act on is the innermost cause, and a TLS failure in
/// popferry's words rather than rustls's variant names.
fn words(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut innermost: &(dyn Error + 'static) = error;
    while let Some(inner) = innermost.source() {
        if let Some(tls) = rustls_error(inner) {
            let refused = matches!(
                tls,
                rustls::Error::Other(_) | rustls::Error::InvalidCertificate(_)
            );
            let note = if refused { TRUST_NOTE } else { "" };
            return format!("TLS: {}{note}", describe(tls));
        }
        innermost = inner;
    }
    let text = innermost.to_string();
    if error.is_connect() {
        format!("cannot connect: {text}")
    } else {
        text
    }
}

/// An `io::Error` hides the error it wraps from `source()` (and reqwest's
/// connector wraps tokio-rustls's `io::Error` in another), so a rustls
/// error inside is only found by unwrapping.
fn rustls_error<'a>(mut error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = error.downcast_ref::<io::Error>()?.get_ref()?;
        error = inner;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::TcpListener;

    use super::*;

    fn post(url: &str) -> HttpRequest {
        oauth2::http::Request::builder()
            .method("POST")
            .uri(url)
            .body(Vec::new())
            .unwrap()
    }

    #[tokio::test]
    async fn transport_failures_read_as_the_cause_in_words() {
        // Answers plain HTTP to whatever connects, as a token endpoint
        // configured with https:// by mistake would.
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let plain_port = plain.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in plain.incoming() {
                let _ = stream
                    .unwrap()
                    .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let closed_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tls = send(post(&format!("https://127.0.0.1:{plain_port}/token")))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            tls.starts_with("TLS: the server broke the TLS protocol"),
            "{tls}"
        );
        let refused = send(post(&format!("http://127.0.0.1:{closed_port}/token")))
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("cannot connect: "), "{refused}");
        for text in [tls, refused] {
            for noise in [
                "127.0.0.1",
                "error sending request",
                "(Connect)",
                "InvalidContentType",
            ] {
                assert!(!text.contains(noise), "{noise:?} in {text}");
            }
        }
    }

    #[tokio::test]
    async fn a_refused_certificate_says_which_trust_store_the_token_endpoint_uses() {
        // A certificate from a CA no trust store holds.
        let (_, acceptor) = crate::demo::throwaway_tls().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        let refused = send(post(&format!("https://localhost:{port}/token")))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("TLS: the certificate of localhost"),
            "{refused}"
        );
        assert!(
            refused.contains("only the system trust store counts"),
            "{refused}"
        );
    }
}
