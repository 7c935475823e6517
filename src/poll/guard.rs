//! The first-poll guard: a mailbox that keeps its mail and that the ledger
//! knows nothing of is not delivered wholesale without being asked.
//!
//! With `keep = true` the ledger is the only memory of what was delivered.
//! Moving from fetchmail, mpop or getmail (or losing the ledger, as
//! container users of fetchmail do with `.fetchids`) would otherwise send
//! every message the server keeps once more: years of mail, in one poll.
//! With `keep = false` there is nothing to guard: a program that deletes
//! what it delivers leaves on the server only mail nobody has had yet.

/// The most messages a first poll of a kept mailbox delivers unasked.
///
/// A mailbox that is only starting out, or that another program empties,
/// holds a few days of mail at most; one that has been kept for years
/// holds hundreds or thousands. 50 lets the first kind through (a new
/// account, a test mailbox) and stops the second before a flood; a user
/// with a bigger new mailbox says so once with `--deliver-existing`.
pub const FIRST_POLL_LIMIT: u64 = 50;

/// Whether a poll must stop before delivering anything: the account keeps
/// its mail, the ledger has no record of it (`known` is false), the server
/// lists more than [`FIRST_POLL_LIMIT`] messages, and the user did not ask
/// for them all with `--deliver-existing`.
pub fn refuses_first_poll(keep: bool, known: bool, listed: u64, deliver_existing: bool) -> bool {
    keep && !known && listed > FIRST_POLL_LIMIT && !deliver_existing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_more_than_the_limit_on_a_kept_mailbox_it_does_not_know() {
        assert!(refuses_first_poll(true, false, FIRST_POLL_LIMIT + 1, false));
        assert!(refuses_first_poll(true, false, 10_000, false));
    }

    #[test]
    fn lets_the_limit_itself_through() {
        assert!(!refuses_first_poll(true, false, FIRST_POLL_LIMIT, false));
        assert!(!refuses_first_poll(true, false, 0, false));
    }

    #[test]
    fn lets_through_a_known_account_a_deleting_one_and_an_explicit_request() {
        let many = FIRST_POLL_LIMIT + 1;
        assert!(!refuses_first_poll(true, true, many, false), "known");
        assert!(
            !refuses_first_poll(false, false, many, false),
            "keep = false"
        );
        assert!(
            !refuses_first_poll(true, false, many, true),
            "--deliver-existing"
        );
    }
}
