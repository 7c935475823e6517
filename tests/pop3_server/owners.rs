//! Mailboxes of their own for several users of one server, so a test can
//! put hundreds of accounts on one server and still tell whose mail went
//! where.

use super::{lock, Message, Pop3Server, Shared, Stored};

impl Shared {
    /// What `user` sees: the messages added for everyone and their own.
    pub(super) fn visible(&self, user: &str) -> Vec<Stored> {
        (self.maildrop.iter())
            .filter(|stored| stored.owner.as_deref().is_none_or(|owner| owner == user))
            .cloned()
            .collect()
    }
}

impl Pop3Server {
    /// Put a message at the end of the maildrop; sessions already logged in
    /// do not list it (their message numbers are fixed, RFC 1939 §5) until
    /// a WAKE, though UID-PARAM can name it as message 0.
    pub fn add(&self, uid: &str, bytes: &[u8]) {
        let mut shared = lock(&self.shared);
        let id = shared.next_id;
        shared.next_id += 1;
        shared.maildrop.push(Stored {
            id,
            owner: None,
            message: Message {
                uid: uid.to_owned(),
                bytes: bytes.to_vec(),
            },
        });
    }

    /// Put a message in `user`'s mailbox alone.
    pub fn add_for(&self, user: &str, uid: &str, bytes: &[u8]) {
        let mut shared = lock(&self.shared);
        let id = shared.next_id;
        shared.next_id += 1;
        shared.maildrop.push(Stored {
            id,
            owner: Some(user.to_owned()),
            message: Message {
                uid: uid.to_owned(),
                bytes: bytes.to_vec(),
            },
        });
    }

    /// The committed messages of `user` alone, in order.
    pub fn maildrop_of(&self, user: &str) -> Vec<String> {
        (lock(&self.shared).maildrop.iter())
            .filter(|stored| stored.owner.as_deref() == Some(user))
            .map(|stored| stored.message.uid.clone())
            .collect()
    }
}
