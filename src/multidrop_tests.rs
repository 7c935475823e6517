use super::*;
use crate::deliver::trace_header;

fn domain_box(header: RecipientHeader) -> Multidrop {
    Multidrop {
        header,
        local_domains: vec!["example.org".to_owned(), "example.net".to_owned()],
    }
}

fn recipients(message: &str) -> Vec<String> {
    domain_box(RecipientHeader::XOriginalTo).recipients(message.as_bytes())
}

#[test]
fn header_names_are_matched_in_any_case() {
    for header in RecipientHeader::ALL {
        assert_eq!(RecipientHeader::from_name(header.name()), Some(header));
        let lower = header.name().to_lowercase();
        assert_eq!(RecipientHeader::from_name(&lower), Some(header));
        assert_eq!(header.to_string(), header.name());
    }
    assert_eq!(RecipientHeader::from_name("To"), None);
    assert_eq!(RecipientHeader::from_name("X-Original-To:"), None);
}

#[test]
fn only_the_topmost_occurrence_counts() {
    let message = "X-Original-To: alice@example.org\r\n\
                   Received: from mx\r\n\
                   X-Original-To: mallory@example.org\r\n\
                   Subject: hi\r\n\r\nbody\r\n";
    assert_eq!(recipients(message), ["alice@example.org"]);
}

#[test]
fn a_topmost_header_naming_no_local_address_does_not_fall_through() {
    let message = "X-Original-To: alice@elsewhere.com\r\n\
                   X-Original-To: bob@example.org\r\n\r\n";
    assert!(recipients(message).is_empty());
}

#[test]
fn foreign_domains_are_never_recipients() {
    let message = "X-Original-To: a@example.org, evil@attacker.com, b@sub.example.org, \
                   c@example.org.attacker.com, d@EXAMPLE.NET\r\n\r\n";
    assert_eq!(recipients(message), ["a@example.org", "d@EXAMPLE.NET"]);
}

#[test]
fn lists_angles_display_names_comments_and_groups() {
    let message = "Envelope-To: \"Smith, Alice\" <alice@example.org>, bob@example.org (Bob, \
                   (the (nested) one)), Carol <carol@example.org> (x), team: dave@example.org, \
                   <@relay.example.com,@other.example.com:erin@example.org>;, \
                   undisclosed-recipients:;\r\n\r\n";
    let found = domain_box(RecipientHeader::EnvelopeTo).recipients(message.as_bytes());
    assert_eq!(
        found,
        [
            "alice@example.org",
            "bob@example.org",
            "carol@example.org",
            "dave@example.org",
            "erin@example.org",
        ]
    );
}

#[test]
fn folded_lines_are_unfolded_with_crlf_and_lf() {
    for end in ["\r\n", "\n"] {
        let message = format!(
            "Subject: x{end}Delivered-To: alice@example.org,{end}\tbob@example.org,{end}   \
             <carol@example.org>{end}To: zed@example.org{end}{end}body{end}"
        );
        let found = domain_box(RecipientHeader::DeliveredTo).recipients(message.as_bytes());
        assert_eq!(
            found,
            ["alice@example.org", "bob@example.org", "carol@example.org"],
            "line end {end:?}"
        );
    }
}

#[test]
fn the_body_is_never_read() {
    for end in ["\r\n", "\n"] {
        let message = format!("Subject: x{end}{end}X-Original-To: alice@example.org{end}");
        assert!(recipients(&message).is_empty(), "line end {end:?}");
    }
    // A continuation line right after the blank line is body too.
    let message = "X-Original-To: alice@example.org,\r\n\r\n bob@example.org\r\n";
    assert_eq!(recipients(message), ["alice@example.org"]);
}

#[test]
fn a_message_without_a_body_or_a_final_line_end_is_read() {
    assert_eq!(
        recipients("X-Original-To: alice@example.org"),
        ["alice@example.org"]
    );
    assert!(recipients("").is_empty());
    assert!(recipients("\r\n\r\n").is_empty());
}

#[test]
fn duplicates_are_dropped_by_domain_case_but_not_local_part_case() {
    let message = "X-Original-To: alice@example.org, Alice@example.org, alice@EXAMPLE.ORG, \
                   <alice@Example.Org>, bob@example.org, alice@example.org\r\n\r\n";
    assert_eq!(
        recipients(message),
        ["alice@example.org", "Alice@example.org", "bob@example.org"]
    );
}

#[test]
fn invalid_addresses_are_dropped() {
    let message = "X-Original-To: alice, @example.org, a b@example.org, <>, \
                   \"x y\"@example.org, good@example.org\r\n\r\n";
    assert_eq!(recipients(message), ["good@example.org"]);
}

