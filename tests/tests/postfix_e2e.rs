//! End to end: a private Postfix on loopback with all three postward daemons on Unix sockets
//! and the in-process DNS fixture, driven over SMTP. Each test is one scenario (its name says
//! which) and asserts Postfix's reply code and text and, where mail is accepted, the
//! delivered message and its headers.
//!
//! Postfix's restrictions, as an admin would write them:
//!   smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination,
//!       check_policy_service <policyd>, check_recipient_access inline:{grey.example.net=greylisting}
//!   greylisting = check_policy_service <greyd>
//! so only mail to grey.example.net is greylisted (every scenario stays fast), and mail to
//! example.net and grey.example.net is delivered by virtual(8) to one Maildir.
//!
//! Clients connect from several 127.0.0.x addresses; DNS lists never see loopback or private
//! addresses, so the list scenarios take a public address with Postfix's XCLIENT, as a proxy
//! in front of Postfix would. Needs root and the `postfix` package (CI has both); elsewhere
//! each test says it was skipped. Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postward_tests::dns::{DnsFixture, DnsFixtureBuilder};
use postward_tests::postfix::{self, Postfix, PostfixOptions};
use postward_tests::process::{DaemonProcess, start_with_config};
use postward_tests::smtp::{Reply, SmtpClient};

const T: Duration = Duration::from_secs(20);
const PASSWORD: &str = "E2e-Secret-Kite-77";
/// greyd's delay in these tests.
const GREY_DELAY: Duration = Duration::from_secs(2);

/// The DNS data: SPF records per sender domain, one DNSBL and one DNSWL.
fn zones() -> DnsFixtureBuilder {
    DnsFixture::builder()
        .zone("pass.test")
        .txt("pass.test", "v=spf1 ip4:127.0.0.0/8 -all")
        .zone("fail.test")
        .txt("fail.test", "v=spf1 -all")
        .zone("soft.test")
        .txt("soft.test", "v=spf1 ~all")
        .zone("none.test")
        .a("none.test", "192.0.2.200")
        .zone("temp.test")
        .servfail("temp.test")
        .zone("everyone.test")
        .txt("everyone.test", "v=spf1 ip4:0.0.0.0/0 -all")
        // RFC 5782 test points (127.0.0.2 listed, 127.0.0.1 not), then the entries.
        .zone("bl.test")
        .a("2.0.0.127.bl.test", "127.0.0.2")
        .a("99.100.51.198.bl.test", "127.0.0.2")
        // A loopback client, listed: found only with dnsbl.query_private_clients.
        .a("45.0.0.127.bl.test", "127.0.0.2")
        .txt("99.100.51.198.bl.test", "Listed for e2e testing")
        .zone("wl.test")
        .a("2.0.0.127.wl.test", "127.0.10.2")
        .a("50.100.51.198.wl.test", "127.0.10.2")
}

/// Which daemons a scenario runs.
#[derive(Clone, Copy)]
struct Daemons {
    policyd: bool,
    greyd: bool,
    authd: bool,
    /// Lines added to policyd's `[dnsbl]` section.
    dnsbl_extra: &'static str,
}

const ALL: Daemons = Daemons { policyd: true, greyd: true, authd: true, dnsbl_extra: "" };

