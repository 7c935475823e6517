//! A scriptable in-process POP3 server (RFC 1939 with CAPA and SASL PLAIN)
//! for tests that need a server to misbehave on cue.
//!
//! A real server can only be made to fail from the outside (a proxy, a
//! killed process); this one fails at an exact protocol step, chosen per
//! test with a [`Fault`], so each crash window of a poll can be hit on
//! purpose and the test can then look inside the maildrop to see what the
//! server actually committed.
//!
//! The maildrop is shared by all connections, like a real mailbox: each
//! session takes a snapshot at login, marks deletions in it, and only a
//! `QUIT` in the TRANSACTION state removes them from the shared maildrop
//! (the UPDATE state of RFC 1939 §6). A session that ends any other way
//! commits nothing. The extensions add the other ways to commit the
//! reference server has: SLEE, QAUT and CORE like QUIT, DELI at once.
//! Messages added for one user ([`Pop3Server::add_for`]) are that user's
//! alone, so many accounts can share one server.
//!
//! Opt-in [`Extensions`] add the commands of Bill Godfrey's reference
//! server (SLEE/WAKE, UID-PARAM, DELI, QAUT, the older CORE), with its
//! reply texts and its
//! known quirks, so a pooling client can be tested against the behaviour
//! it will meet rather than against an idealised reading of the drafts.
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

mod extensions;
mod mailbox;
mod owners;
mod session;
mod sessions;
mod stls_front;
mod tls_front;
mod transaction;
mod users;
mod wire;

pub use extensions::Extensions;
// Unused in the crates that only drive the server through popferry.
#[allow(unused_imports)]
pub use {stls_front::StlsFront, tls_front::TlsFront, wire::Wire};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One message in the maildrop, as the server would list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: String,
    /// CRLF-terminated lines, not dot-stuffed; LIST reports their length.
    pub bytes: Vec<u8>,
}

/// A misbehaviour the server shows once, then it behaves again.
///
/// One-shot, so that the "next poll" of a test meets a healthy server
/// without the test having to remember to clear the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Commit the deletions at QUIT, then close without the `+OK`.
    LostQuitReply,
    /// On the `nth` RETR (1-based, counted from when the fault was set),
    /// send `+OK` and half the body, then close. Nothing is committed.
    DropMidRetr { nth: usize },
    /// Answer `verb` with a line that is neither `+OK` nor `-ERR`; the
    /// command is not carried out.
    Garbage { verb: &'static str },
    /// Never answer `verb`; keep the connection open until the client
    /// gives up.
    Stall { verb: &'static str },
    /// Close the connection right after reading `verb`, without replying
    /// and without committing anything.
    CloseAfter { verb: &'static str },
    /// Answer the next WAKE of a sleeping session with `-ERR [<code>]`
    /// (the draft's `IN-USE`, `AUTH`, `SYS/TEMP`, ...); it stays asleep.
    RefuseWake { code: &'static str },
    /// Commit the deletions at the next SLEE, send the `+OK`, then close:
    /// the pooled connection dies while parked.
    DropAfterSlee,
    /// Commit the deletions at the next SLEE, then close without the `+OK`,
    /// so the client cannot know they were committed.
    LostSleeReply,
    /// Commit the deletions at the next QAUT, then close without the `+OK`.
    LostQautReply,
    /// Answer the next CORE (or REFR) `-ERR`, committing nothing; the
    /// session stays in TRANSACTION.
    RefuseCore,
    /// Refuse the next login (PASS or AUTH) with `-ERR [AUTH]`, whatever
    /// the credentials.
    RefuseLogin,
}

/// How the server presents itself; fixed for the server's lifetime.
#[derive(Debug, Clone)]
pub struct Options {
    pub user: String,
    pub password: String,
    /// The CAPA listing, one capability per line.
    pub capabilities: Vec<String>,
    /// False makes UIDL answer `-ERR`, like RFC 1939 servers without it.
    pub uidl: bool,
    pub extensions: Extensions,
    /// More user names that log in, with the same password, to the same
    /// maildrop: several accounts on one server, sharing its connection cap.
    pub aliases: Vec<String>,
    /// Every user name logs in with `password`, to a mailbox of its own
    /// that holds what [`Pop3Server::add_for`] put there: thousands of
    /// accounts on one server without listing them.
    pub any_user: bool,
    /// Refuse a login with `-ERR [IN-USE]` while another session is logged
    /// in to the same mailbox, as RFC 1939 servers that lock the maildrop do.
    pub lock_maildrops: bool,
    /// End a session that sent nothing for this long, committing nothing
    /// (RFC 1939's autologout timer, shortened for tests).
    pub autologout: Option<std::time::Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            user: "alice".into(),
            password: "secret".into(),
            capabilities: vec!["USER".into(), "UIDL".into(), "TOP".into()],
            uidl: true,
            extensions: Extensions::default(),
            aliases: Vec::new(),
            any_user: false,
            lock_maildrops: false,
            autologout: None,
        }
    }
}

/// A message plus an identity that survives uid reuse, so a QUIT removes
/// exactly the messages its session saw, not a newer one with the same uid.
#[derive(Debug, Clone)]
struct Stored {
    id: u64,
    /// The one user who sees it; `None`: every user.
    owner: Option<String>,
    message: Message,
}

/// The RFC 1939 states plus the reference server's SLEEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Authorization,
    Transaction,
    Sleep,
}

