use super::*;

fn credentials<'a>(username: &'a str, secret: &'a str) -> Credentials<'a> {
    Credentials {
        username,
        secret,
        host: "mail.example.org",
        port: 995,
    }
}

fn exchange(mechanism: Mechanism, username: &str, secret: &str) -> Exchange {
    Exchange::new(mechanism, &credentials(username, secret)).expect("exchange")
}

fn decoded(line: &str) -> Vec<u8> {
    STANDARD.decode(line).expect("base64 response")
}

#[test]
fn cram_md5_answers_the_rfc_2195_example() {
    let mut cram = exchange(Mechanism::CramMd5, "tim", "tanstaaftanstaaf");
    assert_eq!(cram.initial_response(255), None, "the server speaks first");
    let challenge = encode(b"<1896.697170952@postoffice.reston.mci.net>");
    let response = cram.answer(&challenge).expect("response");
    assert_eq!(decoded(&response), b"tim b913a602c7eda7a495b4e6e7334d3890");
    assert!(cram.answer("").is_err(), "one challenge only");
    assert_eq!(cram.finish(), Ok(()));
}

#[test]
fn plain_goes_inline_only_when_the_line_fits() {
    let mut short = exchange(Mechanism::Plain, "alice", "secret");
    let inline = short.initial_response(255).expect("fits");
    assert_eq!(decoded(&inline), b"\0alice\0secret");
    assert_eq!(
        short.answer(""),
        Err(SaslError::UnexpectedChallenge {
            mechanism: Mechanism::Plain
        })
    );

    // "AUTH PLAIN " + 4 * 37 / 3 + CRLF = 11 + 52 + 2 = 65 octets.
    let mut exact = exchange(Mechanism::Plain, "alice", &"p".repeat(30));
    assert_eq!(exact.initial_response(64), None);
    assert_eq!(decoded(&exact.answer("").unwrap()).len(), 37);
    let mut exact = exchange(Mechanism::Plain, "alice", &"p".repeat(30));
    assert!(exact.initial_response(65).is_some());
}

#[test]
fn login_answers_two_prompts_in_order() {
    let mut login = exchange(Mechanism::Login, "alice", "secret");
    assert_eq!(login.initial_response(512), None);
    assert_eq!(decoded(&login.answer("VXNlcm5hbWU6").unwrap()), b"alice");
    assert_eq!(decoded(&login.answer("UGFzc3dvcmQ6").unwrap()), b"secret");
    assert!(login.answer("").is_err());
}

#[test]
fn oauth_is_always_two_step_and_answers_the_failure_challenge() {
    let json = encode(br#"{"status":"401","schemes":"bearer","scope":"mail"}"#);
    for (mechanism, failure_answer) in [(Mechanism::XOAuth2, ""), (Mechanism::OAuthBearer, "AQ==")]
    {
        let mut oauth = exchange(mechanism, "alice@example.org", "tok");
        assert_eq!(oauth.initial_response(100_000), None, "{mechanism}");
        let token = decoded(&oauth.answer("").unwrap());
        assert!(token.ends_with(b"auth=Bearer tok\x01\x01"), "{mechanism}");
        assert_eq!(oauth.oauth_status(), None);
        assert_eq!(oauth.answer(&json).unwrap(), failure_answer, "{mechanism}");
        assert_eq!(oauth.oauth_status(), Some("401"));
        assert!(
            oauth.answer(&json).is_err(),
            "{mechanism}: one failure challenge"
        );
    }
}

#[test]
fn oauth_failure_challenge_that_is_not_json_is_still_answered() {
    let mut oauth = exchange(Mechanism::OAuthBearer, "alice", "tok");
    oauth.answer("").expect("token");
    assert_eq!(oauth.answer("%%%").unwrap(), "AQ==");
    assert_eq!(oauth.oauth_status(), None);
}

#[test]
fn scram_sends_a_fresh_nonce_and_requires_the_server_proof() {
    let mut first = exchange(Mechanism::ScramSha256, "user", "pencil");
    let mut second = exchange(Mechanism::ScramSha256, "user", "pencil");
    let one = decoded(&first.initial_response(255).expect("fits"));
    let two = decoded(&second.initial_response(255).expect("fits"));
    assert!(
        one.starts_with(b"n,,n=user,r=") && one.len() == 36,
        "{one:?}"
    );
    assert_ne!(one, two, "each exchange draws its own nonce");
    assert_eq!(first.finish(), Err(SaslError::Unverified));

    let nonce = std::str::from_utf8(&one[12..]).unwrap();
    let server_first = format!("r={nonce}srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    let client_final = decoded(&first.answer(&encode(server_first.as_bytes())).unwrap());
    assert!(client_final.starts_with(format!("c=biws,r={nonce}srv,p=").as_bytes()));
    let forged = encode(format!("v={}", encode(&[0; 32])).as_bytes());
    assert_eq!(first.answer(&forged), Err(SaslError::ServerSignature));
    assert_eq!(first.finish(), Err(SaslError::Unverified));
}

#[test]
fn secrets_stay_out_of_debug() {
    let creds = credentials("alice", "hunter2-secret");
    let exchange = Exchange::new(Mechanism::Plain, &creds).unwrap();
    for shown in [format!("{creds:?}"), format!("{exchange:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert!(matches!(
        Exchange::new(Mechanism::ScramSha256, &credentials("a", "naïve")),
        Err(SaslError::SaslPrep)
    ));
}
