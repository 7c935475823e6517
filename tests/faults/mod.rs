//! What the fault tests share: the summary table, a read-only look into
//! the ledger, and the outside disturbances (another process holding the
//! SQLite lock, a small tmpfs that fills up).
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod ledger_rows;
pub mod sqlite_lock;
pub mod table;
pub mod tmpfs;