/// What the server knows about one open connection, so a test can count
/// pooled connections and close the parked ones from outside.
#[derive(Debug)]
struct Connection {
    sleeping: bool,
    /// Set, under the lock, by [`Pop3Server::close_sleeping`]; a WAKE that
    /// raced with it must see this and not wake up.
    closing: bool,
    /// Interrupts the session's wait for its next command.
    close: Arc<Notify>,
}

/// Everything the sessions share.
#[derive(Debug, Default)]
struct Shared {
    options: Options,
    maildrop: Vec<Stored>,
    next_id: u64,
    fault: Option<Fault>,
    /// RETRs seen since the current fault was set, for `DropMidRetr`.
    retrs_since_fault: usize,
    faults_fired: usize,
    accepts: usize,
    logins: users::Logins,
    sessions: sessions::Sessions,
    /// Bare `AUTH PLAIN` commands answered with a `+` continuation.
    plain_continuations: usize,
    commands: HashMap<String, usize>,
    /// The most complete commands, and RETRs, that were already waiting
    /// behind a command when it was read: how far the client pipelines.
    most_ahead: usize,
    most_retrs_ahead: usize,
    connections: HashMap<u64, Connection>,
    /// The most connections open at once.
    most_connections: usize,
    next_connection: u64,
}

impl Shared {
    /// Takes the pending fault if it applies to this command in this state.
    ///
    /// The state matters for the faults that act out a command's success:
    /// a SLEE refused for being asleep must not use up `LostSleeReply`.
    fn fault_for(&mut self, verb: &str, state: State) -> Option<Fault> {
        let applies = match self.fault.as_ref()? {
            Fault::LostQuitReply => verb == "QUIT" && state != State::Authorization,
            Fault::DropMidRetr { nth } => {
                if verb == "RETR" {
                    self.retrs_since_fault += 1;
                }
                verb == "RETR" && self.retrs_since_fault == *nth
            }
            Fault::Garbage { verb: v }
            | Fault::Stall { verb: v }
            | Fault::CloseAfter { verb: v } => v.eq_ignore_ascii_case(verb),
            Fault::RefuseWake { .. } => verb == "WAKE" && state == State::Sleep,
            Fault::DropAfterSlee | Fault::LostSleeReply => {
                verb == "SLEE" && state == State::Transaction && self.options.extensions.sleep()
            }
            Fault::LostQautReply => verb == "QAUT" && state == State::Transaction,
            Fault::RefuseCore => matches!(verb, "CORE" | "REFR") && state == State::Transaction,
            Fault::RefuseLogin => matches!(verb, "PASS" | "AUTH") && state == State::Authorization,
        };
        if !applies {
            return None;
        }
        self.faults_fired += 1;
        self.fault.take()
    }

    /// The UPDATE state: remove the messages a session deleted.
    fn commit(&mut self, deleted: &[u64]) {
        self.maildrop.retain(|stored| !deleted.contains(&stored.id));
    }

    fn register(&mut self) -> (u64, Arc<Notify>) {
        let id = self.next_connection;
        self.next_connection += 1;
        let close = Arc::new(Notify::new());
        self.connections.insert(
            id,
            Connection {
                sleeping: false,
                closing: false,
                close: Arc::clone(&close),
            },
        );
        self.most_connections = self.most_connections.max(self.connections.len());
        (id, close)
    }