struct E2e {
    _dns: DnsFixture,
    dir: tempfile::TempDir,
    daemons: Vec<(&'static str, DaemonProcess)>,
    postfix: Option<Postfix>,
}

impl E2e {
    /// `None` (after saying so) when Postfix cannot run here.
    async fn start(test: &str, which: Daemons) -> Option<E2e> {
        if let Some(why) = postfix::unavailable() {
            postward_tests::skipped!("{why} ({test})");
            return None;
        }
        let dns = zones().start().await.unwrap();
        let dir = tempfile::Builder::new().prefix("postward-e2e-").tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let server = |name: &str| {
            format!(
                "[server]\nlisten = [\"unix:{}/{name}.sock\"]\nallow_root = true\nsocket_mode = \"0660\"\n\
                 socket_group = \"postfix\"\n[log]\nlevel = \"debug\"\n",
                d.display()
            )
        };
        let dns_section = format!("[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n", dns.nameserver());
        let mut daemons = Vec::new();
        if which.policyd {
            let config = format!(
                "{}{dns_section}[dnsbl]\nsites = [\"bl.test=127.0.0.2*3\", \"wl.test=127.0.10.[0..255]*-5\"]\n{}\n\
                 [spf]\nauthserv_id = \"mx.postward.test\"\n",
                server("policyd"),
                which.dnsbl_extra
            );
            daemons.push(("policyd", start_daemon(d, "policyd", &config).await));
        }
        if which.greyd {
            let config = format!(
                "{}{dns_section}[greylist]\ndelay = \"{}s\"\nheader = true\n[store]\nurl = \"sqlite://{}/greyd.sqlite\"\n",
                server("greyd"),
                GREY_DELAY.as_secs(),
                d.display()
            );
            daemons.push(("greyd", start_daemon(d, "greyd", &config).await));
        }
        if which.authd {
            std::fs::write(d.join("passwd"), format!("alice@example.net:{{PLAIN}}{PASSWORD}::::::\n")).unwrap();
            let config = format!(
                "{}[auth]\nfailure_delay = \"100ms\"\n[passdb]\npath = \"{}/passwd\"\n",
                server("authd"),
                d.display()
            );
            daemons.push(("authd", start_daemon(d, "authd", &config).await));
        }
        let mail = d.join("mail");
        std::fs::create_dir(&mail).unwrap();
        nix::unistd::chown(&mail, Some(nix::unistd::Uid::from_raw(65534)), Some(nix::unistd::Gid::from_raw(65534)))
            .unwrap();
        let sasl = if which.authd {
            format!(
                "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = {}/authd.sock\n",
                d.display()
            )
        } else {
            String::new()
        };
        let main_cf = format!(
            "{sasl}\
             smtpd_authorized_xclient_hosts = 127.0.0.0/8\n\
             smtpd_restriction_classes = greylisting\n\
             greylisting = check_policy_service unix:{dir}/greyd.sock\n\
             smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination,\n  \
               check_policy_service unix:{dir}/policyd.sock,\n  \
               check_recipient_access inline:{{grey.example.net=greylisting}}\n\
             smtpd_policy_service_timeout = 5s\n\
             virtual_mailbox_domains = example.net, grey.example.net\n\
             virtual_mailbox_base = {dir}/mail\n\
             virtual_mailbox_maps = static:inbox/\n\
             virtual_uid_maps = static:65534\n\
             virtual_gid_maps = static:65534\n",
            dir = d.display()
        );
        let postfix = Postfix::start(&PostfixOptions { main_cf, smtpd_options: Vec::new() }).await.unwrap();
        Some(E2e { _dns: dns, dir, daemons, postfix: Some(postfix) })
    }

    fn postfix(&self) -> &Postfix {
        self.postfix.as_ref().unwrap()
    }

    /// A session from 127.0.0.`n`, greeted with EHLO `mail.pass.test`.
    async fn session(&self, n: u8) -> SmtpClient {
        let mut c = SmtpClient::connect(&self.postfix().smtp_addr(), Ipv4Addr::new(127, 0, 0, n)).await.unwrap();
        assert_eq!(c.ehlo("mail.pass.test").await.unwrap().code, 250);
        c
    }

