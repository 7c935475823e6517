//! The SMTP receiver the daemon delivers to, noting when each message
//! arrived: the end of the arrival-to-delivery delay.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use popferry::demo::smtp_receiver::{Envelope, Mailbox, SmtpReceiver, Verdict};

/// The header the bench puts in every message it adds, naming it.
pub const ID_HEADER: &str = "X-Bench-Id: ";

#[derive(Default)]
struct Received(Mutex<Vec<(u64, Instant)>>);

impl Received {
    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Mailbox for Received {
    fn receive(&self, _envelope: Envelope, data: Vec<u8>) -> Verdict {
        let at = Instant::now();
        let text = String::from_utf8_lossy(&data);
        let id = text
            .lines()
            .find_map(|line| line.strip_prefix(ID_HEADER))
            .and_then(|id| id.trim().parse().ok())
            .expect("every bench message names itself");
        self.lock().push((id, at));
        Verdict::Accept
    }
}

pub struct Sink {
    receiver: SmtpReceiver,
    received: Arc<Received>,
}

impl Sink {
    pub async fn start() -> Sink {
        let received = Arc::new(Received::default());
        let receiver = SmtpReceiver::start(Arc::clone(&received) as Arc<dyn Mailbox>)
            .await
            .expect("start the SMTP receiver");
        Sink { receiver, received }
    }

    pub fn port(&self) -> u16 {
        self.receiver.port()
    }

    /// Each message received so far: its id and when it came.
    pub fn received(&self) -> Vec<(u64, Instant)> {
        self.received.lock().clone()
    }
}

/// A small message naming itself by `id`.
pub fn message(id: u64) -> Vec<u8> {
    format!(
        "From: bench@example.org\r\nTo: user@example.org\r\nSubject: arrival {id}\r\n\
         {ID_HEADER}{id}\r\n\r\nmessage {id}\r\n"
    )
    .into_bytes()
}