    fn connection(&mut self, id: u64) -> Option<&mut Connection> {
        self.connections.get_mut(&id)
    }
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    // A panicking session must not hide the state from the test's asserts.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running server; stops accepting when dropped.
#[derive(Debug)]
pub struct Pop3Server {
    addr: SocketAddr,
    shared: SharedRef,
    acceptor: JoinHandle<()>,
}

impl Pop3Server {
    /// Listen on 127.0.0.1 with an ephemeral port.
    pub async fn start(options: Options) -> Pop3Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind POP3");
        let addr = listener.local_addr().expect("POP3 address");
        let shared: SharedRef = Arc::new(Mutex::new(Shared {
            options,
            ..Shared::default()
        }));
        let for_acceptor = Arc::clone(&shared);
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // As real servers do: replies to pipelined commands are
                // several small writes, and with Nagle the second would wait
                // for the client's delayed ACK.
                stream.set_nodelay(true).ok();
                // Registered before the banner, so a client that has read
                // the banner can rely on `open_connections` counting it.
                let (id, close) = {
                    let mut shared = lock(&for_acceptor);
                    shared.accepts += 1;
                    shared.register()
                };
                let shared = Arc::clone(&for_acceptor);
                tokio::spawn(session::serve(stream, shared, id, close));
            }
        });
        Pop3Server {
            addr,
            shared,
            acceptor,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The committed maildrop, in order.
    pub fn maildrop(&self) -> Vec<Message> {
        lock(&self.shared)
            .maildrop
            .iter()
            .map(|stored| stored.message.clone())
            .collect()
    }

    pub fn uids(&self) -> Vec<String> {
        self.maildrop().into_iter().map(|m| m.uid).collect()
    }

    /// Arm (or with `None` disarm) the one-shot fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        let mut shared = lock(&self.shared);
        shared.fault = fault;
        shared.retrs_since_fault = 0;
    }

    /// How many faults have fired, so a test can tell its fault was hit.
    pub fn faults_fired(&self) -> usize {
        lock(&self.shared).faults_fired
    }

    pub fn accepts(&self) -> usize {
        lock(&self.shared).accepts
    }

    /// How many AUTH PLAIN exchanges sent the credentials after a `+`
    /// continuation rather than as an initial response.
    pub fn plain_continuations(&self) -> usize {
        lock(&self.shared).plain_continuations
    }

    /// How many times a command with this verb was received, faulted ones
    /// included.
    pub fn commands(&self, verb: &str) -> usize {
        let shared = lock(&self.shared);
        shared
            .commands
            .get(&verb.to_ascii_uppercase())
            .copied()
            .unwrap_or(0)
    }

    /// The most commands a client had sent beyond the one being read:
    /// 0 for a client that waits for every reply.
    pub fn most_commands_ahead(&self) -> usize {
        lock(&self.shared).most_ahead
    }

    /// Like [`Pop3Server::most_commands_ahead`], counting RETRs only.
    pub fn most_retrs_ahead(&self) -> usize {
        lock(&self.shared).most_retrs_ahead
    }

    /// Sessions still connected, whatever their state.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared).connections.len()
    }

    /// The most connections that were ever open at once.
    pub fn most_connections_at_once(&self) -> usize {
        lock(&self.shared).most_connections
    }

    /// Sessions now in the SLEEP state, i.e. parked by a pooling client.
    pub fn sleeping_connections(&self) -> usize {
        lock(&self.shared)
            .connections
            .values()
            .filter(|c| c.sleeping)
            .count()
    }

    /// Close every sleeping connection, like a server's autologout of idle
    /// sessions, and say how many that was. The connections go away
    /// shortly after; `sleeping_connections` drops to 0 at once.
    pub fn close_sleeping(&self) -> usize {
        let mut shared = lock(&self.shared);
        let mut closed = 0;
        for connection in shared.connections.values_mut() {
            if connection.sleeping {
                connection.sleeping = false;
                connection.closing = true;
                // A stored permit, so a session between two reads still
                // sees it.
                connection.close.notify_one();
                closed += 1;
            }
        }
        closed
    }
}

impl Drop for Pop3Server {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}
