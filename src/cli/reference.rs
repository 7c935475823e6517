//! `popferry completions SHELL` and `popferry man`: the shell completion
//! scripts and the manual page, both made from the same clap definition
//! as `--help`, so they cannot drift from what the binary accepts.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use super::{Cli, EXIT_STATUS};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh or fish
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells whose completion systems the scripts are tested against.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "popferry", &mut script);
    write_stdout(&script)
}

pub fn man() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    render_man(&mut page)?;
    write_stdout(&page)
}

/// The whole page: clap's sections, every command with its own options
/// (one page to `man popferry`, as admins expect of a daemon's tool), then
/// the exit status, files and environment.
fn render_man(out: &mut dyn Write) -> io::Result<()> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let man = Man::new(cli.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for command in cli.get_subcommands() {
        render_command(&mut roff, command, "popferry");
    }
    roff.control("SH", ["EXIT STATUS"]);
    for line in EXIT_STATUS.lines().skip(1) {
        let line = line.trim_start();
        match line.split_once("  ") {
            Some((code, text)) => {
                roff.control("TP", [])
                    .text([bold(code)])
                    .text([roman(text)]);
            }
            None => {
                roff.text([roman(line)]);
            }
        }
    }
    roff.control("SH", ["FILES"]);
    roff.control("TP", [])
        .text([
            italic("./popferry.toml"),
            roman(", "),
            italic("/etc/popferry/popferry.toml"),
        ])
        .text([roman(
            "The configuration, when neither -c nor POPFERRY_CONFIG names one. \
             config/example.toml in the source documents every key.",
        )]);
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", [])
        .text([bold("POPFERRY_CONFIG")])
        .text([roman("The configuration file, when -c is not given.")]);
    roff.control("TP", []).text([bold("RUST_LOG")]).text([roman(
        "A log filter (such as popferry=debug) instead of -v and -q.",
    )]);
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// One command as a subsection: its usage, what it does, its arguments;
/// then its own commands (`oauth login`, `oauth status`) the same way.
fn render_command(roff: &mut Roff, command: &clap::Command, parent: &str) {
    let name = format!("{parent} {}", command.get_name());
    roff.control("SS", [name.as_str()]);
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        roff.text([roman(about.to_string())]);
    }
    for arg in command.get_arguments().filter(|a| !a.is_global_set()) {
        if arg.get_id() == "help" || arg.get_id() == "version" {
            continue;
        }
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        let value = arg.get_value_names().map(|v| {
            v.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        });
        let term = match (names.is_empty(), value) {
            (true, Some(value)) => value,
            (true, None) => arg.get_id().to_string().to_uppercase(),
            (false, Some(value)) if arg.get_action().takes_values() => {
                format!("{} {value}", names.join(", "))
            }
            (false, _) => names.join(", "),
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        roff.control("TP", [])
            .text([bold(term)])
            .text([roman(help)]);
    }
    for sub in command.get_subcommands() {
        render_command(roff, sub, &name);
    }
}

/// Writes to stdout; a closed pipe (`popferry man | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    match io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_names_every_command_and_the_exit_status() {
        let mut page = Vec::new();
        render_man(&mut page).expect("render");
        let page = String::from_utf8(page).expect("UTF-8");
        for command in Cli::command().get_subcommands() {
            let heading = format!(".SS \"popferry {}\"", command.get_name());
            assert!(page.contains(&heading), "{heading} missing:\n{page}");
        }
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(page.contains("\\-\\-retry\\-rejected"), "{page}");
    }
}
