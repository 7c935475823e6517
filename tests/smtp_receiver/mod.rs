//! The test relay: popferry's loopback SMTP receiver with a [`Mailbox`] that
//! records every message offered and answers the end of DATA as the test
//! scripts it.
//!
//! popferry treats 250, 4xx and 5xx at the end of DATA in three different
//! ways, and a real relay cannot be told to refuse one particular message;
//! here a [`Judge`] looks at each message's bytes and picks the reply.
//!
//! Several test crates include this module and each uses a subset of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use popferry::demo::smtp_receiver::{self, Envelope, Mailbox};
pub use popferry::demo::smtp_receiver::{Greeting, Verdict};

/// One message offered with DATA, whatever the verdict.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The MAIL FROM address, empty for the null sender.
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: after dot-unstuffing, without the terminating
    /// `.` line, or the BDAT chunks joined.
    pub data: Vec<u8>,
    pub verdict: Verdict,
    /// Sent with BDAT (the receiver offers CHUNKING) rather than DATA.
    pub chunked: bool,
}

/// Picks the verdict for a message from its bytes.
pub type Judge = Arc<dyn Fn(&[u8]) -> Verdict + Send + Sync>;

/// The default judge: `X-Test-Reject: 451` defers, `X-Test-Reject: 554`
/// rejects, `X-Test-Reject: 421` answers 421 and closes the connection (a
/// relay shutting down), anything else is accepted.
pub fn by_marker(data: &[u8]) -> Verdict {
    if contains(data, b"X-Test-Reject: 451") {
        Verdict::Defer
    } else if contains(data, b"X-Test-Reject: 421") {
        Verdict::Refuse(421)
    } else if contains(data, b"X-Test-Reject: 554") {
        Verdict::Reject
    } else {
        Verdict::Accept
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

struct Recorder {
    judge: Judge,
    offers: Vec<Offer>,
    /// How long each message takes before its verdict.
    delay: Duration,
    /// Connections open now, and the most at once.
    open: usize,
    max_open: usize,
    /// Connections beyond this many are refused, and how.
    limit: Option<(usize, Greeting)>,
    refused: usize,
}

#[derive(Clone)]
struct Shared(Arc<Mutex<Recorder>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Recorder> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Mailbox for Shared {
    fn receive(&self, envelope: Envelope, data: Vec<u8>) -> Verdict {
        let delay = self.lock().delay;
        std::thread::sleep(delay);
        let judge = Arc::clone(&self.lock().judge);
        let verdict = judge(&data);
        self.lock().offers.push(Offer {
            from: envelope.from,
            to: envelope.to,
            chunked: envelope.chunked,
            data,
            verdict,
        });
        verdict
    }

    fn connected(&self) -> Greeting {
        let mut recorder = self.lock();
        if let Some((limit, refusal)) = recorder.limit {
            if recorder.open >= limit {
                recorder.refused += 1;
                return refusal;
            }
        }
        recorder.open += 1;
        recorder.max_open = recorder.max_open.max(recorder.open);
        Greeting::Welcome
    }

    fn disconnected(&self) {
        self.lock().open -= 1;
    }
}

/// A running receiver; stops accepting when dropped.
pub struct SmtpReceiver {
    receiver: smtp_receiver::SmtpReceiver,
    shared: Shared,
}

impl std::fmt::Debug for SmtpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.receiver.fmt(f)
    }
}

impl SmtpReceiver {
    /// Listen on 127.0.0.1 with an ephemeral port, judging [`by_marker`].
    pub async fn start() -> SmtpReceiver {
        let shared = Shared(Arc::new(Mutex::new(Recorder {
            judge: Arc::new(by_marker),
            offers: Vec::new(),
            delay: Duration::ZERO,
            open: 0,
            max_open: 0,
            limit: None,
            refused: 0,
        })));
        let receiver = smtp_receiver::SmtpReceiver::start(Arc::new(shared.clone()))
            .await
            .expect("start the SMTP receiver");
        SmtpReceiver { receiver, shared }
    }

    pub fn port(&self) -> u16 {
        self.receiver.port()
    }

    pub fn set_judge(&self, judge: impl Fn(&[u8]) -> Verdict + Send + Sync + 'static) {
        self.shared.lock().judge = Arc::new(judge);
    }

    /// Every message takes `delay` before its verdict, as a relay far
    /// away does, so that transactions overlap.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Refuses connections beyond `limit` open at once, the way `refusal`
    /// says.
    pub fn refuse_beyond(&self, limit: usize, refusal: Greeting) {
        self.shared.lock().limit = Some((limit, refusal));
    }

    /// The most connections that were open at once.
    pub fn max_open(&self) -> usize {
        self.shared.lock().max_open
    }

    /// Connections refused for being beyond the limit.
    pub fn refused(&self) -> usize {
        self.shared.lock().refused
    }

    /// Every message offered, in order, whatever the verdict.
    pub fn offers(&self) -> Vec<Offer> {
        self.shared.lock().offers.clone()
    }

    /// The messages answered with 250.
    pub fn accepted(&self) -> Vec<Offer> {
        self.offers()
            .into_iter()
            .filter(|offer| offer.verdict == Verdict::Accept)
            .collect()
    }
}
