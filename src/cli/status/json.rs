//! `popferry status --json`: one document for scripts. The field names are
//! an interface (documented in the README): add fields, never rename one.
//! Every time is given twice, as RFC 3339 in UTC and as unix seconds
//! (`…_unix`), so neither a shell script nor a program has to parse.

use serde::Serialize;

use super::{rfc3339, View};
use crate::config::Account;
use crate::ledger::Found;
use crate::ledger::{
    AccountDetail, OnServer, PollOutcome, PollSummary, RecipientRecord, RecipientRefusal, Snapshot,
    Totals, WaitingMessage,
};
use crate::scheduler::interval;

#[derive(Serialize)]
struct Document<'a> {
    ledger: String,
    /// "missing", "empty" or "ok".
    ledger_state: &'static str,
    counting_since: Option<String>,
    counting_since_unix: Option<i64>,
    accounts: Vec<AccountJson<'a>>,
}

#[derive(Serialize)]
struct AccountJson<'a> {
    name: &'a str,
    keep: bool,
    interval: IntervalJson,
    last_poll: Option<PollJson<'a>>,
    totals: TotalsJson,
    on_server: OnServerJson,
    refused_recipients: Vec<RefusalJson<'a>>,
    /// Only for `status ACCOUNT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_polls: Option<Vec<PollJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting: Option<Vec<WaitingJson<'a>>>,
}

/// The interval the daemon waits after a successful poll now, by the rule
/// of `scheduler::interval`.
#[derive(Serialize)]
struct IntervalJson {
    /// Whether `poll_interval_max` is set.
    adaptive: bool,
    seconds: f64,
    /// `poll_interval`.
    min_seconds: f64,
    /// `poll_interval_max`, or null for a fixed interval.
    max_seconds: Option<f64>,
    /// Successful polls in a row that found nothing new.
    quiet_polls: u64,
}

#[derive(Serialize)]
struct TotalsJson {
    delivered: u64,
    deleted: u64,
    rejected: u64,
    quarantined: u64,
}

#[derive(Serialize)]
struct OnServerJson {
    delivered_not_deleted: u64,
    waiting: u64,
    rejected: u64,
    quarantined_not_deleted: u64,
}

#[derive(Serialize)]
struct PollJson<'a> {
    started_at: String,
    started_at_unix: i64,
    finished_at: Option<String>,
    finished_at_unix: Option<i64>,
    /// "ok", "failed" or "running" (no end recorded).
    outcome: &'static str,
    listed: u64,
    delivered: u64,
    deleted: u64,
    deferred: u64,
    rejected: u64,
    error: Option<&'a str>,
    /// 0, or how many pooled polls that found nothing the entry stands for.
    empty_polls: u64,
    /// Listed messages that were new to the ledger.
    new_listed: u64,
    /// Successful polls in a row that found nothing new, up to this one.
    quiet_polls: u64,
}

#[derive(Serialize)]
struct WaitingJson<'a> {
    uid: &'a str,
    size: u64,
    /// "partial" or "rejected".
    state: &'static str,
    attempts: u32,
    reason: Option<&'a str>,
    /// "next_poll", or "after_retry_at" while the retry time is ahead.
    retry: &'static str,
    retry_at: Option<String>,
    retry_at_unix: Option<i64>,
    recipients: Vec<RecipientJson<'a>>,
}

#[derive(Serialize)]
struct RecipientJson<'a> {
    address: &'a str,
    /// "delivered", "deferred" or "rejected".
    state: &'static str,
    reply: Option<&'a str>,
}

#[derive(Serialize)]
struct RefusalJson<'a> {
    uid: &'a str,
    address: &'a str,
    /// "deferred" (for now) or "rejected" (for good).
    state: &'static str,
    reply: &'a str,
    at: String,
    at_unix: i64,
}

pub(super) fn render(view: &View<'_>) -> String {
    let (ledger_state, snapshot) = match &view.found {
        Found::Missing => ("missing", None),
        Found::Empty => ("empty", None),
        Found::Ledger(snapshot) => ("ok", Some(snapshot)),
    };
    let since = snapshot.map(|s| s.counting_since);
    let document = Document {
        ledger: view.ledger.clone(),
        ledger_state,
        counting_since: since.map(rfc3339),
        counting_since_unix: since,
        accounts: (view.accounts.iter())
            .map(|account| account_json(view, snapshot, account))
            .collect(),
    };
    serde_json::to_string_pretty(&document).expect("a status document always serializes")
}