#[test]
fn bytes_that_are_not_utf8_drop_their_address_without_panicking() {
    let mut message = b"X-Original-To: al\xffice@example.org, bob@example.org, \xc3\r\n".to_vec();
    message.extend_from_slice(b"\r\n\xfe\xff body");
    let found = domain_box(RecipientHeader::XOriginalTo).recipients(&message);
    assert_eq!(found, ["bob@example.org"]);
    let unicode = "X-Original-To: jörg@example.org\r\n\r\n";
    assert_eq!(recipients(unicode), ["jörg@example.org"]);
}

#[test]
fn idna_domains_are_compared_as_written() {
    let multidrop = Multidrop {
        header: RecipientHeader::XEnvelopeTo,
        local_domains: vec!["xn--exmple-cua.de".to_owned(), "bücher.de".to_owned()],
    };
    let message = "X-Envelope-To: a@XN--EXMPLE-CUA.DE, b@exämple.de, c@BÜCHER.de, \
                   d@xn--bcher-kva.de\r\n\r\n";
    assert_eq!(
        multidrop.recipients(message.as_bytes()),
        ["a@XN--EXMPLE-CUA.DE", "c@BÜCHER.de"]
    );
}

#[test]
fn the_chosen_header_alone_is_read() {
    let message =
        "To: to@example.org\r\nCc: cc@example.org\r\nX-Original-To-Old: a@example.org\r\n\
                   Delivered-To: d@example.org\r\n\r\n";
    assert!(recipients(message).is_empty());
    let delivered = domain_box(RecipientHeader::DeliveredTo).recipients(message.as_bytes());
    assert_eq!(delivered, ["d@example.org"]);
}

#[test]
fn lines_without_a_colon_are_skipped_with_their_continuations() {
    let message = "This line has no colon\r\n and neither has its continuation\r\n\
                   x-original-to : alice@example.org\r\n\r\n";
    assert_eq!(recipients(message), ["alice@example.org"]);
}

const HOST: &str = "pop.example.com";

fn traced(account: &str, message: &str) -> Vec<u8> {
    let mut bytes = trace_header(HOST, account, "UID-1", true);
    bytes.extend_from_slice(message.as_bytes());
    bytes
}

#[test]
fn own_trace_header_is_recognised_for_this_account_only() {
    let message = traced("alice", "Subject: x\r\n\r\nbody\r\n");
    assert!(carries_own_trace(&message, HOST, "alice"));
    for other in ["alic", "alice2", "a", "Alice", "pop.example.com", "UID-1"] {
        assert!(!carries_own_trace(&message, HOST, other), "{other}");
    }
    // The same account name on another server is another popferry's.
    assert!(!carries_own_trace(&message, "pop.example.net", "alice"));
    assert!(carries_own_trace(&message, "POP.example.com", "alice"));
    let short = traced("a", "Subject: x\r\n\r\n");
    assert!(carries_own_trace(&short, HOST, "a"));
    assert!(!carries_own_trace(&short, HOST, "ab"));
}

#[test]
fn own_trace_header_is_found_below_other_headers_and_refolded() {
    let inner = String::from_utf8(traced("alice", "Subject: x\n\n")).expect("ascii");
    let message = format!(
        "Received: from mx.example.org by relay; now\r\n\
         X-Original-To: alice@example.org\r\n{inner}"
    );
    assert!(carries_own_trace(message.as_bytes(), HOST, "alice"));
    // Another MTA may rewrite the line ends and the folding.
    let refolded = inner.replace("\r\n\t", "\n ").replace("\r\n", "\n");
    assert!(carries_own_trace(refolded.as_bytes(), HOST, "alice"));
    let unfolded = inner.replace("\r\n\t", " ");
    assert!(carries_own_trace(unfolded.as_bytes(), HOST, "alice"));
}

#[test]
fn trace_header_in_the_body_or_of_another_program_does_not_count() {
    let header = String::from_utf8(trace_header(HOST, "alice", "U", false)).expect("ascii");
    let in_body = format!("Subject: x\r\n\r\n{header}");
    assert!(!carries_own_trace(in_body.as_bytes(), HOST, "alice"));
    let lookalike =
        "Received: from pop.example.com by fetchmail (6.4)\r\n\tfor account alice id U; now\r\n\r\n";
    assert!(!carries_own_trace(lookalike.as_bytes(), HOST, "alice"));
    let not_received = header.replacen("Received:", "X-Received:", 1);
    assert!(!carries_own_trace(not_received.as_bytes(), HOST, "alice"));
    assert!(!carries_own_trace(b"", HOST, "alice"));
}
