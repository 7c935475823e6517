//! `popferry run`: the long-running service around the [scheduler].
//!
//! Signals: SIGTERM and SIGINT stop taking new work, let each poll in
//! flight finish its current message (deliver, record, delete) and log
//! out, then exit within `shutdown_timeout`. SIGHUP reloads the config:
//! added accounts start, removed ones stop, changed ones restart, and
//! unchanged ones keep running with their parked connections. A config
//! that fails to load is reported and the running one stays.
//!
//! With `NOTIFY_SOCKET` set (systemd `Type=notify`) it reports READY and
//! STOPPING.
//!
//! [scheduler]: crate::scheduler

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::config::{Account, Config};
use crate::deliver::Relays;
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::http::ListenError;
use crate::metrics::Metrics;
use crate::poll::line_with_causes;
use crate::scheduler::{first_polls, login_demand, AccountTask, Shared};

mod open_files;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Every [`LedgerError`] names the file already.
    #[error(transparent)]
    Ledger(LedgerError),
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    #[error(transparent)]
    Metrics(#[from] ListenError),
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(mut config: Config) -> Result<(), DaemonError> {
    let ledger = Ledger::open_for_fleet(&config.state)
        .await
        .map_err(DaemonError::Ledger)?;
    open_files::raise(&config);
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let mut shared = Shared::new(ledger, config.daemon);
    let mut metrics = None;
    if let Some(addr) = config.daemon.metrics_listen {
        let exported = Arc::new(Metrics::new());
        shared = shared.with_metrics(Arc::clone(&exported));
        let (bound, server) =
            crate::metrics::http::serve(addr, Arc::clone(&exported), shared.pool.clone()).await?;
        info!(address = %bound, "serving /metrics and /healthz");
        metrics = Some((exported, server));
    }
    let shared = Arc::new(shared);
    warn_overbooked(&config);
    let accounts = std::mem::take(&mut config.accounts);
    let count = accounts.len();
    let daemon = config.daemon;
    let mut running = Running {
        config,
        tasks: HashMap::new(),
        names: Arc::default(),
        relays: Relays::default(),
        shared: Arc::clone(&shared),
    };
    running.start(accounts);
    let keeper = {
        let ledger = shared.ledger.clone();
        let names = Arc::clone(&running.names);
        tokio::spawn(async move {
            let configured = || names.lock().unwrap_or_else(PoisonError::into_inner).clone();
            offer(&ledger, &configured()).await;
            ledger.keep_leases(configured).await;
        })
    };
    let tender = {
        let pool = shared.pool.clone();
        let every =
            (daemon.keepalive / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = pool.slot_owed() => {}
                }
                pool.tend().await;
            }
        })
    };
    let flusher = {
        let ledger = shared.ledger.clone();
        let every = daemon.empty_poll_flush;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                flush_empty_polls(&ledger).await;
            }
        })
    };
    info!(accounts = count, "running");
    let health = metrics.as_ref().map(|(exported, _)| exported.health());
    health.inspect(|health| health.set_running(true));
    notify("READY=1");

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => running.reload(),
        }
    }

    notify("STOPPING=1");
    health.inspect(|health| health.set_running(false));
    info!("stopping: finishing the messages in flight");
    tender.abort();
    if let Err(e) = shared.ledger.stopping().await {
        warn!(
            error = line_with_causes(&e),
            "cannot tell the fleet this instance is stopping"
        );
    }
    let grace = daemon.shutdown_timeout;
    let tasks = running.tasks.into_values().map(AccountTask::finish);
    let mut all = tokio::task::JoinSet::new();
    for task in tasks {
        all.spawn(task);
    }
    if tokio::time::timeout(grace, all.join_all()).await.is_err() {
        warn!(
            "polls still running after {}; exiting anyway (what was delivered is in the ledger)",
            humantime::format_duration(grace)
        );
    }
    tokio::time::timeout(grace, shared.pool.close()).await.ok();
    keeper.abort();
    if let Err(e) = shared.ledger.leave().await {
        warn!(
            error = line_with_causes(&e),
            "cannot give back the leases: the other instances take the accounts over when \
             they run out"
        );
    }
    flusher.abort();
    flush_empty_polls(&shared.ledger).await;
    if let Some((_, server)) = &metrics {
        server.abort();
    }
    info!("stopped");
    Ok(())
}