fn account_json<'a>(
    view: &View<'_>,
    snapshot: Option<&'a Snapshot>,
    account: &'a Account,
) -> AccountJson<'a> {
    let name = account.name.as_str();
    let status = snapshot.and_then(|s| s.accounts.iter().find(|a| a.account == name));
    let detail = snapshot
        .and_then(|s| s.details.iter().find(|(n, _)| n == name))
        .map(|(_, detail)| detail);
    AccountJson {
        name,
        keep: account.keep,
        interval: interval_json(account, status.and_then(|s| s.last_poll.as_ref())),
        last_poll: status.and_then(|s| s.last_poll.as_ref()).map(poll_json),
        totals: totals_json(status.map(|s| s.totals).unwrap_or_default()),
        on_server: on_server_json(status.map(|s| s.on_server).unwrap_or_default()),
        refused_recipients: (snapshot.iter())
            .flat_map(|s| s.refusals.iter())
            .filter(|r| r.account == name)
            .map(refusal_json)
            .collect(),
        recent_polls: view
            .detailed
            .then(|| detail.map(|d| d.polls.iter().map(poll_json).collect()))
            .map(Option::unwrap_or_default),
        waiting: view
            .detailed
            .then(|| detail.map(|d| waiting_list(d, view.now)))
            .map(Option::unwrap_or_default),
    }
}

fn waiting_list(detail: &AccountDetail, now: i64) -> Vec<WaitingJson<'_>> {
    (detail.waiting.iter())
        .map(|message| waiting_json(message, now))
        .collect()
}

fn interval_json(account: &Account, last_poll: Option<&PollSummary>) -> IntervalJson {
    let quiet_polls = last_poll.map_or(0, |p| p.quiet_polls);
    IntervalJson {
        adaptive: account.poll_interval_max.is_some(),
        seconds: interval::interval(account, quiet_polls).as_secs_f64(),
        min_seconds: account.poll_interval.as_secs_f64(),
        max_seconds: account.poll_interval_max.map(|max| max.as_secs_f64()),
        quiet_polls,
    }
}

fn totals_json(t: Totals) -> TotalsJson {
    TotalsJson {
        delivered: t.delivered,
        deleted: t.deleted,
        rejected: t.rejected,
        quarantined: t.quarantined,
    }
}

fn on_server_json(s: OnServer) -> OnServerJson {
    OnServerJson {
        delivered_not_deleted: s.delivered,
        waiting: s.waiting,
        rejected: s.rejected,
        quarantined_not_deleted: s.quarantined,
    }
}

fn poll_json(poll: &PollSummary) -> PollJson<'_> {
    PollJson {
        started_at: rfc3339(poll.started_at),
        started_at_unix: poll.started_at,
        finished_at: poll.finished_at.map(rfc3339),
        finished_at_unix: poll.finished_at,
        outcome: match poll.outcome {
            None => "running",
            Some(PollOutcome::Ok) => "ok",
            Some(PollOutcome::Failed) => "failed",
        },
        listed: poll.listed,
        delivered: poll.delivered,
        deleted: poll.deleted,
        deferred: poll.deferred,
        rejected: poll.rejected,
        error: poll.error.as_deref(),
        empty_polls: poll.empty_polls,
        new_listed: poll.new_listed,
        quiet_polls: poll.quiet_polls,
    }
}

fn waiting_json(message: &WaitingMessage, now: i64) -> WaitingJson<'_> {
    let later = message.retry_at.is_some_and(|at| at > now);
    WaitingJson {
        uid: &message.uid,
        size: message.size,
        state: message.state.as_str(),
        attempts: message.attempts,
        reason: message.reason.as_deref(),
        retry: if later { "after_retry_at" } else { "next_poll" },
        retry_at: message.retry_at.map(rfc3339),
        retry_at_unix: message.retry_at,
        recipients: message.recipients.iter().map(recipient_json).collect(),
    }
}

fn recipient_json(r: &RecipientRecord) -> RecipientJson<'_> {
    RecipientJson {
        address: &r.address,
        state: r.state.as_str(),
        reply: r.reply.as_deref(),
    }
}

fn refusal_json(r: &RecipientRefusal) -> RefusalJson<'_> {
    RefusalJson {
        uid: &r.uid,
        address: &r.address,
        state: r.state.as_str(),
        reply: &r.reply,
        at: rfc3339(r.at),
        at_unix: r.at,
    }
}
