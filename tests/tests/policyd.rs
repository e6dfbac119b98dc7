//! postward-policyd end to end: the real binary on a Unix socket, under spawn(8)-style
//! stdin/stdout, and its `check` command, all against the in-process DNS fixture.
//! Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use postward_tests::client::PolicyClient;
use postward_tests::dns::DnsFixture;
use postward_tests::process::{DaemonProcess, TestFiles, bin_path, start_with_config};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = "postward-policyd";
const T: Duration = Duration::from_secs(15);

async fn fixture() -> DnsFixture {
    DnsFixture::spf_e2e().servfail("broken.e2e.test").start().await.unwrap()
}

/// A policyd with its own directory, socket and configuration.
struct Policyd {
    dir: tempfile::TempDir,
    process: DaemonProcess,
}

fn write_config(dir: &std::path::Path, dns: &DnsFixture, extra: &str) -> PathBuf {
    let files = TestFiles::new(dir, "policyd");
    let sections = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n[spf]\nauthserv_id = \"mx.e2e.test\"\n{extra}\n",
        dns.nameserver()
    );
    files.write("", &sections);
    files.config
}

impl Policyd {
    async fn start(dns: &DnsFixture, extra: &str) -> Policyd {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), dns, extra);
        let process = start_with_config(BIN, &config, &dir.path().join("policyd.sock"), T).await;
        Policyd { dir, process }
    }

    async fn client(&self) -> PolicyClient {
        PolicyClient::connect_unix(&self.dir.path().join("policyd.sock")).await.unwrap()
    }
}

fn rcpt<'a>(ip: &'a str, helo: &'a str, sender: &'a str, instance: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("protocol_name", "ESMTP"),
        ("client_address", ip),
        ("client_name", "unknown"),
        ("helo_name", helo),
        ("sender", sender),
        ("recipient", "user@rcpt.e2e.test"),
        ("instance", instance),
    ]
}

const PASS_HEADER: &str = "PREPEND Received-SPF: pass (mx.e2e.test: domain of a@pass.e2e.test designates 192.0.2.10 \
     as permitted sender) client-ip=192.0.2.10; envelope-from=\"a@pass.e2e.test\"; helo=mail.e2e.test; \
     receiver=mx.e2e.test; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";";

/// The HELO result, which did not decide (a pass, without `helo_pass_decides`), recorded in a
/// header of its own after MAIL FROM's (RFC 7208 §2.3).
const HELO_PASS_HEADER: &str = "PREPEND Received-SPF: pass (mx.e2e.test: domain of postmaster@mail.e2e.test designates \
     192.0.2.10 as permitted sender) client-ip=192.0.2.10; envelope-from=\"a@pass.e2e.test\"; helo=mail.e2e.test; \
     receiver=mx.e2e.test; identity=helo; mechanism=\"a\";";

const FAIL_REPLY: &str = "550 5.7.23 SPF fail: fail.e2e.test does not allow 192.0.2.10 to send mail (mailfrom).";

