//! getmail's oldmail file, `oldmail-SERVER-PORT-USER` in its getmail
//! directory (`~/.getmail/` or `--getmaildir`), as getmail 6 writes it for
//! a POP3 retriever: one `unique-id NUL unix-timestamp` line per message,
//! in no particular order.

use super::{lines, unique_id, Malformed, Owner, UidList};

/// The name getmail gives the oldmail file of `user` on `host`:`port`:
/// `oldmail-%(server)s-%(port)i-%(username)s` with every run of the
/// characters `/\:;<>|` replaced by a single '-' (getmail's
/// `STRIP_CHAR_RE`).
pub fn oldmail_file_name(host: &str, port: u16, user: &str) -> String {
    let raw = format!("oldmail-{host}-{port}-{user}");
    let mut name = String::with_capacity(raw.len());
    let mut in_run = false;
    for c in raw.chars() {
        let stripped = matches!(c, '/' | '\\' | ':' | ';' | '<' | '>' | '|');
        if !stripped {
            name.push(c);
        } else if !in_run {
            name.push('-');
        }
        in_run = stripped;
    }
    name
}

pub(super) fn parse(bytes: &[u8], file_name: &str) -> Result<Vec<UidList>, Malformed> {
    let mut uids = Vec::new();
    for (n, line) in lines(bytes) {
        // getmail strips each line before splitting it.
        let line = line?.trim();
        if line.is_empty() {
            continue;
        }
        let (uid, timestamp) = line
            .split_once('\0')
            .ok_or_else(|| Malformed::new(n, "expected `unique-id NUL timestamp`"))?;
        if timestamp.parse::<i64>().is_err() {
            return Err(Malformed::new(
                n,
                format!("expected `unique-id NUL timestamp`, and {timestamp:?} is no timestamp"),
            ));
        }
        uids.push(unique_id(n, uid)?);
    }
    let owner = Owner::OldmailFile {
        name: file_name.to_owned(),
    };
    Ok(vec![UidList { owner, uids }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_getmail_writes() {
        let file = b"000000026b0f573b\x001796167498\n000000016b0f573b\x001796167498\n";
        let lists = parse(file, "oldmail-localhost-51995-try-gm").unwrap();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].uids, ["000000026b0f573b", "000000016b0f573b"]);
        let name = "oldmail-localhost-51995-try-gm".to_owned();
        assert_eq!(lists[0].owner, Owner::OldmailFile { name });
    }

    #[test]
    fn an_empty_file_still_names_its_mailbox() {
        let lists = parse(b"", "oldmail-h-110-u").unwrap();
        assert_eq!(lists[0].uids, Vec::<String>::new());
    }

    #[test]
    fn file_names_strip_what_getmail_strips() {
        assert_eq!(
            oldmail_file_name("pop.example.com", 995, "alice"),
            "oldmail-pop.example.com-995-alice"
        );
        assert_eq!(
            oldmail_file_name("::1", 110, "dom\\alice|x"),
            "oldmail--1-110-dom-alice-x"
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        for (file, line) in [
            (&b"u1\x001\nno-separator\n"[..], 2),
            (b"u1\x00yesterday\n", 1),
            (b"\n\nbad uid\x001\n", 3),
            (b"\x001\n", 1),
        ] {
            let err = parse(file, "oldmail-h-1-u").unwrap_err();
            assert_eq!(
                err.line,
                line,
                "{:?}: {err:?}",
                String::from_utf8_lossy(file)
            );
        }
    }
}
