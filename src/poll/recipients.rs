//! Who still needs a message, and what the relay's answers for each
//! recipient make of the message as a whole: pure functions, so every
//! combination is a unit test.
//!
//! The rule: a message may be deleted once at least one recipient has it
//! and every other one has it or refused it for good. Until then it stays
//! on the server, and the next attempt goes to the recipients still
//! waiting, alone, so nobody gets it twice. A message nobody has is
//! rejected as a whole, as before per-recipient outcomes existed.

use std::sync::Arc;

use super::PollError;
use crate::config::Account;
use crate::deliver::Outcome;
use crate::ledger::{MessageRecord, MessageState, RecipientRecord, RecipientState};
use crate::multidrop::carries_own_trace;

/// Who `original` (the message as the server sent it) is for: with
/// multidrop the local addresses its envelope header names, otherwise (or
/// if it names none) `deliver_to`. `Err` says why it must not be relayed at all: it went out
/// through this account before and came back, and would go round forever.
pub(super) fn addressees(
    account: &Account,
    deliver_to: &[String],
    original: &[u8],
) -> Result<Vec<String>, String> {
    if carries_own_trace(original, &account.pop3.host, &account.name) {
        return Err(format!(
            "mail loop: the message already carries popferry's Received: header for account {}, \
             so it was relayed from this mailbox before and came back; it is not relayed again",
            account.name
        ));
    }
    let named = (account.multidrop.as_ref()).map(|multidrop| multidrop.recipients(original));
    match named {
        Some(named) if !named.is_empty() => Ok(named),
        _ => Ok(deliver_to.to_vec()),
    }
}

/// The recipients of `all` that still need the message: not those that
/// have it, nor those that refused it for good in an earlier attempt.
pub(super) fn pending(all: &[String], earlier: &[RecipientRecord]) -> Vec<String> {
    all.iter()
        .filter(|address| {
            !earlier
                .iter()
                .any(|r| &r.address == *address && r.state != RecipientState::Deferred)
        })
        .cloned()
        .collect()
}

/// What the message as a whole comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Settled {
    /// Every recipient is done and at least one has it: it may be deleted.
    Delivered,
    /// Some are done, others wait for a later attempt: it stays, and the
    /// recipients' states are recorded so the next attempt skips the done.
    Partial,
    /// Nobody is done: it stays and nothing needs recording.
    Deferred(String),
    /// Nobody has it and nobody will: the relay's words, per recipient.
    Rejected(String),
}

/// Settles a message from the earlier attempts' records and this
/// attempt's `outcomes` (one per recipient it was sent to).
pub(super) fn settle(earlier: &[RecipientRecord], outcomes: &[(String, Outcome)]) -> Settled {
    let has_it = earlier.iter().any(|r| r.state == RecipientState::Delivered)
        || outcomes.iter().any(|(_, o)| *o == Outcome::Delivered);
    let waiting: Vec<&str> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Deferred(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    let refused_now = outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Rejected(_)));
    let refused_before = earlier.iter().any(|r| r.state == RecipientState::Rejected);
    match (has_it, waiting.first()) {
        (true, None) => Settled::Delivered,
        (false, Some(reason)) if !refused_now && !refused_before => {
            Settled::Deferred((*reason).to_owned())
        }
        (_, Some(_)) => Settled::Partial,
        (false, None) => Settled::Rejected(refusals(earlier, outcomes)),
    }
}