#[tokio::test]
async fn socket_answers_exact_action_lines() {
    let dns = fixture().await;
    let d = Policyd::start(&dns, "").await;
    let mut c = d.client().await;
    // Pass: each header once per message (MAIL FROM's, then HELO's), then DUNNO.
    assert_eq!(c.request(&rcpt("192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "1.a")).await.unwrap(), PASS_HEADER);
    assert_eq!(
        c.request(&rcpt("192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "1.a")).await.unwrap(),
        HELO_PASS_HEADER
    );
    assert_eq!(c.request(&rcpt("192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "1.a")).await.unwrap(), "DUNNO");
    // Fail: every recipient of the message is rejected.
    for _ in 0..2 {
        assert_eq!(
            c.request(&rcpt("192.0.2.10", "mail.e2e.test", "a@fail.e2e.test", "1.b")).await.unwrap(),
            FAIL_REPLY
        );
    }
    // SERVFAIL: temperror, deferred, never rejected.
    assert_eq!(
        c.request(&rcpt("192.0.2.10", "mail.e2e.test", "a@broken.e2e.test", "1.c")).await.unwrap(),
        "DEFER_IF_PERMIT 4.7.24 SPF temperror: cannot check broken.e2e.test now (DNS lookup failed), try again later"
    );
    // The IPv4-mapped form of the same client is the same client.
    assert_eq!(
        c.request(&rcpt("::ffff:192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "1.d")).await.unwrap(),
        PASS_HEADER
    );
    let line = d.process.wait_for_log("reason=spf-mailfrom-fail", T).await;
    assert!(line.contains("NOQUEUE: reject: RCPT from unknown[192.0.2.10]: 550 5.7.23 SPF fail"), "{line}");
    assert!(line.contains("helo=pass mailfrom=fail domain=fail.e2e.test"), "{line}");
}

#[tokio::test]
async fn authenticated_clients_are_exempt_and_logged() {
    let dns = fixture().await;
    let d = Policyd::start(&dns, "").await;
    let mut c = d.client().await;
    let mut req = rcpt("192.0.2.10", "mail.e2e.test", "a@fail.e2e.test", "2.a");
    req.push(("sasl_method", "PLAIN"));
    req.push(("sasl_username", "alice"));
    assert_eq!(c.request(&req).await.unwrap(), "DUNNO");
    let line = d.process.wait_for_log("reason=exempt", T).await;
    assert!(line.contains("exempt=authenticated"), "{line}");
    assert_eq!(dns.queries(), 0, "an exempt client costs no DNS query");
}

#[tokio::test]
async fn both_headers_go_out_one_per_request() {
    let dns = fixture().await;
    let d = Policyd::start(&dns, "header = \"both\"").await;
    let mut c = d.client().await;
    let first = c.request(&rcpt("192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "3.a")).await.unwrap();
    assert_eq!(first, PASS_HEADER);
    let mut data = rcpt("192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "3.a");
    data[1] = ("protocol_state", "DATA");
    assert_eq!(
        c.request(&data).await.unwrap(),
        "PREPEND Authentication-Results: mx.e2e.test; spf=pass (matched ip4:192.0.2.0/24) smtp.mailfrom=a@pass.e2e.test"
    );
    // Then the HELO result's two, which did not decide.
    assert_eq!(c.request(&data).await.unwrap(), HELO_PASS_HEADER);
    assert_eq!(
        c.request(&data).await.unwrap(),
        "PREPEND Authentication-Results: mx.e2e.test; spf=pass (matched a) smtp.helo=mail.e2e.test"
    );
    assert_eq!(c.request(&data).await.unwrap(), "DUNNO");
}

/// Reads one `action=…` reply from a spawn-mode child.
async fn stdio_exchange(
    stdin: &mut (impl AsyncWriteExt + Unpin),
    stdout: &mut (impl AsyncBufReadExt + Unpin),
    attrs: &[(&str, &str)],
) -> String {
    let mut text = String::new();
    for (k, v) in attrs {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push('\n');
    stdin.write_all(text.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(T, stdout.read_line(&mut line)).await.unwrap().unwrap();
    let mut blank = String::new();
    tokio::time::timeout(T, stdout.read_line(&mut blank)).await.unwrap().unwrap();
    assert_eq!(blank, "\n", "a reply ends with an empty line");
    line.trim_end().strip_prefix("action=").unwrap().to_owned()
}

#[tokio::test]
async fn spawn_mode_with_stdio_flag_on_pipes() {
    let dns = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &dns, "");
    let mut child = tokio::process::Command::new(bin_path(BIN))
        .args(["--stdio", "--config", config.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let got =
        stdio_exchange(&mut stdin, &mut stdout, &rcpt("192.0.2.10", "mail.e2e.test", "a@pass.e2e.test", "4.a")).await;
    assert_eq!(format!("{got}"), PASS_HEADER);
    let got =
        stdio_exchange(&mut stdin, &mut stdout, &rcpt("192.0.2.10", "mail.e2e.test", "a@fail.e2e.test", "4.b")).await;
    assert_eq!(got, FAIL_REPLY);
    // Postfix closes the stream when the smtpd goes: the child exits by itself, cleanly.
    drop(stdin);
    let status = tokio::time::timeout(T, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn spawn_mode_is_automatic_on_a_socket_stdin() {
    let dns = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &dns, "");
    // What spawn(8) hands its child: one end of a socket as stdin, stdout and stderr.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd: std::os::fd::OwnedFd = theirs.into();
    let mut child = tokio::process::Command::new(bin_path(BIN))
        .args(["--config", config.to_str().unwrap()])
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    ours.set_nonblocking(true).unwrap();
    let stream = tokio::net::UnixStream::from_std(ours).unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let got = stdio_exchange(&mut w, &mut r, &rcpt("192.0.2.10", "mail.e2e.test", "a@fail.e2e.test", "5.a")).await;
    assert_eq!(got, FAIL_REPLY, "nothing but the reply may reach the socket (logs go to syslog)");
    drop(w);
    let status = tokio::time::timeout(T, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn check_command_prints_results_trace_and_action() {
    let dns = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &dns, "");
    let out = tokio::process::Command::new(bin_path(BIN))
        .args([
            "check",
            "--config",
            config.to_str().unwrap(),
            "--ip",
            "192.0.2.10",
            "--helo",
            "mail.e2e.test",
            "--sender",
            "a@fail.e2e.test",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a refused message exits 1:\n{text}");
    assert!(text.contains("helo: pass for postmaster@mail.e2e.test (matched a)"), "{text}");
    assert!(text.contains("mailfrom: fail for a@fail.e2e.test (matched all)"), "{text}");
    // The trace reads as sentences an admin can follow, a line per step, not Rust's debug
    // output: the query, the TXT lookup, the record, each mechanism and the result.
    for step in [
        "executing SPF query for domain \"fail.e2e.test\"",
        "looking up TXT records for \"fail.e2e.test\"",
        "evaluating mechanism \"ip4:198.51.100.1\"",
        "evaluated SPF query to result \"fail\"",
    ] {
        assert!(text.contains(step), "the trace lacks {step:?}:\n{text}");
    }
    assert!(!text.contains("Name(\"") && !text.contains("EvaluateMechanism"), "debug output in the trace:\n{text}");
    assert!(text.contains("decision: mailfrom fail -> reject"), "{text}");
    assert!(text.contains(&format!("action: {FAIL_REPLY}")), "{text}");

    let out = tokio::process::Command::new(bin_path(BIN))
        .args(["check", "--config", config.to_str().unwrap(), "--ip", "192.0.2.10", "--sender", ""])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("helo: none") && text.contains("(no HELO name)"), "{text}");
    assert!(text.contains("mailfrom: none"), "{text}");
    assert!(text.contains("action: PREPEND Received-SPF: none"), "{text}");

    let out = tokio::process::Command::new(bin_path(BIN)).args(["check", "--helo", "x"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(64));
}