/// Writes the polls that found nothing; a failure leaves them counted for
/// the next try, and costs nothing but `status` lagging meanwhile. Also
/// the end of `popferry fetch`.
pub(crate) async fn flush_empty_polls(ledger: &Ledger) {
    if let Err(e) = ledger.flush_empty_polls().await {
        warn!(
            error = line_with_causes(&e),
            "cannot write the polls that found nothing"
        );
    }
}

/// Makes the configured accounts claimable by the fleet; a failure is
/// retried by the next reload, and the accounts that had rows already are
/// claimed meanwhile.
async fn offer(ledger: &Ledger, names: &[String]) {
    if let Err(e) = ledger.offer(names).await {
        warn!(
            error = line_with_causes(&e),
            "cannot add the accounts' leases"
        );
    }
}

/// The accounts running now and what starting another needs.
struct Running {
    /// Without its accounts: the tasks hold those, one copy each.
    config: Config,
    tasks: HashMap<String, AccountTask>,
    /// The names of `tasks`, for the lease keeper of a fleet.
    names: Arc<Mutex<Vec<String>>>,
    relays: Relays,
    shared: Arc<Shared>,
}

impl Running {
    /// Starts `accounts`, each after its predecessor of the same name if
    /// one runs, their first polls spread ([`first_polls`]).
    fn start(&mut self, accounts: Vec<Account>) {
        let firsts = first_polls(&accounts);
        for (account, first) in accounts.into_iter().zip(firsts) {
            let relay = match self.relays.get(&account.smtp, &account.name) {
                Ok(relay) => relay,
                Err(e) => {
                    error!(account = %account.name, error = %e, "account not started");
                    continue;
                }
            };
            let name = account.name.clone();
            let predecessor = self.tasks.remove(&name);
            let shared = Arc::clone(&self.shared);
            let task = AccountTask::spawn(Arc::new(account), relay, shared, predecessor, first);
            self.tasks.insert(name, task);
        }
        self.sync_names();
    }

    /// Tells the lease keeper which accounts run now.
    fn sync_names(&self) {
        let names = self.tasks.keys().cloned().collect();
        *self.names.lock().unwrap_or_else(PoisonError::into_inner) = names;
    }

    fn reload(&mut self) {
        let path = self.config.path.clone();
        let new = match Config::load(&path) {
            Ok(new) => new,
            Err(e) => {
                error!("reload failed, still running the previous configuration: {e}");
                return;
            }
        };
        if new.state != self.config.state || new.daemon != self.config.daemon {
            warn!("changes to `state` and [daemon] take effect at the next restart");
        }
        let wanted: HashMap<&str, &Account> = (new.accounts.iter())
            .map(|account| (account.name.as_str(), account))
            .collect();
        let gone: Vec<String> = (self.tasks.keys())
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        let removed = gone.len();
        for name in gone {
            if let Some(task) = self.tasks.remove(&name) {
                tokio::spawn(task.finish());
            }
        }
        self.sync_names();
        warn_overbooked(&new);
        let (mut added, mut changed) = (0, 0);
        let starting = (new.accounts.into_iter())
            .filter(|account| match self.tasks.get(&account.name) {
                Some(task) if *task.account == *account => false,
                Some(_) => {
                    changed += 1;
                    true
                }
                None => {
                    added += 1;
                    true
                }
            })
            .collect();
        self.start(starting);
        if added > 0 {
            let ledger = self.shared.ledger.clone();
            let names: Vec<String> = self.tasks.keys().cloned().collect();
            tokio::spawn(async move { offer(&ledger, &names).await });
        }
        info!(
            added,
            changed,
            removed,
            running = self.tasks.len(),
            "configuration reloaded"
        );
    }
}

/// Says so when a server's accounts need more fresh logins a second than
/// `max_logins_per_second` allows: their polls then fall behind.
fn warn_overbooked(config: &Config) {
    for over in login_demand(&config.accounts, config.daemon.login_gap) {
        warn!(
            server = %over.server,
            accounts = over.accounts,
            "these accounts' poll intervals need {:.1} logins a second where they log in \
             afresh, more than [daemon] max_logins_per_second ({}): their polls will come \
             later than their intervals say; raise it if the server allows, or lengthen \
             poll_interval",
            over.needed_per_second,
            over.allowed_per_second
        );
    }
}

/// Tells systemd about a state change when it is listening
/// (sd_notify(3)); without `NOTIFY_SOCKET` this does nothing.
fn notify(state: &str) {
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        warn!(error = %e, "cannot notify systemd");
    }
}
