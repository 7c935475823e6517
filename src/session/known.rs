//! What each server answered to CAPA before login, remembered for the next
//! fresh logins to it in the same run.
//!
//! The listing before login belongs to the server, not to a user: RFC 2449
//! lets capabilities change after login, never before it. With thousands
//! of accounts on one server logging in afresh, asking again each time is
//! one round trip of the seven a poll makes (connect, TLS, greeting, CAPA,
//! login, UIDL and LIST, QUIT), and about a tenth of its CPU.
//!
//! Two rules keep a remembered answer from going stale. A login that used
//! one and failed, for whatever reason, forgets it, so the next login asks
//! again. And an answer is used for [`ASK_AGAIN_AFTER`] at most, so a
//! server that gains or loses an extension (an upgrade, a new SASL
//! mechanism) is seen within minutes, also by accounts whose logins work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{Pop3Server, TlsMode};
use crate::pop3::Capabilities;

/// How long one answer is used before the server is asked again.
pub const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5 * 60);

/// What CAPA said: the listing, or `None` from a server without CAPA.
pub type Answer = Option<Capabilities>;

/// Shared by the polls of one run (`popferry run` or `fetch`); a run that
/// starts with none asks every server afresh.
#[derive(Debug, Clone, Default)]
pub struct KnownCapabilities(Arc<Mutex<HashMap<Server, Remembered>>>);

/// One server as CAPA sees it: with STLS its listing before and after
/// the upgrade differ, so the TLS mode is part of the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Server {
    host: String,
    port: u16,
    tls: TlsMode,
}

impl Server {
    fn of(server: &Pop3Server) -> Server {
        Server {
            host: server.host.to_ascii_lowercase(),
            port: server.port,
            tls: server.tls,
        }
    }
}

#[derive(Debug)]
struct Remembered {
    answer: Answer,
    asked: Instant,
}

impl KnownCapabilities {
    fn entries(&self) -> MutexGuard<'_, HashMap<Server, Remembered>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's answer, unless it was never asked in this run or was
    /// asked too long ago.
    pub fn recall(&self, server: &Pop3Server) -> Option<Answer> {
        self.recall_at(server, Instant::now())
    }

    fn recall_at(&self, server: &Pop3Server, now: Instant) -> Option<Answer> {
        let entries = self.entries();
        let remembered = entries.get(&Server::of(server))?;
        (now.saturating_duration_since(remembered.asked) < ASK_AGAIN_AFTER)
            .then(|| remembered.answer.clone())
    }

    /// Keeps what the server answered to a login that then succeeded.
    pub fn remember(&self, server: &Pop3Server, answer: Answer) {
        self.remember_at(server, answer, Instant::now());
    }

    fn remember_at(&self, server: &Pop3Server, answer: Answer, asked: Instant) {
        self.entries()
            .insert(Server::of(server), Remembered { answer, asked });
    }

    /// Drops the server's answer, after a login that used it failed.
    pub fn forget(&self, server: &Pop3Server) {
        self.entries().remove(&Server::of(server));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16, tls: TlsMode) -> Pop3Server {
        Pop3Server {
            host: host.to_owned(),
            port,
            tls,
            trust: Default::default(),
            client_identity: None,
        }
    }

    fn listing(lines: &[&str]) -> Answer {
        let lines: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        Some(Capabilities::from_lines(&lines))
    }

    #[test]
    fn an_answer_is_used_until_it_is_too_old_then_asked_again() {
        let known = KnownCapabilities::default();
        let pop = server("mail.example.net", 995, TlsMode::Implicit);
        let asked = Instant::now();
        assert_eq!(known.recall_at(&pop, asked), None, "never asked");
        known.remember_at(&pop, listing(&["USER", "PIPELINING"]), asked);
        let just_before = asked + ASK_AGAIN_AFTER - Duration::from_millis(1);
        assert_eq!(
            known.recall_at(&pop, just_before),
            Some(listing(&["USER", "PIPELINING"]))
        );
        assert_eq!(known.recall_at(&pop, asked + ASK_AGAIN_AFTER), None);
    }

    #[test]
    fn a_server_without_capa_is_remembered_as_such() {
        let known = KnownCapabilities::default();
        let pop = server("old.example.net", 110, TlsMode::None);
        known.remember(&pop, None);
        assert_eq!(known.recall(&pop), Some(None));
    }

    #[test]
    fn a_forgotten_answer_is_asked_again() {
        let known = KnownCapabilities::default();
        let pop = server("mail.example.net", 995, TlsMode::Implicit);
        known.remember(&pop, listing(&["USER"]));
        known.forget(&pop);
        assert_eq!(known.recall(&pop), None);
    }

    #[test]
    fn each_address_and_tls_mode_has_its_own_answer_whatever_the_host_case() {
        let known = KnownCapabilities::default();
        known.remember(
            &server("Mail.Example.NET", 110, TlsMode::StartTls),
            listing(&["SASL PLAIN"]),
        );
        let same = server("mail.example.net", 110, TlsMode::StartTls);
        assert_eq!(known.recall(&same), Some(listing(&["SASL PLAIN"])));
        for other in [
            server("mail.example.net", 110, TlsMode::None),
            server("mail.example.net", 995, TlsMode::StartTls),
            server("pop.example.net", 110, TlsMode::StartTls),
        ] {
            assert_eq!(known.recall(&other), None, "{other:?}");
        }
    }
}
