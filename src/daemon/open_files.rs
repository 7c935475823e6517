//! The open-file limit: every connection is a file descriptor, and the
//! soft limit most systems start a process with (1024) is less than a big
//! host's parked connections need. The hard limit is what the
//! administrator allows (systemd's default is 524288), so `popferry run`
//! raises its soft limit to it, as servers do, and says when even that
//! is too few for the configured limits.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tracing::{debug, warn};

use crate::config::Config;

/// Raises the soft limit to the hard one; warns when the result is below
/// what `config` may keep open at once.
pub(super) fn raise(config: &Config) {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => debug!(from = ?limit.current, to = ?limit.maximum, "open-file limit raised"),
            Err(e) => debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    let Some(current) = getrlimit(Resource::Nofile).current else {
        return;
    };
    let wanted = wanted(config);
    if current < wanted {
        warn!(
            "the open-file limit is {current}, and the configuration may keep {wanted} files \
             and connections open at once (max_idle_connections, max_concurrent_polls, SMTP \
             connections, the ledger): connections beyond the limit will fail; raise \
             LimitNOFILE= (systemd) or `ulimit -n`, or lower max_idle_connections"
        );
    }
}

/// Parked and polling POP3 connections, each relay's SMTP connections and
/// a margin for the ledger, the log, the metrics listener and its clients.
fn wanted(config: &Config) -> u64 {
    let daemon = &config.daemon;
    let mut relays: Vec<_> = config.accounts.iter().map(|a| &a.smtp).collect();
    relays.sort_by_key(|smtp| std::sync::Arc::as_ptr(smtp));
    relays.dedup_by_key(|smtp| std::sync::Arc::as_ptr(smtp));
    let smtp: usize = relays.iter().map(|smtp| smtp.max_connections).sum();
    (daemon.max_idle_connections + daemon.max_concurrent_polls + smtp + 64) as u64
}
