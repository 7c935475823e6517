//! Helpers shared by the integration tests that run the real `popferry`
//! binary against the Dovecot and smtp-sink instances of
//! `scripts/services.sh` (see `tests/real_servers.rs`).
//!
//! * [`real`]: the test environment, maildirs, smtp-sink dumps.
//! * [`interop_pop3`]: the five POP3 servers of the interop suite.
//! * [`jwt`]: bearer tokens the OAuth Dovecot accepts.
//! * [`lab`]: the OAuth2/TLS lab's servers (self-signed, client certificate).
//! * [`popferry`]: config files, and running the binary with a time limit.
//! * [`mail`]: generated test messages and byte comparisons.
//! * [`peers`]: fetchmail, mpop and getmail run as a user runs them.
//! * [`link_proxy`]: a TCP proxy that cuts the POP3 link at a chosen command.
//! * [`raw`]: POP3/SMTP sessions line by line over TCP or TLS, no popferry code.
//! * [`receivers`]: the interop suite's Postfix, Exim, Dovecot LMTP, aiosmtpd.
//! * [`scenario`]: a mailbox + recipient + config, and delivery assertions.
//! * [`watch`]: a running popferry's log lines and peak memory.
//!
//! Each test binary uses only part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod interop_pop3;
pub mod jwt;
pub mod lab;
pub mod link_proxy;
pub mod mail;
pub mod peers;
pub mod popferry;
pub mod raw;
pub mod real;
pub mod receivers;
pub mod scenario;
pub mod watch;
