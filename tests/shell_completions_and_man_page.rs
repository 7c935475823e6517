//! The completion scripts work in the shells they are for, and the man
//! page renders without warnings and documents every command and the exit
//! status. bash is everywhere; zsh, fish and man-db come from
//! scripts/test.sh, hence the `real-servers` feature on those cases.

use std::path::Path;
use std::process::{Command, Output};

const POPFERRY: &str = env!("CARGO_BIN_EXE_popferry");

fn popferry(args: &[&str]) -> Vec<u8> {
    let out = Command::new(POPFERRY)
        .args(args)
        .output()
        .expect("popferry");
    assert!(out.status.success(), "popferry {args:?}: {}", text(&out));
    out.stdout
}

/// Writes `popferry completions SHELL` into `dir` and returns its path.
fn script(dir: &Path, shell: &str) -> String {
    let path = dir.join(format!("popferry.{shell}"));
    std::fs::write(&path, popferry(&["completions", shell])).expect("write script");
    path.display().to_string()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What bash offers after `words`, the way its completion calls the
/// function `complete -p popferry` names.
fn bash_candidates(script: &str, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}\n\
         fn=$(complete -p popferry | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
         \"$fn\" popferry '{}' '{}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words.len() - 1,
        words.last().expect("a word"),
        words[words.len() - 2],
    );
    run("bash", &["-c", &program])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_commands_and_their_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = script(dir.path(), "bash");
    let commands = bash_candidates(&script, &["popferry", "fe"]);
    assert_eq!(commands, ["fetch"], "after `popferry fe`");
    let options = bash_candidates(&script, &["popferry", "fetch", "--re"]);
    assert_eq!(options, ["--retry-rejected"], "after `popferry fetch --re`");
    let shells = bash_candidates(&script, &["popferry", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|s| s == shell), "{shell} in {shells:?}");
    }
}

#[cfg(feature = "real-servers")]
#[test]
fn fish_completes_commands_and_their_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = script(dir.path(), "fish");
    let complete = |line: &str| {
        let program = format!("source {script}; complete --do-complete '{line}'");
        run("fish", &["--no-config", "-c", &program])
    };
    let commands = complete("popferry fe");
    assert!(
        commands.lines().any(|l| l.starts_with("fetch")),
        "{commands}"
    );
    let options = complete("popferry fetch --re");
    assert!(
        options.lines().any(|l| l.starts_with("--retry-rejected")),
        "{options}"
    );
}

#[cfg(feature = "real-servers")]
#[test]
fn zsh_loads_the_completion_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = script(dir.path(), "zsh");
    run("zsh", &["-n", &script]);
    let program = format!(
        "autoload -Uz compinit && compinit -u -d {dir}/zcompdump && source {script} && \
         whence -w _popferry",
        dir = dir.path().display()
    );
    let found = run("zsh", &["-f", "-c", &program]);
    assert_eq!(found.trim(), "_popferry: function");
}

#[cfg(feature = "real-servers")]
#[test]
fn the_man_page_renders_cleanly_with_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("popferry.1");
    std::fs::write(&page, popferry(&["man"])).expect("write page");
    let page = page.display().to_string();
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z", &page])
        .output()
        .expect("groff");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff warnings: {}",
        text(&out)
    );
    let rendered = Command::new("man")
        .args(["--local-file", &page])
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    assert!(rendered.status.success(), "{}", text(&rendered));
    let rendered = without_overstrike(&String::from_utf8_lossy(&rendered.stdout));
    for heading in ["NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "FILES"] {
        assert!(
            rendered.lines().any(|l| l.trim() == heading),
            "{heading}:\n{rendered}"
        );
    }
    for command in ["fetch", "run", "check", "status", "demo", "oauth login"] {
        assert!(
            rendered.contains(&format!("popferry {command}")),
            "popferry {command}:\n{rendered}"
        );
    }
}

/// man's output to a pipe marks bold as `X\bX` and underline as `_\bX`,
/// as for a line printer; `col -b` in Rust.
#[cfg(feature = "real-servers")]
fn without_overstrike(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}