    /// The delivered message whose Subject is `subject`, waiting for delivery.
    async fn delivered(&self, subject: &str) -> String {
        let new = self.dir.path().join("mail/inbox/new");
        let deadline = tokio::time::Instant::now() + T;
        loop {
            for entry in std::fs::read_dir(&new).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if text.contains(&format!("Subject: {subject}")) {
                    return text;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message {subject:?} delivered; mail log:\n{}",
                self.postfix().maillog()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn daemon(&self, name: &str) -> &DaemonProcess {
        &self.daemons.iter().find(|(n, _)| *n == name).unwrap().1
    }

    fn stop_daemon(&mut self, name: &str) {
        self.daemons.retain(|(n, _)| *n != name);
    }

    async fn finish(mut self) {
        if let Some(p) = self.postfix.take() {
            p.stop().await;
        }
    }
}

async fn start_daemon(dir: &Path, name: &str, config: &str) -> DaemonProcess {
    let path: PathBuf = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    start_with_config(&format!("postward-{name}"), &path, &dir.join(format!("{name}.sock")), T).await
}

fn message(subject: &str) -> String {
    format!(
        "From: <sender@example.org>\nTo: <rcpt@example.net>\nSubject: {subject}\n\nHello from the e2e test.\n.leading dot\n"
    )
}

/// MAIL FROM and RCPT TO; the RCPT reply.
async fn envelope(c: &mut SmtpClient, from: &str, to: &str) -> Reply {
    let mail = c.command(&format!("MAIL FROM:<{from}>")).await.unwrap();
    assert_eq!(mail.code, 250, "MAIL FROM:<{from}>: {mail}");
    c.command(&format!("RCPT TO:<{to}>")).await.unwrap()
}

#[tokio::test]
async fn greylist_first_attempt_deferred_retry_accepted() {
    let Some(e) = E2e::start("greylist_first_attempt_deferred_retry_accepted", ALL).await else { return };
    let mut c = e.session(21).await;
    let first = envelope(&mut c, "someone@pass.test", "rcpt@grey.example.net").await;
    assert_eq!(first.code, 450, "{first}");
    assert!(first.text.contains("4.7.1") && first.text.contains("Greylisted: please retry in"), "{first}");
    c.quit().await;
    tokio::time::sleep(GREY_DELAY + Duration::from_millis(300)).await;
    // The retry comes from another address of the same /24, as a pool of MX hosts would.
    let mut c = e.session(22).await;
    let retry = envelope(&mut c, "someone@pass.test", "rcpt@grey.example.net").await;
    assert_eq!(retry.code, 250, "{retry}");
    assert_eq!(c.data(&message("greylisted-then-accepted")).await.unwrap().code, 250);
    c.quit().await;
    let delivered = e.delivered("greylisted-then-accepted").await;
    assert!(delivered.contains("X-Greylist: delayed"), "{delivered}");
    assert!(delivered.contains("Received-SPF: pass"), "{delivered}");
    // Dot-stuffing undone: the body line arrives as written.
    assert!(delivered.contains("\n.leading dot") && !delivered.contains("\n..leading dot"), "{delivered}");
    e.finish().await;
}

#[tokio::test]
async fn spf_pass_adds_its_header() {
    let Some(e) = E2e::start("spf_pass_adds_its_header", ALL).await else { return };
    let mut c = e.session(31).await;
    assert_eq!(envelope(&mut c, "someone@pass.test", "rcpt@example.net").await.code, 250);
    assert_eq!(c.data(&message("spf-pass")).await.unwrap().code, 250);
    c.quit().await;
    let delivered = e.delivered("spf-pass").await;
    let header = delivered.lines().find(|l| l.starts_with("Received-SPF:")).unwrap_or_default().to_owned();
    assert!(header.starts_with("Received-SPF: pass"), "{delivered}");
    assert!(header.contains("127.0.0.31") || delivered.contains("client-ip=127.0.0.31"), "{delivered}");
    e.finish().await;
}

#[tokio::test]
async fn spf_fail_is_rejected_with_5_7_23() {
    let Some(e) = E2e::start("spf_fail_is_rejected_with_5_7_23", ALL).await else { return };
    let mut c = e.session(32).await;
    let r = envelope(&mut c, "someone@fail.test", "rcpt@example.net").await;
    assert_eq!(r.code, 550, "{r}");
    assert!(r.text.contains("5.7.23") && r.text.contains("SPF fail") && r.text.contains("fail.test"), "{r}");
    c.quit().await;
    e.finish().await;
}

/// An empty local part (`postmaster`, RFC 7208 §4.3) and a quoted one with a space are
/// checked like any other: a forger gets no way past an SPF fail with them.
#[tokio::test]
async fn spf_fail_with_an_empty_or_quoted_local_part_is_rejected() {
    let Some(e) = E2e::start("spf_fail_with_an_empty_or_quoted_local_part_is_rejected", ALL).await else { return };
    for (n, from) in [(36, "@fail.test"), (37, "\"x y\"@fail.test")] {
        let mut c = e.session(n).await;
        let r = envelope(&mut c, from, "rcpt@example.net").await;
        assert_eq!(r.code, 550, "MAIL FROM:<{from}>: {r}");
        assert!(
            r.text.contains("5.7.23") && r.text.contains("SPF fail") && r.text.contains("fail.test"),
            "{from}: {r}"
        );
        c.quit().await;
    }
    e.finish().await;
}

/// `ip4:0.0.0.0/0` authorizes every address: the mail passes SPF and is delivered.
#[tokio::test]
async fn spf_zero_prefix_passes() {
    let Some(e) = E2e::start("spf_zero_prefix_passes", ALL).await else { return };
    let mut c = e.session(38).await;
    assert_eq!(envelope(&mut c, "someone@everyone.test", "rcpt@example.net").await.code, 250);
    assert_eq!(c.data(&message("spf-zero-prefix")).await.unwrap().code, 250);
    c.quit().await;
    let delivered = e.delivered("spf-zero-prefix").await;
    assert!(delivered.contains("Received-SPF: pass"), "{delivered}");
    assert!(delivered.contains("mechanism=\"ip4:0.0.0.0/0\""), "{delivered}");
    e.finish().await;
}

/// A loopback client is not sent to the lists by default, and the log says so; with
/// `query_private_clients` it is, and its listing rejects it.
#[tokio::test]
async fn dnsbl_private_client_skipped_by_default_and_queried_on_request() {
    let test = "dnsbl_private_client_skipped_by_default_and_queried_on_request";
    let Some(e) = E2e::start(test, ALL).await else { return };
    let mut c = e.session(45).await;
    assert_eq!(envelope(&mut c, "someone@pass.test", "rcpt@example.net").await.code, 250);
    c.quit().await;
    let line = e.daemon("policyd").wait_for_log("[127.0.0.45]", T).await;
    assert!(line.contains("dnsbl_skipped=private-client"), "{line}");
    e.finish().await;

    let asked = Daemons { dnsbl_extra: "query_private_clients = true", ..ALL };
    let Some(e) = E2e::start(test, asked).await else { return };
    let mut c = e.session(45).await;
    let r = envelope(&mut c, "someone@pass.test", "rcpt@example.net").await;
    assert_eq!(r.code, 554, "{r}");
    assert!(r.text.contains("127.0.0.45") && r.text.contains("bl.test"), "{r}");
    c.quit().await;
    e.finish().await;
}

#[tokio::test]
async fn spf_softfail_and_none_are_accepted_with_header() {
    let Some(e) = E2e::start("spf_softfail_and_none_are_accepted_with_header", ALL).await else { return };
    for (n, domain, result) in [(33, "soft.test", "softfail"), (34, "none.test", "none")] {
        let mut c = e.session(n).await;
        assert_eq!(envelope(&mut c, &format!("someone@{domain}"), "rcpt@example.net").await.code, 250);
        let subject = format!("spf-{result}");
        assert_eq!(c.data(&message(&subject)).await.unwrap().code, 250);
        c.quit().await;
        let delivered = e.delivered(&subject).await;
        assert!(delivered.contains(&format!("Received-SPF: {result}")), "{delivered}");
    }
    e.finish().await;
}

#[tokio::test]
async fn spf_temperror_is_deferred() {
    let Some(e) = E2e::start("spf_temperror_is_deferred", ALL).await else { return };
    let mut c = e.session(35).await;
    let r = envelope(&mut c, "someone@temp.test", "rcpt@example.net").await;
    assert_eq!(r.code, 450, "{r}");
    assert!(r.text.contains("SPF temperror") && r.text.contains("temp.test"), "{r}");
    c.quit().await;
    e.finish().await;
}

#[tokio::test]
async fn dnsbl_listed_client_is_rejected_with_the_list_named() {
    let Some(e) = E2e::start("dnsbl_listed_client_is_rejected_with_the_list_named", ALL).await else { return };
    let mut c = e.session(41).await;
    assert_eq!(c.xclient("198.51.100.99", None).await.unwrap().code, 220);
    assert_eq!(c.ehlo("mail.none.test").await.unwrap().code, 250);
    let r = envelope(&mut c, "someone@none.test", "rcpt@example.net").await;
    assert_eq!(r.code, 554, "{r}");
    assert!(r.text.contains("5.7.1") && r.text.contains("198.51.100.99") && r.text.contains("bl.test"), "{r}");
    assert!(r.text.contains("Listed for e2e testing"), "{r}");
    c.quit().await;
    e.finish().await;
}

#[tokio::test]
async fn dnswl_listed_client_is_exempted() {
    let Some(e) = E2e::start("dnswl_listed_client_is_exempted", ALL).await else { return };
    let mut c = e.session(42).await;
    assert_eq!(c.xclient("198.51.100.50", None).await.unwrap().code, 220);
    assert_eq!(c.ehlo("mail.none.test").await.unwrap().code, 250);
    // fail.test would be rejected by SPF; the allowlisted client skips it.
    assert_eq!(envelope(&mut c, "someone@fail.test", "rcpt@example.net").await.code, 250);
    assert_eq!(c.data(&message("dnswl-exempt")).await.unwrap().code, 250);
    c.quit().await;
    let delivered = e.delivered("dnswl-exempt").await;
    assert!(!delivered.contains("Received-SPF: fail"), "{delivered}");
    e.finish().await;
}

#[tokio::test]
async fn auth_plain_and_login_relay_and_skip_policy_checks() {
    let Some(e) = E2e::start("auth_plain_and_login_relay_and_skip_policy_checks", ALL).await else { return };
    let mut c = e.session(51).await;
    let r = c.auth_plain("alice@example.net", PASSWORD).await.unwrap();
    assert_eq!(r.code, 235, "{r}");
    // Relay, from a sender SPF would reject: authenticated clients skip the policy checks.
    let r = envelope(&mut c, "alice@fail.test", "someone@elsewhere.example").await;
    assert_eq!(r.code, 250, "{r}");
    c.quit().await;

    let mut c = e.session(52).await;
    assert_eq!(c.auth_login("alice@example.net", PASSWORD).await.unwrap().code, 235);
    c.quit().await;

    let mut c = e.session(53).await;
    let r = c.auth_plain("alice@example.net", "wrong-password").await.unwrap();
    assert_eq!(r.code, 535, "{r}");
    assert!(r.text.contains("5.7.8"), "{r}");
    let r = envelope(&mut c, "alice@pass.test", "someone@elsewhere.example").await;
    assert_eq!(r.code, 554, "relay without AUTH: {r}");
    assert!(r.text.contains("Relay access denied"), "{r}");
    c.quit().await;
    e.finish().await;
}

#[tokio::test]
async fn stopped_policy_daemons_give_451_4_3_5() {
    let Some(mut e) = E2e::start("stopped_policy_daemons_give_451_4_3_5", ALL).await else { return };
    e.stop_daemon("policyd");
    let mut c = e.session(61).await;
    let r = envelope(&mut c, "someone@pass.test", "rcpt@example.net").await;
    assert_eq!(r.code, 451, "{r}");
    assert!(r.text.contains("4.3.5") && r.text.contains("Server configuration problem"), "{r}");
    c.quit().await;
    e.finish().await;
}

#[tokio::test]
async fn stopped_greyd_defers_only_greylisted_recipients() {
    let Some(mut e) = E2e::start("stopped_greyd_defers_only_greylisted_recipients", ALL).await else { return };
    e.stop_daemon("greyd");
    let mut c = e.session(62).await;
    let r = envelope(&mut c, "someone@pass.test", "rcpt@grey.example.net").await;
    assert_eq!(r.code, 451, "{r}");
    assert!(r.text.contains("4.3.5") && r.text.contains("Server configuration problem"), "{r}");
    let r = c.command("RCPT TO:<rcpt@example.net>").await.unwrap();
    assert_eq!(r.code, 250, "a recipient outside the greylisting class: {r}");
    c.quit().await;
    e.finish().await;
}

#[tokio::test]
async fn stopped_authd_closes_sessions_before_the_banner() {
    let Some(mut e) = E2e::start("stopped_authd_closes_sessions_before_the_banner", ALL).await else { return };
    e.stop_daemon("authd");
    let addr = e.postfix().smtp_addr();
    let session = SmtpClient::connect(&addr, Ipv4Addr::new(127, 0, 0, 71)).await;
    assert!(session.is_err(), "smtpd greeted a client although it cannot list SASL mechanisms");
    let deadline = tokio::time::Instant::now() + T;
    while !e.postfix().maillog().contains("no SASL authentication mechanisms") {
        assert!(tokio::time::Instant::now() < deadline, "mail log:\n{}", e.postfix().maillog());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    e.finish().await;
}
