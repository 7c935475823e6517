//! POP3 commands and their wire encoding.

/// Which message a command is about: its number in this session's
/// listing, or (with the UID-PARAM extension) its unique-id, which cannot
/// go stale when the server renumbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg<'a> {
    Number(u32),
    Uid(&'a str),
}

impl From<u32> for Msg<'_> {
    fn from(n: u32) -> Self {
        Msg::Number(n)
    }
}

/// A command the client sends. Arguments are borrowed: encoding happens
/// straight into the output buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    Capa,
    Stls,
    User(&'a str),
    Pass(&'a str),
    /// APOP with the hex MD5 digest already computed.
    Apop {
        user: &'a str,
        digest: &'a str,
    },
    /// AUTH with a mechanism and an optional initial response (base64).
    Auth {
        mechanism: &'a str,
        initial: Option<&'a str>,
    },
    /// A line answering a `+` continuation during AUTH (base64, or `*`).
    AuthResponse(&'a str),
    Stat,
    List,
    Uidl,
    Retr(Msg<'a>),
    Top(Msg<'a>, u32),
    Dele(Msg<'a>),
    /// Delete now, not at QUIT (the DELI extension).
    Deli(Msg<'a>),
    Rset,
    Noop,
    /// Commit the deletions and keep the connection, asleep (SLEE-WAKE).
    Slee,
    /// Leave the sleeping state with a fresh listing (SLEE-WAKE).
    Wake,
    /// Commit the deletions and log out, keeping the connection for
    /// another login (QAUT).
    Qaut,
    /// Commit the deletions and reload the listing, staying logged in
    /// (CORE, named REFR before).
    Core,
    Refr,
    Quit,
}

/// What comes back for a command when the server says `+OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A status line only.
    Single,
    /// A status line followed by a dot-terminated listing (`-ERR` has none).
    Listing,
    /// A status line followed by a dot-terminated message.
    Message,
}

/// A command argument that would break the line framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command} argument contains a line break, NUL byte or (in a unique-id) a space")]
pub struct EncodeError {
    pub command: &'static str,
}

impl Command<'_> {
    /// The command word, for logs and errors. Never includes arguments, so
    /// it is safe to show for PASS and AUTH.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Auth { .. } | Command::AuthResponse(_) => "AUTH",
            Command::Stat => "STAT",
            Command::List => "LIST",
            Command::Uidl => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top(..) => "TOP",
            Command::Dele(_) => "DELE",
            Command::Deli(_) => "DELI",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Slee => "SLEE",
            Command::Wake => "WAKE",
            Command::Qaut => "QAUT",
            Command::Core => "CORE",
            Command::Refr => "REFR",
            Command::Quit => "QUIT",
        }
    }

    pub fn shape(&self) -> Shape {
        match self {
            Command::Capa | Command::List | Command::Uidl => Shape::Listing,
            Command::Retr(_) | Command::Top(..) => Shape::Message,
            _ => Shape::Single,
        }
    }

    /// Append the command line, CRLF included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let args: [&str; 2] = match *self {
            Command::User(user) => [user, ""],
            Command::Pass(pass) => [pass, ""],
            Command::Apop { user, digest } => [user, digest],
            Command::Auth { mechanism, initial } => [mechanism, initial.unwrap_or("")],
            Command::AuthResponse(line) => {
                check(self.verb(), line)?;
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
                return Ok(());
            }
            _ => ["", ""],
        };
        for arg in args {
            check(self.verb(), arg)?;
        }
        out.extend_from_slice(self.verb().as_bytes());
        for arg in args.iter().filter(|a| !a.is_empty()) {
            out.push(b' ');
            out.extend_from_slice(arg.as_bytes());
        }
        match *self {
            Command::Retr(msg) | Command::Dele(msg) | Command::Deli(msg) => push_msg(out, msg)?,
            Command::Top(msg, lines) => {
                push_msg(out, msg)?;
                push_number(out, lines);
            }
            _ => {}
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

impl std::fmt::Debug for Command<'_> {
    /// Shows the verb and message numbers only: arguments may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Retr(msg) | Command::Dele(msg) | Command::Deli(msg) => {
                write!(f, "{} {msg}", self.verb())
            }
            Command::Top(msg, l) => write!(f, "TOP {msg} {l}"),
            _ => f.write_str(self.verb()),
        }
    }
}

impl std::fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Number(n) => write!(f, "{n}"),
            Msg::Uid(uid) => write!(f, "UID:{uid}"),
        }
    }
}

/// A unique-id is sent as `UID:<uid>`; one with a space or control byte
/// would change the command's meaning (UIDL listings never hold one).
fn push_msg(out: &mut Vec<u8>, msg: Msg<'_>) -> Result<(), EncodeError> {
    match msg {
        Msg::Number(n) => push_number(out, n),
        Msg::Uid(uid) => {
            if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(EncodeError { command: "UID:" });
            }
            out.extend_from_slice(b" UID:");
            out.extend_from_slice(uid.as_bytes());
        }
    }
    Ok(())
}

fn push_number(out: &mut Vec<u8>, n: u32) {
    out.push(b' ');
    out.extend_from_slice(n.to_string().as_bytes());
}

fn check(command: &'static str, arg: &str) -> Result<(), EncodeError> {
    if arg.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(EncodeError { command });
    }
    Ok(())
}
