//! The POP3 client (RFC 1939, RFC 2449 CAPA and response codes, RFC 2595
//! STLS, RFC 5034 SASL AUTH).
//!
//! Two layers. [`codec`], [`command`] and [`reply`] are sans-IO: they turn
//! commands into bytes and bytes into typed replies, with no tokio, sockets
//! or clocks, so they can be tested and fuzzed byte by byte. [`client`] is
//! the thin async driver that moves those bytes over TCP or TLS with a
//! timeout on every read and write and a minimum pace for every reply;
//! [`listing`] reads CAPA, UIDL and LIST under line caps, and `pace` is
//! the sans-IO rule for how slowly a reply may arrive.

mod auth;
pub mod client;
pub mod codec;
pub mod command;
pub mod error;
pub mod listing;
mod pace;
pub mod reply;
mod transaction;

pub use client::{Client, Endpoint};
pub use codec::{DecodeError, Limits};
pub use command::Msg;
pub use error::Pop3Error;
pub use reply::{Capabilities, Reply, Status};
