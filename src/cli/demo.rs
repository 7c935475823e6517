//! `popferry demo`: the whole trip on loopback, narrated. Both fetches go
//! through [`super::fetch::run`], the code behind `popferry fetch`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{fetch, status, EXIT_FAILED};
use crate::config::Config;
use crate::demo::Demo;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo's config, ledger, CA and delivered mail; must be
    /// new or empty [default: a new folder under the system temp dir]
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(default_dir);
    let demo = match Demo::start(&dir).await {
        Ok(demo) => demo,
        Err(e) if e.is_usage() => return Err(super::usage(e)),
        Err(e) => return Err(anyhow::Error::new(e).context("setting up the demo")),
    };
    let config = Config::load(&demo.config)?;
    println!("popferry demo: everything runs on 127.0.0.1 and stops when the demo ends.");
    println!(
        "  POP3 server    127.0.0.1:{}, implicit TLS, mailbox \"demo\" holds {} messages",
        demo.pop3.port(),
        demo.pop3.count()
    );
    println!(
        "  SMTP receiver  127.0.0.1:{}, writes what it accepts to {}",
        demo.smtp.port(),
        dir.join("delivered").display()
    );
    println!("  config         {}", demo.config.display());

    let mut null_sender_told = false;
    let mut ok = fetch_and_show(&demo, &config, "first fetch", &mut null_sender_told).await?;
    demo.second_batch();
    println!(
        "\nTwo new messages arrive; the mailbox now holds {}.",
        demo.pop3.count()
    );
    ok &= fetch_and_show(&demo, &config, "second fetch", &mut null_sender_told).await?;

    println!("\n$ popferry -c {} status", demo.config.display());
    status::run(&config, status::StatusArgs::default()).await?;
    println!("\nLook at the delivered .eml files, the config and the ledger (SQLite) in");
    println!("  {}", dir.display());
    println!("Then write your own config: config/example.toml documents every key.");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Runs one `popferry fetch` and lists what reached the receiver during
/// it. True when the fetch succeeded and left the mailbox empty.
/// `null_sender_told`: whether the `<>` sender was explained already.
async fn fetch_and_show(
    demo: &Demo,
    config: &Config,
    label: &str,
    null_sender_told: &mut bool,
) -> anyhow::Result<bool> {
    let before = demo.delivered().len();
    println!("\n{label}: $ popferry -c {} fetch", demo.config.display());
    let code = fetch::run(config, fetch::FetchArgs::default()).await?;
    let mut null_sender = false;
    for message in &demo.delivered()[before..] {
        let from = match message.envelope.from.as_str() {
            "" => {
                null_sender = true;
                "<>"
            }
            from => from,
        };
        println!(
            "  {}  {:>7} bytes  from {from}  \"{}\"",
            message.file.display(),
            message.size,
            message.subject
        );
    }
    if null_sender && !*null_sender_told {
        *null_sender_told = true;
        println!(
            "  (from <>: the envelope sender comes from the Return-Path header, and a message\n   \
             without one is sent with the null sender <>, as bounces are)"
        );
    }
    let left = demo.pop3.count();
    println!("  left on the POP3 server: {left}");
    Ok(code == ExitCode::SUCCESS && left == 0)
}

fn default_dir() -> PathBuf {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    std::env::temp_dir().join(format!("popferry-demo-{stamp}-{}", std::process::id()))
}
