//! What to write instead, for the TOML mistakes people make most: a number
//! in quotes, a duration without them, a host name left unquoted. The TOML
//! parser's own words ("invalid type: string \"995\", expected i64",
//! "invalid float, expected nothing") name the parser's view, not the fix.

/// Keys whose value is a duration string.
const DURATIONS: &[&str] = &[
    "poll_interval",
    "poll_interval_max",
    "timeout",
    "idle_timeout",
    "keepalive",
    "shutdown_timeout",
    "max_backoff",
    "empty_poll_flush",
];

/// A plain replacement for a type error about the key at dotted path
/// `keys` (such as `account.port`), or `None` to keep the parser's words.
pub(super) fn type_error(keys: &str, message: &str) -> Option<String> {
    let key = keys.rsplit('.').next().unwrap_or(keys);
    if let Some(choice) = unknown_choice(key, message) {
        return Some(choice);
    }
    if key == "account" && message.starts_with("invalid type: map") {
        return Some(
            "each account is an array table: write [[account]], with two brackets, \
             above each one"
                .to_owned(),
        );
    }
    let found = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split(", expected").next())?;
    let fix = if DURATIONS.contains(&key) {
        "a duration in quotes, like \"120s\", \"5m\" or \"1h 30m\"".to_owned()
    } else if message.contains("expected a boolean") {
        "true or false, without quotes".to_owned()
    } else if ["i64", "u64", "u32", "u16", "usize"]
        .iter()
        .any(|int| message.ends_with(&format!("expected {int}")))
    {
        let like = if key == "port" { "995" } else { "16" };
        format!("a number without quotes, like {like}")
    } else if message.ends_with("expected a string") {
        "text in quotes".to_owned()
    } else if message.ends_with("expected a sequence") {
        format!("a list in brackets, like {key} = [\"alice@example.org\"]")
    } else {
        return None;
    };
    Some(format!("{key} must be {fix} (found {found})"))
}

/// serde's "unknown variant `ssl`, expected one of `implicit`, `starttls`,
/// `none`" as the choices to write, quoted as TOML wants them.
fn unknown_choice(key: &str, message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown variant ")?;
    let (found, choices) = rest.split_once(", expected ")?;
    let choices: Vec<String> = choices
        .trim_start_matches("one of ")
        .split(", ")
        .flat_map(|choice| choice.split(" or "))
        .map(|choice| format!("\"{}\"", choice.trim_matches('`')))
        .collect();
    let (last, first) = choices.split_last()?;
    let choices = match first {
        [] => last.clone(),
        first => format!("{} or {last}", first.join(", ")),
    };
    Some(format!(
        "{key} must be {choices} (found \"{}\")",
        found.trim_matches('`')
    ))
}

/// A plain replacement for a syntax error on `line` of the file that comes
/// from a value written without quotes (`host = 127.0.0.1`, `host =
/// pop.example.org`), or `None`.
pub(super) fn unquoted(message: &str, line: &str) -> Option<String> {
    let unquoted_value = message.starts_with("invalid float")
        || message.starts_with("string values must be quoted")
        || message.starts_with("invalid number");
    if !unquoted_value {
        return None;
    }
    let (key, value) = line.split_once('=')?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || value.is_empty() || value.starts_with(['"', '\'']) {
        return None;
    }
    Some(format!(
        "{key} must be in quotes: write {key} = \"{value}\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_number_says_to_drop_the_quotes() {
        assert_eq!(
            type_error("account.port", "invalid type: string \"995\", expected i64").unwrap(),
            "port must be a number without quotes, like 995 (found string \"995\")"
        );
        assert_eq!(
            type_error(
                "daemon.max_concurrent_polls",
                "invalid type: string \"8\", expected usize"
            )
            .unwrap(),
            "max_concurrent_polls must be a number without quotes, like 16 (found string \"8\")"
        );
    }

    #[test]
    fn a_bare_duration_says_to_quote_it_with_a_unit() {
        let plain = type_error(
            "account.poll_interval",
            "invalid type: integer `120`, expected a string",
        )
        .unwrap();
        assert!(plain.starts_with("poll_interval must be a duration in quotes, like \"120s\""));
        assert!(plain.ends_with("(found integer `120`)"));
    }

    #[test]
    fn booleans_and_other_strings() {
        assert_eq!(
            type_error(
                "account.keep",
                "invalid type: string \"yes\", expected a boolean"
            )
            .unwrap(),
            "keep must be true or false, without quotes (found string \"yes\")"
        );
        assert_eq!(
            type_error(
                "account.username",
                "invalid type: integer `7`, expected a string"
            )
            .unwrap(),
            "username must be text in quotes (found integer `7`)"
        );
        // Anything else keeps the parser's words.
        assert_eq!(type_error("account.x", "missing field `host`"), None);
    }

    #[test]
    fn choices_lists_and_array_tables() {
        assert_eq!(
            type_error(
                "account.tls",
                "unknown variant `ssl`, expected one of `implicit`, `starttls`, `none`"
            )
            .unwrap(),
            "tls must be \"implicit\", \"starttls\" or \"none\" (found \"ssl\")"
        );
        assert_eq!(
            type_error(
                "smtp.protocol",
                "unknown variant `esmtp`, expected `smtp` or `lmtp`"
            )
            .unwrap(),
            "protocol must be \"smtp\" or \"lmtp\" (found \"esmtp\")"
        );
        assert_eq!(
            type_error(
                "account.deliver_to",
                "invalid type: string \"a@b.org\", expected a sequence"
            )
            .unwrap(),
            "deliver_to must be a list in brackets, like deliver_to = [\"alice@example.org\"] \
             (found string \"a@b.org\")"
        );
        assert!(
            type_error("account", "invalid type: map, expected a sequence")
                .unwrap()
                .contains("write [[account]]")
        );
    }

    #[test]
    fn an_unquoted_host_says_how_to_write_it() {
        assert_eq!(
            unquoted("invalid float, expected nothing", "host = 127.0.0.1").unwrap(),
            "host must be in quotes: write host = \"127.0.0.1\""
        );
        assert_eq!(
            unquoted(
                "string values must be quoted, expected literal string",
                "  host =pop.example.org "
            )
            .unwrap(),
            "host must be in quotes: write host = \"pop.example.org\""
        );
        assert_eq!(unquoted("extra `=`", "host == x"), None);
        assert_eq!(unquoted("invalid float", "[smtp]"), None);
    }
}
