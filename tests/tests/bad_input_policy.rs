//! The policy protocol's bad-input catalogue (issue 8): broken and hostile clients against the
//! real postward-policyd binary, each with its exact reaction, while a well-behaved client on
//! another connection is answered throughout without delay.
//!
//! The reactions are the documented ones (`shared::policy::serve`, README "Bad input"):
//! a request that cannot be read or understood is logged as one warning naming what was wrong,
//! and the connection is closed without a reply (Postfix then retries on a new connection and
//! logs the problem itself); a request that is odd but readable is answered.
//! Requires `cargo build --workspace` first.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use postward_tests::catalogue::{Bystander, Case, Expect, Greeting, Step, assert_bystander_served, run_cases};
use postward_tests::dns::DnsFixture;
use postward_tests::process::TestFiles;

const T: Duration = Duration::from_secs(15);
/// The daemon's request timeout in this test: a request must be complete this long after its
/// first byte.
const REQUEST_TIMEOUT_S: u64 = 2;
const IDLE_TIMEOUT_S: u64 = 4;

const FAIL: &str = "action=550 5.7.23 SPF fail: fail.e2e.test does not allow 192.0.2.10 to send mail (mailfrom).\n\n";
const DUNNO: &str = "action=DUNNO\n\n";

static INSTANCE: AtomicU32 = AtomicU32::new(1);

