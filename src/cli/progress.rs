//! `fetch`'s progress display: one bar per account, bytes fetched against
//! the bytes the listing announced, with the message count beside it.
//!
//! Drawn on stderr only when stderr is a terminal and `-q` was not given,
//! so a script reading a pipe or a log file sees none of it; the summary
//! lines on stdout are the same either way.

use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ledger::PollReport;
use crate::poll::{Events, PollError, PollEvents};

/// The bars of one `fetch`.
pub struct Progress {
    bars: MultiProgress,
    style: ProgressStyle,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Progress {
    /// A display when one belongs on this stderr, else `None`. Log lines
    /// from then on are written above the bars (see [`LogWriter`]).
    pub fn on_terminal(quiet: bool) -> Option<Progress> {
        let progress = (!quiet && std::io::stderr().is_terminal())
            .then(|| Progress::new(ProgressDrawTarget::stderr()))?;
        let _ = DRAWN.set(progress.bars.clone());
        Some(progress)
    }

    fn new(target: ProgressDrawTarget) -> Progress {
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        Progress {
            bars: MultiProgress::with_draw_target(target),
            style,
        }
    }

    /// The watcher that draws `account`'s bar.
    pub fn account(&self, account: &str) -> Events {
        let bar = self
            .bars
            .add(ProgressBar::no_length().with_style(self.style.clone()));
        bar.set_prefix(account.to_owned());
        bar.set_message("connecting");
        bar.enable_steady_tick(Duration::from_millis(200));
        Events(Arc::new(AccountBar::new(bar)))
    }
}

/// The bars on stderr now, if any: logging starts before `fetch` knows
/// whether it draws any, so the log's writer looks here.
static DRAWN: OnceLock<MultiProgress> = OnceLock::new();

/// The log's stderr. While bars are drawn, each line is written with the
/// bars lifted and drawn again below it; a line written between two of
/// their redraws would otherwise be torn by the next one.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match DRAWN.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// One account's bar and the counts its message shows.
#[derive(Debug)]
struct AccountBar {
    bar: ProgressBar,
    planned: AtomicU64,
    fetched: AtomicU64,
}

impl AccountBar {
    fn new(bar: ProgressBar) -> AccountBar {
        AccountBar {
            bar,
            planned: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
        }
    }

    fn show_count(&self) {
        let (fetched, planned) = (
            self.fetched.load(Ordering::Relaxed),
            self.planned.load(Ordering::Relaxed),
        );
        self.bar
            .set_message(format!("{fetched}/{planned} messages"));
    }
}

impl PollEvents for AccountBar {
    fn planned(&self, messages: u64, bytes: u64) {
        self.planned.store(messages, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.show_count();
    }

    fn fetched(&self, bytes: u64) {
        self.fetched.fetch_add(1, Ordering::Relaxed);
        // LIST's sizes can understate; the bar must not run past its end.
        let length = self.bar.length().unwrap_or(0);
        self.bar.set_length(length.max(self.bar.position() + bytes));
        self.bar.inc(bytes);
        self.show_count();
    }

    /// The bar goes: the summary line on stdout says how the poll ended.
    fn finished(&self, _report: &PollReport, _error: Option<&PollError>, _took: Duration) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_bytes_and_messages_as_they_arrive() {
        let shown = AccountBar::new(ProgressBar::hidden());
        shown.planned(3, 3000);
        assert_eq!(shown.bar.length(), Some(3000));
        assert_eq!(shown.bar.message(), "0/3 messages");
        shown.fetched(1000);
        shown.fetched(1200);
        assert_eq!(shown.bar.position(), 2200);
        assert_eq!(shown.bar.message(), "2/3 messages");
        shown.fetched(1500);
        assert_eq!(shown.bar.position(), 3700);
        assert_eq!(shown.bar.length(), Some(3700), "grown, not overrun");
        assert_eq!(shown.bar.message(), "3/3 messages");
        shown.finished(&PollReport::default(), None, Duration::ZERO);
        assert!(shown.bar.is_finished());
    }

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<std::sync::Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_account_is_drawn_on_its_own_line_with_bytes_and_messages() {
        let screen = Screen::default();
        let progress = Progress::new(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        let alice = progress.account("alice");
        let bob = progress.account("bob");
        alice.planned(2, 2048);
        bob.planned(1, 10);
        alice.fetched(1024);
        let drawn = screen.0.lock().unwrap().clone();
        let first = &drawn[drawn.find("alice [").expect("alice drawn")..][..12];
        assert_eq!(first, "alice [     ", "empty until the listing: {drawn}");
        // The last frame: both bars, one after the other.
        let last = &drawn[drawn.rfind("alice [").expect("alice drawn")..];
        let (alice_line, bob_line) = last.split_once("bob [").expect("bob drawn after alice");
        assert!(alice_line.contains("1/2 messages"), "{last}");
        assert!(alice_line.contains("1.00 KiB/2.00 KiB"), "{last}");
        assert!(alice_line.contains("[===============>"), "{last}");
        assert!(bob_line.contains("0 B/10 B"), "{last}");
        assert!(bob_line.contains("0/1 messages"), "{last}");
    }

    #[test]
    fn no_display_when_quiet() {
        assert!(Progress::on_terminal(true).is_none());
    }
}
