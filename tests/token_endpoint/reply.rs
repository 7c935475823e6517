//! What the server answers, and the form parameters it reads.

use serde_json::{json, Value};

/// An HTTP answer before it goes on the wire.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    /// JSON with the no-caching headers RFC 6749 §5.1 requires of token
    /// replies.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: vec![
                ("cache-control", "no-store".into()),
                ("pragma", "no-cache".into()),
            ],
            body: body.to_string(),
        }
    }

    /// An error in the shape of RFC 6749 §5.2.
    pub fn error(status: u16, code: &str, description: &str) -> Reply {
        Reply::json(
            status,
            &json!({ "error": code, "error_description": description }),
        )
    }

    pub fn invalid_request(description: &str) -> Reply {
        Reply::error(400, "invalid_request", description)
    }

    pub fn invalid_grant(description: &str) -> Reply {
        Reply::error(400, "invalid_grant", description)
    }

    /// 401 with the challenge RFC 6749 §5.2 asks for.
    pub fn invalid_client(description: &str) -> Reply {
        let mut reply = Reply::error(401, "invalid_client", description);
        reply
            .headers
            .push(("www-authenticate", "Basic realm=\"popferry-test\"".into()));
        reply
    }

    pub fn html(status: u16, text: &str) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: format!("<!DOCTYPE html><html><body><p>{text}</p></body></html>"),
        }
    }

    pub fn redirect(location: String) -> Reply {
        let mut reply = Reply::html(302, "Redirecting");
        reply.headers.push(("location", location));
        reply
    }

    /// A failure injected with `fail_next`, sent as given.
    pub fn injected(status: u16, body: &str) -> Reply {
        let content_type = if body.trim_start().starts_with('{') {
            "application/json"
        } else {
            "text/html; charset=utf-8"
        };
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// Decoded `application/x-www-form-urlencoded` parameters, of a body or a
/// query string.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// Empty values count as absent (RFC 6749 §3.1).
    pub fn parse(bytes: &[u8]) -> Params {
        Params(
            form_urlencoded::parse(bytes)
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The parameter's value; given twice is `invalid_request` (RFC 6749
    /// §3.1, §3.2).
    pub fn get(&self, name: &str) -> Result<Option<&str>, Reply> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, value)| value.as_str());
        if values.next().is_some() {
            return Err(Reply::invalid_request(&format!(
                "{name} is given more than once"
            )));
        }
        Ok(first)
    }

    pub fn require(&self, name: &str) -> Result<&str, Reply> {
        self.get(name)?
            .ok_or_else(|| Reply::invalid_request(&format!("{name} is missing")))
    }

    /// The first value, for the log, which records even malformed requests.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}