/// The reasons every recipient refused, in one line: the reply alone for
/// a single recipient, "to ADDRESS: reply" for each of several.
fn refusals(earlier: &[RecipientRecord], outcomes: &[(String, Outcome)]) -> String {
    let now = outcomes.iter().filter_map(|(address, o)| match o {
        Outcome::Rejected(reply) => Some((address.as_str(), reply.as_str())),
        _ => None,
    });
    let before = earlier
        .iter()
        .filter(|r| r.state == RecipientState::Rejected)
        .map(|r| (r.address.as_str(), r.reply.as_deref().unwrap_or("refused")));
    let all: Vec<(&str, &str)> = before.chain(now).collect();
    match all.as_slice() {
        [(_, reply)] => (*reply).to_owned(),
        many => many
            .iter()
            .map(|(address, reply)| format!("to {address}: {reply}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The ledger state a recipient's outcome is recorded as, and why.
pub(super) fn recorded(outcome: &Outcome) -> (RecipientState, Option<String>) {
    match outcome {
        Outcome::Delivered => (RecipientState::Delivered, None),
        Outcome::Deferred(reason) => (RecipientState::Deferred, Some(reason.clone())),
        Outcome::Rejected(reply) => (RecipientState::Rejected, Some(reply.clone())),
    }
}

/// The account's `deliver_to`, each checked to be an address.
pub(super) fn deliver_to(account: &Account) -> Result<Arc<[String]>, PollError> {
    account
        .deliver_to
        .iter()
        .map(|a| {
            crate::smtp::is_address(a)
                .then(|| a.clone())
                .ok_or_else(|| PollError::Recipient { address: a.clone() })
        })
        .collect()
}

/// What earlier attempts at this very message (same size) say about its
/// recipients. Those that have it are never sent it again; those that
/// refused it for good are skipped while others wait (partial), but asked
/// again when the whole message comes up for its retry (rejected).
pub(super) fn earlier(record: &MessageRecord, size: u64) -> Vec<RecipientRecord> {
    if !record.is_for(size) {
        return Vec::new();
    }
    let retried = record.state == MessageState::Rejected;
    (record.recipients.iter())
        .filter(|r| !retried || r.state == RecipientState::Delivered)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(address: &str, state: RecipientState) -> RecipientRecord {
        RecipientRecord {
            address: address.to_owned(),
            state,
            reply: (state != RecipientState::Delivered).then(|| format!("{address} said no")),
        }
    }

    fn to(address: &str, outcome: Outcome) -> (String, Outcome) {
        (address.to_owned(), outcome)
    }

    fn rejected(reply: &str) -> Outcome {
        Outcome::Rejected(reply.to_owned())
    }

    fn deferred(reason: &str) -> Outcome {
        Outcome::Deferred(reason.to_owned())
    }

    #[test]
    fn pending_skips_who_has_it_and_who_refused_for_good() {
        let all = ["a@x", "b@x", "c@x", "d@x"].map(String::from);
        let earlier = [
            record("a@x", RecipientState::Delivered),
            record("b@x", RecipientState::Rejected),
            record("c@x", RecipientState::Deferred),
        ];
        assert_eq!(pending(&all, &earlier), ["c@x", "d@x"]);
        assert_eq!(pending(&all, &[]), all);
    }

    #[test]
    fn one_taker_and_the_rest_refused_for_good_is_delivered() {
        let outcomes = [to("a@x", Outcome::Delivered), to("b@x", rejected("550"))];
        assert_eq!(settle(&[], &outcomes), Settled::Delivered);
    }

    #[test]
    fn a_recipient_refused_for_now_keeps_the_message() {
        let outcomes = [to("a@x", Outcome::Delivered), to("b@x", deferred("450"))];
        assert_eq!(settle(&[], &outcomes), Settled::Partial);
        // The next attempt goes to b alone; when it takes it, it is done.
        let earlier = [record("a@x", RecipientState::Delivered)];
        assert_eq!(
            settle(&earlier, &[to("b@x", Outcome::Delivered)]),
            Settled::Delivered
        );
        assert_eq!(
            settle(&earlier, &[to("b@x", rejected("550 no"))]),
            Settled::Delivered
        );
    }

    #[test]
    fn refused_for_good_and_for_now_with_no_taker_waits_for_the_second() {
        let outcomes = [to("a@x", rejected("550")), to("b@x", deferred("450"))];
        assert_eq!(settle(&[], &outcomes), Settled::Partial);
        let earlier = [record("a@x", RecipientState::Rejected)];
        assert_eq!(
            settle(&earlier, &[to("b@x", deferred("451"))]),
            Settled::Partial
        );
        assert_eq!(
            settle(&earlier, &[to("b@x", rejected("552 full"))]),
            Settled::Rejected("to a@x: a@x said no; to b@x: 552 full".to_owned())
        );
    }

    #[test]
    fn nobody_settled_is_deferred_and_nobody_willing_is_rejected() {
        let outcomes = [to("a@x", deferred("451 later")), to("b@x", deferred("452"))];
        assert_eq!(
            settle(&[], &outcomes),
            Settled::Deferred("451 later".to_owned())
        );
        assert_eq!(
            settle(&[], &[to("a@x", rejected("554 spam"))]),
            Settled::Rejected("554 spam".to_owned())
        );
    }
}
