//! One poll of one account: the path of every message from RETR to DELE.
//!
//! Read this file top to bottom to know what popferry does to a mailbox:
//!
//! 1. connect (implicit TLS, or STLS when `tls = "starttls"`), CAPA (unless
//!    this run logged in to the server minutes ago: `session/known.rs`),
//!    log in ([`Session::open_on`]); or, for the daemon, WAKE (or CORE) the session
//!    kept after the previous poll, or log in on a connection another
//!    account left with QAUT. `[ACTIVITY/NONE]` after a settled poll
//!    means nothing arrived and nothing is left to do: straight to step 4;
//! 2. UIDL and LIST (sent together where the server offers PIPELINING):
//!    the server's snapshot of the mailbox. A kept mailbox the ledger knows
//!    nothing of that lists more than [`FIRST_POLL_LIMIT`] messages stops
//!    here (the first-poll guard, `guard.rs`). Ledger rows for unique-ids
//!    the snapshot no longer shows are pruned;
//! 3. for each listed message, the ledger decides ([`decide`]):
//!    * recorded as delivered with the same size: **DELE only**. This heals
//!      a lost QUIT reply: the server never committed the deletion, but the
//!      relay already has the message, so it is not sent again;
//!    * new (or a reused unique-id with a different size): **RETR, deliver,
//!      commit to the ledger, then DELE**. Delivery is per recipient
//!      (`recipients.rs`): `deliver_to`, or with multidrop the local
//!      addresses its envelope header names. DELE comes once one has it
//!      and every other has it or refused it for good;
//!    * partial (some recipients still wait after a 4xx): RETR and deliver
//!      to those alone, then as above;
//!    * listed for several messages (identical copies, `copies.rs`): every
//!      copy is RETRed and compared (also when the ledger has the delivery:
//!      only identical bytes show each copy is that message); identical
//!      copies are delivered and recorded once, then all DELEd. Copies that
//!      differ are all left on the server, with a warning naming them;
//!
//!    A poll goes on record in the ledger's history here, once the plan
//!    shows something to do; one that found nothing is only counted in
//!    memory and written in a batch (`history.rs`).
//!
//!    The steps run as a pipeline ([`transfer`]): RETRs go out ahead,
//!    message n+1 is fetched while message n is with the relay, and one
//!    ledger transaction records every outcome that is ready.
//!    Messages are named `UID:<uid>` where the server offers UID-PARAM, and
//!    deleted with DELI where it offers that: DELI's `+OK` means the message
//!    is gone for good, so the ledger marks it deleted at once;
//! 4. QUIT, or SLEE, CORE or QAUT when the daemon keeps the connection
//!    (`session/pooling.rs`); any `+OK` is the server's word that the
//!    DELE'd messages are gone, and the ledger marks them confirmed.
//!
//! # The guarantee
//!
//! A DELE is sent only after the ledger commit for that message returned,
//! and a ledger commit is an fsynced SQLite transaction. So a message is
//! deleted from the server only after its delivery is durably recorded.
//! If the link drops, the QUIT reply is lost or popferry is killed, the next
//! poll finds the recorded unique-ids and deletes without redelivering.
//!
//! One window cannot be closed by any POP3-to-SMTP relay: if popferry dies
//! after the relay answered 250 and before the ledger commit finished, the
//! message is still on the server and not in the ledger, so the next poll
//! delivers it again. Those are the messages accepted since the last
//! commit: those of the transactions in flight (`[smtp] max_connections`)
//! and the few accepted during one fsync, never more than [`UNRECORDED`]
//! (24), because a transaction starts only with one of its permits.
//!
//! With `keep = true` nothing is deleted and the ledger alone makes sure
//! each message is delivered once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn, Instrument as _};

use crate::config::Account;
use crate::deliver::Relay;
use crate::ledger::{Ledger, MessageState, PollOutcome, PollReport, Reconciled};
use crate::session::{Activity, Kept, Listing, Session};

mod copies;
mod decide;
mod error;
mod fetch;
mod guard;
mod history;
mod options;
mod recipients;
mod record;
mod sizes;
mod transfer;

use copies::{Groups, Sizes};
pub use decide::{decide, Action};
use decide::{now, retry_at};
pub use error::{line_with_causes, PollError};
pub use guard::{refuses_first_poll, FIRST_POLL_LIMIT};
use history::History;
pub use options::{Ending, Events, PollEvents, PollOptions, StopFlag};
use record::Tally;
use transfer::{transfer, Context, Step};
pub use transfer::{FETCH_AHEAD, UNRECORDED};

