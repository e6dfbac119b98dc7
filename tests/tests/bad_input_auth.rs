//! The Dovecot auth protocol's bad-input catalogue (issue 8): broken and hostile clients
//! against the real postward-authd binary, each with its exact reaction, while a well-behaved
//! client on another connection keeps authenticating without delay.
//!
//! The reactions are Dovecot's (auth-anchors §1.3, `authd/src/conn.rs`): a protocol error (a
//! line too long, not UTF-8, an unknown command, a bad number, AUTH before VERSION, a
//! mechanism not offered, a duplicate id) is one warning and a close; a bad SASL payload is a
//! FAIL for that request only; a client that leaves is not worth a warning. No password or
//! payload is ever logged. Requires `cargo build --workspace` first.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use postward_tests::auth_client::base64_encode;
use postward_tests::catalogue::{Bystander, Case, Expect, Greeting, Step, assert_bystander_served, run_cases};
use postward_tests::process::TestFiles;

const T: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT_S: u64 = 2;
const IDLE_TIMEOUT_S: u64 = 4;
const USER: &str = "alice@example.com";
/// Distinctive, so any trace of it in the log is found.
const PASSWORD: &str = "Qx7-catalogue-Staple-Horse";
const HELLO: &str = "VERSION\t1\t2\nCPID\t4242\n";

fn plain(user: &str, password: &str) -> String {
    base64_encode(format!("\0{user}\0{password}").as_bytes())
}

fn b64(bytes: &[u8]) -> String {
    base64_encode(bytes)
}

/// `AUTH` for PLAIN with an initial response, as Postfix writes it.
fn auth_plain(id: u32, resp: &str) -> String {
    format!("AUTH\t{id}\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tresp={resp}\n")
}

fn ok(id: u32) -> String {
    format!("OK\t{id}\tuser={USER}\n")
}

fn failed(id: u32) -> String {
    format!("FAIL\t{id}\tuser={USER}\treason=Authentication failed\n")
}

fn failed_anonymous(id: u32) -> String {
    format!("FAIL\t{id}\treason=Authentication failed\n")
}

/// The handshake, then `text`, in one write.
fn after_hello(text: &str) -> Vec<Step> {
    vec![Step::Send(format!("{HELLO}{text}").into_bytes())]
}

fn answered(text: &str) -> Expect {
    Expect::answered(text.as_bytes().to_vec())
}

/// LOGIN, one step at a time as a client that waits for each challenge.
fn login_steps(id: u32, user: &str, password: &str) -> Vec<Step> {
    let pause = || Step::Pause(Duration::from_millis(150));
    vec![
        Step::Send(format!("{HELLO}AUTH\t{id}\tLOGIN\tservice=smtp\trip=192.0.2.7\n").into_bytes()),
        pause(),
        Step::Send(format!("CONT\t{id}\t{}\n", b64(user.as_bytes())).into_bytes()),
        pause(),
        Step::Send(format!("CONT\t{id}\t{}\n", b64(password.as_bytes())).into_bytes()),
    ]
}

const USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
const PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

