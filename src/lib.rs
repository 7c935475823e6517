//! popferry moves mail from POP3 mailboxes to an SMTP relay, exactly once.
//!
//! # Layout
//!
//! * [`pop3`]: the POP3 client. [`pop3::codec`] is sans-IO (bytes in, typed
//!   replies out, no tokio); [`pop3::client`] drives it over TCP or TLS.
//! * [`net`] and [`tls`]: the TCP/TLS stream and rustls configuration
//!   shared by POP3 and SMTP.
//! * [`config`]: the TOML configuration, validated into runtime types.
//! * [`oauth`]: OAuth2 access tokens for XOAUTH2 and OAUTHBEARER: refresh,
//!   cache, rotation and the first sign-in.
//! * [`ledger`]: the SQLite record of every delivered unique-id.
//! * [`metrics`]: Prometheus metrics and `/healthz` for `popferry run`.
//! * [`smtp`]: the SMTP client (sans-IO replies and DATA stuffing under a
//!   thin async driver); [`deliver`] pools its connections per relay.
//! * [`poll`]: one poll of one account, RETR to DELE, top to bottom.
//! * [`import`]: the state files of fetchmail, mpop and getmail, read
//!   into the ledger by `popferry import`.
//! * [`quarantine`]: durable copies of messages the relay rejected.
//! * [`multidrop`]: the recipients of a domain mailbox's messages, read from
//!   the envelope header its provider adds, and the loop guard.
//! * [`sasl`]: the SASL mechanisms of POP3 and SMTP AUTH, sans-IO, and the
//!   rule that picks one.
//! * [`demo`]: a POP3 server and SMTP receiver on loopback for `popferry
//!   demo` (the tests' SMTP relay is the same receiver).
//! * [`blocking`]: file and command work off the reactor.
//! * [`cli`]: the command line, the only place that uses `anyhow`.
//!
//! # The guarantee
//!
//! A message is deleted from the POP3 server only after its delivery is
//! durably recorded in the ledger. See [`poll`] for the order of operations
//! and the one window in which a message can be delivered twice.

pub mod blocking;
pub mod cli;
pub mod config;
pub mod credential;
pub mod daemon;
pub mod deliver;
pub mod demo;
mod headers;
pub mod import;
pub mod ledger;
pub mod metrics;
pub mod multidrop;
pub mod net;
pub mod oauth;
pub mod poll;
pub mod pool;
pub mod pop3;
pub mod quarantine;
pub mod sasl;
pub mod scheduler;
pub mod session;
pub mod smtp;
pub mod tls;
