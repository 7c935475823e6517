//! Helpers shared by the integration tests that run the real `popferry`
//! binary against the Dovecot and smtp-sink instances of
//! `scripts/services.sh` (see `tests/real_servers.rs`).
//!
//! * [`real`]: the test environment, maildirs, smtp-sink dumps.
//! * [`popferry`]: config files, and running the binary with a time limit.
//! * [`mail`]: generated test messages and byte comparisons.
//! * [`quit_proxy`]: a TCP proxy that loses the POP3 `QUIT` exchange.
//! * [`scenario`]: a mailbox + recipient + config, and delivery assertions.
//! * [`watch`]: a running popferry's log lines and peak memory.
//!
//! Each test binary uses only part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod mail;
pub mod popferry;
pub mod quit_proxy;
pub mod real;
pub mod scenario;
pub mod watch;
