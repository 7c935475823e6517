//! One poll of an empty mailbox, pooled (WAKE, then SLEE again) against
//! fresh (TCP + TLS + login + listing + QUIT), over implicit TLS on
//! loopback. Prints wall and CPU time of popferry alone; not a test.
//!
//! The test suite's POP3 server (with SLEE-WAKE) runs in a child process
//! (this same binary, asked by `POPFERRY_BENCH_ROLE`), behind stunnel4 as
//! the TLS terminator, so the CPU measured in this process is the client's
//! own: every thread's run time from `/proc/self/task/*/schedstat`. Run
//! with `cargo bench --bench pooled_poll` (bench/README.md).

#[path = "pooled_poll/front.rs"]
mod front;
#[path = "../tests/pop3_server/mod.rs"]
mod pop3_server;
#[path = "pooled_poll/rtt.rs"]
mod rtt;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use pop3_server::{Extensions, Options, Pop3Server};
use popferry::config::{Config, Daemon};
use popferry::deliver::Relay;
use popferry::ledger::Ledger;
use popferry::poll::{poll, PollOptions};
use popferry::scheduler::interval::Pace;
use popferry::scheduler::Shared;

/// How many polls of each kind are timed; pooled ones are cheap enough
/// for many more, which the CPU clock needs to resolve them.
const FRESH: usize = 200;
const POOLED: usize = 2000;
/// Set in the child that serves POP3.
const ROLE: &str = "POPFERRY_BENCH_ROLE";

fn main() {
    if std::env::var_os(ROLE).is_some_and(|role| role == "pop3-server") {
        serve();
    } else {
        // Spawned, not run on the main thread, so the polls run on a
        // worker as the daemon's do.
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let task = runtime.spawn(bench());
        runtime.block_on(task).expect("the bench task");
    }
}

/// The child: serves POP3 on an ephemeral port, which it prints, answers
/// "accepts" on stdin with its count of TCP accepts, and exits at EOF.
fn serve() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime.block_on(Pop3Server::start(Options {
        extensions: Extensions::all(),
        ..Options::default()
    }));
    println!("{}", server.port());
    for line in std::io::stdin().lines() {
        match line.as_deref() {
            Ok("accepts") => println!("{}", server.accepts()),
            _ => return,
        }
    }
}

/// The POP3 server child, spoken to over its stdin and stdout.
struct ServerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    fn start() -> ServerProcess {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(ROLE, "pop3-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the POP3 server process");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        ServerProcess {
            child,
            stdin,
            stdout,
        }
    }

    fn read_number(&mut self) -> usize {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the server");
        line.trim().parse().expect("a number from the server")
    }

    fn accepts(&mut self) -> usize {
        writeln!(self.stdin, "accepts").expect("ask the server");
        self.read_number()
    }

    /// Closing its stdin is what ends it.
    fn stop(self) {
        let ServerProcess {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        child.wait().ok();
    }
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::start();
    let pop3_port = u16::try_from(server.read_number()).expect("a port");
    let tls = front::Stunnel::start(dir.path(), pop3_port);
    let loopback = rtt::loopback();
    let noop = rtt::pop3_noop(tls.port, tls.ca.clone()).await;
    let accepts_before = server.accepts();

    let toml = format!(
        "state = \"ledger.db\"\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\n\
         [[account]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"implicit\"\n\
         ca_file = {ca:?}\nusername = \"alice\"\npassword = \"secret\"\n\
         deliver_to = [\"alice@example.org\"]\n",
        port = tls.port,
        ca = tls.ca_file.display().to_string(),
    );
    let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).expect("config");
    let account = &config.accounts[0];
    let ledger = Ledger::open_state(&config.state).await.expect("ledger");
    let relay = Relay::new(&account.smtp, &account.name).expect("relay");
    let options = PollOptions::default();

    let fresh = measure(FRESH, || async {
        poll(account, &ledger, &relay, &options)
            .await
            .expect("fresh poll");
    })
    .await;
    let accepts_after_fresh = server.accepts();
    let fresh_accepts = accepts_after_fresh - accepts_before;

    let shared = Shared::new(ledger.clone(), Daemon::default());
    let pooled_poll = || async {
        let mut pace = Pace::default();
        shared
            .poll(account, &relay, &options, &mut pace)
            .await
            .result
            .expect("pooled poll");
    };
    pooled_poll().await;
    let pooled = measure(POOLED, pooled_poll).await;
    let pooled_accepts = server.accepts() - accepts_after_fresh;
    ledger.flush_empty_polls().await.expect("write empty polls");
    tls.stop();
    server.stop();

    println!(
        "one poll of an empty mailbox, implicit TLS (stunnel4) on loopback; \
         popferry's own CPU"
    );
    println!(
        "{:<7} {:>6} {:>15} {:>13} {:>13} {:>12}",
        "", "polls", "wall median", "wall mean", "CPU mean", "TCP accepts"
    );
    for (name, m, accepts) in [
        ("fresh", &fresh, fresh_accepts),
        ("pooled", &pooled, pooled_accepts),
    ] {
        println!(
            "{name:<7} {:>6} {:>13.3}ms {:>11.3}ms {:>11.3}ms {accepts:>12}",
            m.polls,
            ms(m.median),
            ms(m.mean()),
            ms(m.cpu_per_poll()),
        );
    }
    println!(
        "pooled: {:.1}x less CPU, {:.1}x less wall time (median) than fresh",
        ms(fresh.cpu_per_poll()) / ms(pooled.cpu_per_poll()),
        ms(fresh.median) / ms(pooled.median),
    );
    println!(
        "round trips, median of {}: loopback TCP {:.3}ms, POP3 NOOP through stunnel {:.3}ms",
        rtt::PINGS,
        ms(loopback),
        ms(noop)
    );
    println!(
        "pooled wall median - 2 loopback RTT: {:.3}ms; - 2 NOOP RTT: {:.3}ms",
        ms(pooled.median) - 2.0 * ms(loopback),
        ms(pooled.median) - 2.0 * ms(noop),
    );
}

/// What [`measure`] found.
struct Measured {
    polls: usize,
    median: Duration,
    total: Duration,
    cpu: Duration,
}

impl Measured {
    fn mean(&self) -> Duration {
        self.total / self.polls as u32
    }

    fn cpu_per_poll(&self) -> Duration {
        self.cpu / self.polls as u32
    }
}

/// Wall time of each of `polls` runs of `poll`, and the process's CPU
/// time over all of them.
async fn measure<F, Fut>(polls: usize, poll: F) -> Measured
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut walls = Vec::with_capacity(polls);
    let (started, cpu) = (Instant::now(), cpu_time());
    for _ in 0..polls {
        let one = Instant::now();
        poll().await;
        walls.push(one.elapsed());
    }
    let (total, cpu) = (started.elapsed(), cpu_time().saturating_sub(cpu));
    walls.sort();
    Measured {
        polls,
        median: walls[polls / 2],
        total,
        cpu,
    }
}

/// CPU time of this process so far, in nanoseconds of every thread alive
/// (tokio's threads live for the whole run; the kernel's per-process
/// clock in /proc/self/stat counts only 10 ms ticks).
fn cpu_time() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").expect("list /proc/self/task");
    let nanos = tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            text.split(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
