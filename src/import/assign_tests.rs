use std::path::{Path, PathBuf};

use super::*;
use crate::config::Config;
use crate::import::Owner;

/// Accounts `work` (alice on pop.example.com:995), `home` (bob on
/// pop.example.net:110) and `twin` (alice on POP.example.com:995 again).
fn accounts() -> Vec<Account> {
    let account = |name: &str, user: &str, host: &str, port: u16| {
        format!(
            "[[account]]\nname = \"{name}\"\nhost = \"{host}\"\nport = {port}\n\
             username = \"{user}\"\npassword_env = \"P\"\ndeliver_to = [\"x@example.org\"]\n"
        )
    };
    let toml = format!(
        "[smtp]\nhost = \"relay\"\n{}{}{}",
        account("work", "alice", "pop.example.com", 995),
        account("home", "bob", "pop.example.net", 110),
        account("twin", "alice", "POP.example.com", 995),
    );
    Config::from_toml(&toml, Path::new("/nonexistent/popferry.toml"))
        .expect("config")
        .accounts
}

fn file() -> PathBuf {
    PathBuf::from("/home/u/.fetchids")
}

fn list(user: &str, host: &str, uids: &[&str]) -> UidList {
    UidList {
        owner: Owner::Mailbox {
            user: user.into(),
            host: host.into(),
        },
        uids: uids.iter().map(|u| (*u).to_owned()).collect(),
    }
}

fn names(assigned: &[Assigned<'_>]) -> Vec<(String, Vec<String>)> {
    assigned
        .iter()
        .map(|a| (a.account.name.clone(), a.uids.clone()))
        .collect()
}

#[test]
fn each_list_goes_to_the_account_with_its_user_and_host() {
    let accounts = accounts();
    let only_work_and_home = &accounts[..2];
    let lists = vec![
        list("bob", "POP.EXAMPLE.NET", &["b1"]),
        list("alice", "pop.example.com", &["a1", "a2"]),
    ];
    let assigned = assign(&file(), lists, only_work_and_home, None).unwrap();
    assert_eq!(
        names(&assigned),
        [
            ("home".into(), vec!["b1".into()]),
            ("work".into(), vec!["a1".into(), "a2".into()])
        ]
    );
}

#[test]
fn no_matching_account_is_an_error_naming_the_mailbox_and_the_way_out() {
    let accounts = accounts();
    let err = assign(
        &file(),
        vec![list("carol", "pop.example.com", &["c1"])],
        &accounts,
        None,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImportError::NoAccount { .. }), "{err:?}");
    assert!(text.contains("\"carol\" on pop.example.com"), "{text}");
    assert!(text.contains("--account"), "{text}");
}

#[test]
fn several_matching_accounts_is_an_error_naming_them() {
    let accounts = accounts();
    let err = assign(
        &file(),
        vec![list("alice", "pop.example.com", &["a1"])],
        &accounts,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("work, twin"), "{err}");
}

#[test]
fn a_file_without_lists_needs_an_account() {
    let accounts = accounts();
    let err = assign(&file(), Vec::new(), &accounts, None).unwrap_err();
    assert!(matches!(err, ImportError::Empty { .. }), "{err:?}");
    let assigned = assign(&file(), Vec::new(), &accounts, Some(&accounts[0])).unwrap();
    assert_eq!(names(&assigned), [("work".into(), Vec::<String>::new())]);
}

#[test]
fn a_named_account_takes_a_single_list_whatever_it_names() {
    let accounts = accounts();
    let lists = vec![list("alice", "localhost", &["a1"])];
    let assigned = assign(&file(), lists, &accounts, Some(&accounts[1])).unwrap();
    assert_eq!(names(&assigned), [("home".into(), vec!["a1".into()])]);
}

#[test]
fn a_named_account_takes_only_its_own_lists_from_several() {
    let accounts = accounts();
    let lists = || {
        vec![
            list("alice", "pop.example.com", &["a1"]),
            list("bob", "pop.example.net", &["b1"]),
        ]
    };
    let assigned = assign(&file(), lists(), &accounts, Some(&accounts[1])).unwrap();
    assert_eq!(names(&assigned), [("home".into(), vec!["b1".into()])]);

    let lists = vec![list("x", "a", &["1"]), list("y", "b", &["2"])];
    let err = assign(&file(), lists, &accounts, Some(&accounts[0])).unwrap_err();
    assert!(matches!(err, ImportError::NotForAccount { .. }), "{err:?}");
    assert!(
        err.to_string().contains("\"x\" on a; user \"y\" on b"),
        "{err}"
    );
}

#[test]
fn a_getmail_file_matches_by_its_whole_name() {
    let accounts = accounts();
    let owner = |name: &str| UidList {
        owner: Owner::OldmailFile { name: name.into() },
        uids: vec!["g1".into()],
    };
    let lists = vec![owner("oldmail-pop.example.net-110-bob")];
    let assigned = assign(&file(), lists, &accounts, None).unwrap();
    assert_eq!(names(&assigned), [("home".into(), vec!["g1".into()])]);
    let lists = vec![owner("oldmail-pop.example.net-995-bob")];
    assert!(
        assign(&file(), lists, &accounts, None).is_err(),
        "another port"
    );
}