fn catalogue() -> Vec<Case> {
    let good = plain(USER, PASSWORD);
    let mut cases = vec![
        // What Postfix sends, in every shape.
        Case::new("PLAIN with the right password", after_hello(&auth_plain(1, &good)), answered(&ok(1))),
        Case::new(
            "PLAIN with a wrong password",
            after_hello(&auth_plain(1, &plain(USER, "nope"))),
            answered(&failed(1)),
        ),
        Case::new(
            "LOGIN step by step",
            login_steps(1, USER, PASSWORD),
            answered(&format!("CONT\t1\t{USERNAME_CHALLENGE}\nCONT\t1\t{PASSWORD_CHALLENGE}\n{}", ok(1))),
        ),
        Case::new(
            "CRLF line endings",
            vec![Step::Send(format!("{HELLO}{}", auth_plain(1, &good)).replace('\n', "\r\n").into_bytes())],
            answered(&ok(1)),
        ),
        Case::new(
            "lower-case mechanism name",
            after_hello(&auth_plain(1, &good).replace("PLAIN", "plain")),
            answered(&ok(1)),
        ),
        Case::new(
            "an id reused after its request ended",
            vec![
                Step::Send(format!("{HELLO}{}", auth_plain(1, &good)).into_bytes()),
                Step::Pause(Duration::from_millis(150)),
                Step::Send(auth_plain(1, &good).into_bytes()),
            ],
            answered(&[ok(1), ok(1)].concat()),
        ),
        Case::new(
            "an id reused while its request runs",
            after_hello(&[auth_plain(1, &good), auth_plain(1, &good)].concat()),
            Expect::closed("AUTH with id 1 already in use"),
        ),
        Case::new(
            "two requests pipelined in one write",
            after_hello(&[auth_plain(1, &good), auth_plain(2, &plain(USER, "nope"))].concat()),
            answered(&[ok(1), failed(2)].concat()).any_order(),
        ),
        Case::new(
            "VERSION sent twice",
            after_hello(&format!("VERSION\t1\t2\n{}", auth_plain(1, &good))),
            answered(&ok(1)),
        ),
        Case::new(
            "unknown and empty parameters are ignored",
            after_hello(&format!("AUTH\t1\tPLAIN\tservice=smtp\t\t\tx-future=1\tsession=abc\tresp={good}\n")),
            answered(&ok(1)),
        ),
        Case::new(
            "unparsable client addresses are ignored",
            after_hello(&format!("AUTH\t1\tPLAIN\tservice=smtp\tlip=\trip=999.1.1.1\tresp={good}\n")),
            answered(&ok(1)),
        ),
        Case::new(
            "a line exactly 16384 bytes long",
            after_hello(&{
                let head = "AUTH\t1\tPLAIN\tservice=smtp\tx=";
                let tail = format!("\tresp={good}");
                format!("{head}{}{tail}\n", "a".repeat(16_384 - head.len() - tail.len()))
            }),
            answered(&ok(1)),
        ),
        Case::new(
            "a request in one-byte writes",
            vec![Step::Trickle { bytes: format!("{HELLO}{}", auth_plain(1, &good)).into_bytes(), gap: Duration::ZERO }],
            answered(&ok(1)),
        ),
        Case::new(
            "a slow sender that finishes each line in time",
            vec![Step::Trickle {
                bytes: format!("{HELLO}{}", auth_plain(1, &good)).into_bytes(),
                gap: Duration::from_millis(3),
            }],
            answered(&ok(1)),
        ),
        // Protocol errors: one warning, then the connection is closed.
        Case::new(
            "slow-loris: a line trickling past the request timeout",
            vec![
                Step::Send(HELLO.as_bytes().to_vec()),
                Step::Trickle { bytes: auth_plain(1, &good).into_bytes(), gap: Duration::from_millis(40) },
            ],
            Expect::closed(&format!("line incomplete after {REQUEST_TIMEOUT_S}s")),
        ),
        Case::new(
            "a line started, then silence",
            vec![Step::Send(format!("{HELLO}AUTH\t1\tPLA").into_bytes()), Step::Pause(Duration::from_secs(3))],
            Expect::closed(&format!("line incomplete after {REQUEST_TIMEOUT_S}s (10 bytes so far)")),
        ),
        Case::new(
            "AUTH before VERSION",
            vec![Step::Send(auth_plain(1, &good).into_bytes())],
            Expect::closed("first line is not VERSION"),
        ),
        Case::new(
            "CPID before VERSION",
            vec![Step::Send(b"CPID\t1\n".to_vec())],
            Expect::closed("first line is not VERSION"),
        ),
        Case::new(
            "protocol version 2",
            vec![Step::Send(b"VERSION\t2\t0\n".to_vec())],
            Expect::closed("client speaks protocol version 2.0, not 1.x"),
        ),
        Case::new(
            "VERSION without numbers",
            vec![Step::Send(b"VERSION\tx\ty\n".to_vec())],
            Expect::closed("VERSION: major version \"x\" is not a positive number"),
        ),
        Case::new(
            "VERSION without a minor",
            vec![Step::Send(b"VERSION\t1\n".to_vec())],
            Expect::closed("VERSION without minor version"),
        ),
        Case::new("an unknown command", after_hello("HELO\tthere\n"), Expect::closed("unknown command \"HELO\"")),
        Case::new("an empty line", after_hello("\n"), Expect::closed("unknown command \"\"")),
        Case::new(
            "an unknown command full of control characters",
            after_hello("\x1b[31mEVIL\x07\tx\n"),
            Expect::closed("unknown command \"?[31mEVIL?\""),
        ),
        Case::new(
            "a line one byte over 16384",
            after_hello(&format!("AUTH\t1\tPLAIN\tservice=smtp\tx={}\n", "a".repeat(16_385 - 28))),
            Expect::closed("line longer than 16384 bytes"),
        ),
        Case::new(
            "an endless line (100 kB, no newline)",
            after_hello(&"A".repeat(100_000)),
            Expect::closed("line longer than 16384 bytes"),
        ),
        Case::new(
            "a line that is not UTF-8",
            vec![Step::Send([HELLO.as_bytes(), b"AUTH\t1\tPL\xffIN\tservice=smtp\n"].concat())],
            Expect::closed("line is not UTF-8"),
        ),
        Case::new(
            "AUTH with id 0",
            after_hello(&auth_plain(0, &good)),
            Expect::closed("AUTH: request id \"0\" is not a positive number"),
        ),
        Case::new(
            "AUTH with a non-numeric id",
            after_hello(&auth_plain(1, &good).replace("\t1\t", "\tone\t")),
            Expect::closed("AUTH: request id \"one\" is not a positive number"),
        ),
        Case::new(
            "AUTH with an id beyond 32 bits",
            after_hello(&auth_plain(1, &good).replace("\t1\t", "\t4294967296\t")),
            Expect::closed("AUTH: request id \"4294967296\" is not a positive number"),
        ),
        Case::new("AUTH without a mechanism", after_hello("AUTH\t1\n"), Expect::closed("AUTH without mechanism")),
        Case::new(
            "AUTH with a mechanism not offered",
            after_hello(&auth_plain(1, &good).replace("PLAIN", "CRAM-MD5")),
            Expect::closed("AUTH with mechanism \"CRAM-MD5\", which is not offered"),
        ),
        Case::new(
            "AUTH with an unknown mechanism",
            after_hello(&auth_plain(1, &good).replace("PLAIN", "X-EVIL")),
            Expect::closed("AUTH with mechanism \"X-EVIL\", which is not offered"),
        ),
        Case::new(
            "AUTH without service=",
            after_hello(&format!("AUTH\t1\tPLAIN\tresp={good}\n")),
            Expect::closed("AUTH without service="),
        ),
        Case::new(
            "AUTH with parameters after resp=",
            after_hello(&format!("AUTH\t1\tPLAIN\tservice=smtp\tresp={good}\tx=1\n")),
            Expect::closed("AUTH: parameters after resp="),
        ),
        Case::new(
            "AUTH reusing the id of a pending request",
            after_hello("AUTH\t1\tLOGIN\tservice=smtp\nAUTH\t1\tLOGIN\tservice=smtp\n"),
            Expect::closed("AUTH with id 1 already in use"),
        ),
        Case::new(
            "CPID 0",
            after_hello("CPID\t0\n"),
            Expect::closed("CPID: process id \"0\" is not a positive number"),
        ),
        Case::new("CONT without data", after_hello("CONT\t1\n"), Expect::closed("CONT without data")),
        Case::new("CANCEL without an id", after_hello("CANCEL\n"), Expect::closed("CANCEL without request id")),
        // Bad SASL payloads: a FAIL for that request; the connection goes on.
        Case::new(
            "resp= that is not base64",
            after_hello(&auth_plain(1, "!!notbase64!!")),
            answered("FAIL\t1\tcode=invalid_base64\treason=Invalid base64 data in initial response\n"),
        ),
        Case::new(
            "resp= base64 without its padding",
            after_hello(&auth_plain(1, b64(b"\0alice\0pwd").trim_end_matches('='))),
            answered("FAIL\t1\tcode=invalid_base64\treason=Invalid base64 data in initial response\n"),
        ),
        Case::new(
            "PLAIN without NUL separators",
            after_hello(&auth_plain(1, &b64(b"alice secret"))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with an empty user",
            after_hello(&auth_plain(1, &b64(b"\0\0secret"))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with a NUL in the password",
            after_hello(&auth_plain(1, &b64(format!("\0{USER}\0pa\0ss").as_bytes()))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with an empty response",
            after_hello("AUTH\t1\tPLAIN\tservice=smtp\tresp==\n"),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with a 10 kB user name",
            after_hello(&auth_plain(1, &plain(&"a".repeat(10_000), PASSWORD))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with spaces in the user name",
            after_hello(&auth_plain(1, &plain("alice smith@example.com", PASSWORD))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with control characters in the user name",
            after_hello(&auth_plain(1, &plain("al\x1bice", PASSWORD))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with a user name that is not UTF-8",
            after_hello(&auth_plain(1, &b64(b"\0al\xffce\0secret"))),
            answered(&failed_anonymous(1)),
        ),
        Case::new(
            "PLAIN with a foreign authorization identity",
            after_hello(&auth_plain(1, &b64(format!("bob@example.com\0{USER}\0{PASSWORD}").as_bytes()))),
            answered(&format!("FAIL\t1\tcode=authz_fail\tuser={USER}\treason=Authentication failed\n")),
        ),
        Case::new(
            "PLAIN with the user as authorization identity",
            after_hello(&auth_plain(1, &b64(format!("{USER}\0{USER}\0{PASSWORD}").as_bytes()))),
            answered(&ok(1)),
        ),
        Case::new(
            "PLAIN with a 12 kB password",
            after_hello(&auth_plain(1, &plain(USER, &"p".repeat(12_000)))),
            answered(&failed(1)),
        ),
        Case::new(
            "PLAIN without an initial response gets an empty challenge",
            after_hello("AUTH\t1\tPLAIN\tservice=smtp\n"),
            answered("CONT\t1\t\n"),
        ),
        Case::new(
            "CONT for an unknown request",
            after_hello(&format!("CONT\t9\t{good}\n")),
            answered("FAIL\t9\treason=Authentication request timed out\n"),
        ),
        Case::new(
            "CONT that is not base64",
            {
                let mut steps = after_hello("AUTH\t1\tLOGIN\tservice=smtp\n");
                steps.extend([Step::Pause(Duration::from_millis(150)), Step::Send(b"CONT\t1\t%%%\n".to_vec())]);
                steps
            },
            answered(&format!(
                "CONT\t1\t{USERNAME_CHALLENGE}\nFAIL\t1\tcode=invalid_base64\treason=Invalid base64 data in continued response\n"
            )),
        ),
        // The user name fails the request at once; the password that follows is a CONT for a
        // request that no longer exists, which gets a FAIL of its own (as from Dovecot).
        Case::new("LOGIN user name with a NUL", login_steps(1, "ali\0ce@example.com", PASSWORD), {
            answered(&format!(
                "CONT\t1\t{USERNAME_CHALLENGE}\n{}FAIL\t1\treason=Authentication request timed out\n",
                failed_anonymous(1)
            ))
        }),
        Case::new(
            "CANCEL of an unknown request is ignored",
            after_hello(&format!("CANCEL\t7\n{}", auth_plain(1, &good))),
            answered(&ok(1)),
        ),
        Case::new(
            "CANCEL of a pending LOGIN frees its id",
            vec![
                Step::Send(format!("{HELLO}AUTH\t1\tLOGIN\tservice=smtp\n").into_bytes()),
                Step::Pause(Duration::from_millis(150)),
                Step::Send(format!("CANCEL\t1\n{}", auth_plain(1, &good)).into_bytes()),
            ],
            answered(&format!("CONT\t1\t{USERNAME_CHALLENGE}\n{}", ok(1))),
        ),
        Case::new(
            "130 requests in flight: the 129th and 130th are refused as busy",
            after_hello(&(1..=130).map(|id| format!("AUTH\t{id}\tLOGIN\tservice=smtp\n")).collect::<String>()),
            answered(
                &(1..=130)
                    .map(|id| {
                        if id <= 128 {
                            format!("CONT\t{id}\t{USERNAME_CHALLENGE}\n")
                        } else {
                            format!("FAIL\t{id}\tcode=temp_fail\treason=Temporary authentication failure\n")
                        }
                    })
                    .collect::<String>(),
            )
            .any_order(),
        ),
        // Clients that leave: nothing was wrong with the server's side, so no warning.
        Case::new("connect and leave during the handshake", vec![Step::ShutdownWrite], Expect::quiet_close()),
        Case::new("connect and reset", vec![Step::Abort], Expect::quiet_close()),
        Case::new(
            "leave in the middle of a line",
            vec![Step::Send(format!("{HELLO}AUTH\t1\tPL").into_bytes()), Step::ShutdownWrite],
            Expect::quiet_close(),
        ),
        Case::new(
            "leave with a LOGIN waiting for its answer",
            {
                let mut steps = after_hello("AUTH\t1\tLOGIN\tservice=smtp\n");
                steps.extend([Step::Pause(Duration::from_millis(150)), Step::ShutdownWrite]);
                steps
            },
            Expect { closed: true, ..answered(&format!("CONT\t1\t{USERNAME_CHALLENGE}\n")) },
        ),
        Case::new(
            "reset right after a request",
            vec![Step::Send(format!("{HELLO}{}", auth_plain(1, &good)).into_bytes()), Step::Abort],
            Expect::quiet_close(),
        ),
        Case::new(
            "idle past the idle timeout is closed quietly",
            vec![Step::Send(HELLO.as_bytes().to_vec()), Step::Pause(Duration::from_secs(IDLE_TIMEOUT_S + 1))],
            Expect::quiet_close(),
        ),
    ];
    cases.push(Case::new(
        "still answering after all of the above",
        after_hello(&auth_plain(1, &good)),
        answered(&ok(1)),
    ));
    cases
}

#[tokio::test]
async fn catalogue_of_bad_input_gets_its_exact_reactions_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n")).unwrap();
    let files = TestFiles::new(dir.path(), "authd");
    let socket = files.socket.clone();
    let server = format!("request_timeout = \"{REQUEST_TIMEOUT_S}s\"\nidle_timeout = \"{IDLE_TIMEOUT_S}s\"");
    let sections = format!(
        "[log]\nlevel = \"trace\"\n[auth]\nfailure_delay = \"0s\"\nmechanisms = [\"PLAIN\", \"LOGIN\"]\n\
         [throttle]\nenabled = false\n[passdb]\npath = \"{}\"\n",
        passwd.display()
    );
    let daemon = files.start("postward-authd", &server, &sections, T).await;

    let cases = catalogue();
    assert!(cases.len() >= 50, "the catalogue has {} cases", cases.len());
    let greeting = Greeting::UntilLine("DONE");
    let ask = auth_plain(7, &plain(USER, PASSWORD)).into_bytes();
    let bystander = Bystander::start(
        socket.clone(),
        greeting,
        HELLO.as_bytes().to_vec(),
        ask,
        ok(7).len(),
        Duration::from_millis(20),
    )
    .await;
    let failures = run_cases(&daemon, &socket, greeting, &cases).await;
    let served = bystander.finish().await;
    assert!(failures.is_empty(), "{} of {} cases misbehaved:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_bystander_served(&served, ok(7).as_bytes(), Duration::from_millis(500));
    let log = daemon.log();
    for line in &log {
        assert!(!line.chars().any(|c| c.is_control() && c != '\t'), "control character logged: {line:?}");
        assert!(line.len() <= 4096, "log line of {} bytes", line.len());
    }
    // Not the password, not its base64, not a PLAIN payload, at trace level.
    let text = log.join("\n");
    for secret in [PASSWORD.to_owned(), b64(PASSWORD.as_bytes()), plain(USER, PASSWORD)] {
        assert!(!text.contains(&secret), "the log contains a secret ({} bytes)", secret.len());
    }
    println!("{} bad-input cases behaved", cases.len());
}
