//! The real Postfix against the real `postward-authd`: a private Postfix instance on loopback
//! (`smtpd_sasl_type = dovecot`) authenticates SMTP clients through authd's socket. Right
//! credentials get 235 over PLAIN and LOGIN, wrong ones 535, an authenticated client may
//! relay under the name authd returned, and no password shows in either program's log.
//!
//! Needs root and the `postfix` package (CI installs it); elsewhere the test says it was
//! skipped. Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use postward_tests::postfix::{self, Postfix, PostfixOptions};
use postward_tests::process::{DaemonProcess, bin_path, start_with_config};
use postward_tests::smtp::SmtpClient;

const T: Duration = Duration::from_secs(20);
/// Distinctive, so any trace of them in a log is found.
const ALICE_PASSWORD: &str = "Qx7-alice-Correct-Staple";
const BOB_PASSWORD: &str = "Wv3-bob-Tr0ub4dor-and-3";
const WRONG: &str = "Jk5-not-the-password-Zz";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `postward-authd pw`: the SHA512-CRYPT hash a real deployment would store.
fn sha512_crypt(password: &str) -> String {
    let out = std::process::Command::new(bin_path("postward-authd"))
        .args(["pw", "-s", "SHA512-CRYPT", "-p", password])
        .output()
        .unwrap();
    assert!(out.status.success(), "pw failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn start_authd(dir: &Path) -> DaemonProcess {
    let passwd = dir.join("passwd");
    std::fs::write(
        &passwd,
        format!(
            "alice@example.com:{{PLAIN}}{ALICE_PASSWORD}::::::\n\
             bob@example.com:{}::::::\n\
             carol@example.com:{{PLAIN}}{ALICE_PASSWORD}::::::nologin\n",
            sha512_crypt(BOB_PASSWORD)
        ),
    )
    .unwrap();
    let socket = dir.join("auth");
    let config = dir.join("authd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"unix:{}\"]\nallow_root = true\nsocket_mode = \"0660\"\nsocket_group = \"postfix\"\n\
             [log]\nlevel = \"trace\"\n\
             [auth]\nfailure_delay = \"100ms\"\n[throttle]\ninitial = \"100ms\"\nmax = \"400ms\"\n\
             [passdb]\npath = \"{}\"\n",
            socket.display(),
            passwd.display()
        ),
    )
    .unwrap();
    start_with_config("postward-authd", &config, &socket, T).await
}

fn client_address(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

#[tokio::test]
async fn postfix_authenticates_through_authd() {
    if let Some(why) = postfix::unavailable() {
        postward_tests::skipped!("{why}");
        return;
    }
    let dir = tempfile::Builder::new().prefix("postward-authd-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // smtpd opens the auth socket when a session starts: authd must be up first.
    let authd = start_authd(dir.path()).await;
    let options = PostfixOptions {
        main_cf: format!(
            "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = {}\n\
             smtpd_sasl_security_options = noanonymous\n",
            dir.path().join("auth").display()
        ),
        smtpd_options: Vec::new(),
    };
    let postfix = Postfix::start(&options).await.unwrap();
    let addr = postfix.smtp_addr();

    // Right credentials: 235 over PLAIN (stored as {PLAIN}) and LOGIN (stored SHA512-CRYPT);
    // the session may then relay, and Postfix records the user authd named.
    let mut c = SmtpClient::connect(&addr, client_address(11)).await.unwrap();
    let ehlo = c.ehlo("client.example").await.unwrap();
    assert!(ehlo.text.lines().any(|l| l == "AUTH PLAIN LOGIN"), "EHLO: {ehlo}");
    let r = c.auth_plain("alice@example.com", ALICE_PASSWORD).await.unwrap();
    assert_eq!(r.code, 235, "PLAIN with the right password: {r}");
    assert_eq!(c.command("MAIL FROM:<alice@example.com>").await.unwrap().code, 250);
    let rcpt = c.command("RCPT TO:<someone@elsewhere.example>").await.unwrap();
    assert_eq!(rcpt.code, 250, "an authenticated client may relay: {rcpt}");
    c.quit().await;

    let mut c = SmtpClient::connect(&addr, client_address(12)).await.unwrap();
    c.ehlo("client.example").await.unwrap();
    let r = c.auth_login("bob@example.com", BOB_PASSWORD).await.unwrap();
    assert_eq!(r.code, 235, "LOGIN with the right password: {r}");
    c.quit().await;

    // Wrong credentials: 535, the session stays usable and may not relay.
    let mut c = SmtpClient::connect(&addr, client_address(13)).await.unwrap();
    c.ehlo("client.example").await.unwrap();
    let r = c.auth_plain("alice@example.com", WRONG).await.unwrap();
    assert_eq!(r.code, 535, "PLAIN with a wrong password: {r}");
    let r = c.auth_login("bob@example.com", WRONG).await.unwrap();
    assert_eq!(r.code, 535, "LOGIN with a wrong password: {r}");
    let r = c.auth_plain("nobody@example.com", ALICE_PASSWORD).await.unwrap();
    assert_eq!(r.code, 535, "unknown user: {r}");
    // A disabled account with the right password: FAIL, never OK (Postfix would accept it).
    let r = c.auth_plain("carol@example.com", ALICE_PASSWORD).await.unwrap();
    assert_eq!(r.code, 535, "nologin account: {r}");
    assert_eq!(c.command("MAIL FROM:<x@example.com>").await.unwrap().code, 250);
    let rcpt = c.command("RCPT TO:<someone@elsewhere.example>").await.unwrap();
    assert_eq!(rcpt.code, 554, "an unauthenticated client may not relay: {rcpt}");
    c.quit().await;

    authd.wait_for_log("authentication ok: user=alice@example.com method=PLAIN rip=127.0.0.11 service=smtp", T).await;
    authd.wait_for_log("authentication ok: user=bob@example.com method=LOGIN rip=127.0.0.12 service=smtp", T).await;
    authd.wait_for_log("authentication failed: user=carol@example.com method=PLAIN rip=127.0.0.13", T).await;
    // Postfix logs the queue file of the relayed message with the SASL user it was told.
    let maillog = wait_for_maillog(&postfix, "sasl_username=alice@example.com").await;
    assert!(maillog.contains("SASL PLAIN authentication failed"), "{maillog}");
    assert!(maillog.contains("SASL LOGIN authentication failed"), "{maillog}");

    let authd_log = authd.log().join("\n");
    for secret in [ALICE_PASSWORD, BOB_PASSWORD, WRONG] {
        for form in [
            secret.to_owned(),
            b64(secret),
            b64(&format!("\0alice@example.com\0{secret}")),
            b64(&format!("\0nobody@example.com\0{secret}")),
            b64(&format!("\0carol@example.com\0{secret}")),
        ] {
            assert!(!authd_log.contains(&form), "authd logged {form:?}");
            assert!(!maillog.contains(&form), "Postfix logged {form:?}");
        }
    }
    postfix.stop().await;
}

async fn wait_for_maillog(postfix: &Postfix, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let log = postfix.maillog();
        if log.contains(needle) {
            return log;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {needle:?} in the mail log:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
