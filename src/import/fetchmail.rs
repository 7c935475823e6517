//! fetchmail's `.fetchids`: `user@host unique-id` per line, as fetchmail
//! 6.4's `write_saved_lists` writes them (`%s@%s %s\n`: the remote user
//! name, the server's name as polled or `via`, the unique-id). One file
//! holds every account of one `.fetchmailrc`.
//!
//! The split follows fetchmail's own reader: the user name may hold '@'
//! (`alice@example.com@pop.example.com`) and even spaces before its last
//! '@', so the first space after the first '@' ends `user@host`, and the
//! last '@' before that space starts the host.

use super::{lines, unique_id, Malformed, Owner, UidList};

const EXPECTED: &str = "expected `user@host unique-id`";

pub(super) fn parse(bytes: &[u8]) -> Result<Vec<UidList>, Malformed> {
    let mut lists: Vec<UidList> = Vec::new();
    for (n, line) in lines(bytes) {
        let line = line?.trim_start_matches([' ', '\t']);
        if line.trim().is_empty() {
            continue;
        }
        let (owner, uid) = split(n, line)?;
        match lists.iter_mut().find(|list| list.owner == owner) {
            Some(list) => list.uids.push(uid),
            None => lists.push(UidList {
                owner,
                uids: vec![uid],
            }),
        }
    }
    Ok(lists)
}

fn split(n: usize, line: &str) -> Result<(Owner, String), Malformed> {
    let at = line.find('@').ok_or_else(|| Malformed::new(n, EXPECTED))?;
    let space = at
        + line[at..]
            .find(' ')
            .ok_or_else(|| Malformed::new(n, EXPECTED))?;
    let user_host = line[..space].trim_end_matches([' ', '\t']);
    let (user, host) = user_host
        .rsplit_once('@')
        .filter(|(user, host)| !user.is_empty() && !host.is_empty())
        .ok_or_else(|| Malformed::new(n, EXPECTED))?;
    let uid = line[space..].trim_matches([' ', '\t']);
    if uid.contains([' ', '\t']) {
        return Err(Malformed::new(
            n,
            format!("{EXPECTED}, with nothing after it"),
        ));
    }
    let owner = Owner::Mailbox {
        user: user.to_owned(),
        host: host.to_owned(),
    };
    Ok((owner, unique_id(n, uid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(user: &str, host: &str) -> Owner {
        Owner::Mailbox {
            user: user.into(),
            host: host.into(),
        }
    }

    #[test]
    fn groups_the_lines_of_each_mailbox_in_file_order() {
        let file = b"alice@pop.example.com 000000016b0f572e\n\
                     bob@pop.example.com UID2\n\
                     \n\
                     alice@pop.example.com 000000026b0f572e\n";
        let lists = parse(file).unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0].owner, mailbox("alice", "pop.example.com"));
        assert_eq!(lists[0].uids, ["000000016b0f572e", "000000026b0f572e"]);
        assert_eq!(lists[1].owner, mailbox("bob", "pop.example.com"));
        assert_eq!(lists[1].uids, ["UID2"]);
    }

    #[test]
    fn a_user_name_may_hold_at_signs_and_spaces_and_a_uid_at_signs() {
        let lists =
            parse(b"alice@example.com@pop.example.com <a@b>\nJohn Doe@notes.example x1\n").unwrap();
        assert_eq!(
            lists[0].owner,
            mailbox("alice@example.com", "pop.example.com")
        );
        assert_eq!(lists[0].uids, ["<a@b>"]);
        assert_eq!(lists[1].owner, mailbox("John Doe", "notes.example"));
    }

    #[test]
    fn an_empty_file_lists_nothing() {
        assert_eq!(parse(b"").unwrap(), []);
    }

    #[test]
    fn malformed_lines_are_named() {
        for (file, line) in [
            (&b"alice@pop 1\nno-at-sign 2\n"[..], 2),
            (b"alice@pop\n", 1),
            (b"@pop 1\n", 1),
            (b"alice@ 1\n", 1),
            (b"a@p 1\na@p two words\n", 2),
            (b"a@p 1\n\na@p \xc3\xa9t\xc3\xa9\n", 3),
        ] {
            let err = parse(file).unwrap_err();
            assert_eq!(
                err.line,
                line,
                "{:?}: {err:?}",
                String::from_utf8_lossy(file)
            );
        }
    }
}
