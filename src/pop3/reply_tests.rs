use super::*;

#[test]
fn uidl_lines() {
    assert_eq!(
        parse_uidl_line(b"1 whqtswO00WBw418f9t5JxYwZ").unwrap(),
        (1, "whqtswO00WBw418f9t5JxYwZ".into())
    );
    for bad in [&b"1"[..], b"x abc", b"1 ", b"1 a b", b"1 a\x01", b"1 \xff"] {
        assert!(parse_uidl_line(bad).is_err(), "{bad:?}");
    }
    let long = format!("2 {}", "u".repeat(71));
    assert!(parse_uidl_line(long.as_bytes()).is_err());
}

#[test]
fn list_and_stat_lines() {
    assert_eq!(parse_list_line(b"3 1200").unwrap(), (3, 1200));
    assert_eq!(parse_list_line(b"3 1200 extra").unwrap(), (3, 1200));
    assert!(parse_list_line(b"3").is_err());
    assert!(parse_list_line(b"-1 20").is_err());
    assert_eq!(parse_stat("2 320"), Some((2, 320)));
    assert_eq!(parse_stat("two"), None);
}

#[test]
fn capabilities() {
    let lines: Vec<Vec<u8>> = [
        "TOP",
        "uidl",
        "SASL PLAIN LOGIN",
        "LOGIN-DELAY 900",
        "PIPELINING",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    let caps = Capabilities::from_lines(&lines);
    assert!(caps.has("UIDL") && caps.has("pipelining") && !caps.has("STLS"));
    assert!(caps.sasl_supports("plain") && !caps.sasl_supports("CRAM-MD5"));
    assert_eq!(caps.args("LOGIN-DELAY"), Some(&["900".to_string()][..]));
    assert_eq!(caps.iter().count(), 5);
}