/// A finished poll and, when it was parked, its kept connection.
#[derive(Debug)]
pub struct Polled {
    pub result: Result<PollReport, PollError>,
    pub parked: Option<Kept>,
    /// The server's RFC 2449 LOGIN-DELAY, when this poll logged in.
    pub login_delay: Option<Duration>,
}

/// Poll `account` once over a fresh connection, log out, and record the
/// poll in the ledger.
pub async fn poll(
    account: &Account,
    ledger: &Ledger,
    relay: &Relay,
    options: &PollOptions,
) -> Result<PollReport, PollError> {
    poll_session(account, ledger, relay, options, None, Ending::Quit)
        .await
        .result
}

/// Poll `account` once on `parked` if given (its own kept session, or a
/// vacant connection of its server), and record the poll in the ledger,
/// or only count it when a kept session woke to find nothing. With
/// [`Ending::Park`] the connection comes back kept when the server allows
/// it.
pub async fn poll_session(
    account: &Account,
    ledger: &Ledger,
    relay: &Relay,
    options: &PollOptions,
    parked: Option<Kept>,
    ending: Ending,
) -> Polled {
    let started = Instant::now();
    let span = tracing::info_span!("poll", id = tracing::field::Empty);
    let mut history = History::new(ledger, &account.name, span.clone());
    let mut report = PollReport::default();
    let result = run(
        account,
        relay,
        options,
        parked,
        ending,
        &mut report,
        &mut history,
    )
    .instrument(span.clone())
    .await;
    if let Err(e) = &result {
        report.outcome = PollOutcome::Failed;
        report.error = Some(e.to_string());
    }
    let result = match (result, history.end(&report).await) {
        (Ok(finished), Ok(entry)) => Ok((finished, entry)),
        (Ok(_), Err(e)) => Err(e.into()),
        (Err(e), _) => Err(e),
    };
    let took = started.elapsed();
    (options.events).finished(&report, result.as_ref().err(), took);
    let _entered = span.enter();
    let ms = took.as_millis() as u64;
    match result {
        Ok((
            Finished {
                parked,
                login_delay,
            },
            entry,
        )) => {
            history::log_finished(entry, &report, parked.is_some(), ms);
            Polled {
                result: Ok(report),
                parked,
                login_delay,
            }
        }
        Err(e) => {
            warn!(error = e.with_causes(), ms, "poll failed");
            Polled {
                result: Err(e),
                parked: None,
                login_delay: None,
            }
        }
    }
}

/// How `run` left the session, for [`Polled`].
struct Finished {
    parked: Option<Kept>,
    login_delay: Option<Duration>,
}