/// A request Postfix could send, with `overrides` replacing attributes of the same name (or
/// added at the end) and `None` values removing them. Its sender's SPF record fails the
/// client, so a good request's answer shows it was really evaluated.
fn request_with(overrides: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let instance = format!("cat.{}", INSTANCE.fetch_add(1, Ordering::Relaxed));
    let mut attrs: Vec<(String, Vec<u8>)> = [
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("protocol_name", "ESMTP"),
        ("client_address", "192.0.2.10"),
        ("client_name", "unknown"),
        ("helo_name", "mail.e2e.test"),
        ("sender", "a@fail.e2e.test"),
        ("recipient", "bob@example.net"),
        ("instance", instance.as_str()),
        ("sasl_username", ""),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
    .collect();
    for (name, value) in overrides {
        let at = attrs.iter().position(|(n, _)| n == name);
        match (at, value) {
            (Some(i), Some(v)) => attrs[i].1 = v.to_vec(),
            (Some(i), None) => {
                attrs.remove(i);
            }
            (None, Some(v)) => attrs.push(((*name).to_owned(), v.to_vec())),
            (None, None) => {}
        }
    }
    let mut out = Vec::new();
    for (n, v) in attrs {
        out.extend_from_slice(n.as_bytes());
        out.push(b'=');
        out.extend_from_slice(&v);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

fn good() -> Vec<u8> {
    request_with(&[])
}

fn with(name: &str, value: &[u8]) -> Vec<u8> {
    request_with(&[(name, Some(value))])
}

fn without(name: &str) -> Vec<u8> {
    request_with(&[(name, None)])
}

/// The request's bytes with `line` (no newline) inserted as its first line.
fn prefixed(line: &[u8], request: Vec<u8>) -> Vec<u8> {
    let mut out = line.to_vec();
    out.push(b'\n');
    out.extend(request);
    out
}

/// A good request with `line` added as its last attribute line.
fn appended(line: &[u8]) -> Vec<u8> {
    let mut out = good();
    out.pop();
    out.extend_from_slice(line);
    out.extend_from_slice(b"\n\n");
    out
}

/// A good request (10 attributes) with `n` more, `x_<i>=value`.
fn padded(n: usize, value: &[u8]) -> Vec<u8> {
    let mut out = good();
    out.pop();
    for i in 0..n {
        out.extend_from_slice(format!("x_{i}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

fn send(bytes: Vec<u8>) -> Vec<Step> {
    vec![Step::Send(bytes)]
}

fn answered(text: &str) -> Expect {
    Expect::answered(text.as_bytes().to_vec())
}

fn times(text: &str, n: usize) -> Vec<u8> {
    text.repeat(n).into_bytes()
}

fn crlf(bytes: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn catalogue() -> Vec<Case> {
    let long = |n: usize| vec![b'a'; n];
    let mut cases = vec![
        // Framing: what a well-behaved client sends, in every shape.
        Case::new("well-formed request", send(good()), answered(FAIL)),
        Case::new("CRLF line endings", send(crlf(good())), answered(FAIL)),
        Case::new(
            "mixed LF and CRLF",
            send([crlf(without("client_name")), good()].concat()),
            Expect::answered(times(FAIL, 2)),
        ),
        Case::new(
            "three pipelined requests in one write",
            send([good(), good(), good()].concat()),
            Expect::answered(times(FAIL, 3)),
        ),
        Case::new(
            "one hundred pipelined requests",
            send((0..100).flat_map(|_| good()).collect()),
            Expect::answered(times(FAIL, 100)),
        ),
        Case::new(
            "request in one-byte writes",
            vec![Step::Trickle { bytes: good(), gap: Duration::ZERO }],
            answered(FAIL),
        ),
        Case::new(
            "slow sender that finishes within the request timeout",
            vec![Step::Trickle { bytes: good(), gap: Duration::from_millis(4) }],
            answered(FAIL),
        ),
        Case::new(
            "slow-loris: a byte every 20 ms, never done in time",
            vec![Step::Trickle { bytes: [good(), good()].concat(), gap: Duration::from_millis(20) }],
            Expect::closed(&format!("incomplete after {REQUEST_TIMEOUT_S}s")),
        ),
        Case::new(
            "request started, then silence",
            vec![Step::Send(b"request=smtpd_access_policy\nsender=a@b".to_vec()), Step::Pause(Duration::from_secs(3))],
            Expect::closed(&format!("incomplete after {REQUEST_TIMEOUT_S}s")),
        ),
        Case::new(
            "idle connection past the idle timeout is closed quietly",
            vec![Step::Pause(Duration::from_secs(IDLE_TIMEOUT_S + 1))],
            Expect::quiet_close(),
        ),
        Case::new("connect and leave", vec![Step::ShutdownWrite], Expect::quiet_close()),
        Case::new("connect and reset", vec![Step::Abort], Expect::quiet_close()),
        Case::new("request, then end of input", vec![Step::Send(good()), Step::ShutdownWrite], {
            Expect { closed: true, ..answered(FAIL) }
        }),
        Case::new("request, then gone before the answer", vec![Step::Send(good()), Step::Abort], Expect::quiet_close()),
        Case::new(
            "disconnect in the middle of a line",
            vec![Step::Send(b"request=smtpd_access_policy\nprotocol_sta".to_vec()), Step::ShutdownWrite],
            Expect::closed("connection closed after 40 bytes"),
        ),
        Case::new(
            "disconnect after whole lines but before the empty line",
            vec![Step::Send(good()[..good().len() - 1].to_vec()), Step::ShutdownWrite],
            Expect::closed("before the empty line that ends a request"),
        ),
        Case::new(
            "abrupt reset in the middle of a request",
            vec![Step::Send(b"request=smtpd_access_policy\nsender=".to_vec()), Step::Abort],
            Expect::closed("connection closed after"),
        ),
        // Sizes.
        Case::new(
            "endless line without a newline (100 kB)",
            send(long(100_000)),
            Expect::closed("line 1 is longer than 8192 bytes"),
        ),
        Case::new(
            "a line one byte over the limit",
            send(with("x_padding", &long(8193 - "x_padding=".len()))),
            Expect::closed("line 11 is longer than 8192 bytes"),
        ),
        Case::new(
            "a line exactly at the limit",
            send(with("x_padding", &long(8192 - "x_padding=".len()))),
            answered(FAIL),
        ),
        Case::new(
            "a CRLF line exactly at the limit",
            send(crlf(with("x_padding", &long(8192 - "x_padding=".len())))),
            answered(FAIL),
        ),
        Case::new(
            "request over 64 KiB in 1 kB lines",
            send(padded(70, &[b'v'; 1000])),
            Expect::closed("request is larger than 65536 bytes"),
        ),
        Case::new("257 attributes", send(padded(247, b"1")), Expect::closed("request has more than 256 attributes")),
        Case::new("exactly 256 attributes", send(padded(246, b"1")), answered(FAIL)),
        // Bytes that do not belong in the protocol.
        Case::new("NUL in a value", send(with("sender", b"a\0b@fail.e2e.test")), Expect::closed("NUL byte in line 7")),
        Case::new("NUL in a name", send(prefixed(b"x\0y=1", good())), Expect::closed("NUL byte in line 1")),
        Case::new("a lone NUL line", send(prefixed(b"\0", good())), Expect::closed("NUL byte in line 1")),
        Case::new(
            "a line without '='",
            send(prefixed(b"garbage", good())),
            Expect::closed("line 1 is not name=value: \"garbage\""),
        ),
        Case::new(
            "an empty attribute name",
            send(prefixed(b"=value", good())),
            Expect::closed("line 1 has an empty attribute name"),
        ),
        Case::new(
            "an attribute name that is not UTF-8",
            send(prefixed(b"n\xffme=1", good())),
            Expect::closed("attribute name in line 1 is not valid UTF-8"),
        ),
        Case::new(
            "control characters in a bad line are not logged raw",
            send(prefixed(b"\x1b[31mred\x07", good())),
            Expect::closed("line 1 is not name=value: \"?[31mred?\""),
        ),
        Case::new("an empty request", send(b"\n".to_vec()), Expect::closed("empty request")),
        Case::new("an empty CRLF request", send(b"\r\n".to_vec()), Expect::closed("empty request")),
        Case::new("a blank line before a request", send(prefixed(b"", good())), Expect::closed("empty request")),
        Case::new(
            "an extra blank line after a request",
            send([good(), b"\n".to_vec()].concat()),
            Expect::closed_after(FAIL.as_bytes().to_vec(), "empty request"),
        ),
        Case::new(
            "a good request, then garbage",
            send([good(), b"garbage\n\n".to_vec()].concat()),
            Expect::closed_after(FAIL.as_bytes().to_vec(), "line 1 is not name=value"),
        ),
        Case::new(
            "invalid UTF-8 in the sender",
            send(with("sender", b"a\xff@fail.e2e.test")),
            answered(FAIL).warning("invalid UTF-8 in sender"),
        ),
        Case::new(
            "invalid UTF-8 in the recipient",
            send(with("recipient", b"b\xe9b@example.net")),
            answered(FAIL).warning("invalid UTF-8 in recipient"),
        ),
        Case::new(
            "Latin-1 HELO name",
            send(with("helo_name", b"m\xe4il.e2e.test")),
            answered(FAIL).warning("invalid UTF-8 in helo_name"),
        ),
        // Attributes missing, repeated or absurd.
        Case::new(
            "no request= attribute",
            send(without("request")),
            Expect::closed("missing attribute request=smtpd_access_policy"),
        ),
        Case::new(
            "an unknown request type",
            send(with("request", b"junk")),
            Expect::closed("unsupported request type \"junk\""),
        ),
        Case::new("request= repeated, last one valid", send(prefixed(b"request=junk", good())), answered(FAIL)),
        Case::new(
            "request= repeated, last one unknown",
            send(appended(b"request=other")),
            Expect::closed("unsupported request type \"other\""),
        ),
        Case::new(
            "leading space in a name",
            send(request_with(&[("request", None), (" request", Some(b"smtpd_access_policy"))])),
            Expect::closed("missing attribute request=smtpd_access_policy"),
        ),
        Case::new(
            "client_address 999.1.1.1",
            send(with("client_address", b"999.1.1.1")),
            Expect::closed("invalid client_address \"999.1.1.1\""),
        ),
        Case::new(
            "client_address not IPv6 either",
            send(with("client_address", b"2001:db8::zz")),
            Expect::closed("invalid client_address \"2001:db8::zz\""),
        ),
        Case::new(
            "client_address of 10 kB: over the line limit",
            send(with("client_address", &long(10_000))),
            Expect::closed("line 4 is longer than 8192 bytes"),
        ),
        Case::new(
            "client_address of 5 kB: quoted in part",
            send(with("client_address", &long(5_000))),
            Expect::closed("...[4680 more bytes]"),
        ),
        Case::new(
            "client_address with a trailing CR",
            send(with("client_address", b"192.0.2.10\r\r")),
            Expect::closed("invalid client_address \"192.0.2.10?\""),
        ),
        Case::new("empty client_address", send(with("client_address", b"")), answered(DUNNO)),
        Case::new("no client_address", send(without("client_address")), answered(DUNNO)),
        Case::new("client_address in ipv6: form", send(with("client_address", b"ipv6:2001:db8::1")), {
            // The HELO name's record allows only 192.0.2.10, and a failing HELO decides.
            answered("action=550 5.7.23 SPF fail: mail.e2e.test does not allow 2001:db8::1 to send mail (helo).\n\n")
        }),
        Case::new("IPv4-mapped client_address", send(with("client_address", b"::ffff:192.0.2.10")), answered(FAIL)),
        Case::new(
            "client_port not a number",
            send(with("client_port", b"abc")),
            Expect::closed("invalid client_port \"abc\""),
        ),
        Case::new(
            "client_port out of range",
            send(with("client_port", b"99999")),
            Expect::closed("invalid client_port \"99999\""),
        ),
        Case::new(
            "server_address not an address",
            send(with("server_address", b"localhost")),
            Expect::closed("invalid server_address \"localhost\""),
        ),
        Case::new("no protocol_state", send(without("protocol_state")), answered(DUNNO)),
        Case::new("unknown protocol_state", send(with("protocol_state", b"BOGUS")), answered(DUNNO)),
        Case::new("lower-case protocol_state", send(with("protocol_state", b"rcpt")), answered(FAIL)),
        Case::new("CONNECT stage", send(with("protocol_state", b"CONNECT")), answered(DUNNO)),
        Case::new(
            "sender of 10 kB: over the line limit",
            send(with("sender", format!("{}@fail.e2e.test", "a".repeat(10_000)).as_bytes())),
            Expect::closed("line 7 is longer than 8192 bytes"),
        ),
        // The local part never decides whether SPF is checked (a way past an SPF fail
        // otherwise): a long one or one with spaces gets the domain's result, here fail. A
        // domain SPF cannot take (over 255 octets) has no SPF result; the HELO check decides.
        Case::new(
            "sender with a 6 kB local part",
            send(with("sender", format!("{}@fail.e2e.test", "a".repeat(6_000)).as_bytes())),
            answered(FAIL),
        ),
        Case::new(
            "sender with a 6 kB domain",
            send(with("sender", format!("a@{}.e2e.test", "b".repeat(6_000)).as_bytes())),
            answered(DUNNO),
        ),
        Case::new("recipient with spaces", send(with("recipient", b"bob smith@example.net")), answered(FAIL)),
        Case::new("sender with spaces", send(with("sender", b"a b@fail.e2e.test")), answered(FAIL)),
        Case::new("null sender, HELO passes", send(with("sender", b"")), answered(DUNNO)),
        Case::new("HELO name of 5 kB", send(with("helo_name", &long(5_000))), answered(FAIL)),
        Case::new("control characters in the HELO name", send(with("helo_name", b"\x01\x1b[2J")), answered(FAIL)),
        Case::new(
            "sender repeated: the last one counts (fail)",
            send(prefixed(b"sender=a@pass.e2e.test", good())),
            answered(FAIL),
        ),
        Case::new(
            "sender repeated: the last one counts (pass)",
            send(request_with(&[("sender", None), ("x", Some(b"1")), ("sender", Some(b"a@pass.e2e.test"))])),
            answered(DUNNO),
        ),
        Case::new("no instance", send(without("instance")), answered(FAIL)),
        Case::new("unknown future attributes", send(with("x_future_attribute", b"anything=goes")), answered(FAIL)),
        Case::new("'=' inside a value", send(with("sender", b"a=b@fail.e2e.test")), answered(FAIL)),
        Case::new("space inside a name", send(with("client address", b"1.2.3.4")), answered(FAIL)),
        Case::new("UTF-8 sender (SMTPUTF8)", send(with("sender", "jörg@fail.e2e.test".as_bytes())), answered(FAIL)),
        Case::new("authenticated client is exempt", send(with("sasl_username", b"alice")), answered(DUNNO)),
    ];
    // Every case ends with a check that the daemon still answers on a fresh connection.
    cases.push(Case::new("still answering after all of the above", send(good()), answered(FAIL)));
    cases
}

#[tokio::test]
async fn catalogue_of_bad_input_gets_its_exact_reactions_while_others_are_served() {
    let dns = DnsFixture::spf_e2e().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TestFiles::new(dir.path(), "policyd");
    let socket = files.socket.clone();
    let server = format!("request_timeout = \"{REQUEST_TIMEOUT_S}s\"\nidle_timeout = \"{IDLE_TIMEOUT_S}s\"");
    let sections = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n[spf]\nheader = \"none\"\n",
        dns.nameserver()
    );
    let daemon = files.start("postward-policyd", &server, &sections, T).await;

    let cases = catalogue();
    assert!(cases.len() >= 50, "the catalogue has {} cases", cases.len());
    // The bystander asks about a passing sender under one message id: answered from the
    // message cache after the first time, so any delay it sees is the server's, not DNS's.
    let ask = request_with(&[("sender", Some(b"a@pass.e2e.test")), ("instance", Some(b"bystander"))]);
    let bystander =
        Bystander::start(socket.clone(), Greeting::None, Vec::new(), ask, DUNNO.len(), Duration::from_millis(20)).await;
    let failures = run_cases(&daemon, &socket, Greeting::None, &cases).await;
    let served = bystander.finish().await;
    assert!(failures.is_empty(), "{} of {} cases misbehaved:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_bystander_served(&served, DUNNO.as_bytes(), Duration::from_millis(500));
    // Nothing a client sent made the daemon log an unprintable byte.
    for line in daemon.log() {
        assert!(!line.chars().any(|c| c.is_control() && c != '\t'), "control character logged: {line:?}");
        assert!(line.len() <= 4096, "log line of {} bytes", line.len());
    }
    println!("{} bad-input cases behaved", cases.len());
}
