//! One poll of an empty mailbox, pooled (WAKE, then SLEE again) against
//! fresh (TCP + TLS + login + listing + QUIT), 100 of each, over implicit
//! TLS on loopback. Prints wall and CPU time; not a test.
//!
//! The server is the test suite's POP3 server (with SLEE-WAKE) behind a
//! TLS front in this same process, so the CPU figures are client and
//! server together. Run with `cargo bench --bench pooled_poll`.

#[path = "../tests/pop3_server/mod.rs"]
mod pop3_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pop3_server::{Extensions, Options, Pop3Server};
use popferry::config::{Config, Daemon};
use popferry::deliver::Relay;
use popferry::ledger::Ledger;
use popferry::poll::{poll, PollOptions};
use popferry::scheduler::Shared;
use tokio::net::{TcpListener, TcpStream};

const POLLS: u32 = 100;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Pop3Server::start(Options {
        extensions: Extensions::all(),
        ..Options::default()
    })
    .await;
    let (ca_pem, acceptor) = popferry::demo::throwaway_tls().expect("TLS");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write CA");
    let tls_port = tls_front(acceptor, server.port()).await;

    let toml = format!(
        "state = \"ledger.db\"\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\n\
         [[account]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nport = {tls_port}\ntls = \"implicit\"\n\
         ca_file = {ca:?}\nusername = \"alice\"\npassword = \"secret\"\n\
         deliver_to = [\"alice@example.org\"]\n",
        ca = ca_file.display().to_string(),
    );
    let config = Config::from_toml(&toml, &dir.path().join("popferry.toml")).expect("config");
    let account = &config.accounts[0];
    let ledger = Ledger::open(&config.state).expect("ledger");
    let relay = Relay::new(&account.smtp, &account.name).expect("relay");
    let options = PollOptions::default();

    let fresh = measure(|| async {
        poll(account, &ledger, &relay, &options)
            .await
            .expect("fresh poll");
    })
    .await;
    let accepts_after_fresh = server.accepts();

    let shared = Shared::new(ledger.clone(), Daemon::default());
    let mut failures = 0;
    shared
        .poll(account, &relay, &options, &mut failures)
        .await
        .result
        .expect("first pooled poll");
    let pooled = measure(|| async {
        let mut failures = 0;
        shared
            .poll(account, &relay, &options, &mut failures)
            .await
            .result
            .expect("pooled poll");
    })
    .await;
    let pooled_accepts = server.accepts() - accepts_after_fresh;

    println!("one poll of an empty mailbox, implicit TLS on loopback, {POLLS} polls each");
    println!(
        "{:<8} {:>12} {:>14} {:>14} {:>12}",
        "", "wall total", "wall per poll", "CPU per poll", "TCP accepts"
    );
    for (name, (wall, cpu), accepts) in [
        ("fresh", fresh, accepts_after_fresh),
        ("pooled", pooled, pooled_accepts),
    ] {
        println!(
            "{name:<8} {:>10.1}ms {:>12.3}ms {:>12.3}ms {accepts:>12}",
            ms(wall),
            ms(wall) / f64::from(POLLS),
            ms(cpu) / f64::from(POLLS),
        );
    }
    println!(
        "pooled is {:.1}x faster in wall time, {:.1}x in CPU",
        ms(fresh.0) / ms(pooled.0),
        ms(fresh.1) / ms(pooled.1).max(0.001)
    );
}

/// Wall and CPU time of `POLLS` runs of `poll`.
async fn measure<F, Fut>(poll: F) -> (Duration, Duration)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (wall, cpu) = (Instant::now(), cpu_time());
    for _ in 0..POLLS {
        poll().await;
    }
    (wall.elapsed(), cpu_time().saturating_sub(cpu))
}

/// User plus system CPU time of this process, from /proc (clock ticks of
/// 10 ms: fine over a hundred polls).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Terminates TLS on an ephemeral loopback port and forwards the plain
/// bytes to the test server.
async fn tls_front(acceptor: tokio_rustls::TlsAcceptor, upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let acceptor = Arc::new(acceptor);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = Arc::clone(&acceptor);
            tokio::spawn(async move {
                client.set_nodelay(true).ok();
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                plain.set_nodelay(true).ok();
                tokio::io::copy_bidirectional(&mut tls, &mut plain)
                    .await
                    .ok();
            });
        }
    });
    port
}