async fn run(
    account: &Account,
    relay: &Relay,
    options: &PollOptions,
    parked: Option<Kept>,
    ending: Ending,
    report: &mut PollReport,
    history: &mut History<'_>,
) -> Result<Finished, PollError> {
    let ledger = history.ledger;
    let recipients = recipients::deliver_to(account)?;
    // An instance of a fleet that was stopped past its lease must not log
    // in: on a server that locks maildrops, that would lock out the
    // account's new owner until the poll fails at its first fenced write.
    ledger.still_holds(&account.name)?;
    let mut session = match parked {
        Some(Kept::Session(mut session)) => match session.resume().await {
            Ok(Activity::None) if session.settled => {
                debug!("WAKE: nothing new");
                return finish(session, account, ledger, ending, Vec::new(), true, report).await;
            }
            Ok(_) => session,
            Err(e) => {
                info!(error = %e, "pooled connection unusable; logging in afresh");
                session.discard(&e).await;
                Session::open_on(account, None, &options.known).await?
            }
        },
        Some(Kept::Vacant(vacant)) => {
            Session::open_on(account, Some(vacant), &options.known).await?
        }
        None => Session::open_on(account, None, &options.known).await?,
    };
    let Listing { uids, sizes } = session.listing().await?;
    report.listed = uids.len() as u64;
    // The ledger is asked only when the listing alone would be refused
    // for an account it does not know: a kept mailbox over the limit.
    let refused =
        |known| refuses_first_poll(account.keep, known, report.listed, options.deliver_existing);
    if refused(false) && refused(ledger.knows_account(&account.name).await?) {
        session.quit().await?;
        return Err(PollError::FirstPoll {
            account: account.name.clone(),
            listed: report.listed,
        });
    }
    let listed: HashSet<String> = uids.iter().map(|(_, uid)| uid.clone()).collect();
    let Reconciled { pruned, known } = ledger.reconcile(&account.name, listed).await?;
    debug!(
        pruned,
        "pruned ledger rows for messages no longer on the server"
    );
    sizes::learn_sizes(ledger, account, &known, &uids, &sizes).await?;
    let now = now();
    // Whether everything listed was dealt with for good; only then may a
    // later `[ACTIVITY/NONE]` skip the listing.
    let mut settled = true;
    let mut plan = Vec::new();
    let mut groups = Groups::find(&uids);
    for (index, (n, uid)) in uids.into_iter().enumerate() {
        // A later copy of a shared unique-id is planned with the first.
        let Some(copies) = groups.take(index) else {
            continue;
        };
        let (size, same_size) = match copies::sizes(n, &copies, &sizes) {
            Sizes::Agree(size) => (size, true),
            Sizes::Differ(size) => (size, false),
            Sizes::Unlisted => {
                warn!(
                    uid,
                    "message listed by UIDL but not by LIST; leaving it for the next poll"
                );
                settled = false;
                continue;
            }
        };
        let record = known.get(&uid);
        if !record.is_some_and(|r| r.is_for(size)) {
            report.new_listed += 1;
        }
        let retry_at = retry_at(record, now);
        let action = decide(record, size, account, now, options.retry_rejected);
        if !same_size {
            settled = false;
            // A delivery on record, or a retry time to come, stays as it is.
            let record = matches!(action, Action::Fetch | Action::TooLarge);
            let group = (n, copies.as_slice());
            let name = &account.name;
            if copies::leave_differing(ledger, name, group, &uid, size, retry_at, record).await? {
                report.rejected += 1;
            }
            continue;
        }
        let fetch = match action {
            Action::Fetch => true,
            Action::Delete => false,
            // Skipped for good (kept mail) or until a retry time.
            Action::Skip => {
                settled &= record.is_some_and(|r| r.state != MessageState::Rejected);
                continue;
            }
            Action::TooLarge => {
                let reason = format!(
                    "message of {size} bytes exceeds max_message_size ({})",
                    account.max_message_size
                );
                warn!(uid, "{reason}; left on the server");
                ledger
                    .record_rejected(&account.name, &uid, size, &reason, retry_at)
                    .await?;
                report.rejected += 1;
                settled = false;
                continue;
            }
        };
        let earlier = record.map_or_else(Vec::new, |r| recipients::earlier(r, size));
        plan.push(Step {
            n,
            uid,
            size,
            fetch,
            retry_at,
            earlier,
            copies,
        });
    }

    // Only a poll that found something goes on record (`history.rs`).
    if !plan.is_empty() || report.new_listed > 0 || report.rejected > 0 {
        history.begin().await?;
    }
    let fetching = plan.iter().filter(|step| step.fetch);
    let bytes = fetching.clone().map(|step| step.size).sum();
    options.events.planned(fetching.count() as u64, bytes);
    let cx = Context {
        account,
        ledger,
        relay,
        recipients: &recipients,
        stop: &options.stop,
        events: &options.events,
    };
    let mut committed = Tally::default();
    let moved = transfer(&mut session, &plan, &cx, &mut committed).await;
    report.delivered += committed.delivered;
    report.deferred += committed.deferred;
    report.rejected += committed.rejected;
    let moved = moved?;
    report.rejected += moved.rejected;
    report.deleted += moved.deleted;
    settled &= !(moved.unsettled || committed.unsettled);
    if options.stop.is_raised() {
        info!("stopping: the rest waits for the next start");
    }
    let ending = if options.stop.is_raised() {
        Ending::Quit
    } else {
        ending
    };
    finish(
        session,
        account,
        ledger,
        ending,
        moved.flagged,
        settled,
        report,
    )
    .await
}

/// Ends the poll: SLEE, CORE or QAUT to keep the connection (when asked
/// and offered) or QUIT ([`Session::end`]). Any `+OK` confirms the DELE'd
/// messages are gone.
async fn finish(
    session: Session,
    account: &Account,
    ledger: &Ledger,
    ending: Ending,
    flagged: Vec<String>,
    settled: bool,
    report: &mut PollReport,
) -> Result<Finished, PollError> {
    // A poll whose lease ran out while it was stopped ends here without
    // QUIT: the server then rolls back this session's DELEs.
    ledger.still_holds(&account.name)?;
    let login_delay = session.extensions().login_delay;
    let keep = ending == Ending::Park;
    let parked = session.end(keep, !flagged.is_empty(), settled).await?;
    ledger.mark_deleted(&account.name, &flagged).await?;
    report.deleted += flagged.len() as u64;
    Ok(Finished {
        parked,
        login_delay,
    })
}
