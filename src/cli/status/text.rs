//! `popferry status` for people.

use std::fmt::Write as _;
use std::time::Duration;

use super::{rfc3339, View};
use crate::config::Account;
use crate::ledger::Found;
use crate::ledger::{
    AccountDetail, AccountStatus, MessageState, PollOutcome, PollSummary, RecipientState, Snapshot,
    WaitingMessage,
};
use crate::scheduler::interval;

pub(super) fn render(view: &View<'_>) -> String {
    let snapshot = match &view.found {
        Found::Missing => return format!("nothing fetched yet (no ledger at {})\n", view.ledger),
        Found::Empty => {
            return format!(
                "nothing fetched yet (the ledger {} is empty)\n",
                view.ledger
            )
        }
        Found::Ledger(snapshot) => snapshot,
    };
    let mut out = format!(
        "ledger {} (totals since {})\n",
        view.ledger,
        rfc3339(snapshot.counting_since)
    );
    for account in &view.accounts {
        self::account(&mut out, view, snapshot, account);
    }
    out
}

fn account(out: &mut String, view: &View<'_>, snapshot: &Snapshot, account: &Account) {
    let _ = writeln!(out, "{}:", account.name);
    let status = snapshot.accounts.iter().find(|s| s.account == account.name);
    match status {
        Some(status) => summary(out, status, account.keep),
        None => out.push_str("  never polled\n"),
    }
    if let Some(max) = account.poll_interval_max {
        let quiet = status
            .and_then(|s| s.last_poll.as_ref())
            .map_or(0, |p| p.quiet_polls);
        let _ = writeln!(out, "  interval:   {}", adaptive(account, max, quiet));
    }
    let detail = (snapshot.details.iter())
        .find(|(name, _)| *name == account.name)
        .map(|(_, detail)| detail);
    if let Some(detail) = detail.filter(|_| view.detailed) {
        details(out, detail, view.now);
    }
    refusals(out, snapshot, &account.name);
}

fn summary(out: &mut String, status: &AccountStatus, keep: bool) {
    let _ = writeln!(out, "  last poll:  {}", poll(status.last_poll.as_ref()));
    let t = &status.totals;
    let _ = writeln!(
        out,
        "  totals:     delivered {}, deleted {}, rejected {}, quarantined {}",
        t.delivered, t.deleted, t.rejected, t.quarantined
    );
    let s = &status.on_server;
    let delivered = if keep {
        "delivered and kept"
    } else {
        "delivered awaiting deletion"
    };
    let _ = writeln!(
        out,
        "  on server:  {} {delivered}, {} waiting for some recipients, {} rejected, \
         {} quarantined awaiting deletion",
        s.delivered, s.waiting, s.rejected, s.quarantined
    );
}

fn details(out: &mut String, detail: &AccountDetail, now: i64) {
    out.push_str("  recent polls, newest first:\n");
    if detail.polls.is_empty() {
        out.push_str("    none\n");
    }
    for summary in &detail.polls {
        let _ = writeln!(out, "    {}", poll(Some(summary)));
    }
    out.push_str("  waiting for another attempt:\n");
    if detail.waiting.is_empty() {
        out.push_str("    none\n");
    }
    for message in &detail.waiting {
        let _ = writeln!(out, "    {}", waiting(message, now));
    }
}

fn poll(poll: Option<&PollSummary>) -> String {
    let Some(poll) = poll else {
        return "never".into();
    };
    if let (n @ 1.., Some(last)) = (poll.empty_polls, poll.finished_at) {
        let plural = if n == 1 { "" } else { "s" };
        return format!(
            "{}, ok: nothing new ({n} empty poll{plural} since {})",
            rfc3339(last),
            rfc3339(poll.started_at)
        );
    }
    let when = rfc3339(poll.started_at);
    match (poll.outcome, &poll.error) {
        (None, _) => format!("{when}, did not finish (still running, or the process was stopped)"),
        (Some(PollOutcome::Ok), _) => format!(
            "{when}, ok: {} listed, {} delivered, {} deleted, {} deferred, {} rejected",
            poll.listed, poll.delivered, poll.deleted, poll.deferred, poll.rejected
        ),
        (Some(PollOutcome::Failed), error) => {
            format!(
                "{when}, FAILED: {}",
                error.as_deref().unwrap_or("unknown error")
            )
        }
    }
}

/// The interval an adaptive account waits now, and why, by the rule the
/// daemon follows (`scheduler::interval`).
fn adaptive(account: &Account, max: Duration, quiet: u64) -> String {
    let now = interval::interval(account, quiet);
    let min = short(account.poll_interval);
    let every = format!("every {}", short(now));
    let plural = if quiet == 1 { "" } else { "s" };
    if quiet == 0 {
        format!(
            "{every}: the last poll found mail (or none yet); grows x1.5 with each poll that \
             finds nothing, to at most {}",
            short(max)
        )
    } else if now >= max {
        format!("{every}, the most: grew from {min} over {quiet} poll{plural} that found nothing")
    } else {
        format!(
            "{every}: grew from {min} over {quiet} poll{plural} that found nothing; at most {}",
            short(max)
        )
    }
}

/// A duration as people read it: whole seconds from a minute up,
/// milliseconds below.
fn short(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(60) {
        Duration::from_secs(d.as_secs() + u64::from(d.subsec_millis() >= 500))
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
}

/// One waiting message: what holds it, and when it is tried again (the
/// rule of `poll::decide`: a rejected message waits for its retry time, a
/// partial one goes to its waiting recipients at the next poll).
fn waiting(message: &WaitingMessage, now: i64) -> String {
    let mut line = format!("{}, {} bytes, ", message.uid, message.size);
    if message.state == MessageState::Partial {
        line.push_str("partial");
    } else {
        let plural = if message.attempts == 1 { "" } else { "s" };
        let _ = write!(line, "rejected ({} attempt{plural})", message.attempts);
        if let Some(reason) = &message.reason {
            let _ = write!(line, ": {reason}");
        }
    }
    for (state, label) in [
        (RecipientState::Delivered, "has it"),
        (RecipientState::Deferred, "still waiting"),
        (RecipientState::Rejected, "refused for good"),
    ] {
        // A rejected message's reason already holds every refusal.
        if state == RecipientState::Rejected && message.state == MessageState::Rejected {
            continue;
        }
        let who: Vec<String> = (message.recipients.iter())
            .filter(|r| r.state == state)
            .map(|r| match &r.reply {
                Some(reply) => format!("{} ({reply})", r.address),
                None => r.address.clone(),
            })
            .collect();
        if !who.is_empty() {
            let _ = write!(line, "; {label}: {}", who.join(", "));
        }
    }
    match message.retry_at.filter(|at| *at > now) {
        Some(at) => {
            let _ = write!(
                line,
                "; tried again at the first poll after {} (or `popferry fetch --retry-rejected`)",
                rfc3339(at)
            );
        }
        None => line.push_str("; tried again at the next poll"),
    }
    line
}

fn refusals(out: &mut String, snapshot: &Snapshot, account: &str) {
    let refused: Vec<_> = (snapshot.refusals.iter())
        .filter(|r| r.account == account)
        .collect();
    if !refused.is_empty() {
        out.push_str("  recipients the relay refused:\n");
    }
    for r in refused {
        let how = match r.state {
            RecipientState::Deferred => "for now, tried again at the next poll",
            _ => "for good",
        };
        let _ = writeln!(
            out,
            "    message {}, {}: {how} ({}): {}",
            r.uid,
            r.address,
            rfc3339(r.at),
            r.reply
        );
    }
}
