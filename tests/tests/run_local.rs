//! The README's first command, `contrib/run-local.sh`, and the Postfix lines it prints: run as
//! root (the script then binds the sockets for group postfix and switches to nobody), a real
//! private Postfix configured with exactly the printed block checks SPF, greylists and
//! authenticates through the script's running daemons.
//!
//! The script is told to use the binaries this test run built (`POSTWARD_BIN_DIR`: cargo holds
//! its build lock while tests run), a run directory of its own and the in-process DNS server.
//! The one line added to the printed block is `mynetworks`, so that the loopback test clients
//! are not let through by its `permit_mynetworks`. Requires `cargo build --workspace` first.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use postward_tests::dns::DnsFixture;
use postward_tests::postfix::{self, Postfix, PostfixOptions};
use postward_tests::process::bin_path;
use postward_tests::smtp::SmtpClient;
use tokio::io::{AsyncBufReadExt, BufReader};

const T: Duration = Duration::from_secs(60);

/// The printed main.cf block: from `smtpd_recipient_restrictions =` to `smtpd_sasl_path = …`.
fn paste_block(banner: &str) -> String {
    let start = banner.find("smtpd_recipient_restrictions =").expect("no restrictions in the banner");
    let rest = &banner[start..];
    let end = rest.find("smtpd_sasl_path = ").expect("no smtpd_sasl_path in the banner");
    let line_end = rest[end..].find('\n').map_or(rest.len(), |i| end + i);
    rest[..line_end].to_owned()
}

#[tokio::test]
async fn the_printed_postfix_lines_work_with_a_real_postfix() {
    if let Some(why) = postfix::unavailable() {
        postward_tests::skipped!("{why}");
        return;
    }
    let dns = DnsFixture::builder()
        .zone("pass.test")
        .txt("pass.test", "v=spf1 ip4:127.0.0.0/8 -all")
        .zone("fail.test")
        .txt("fail.test", "v=spf1 -all")
        .start()
        .await
        .unwrap();
    let rundir = tempfile::Builder::new().prefix("postward-runlocal-").tempdir().unwrap();
    std::fs::set_permissions(rundir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/run-local.sh");
    let bin_dir = bin_path("postward-greyd").parent().unwrap().to_owned();
    let mut child = tokio::process::Command::new("bash")
        .args([script, "--for", "120"])
        .env("POSTWARD_BIN_DIR", &bin_dir)
        .env("POSTWARD_RUN_DIR", rundir.path())
        .env("POSTWARD_DNS", dns.nameserver())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = tokio::time::timeout(T, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Try authd:") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(read, Ok(true)), "the script printed no banner:\n{banner}");
    assert!(banner.contains("as user nobody"), "{banner}");
    assert!(!banner.contains("WARNING"), "{banner}");
    assert!(!banner.contains("smtpd_policy_service_default_action"), "{banner}");
    let block = paste_block(&banner);

    let mail = rundir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    nix::unistd::chown(&mail, Some(nix::unistd::Uid::from_raw(65534)), Some(nix::unistd::Gid::from_raw(65534)))
        .unwrap();
    let main_cf = format!(
        "{block}\nmynetworks = 192.0.2.0/24\n\
         virtual_mailbox_domains = example.net\nvirtual_mailbox_base = {}\n\
         virtual_mailbox_maps = static:inbox/\nvirtual_uid_maps = static:65534\nvirtual_gid_maps = static:65534\n",
        mail.display()
    );
    let pf = Postfix::start(&PostfixOptions { main_cf, smtpd_options: Vec::new() }).await.unwrap();

    // SPF through policyd: a forged sender is rejected.
    let mut c = SmtpClient::connect(&pf.smtp_addr(), Ipv4Addr::new(127, 0, 0, 71)).await.unwrap();
    assert_eq!(c.ehlo("mail.pass.test").await.unwrap().code, 250);
    assert_eq!(c.command("MAIL FROM:<someone@fail.test>").await.unwrap().code, 250);
    let r = c.command("RCPT TO:<rcpt@example.net>").await.unwrap();
    assert_eq!(r.code, 550, "{r}");
    assert!(r.text.contains("5.7.23"), "{r}");
    // Greylisting through greyd: an SPF pass is greylisted on its first attempt.
    assert_eq!(c.command("RSET").await.unwrap().code, 250);
    assert_eq!(c.command("MAIL FROM:<someone@pass.test>").await.unwrap().code, 250);
    let r = c.command("RCPT TO:<rcpt@example.net>").await.unwrap();
    assert_eq!(r.code, 450, "{r}");
    assert!(r.text.to_ascii_lowercase().contains("greylist"), "{r}");
    c.quit().await;
    // SMTP AUTH through authd, with the demo account the script made.
    let password = std::fs::read_to_string(rundir.path().join("demo-password")).unwrap();
    let mut c = SmtpClient::connect(&pf.smtp_addr(), Ipv4Addr::new(127, 0, 0, 72)).await.unwrap();
    let ehlo = c.ehlo("client.example").await.unwrap();
    assert!(ehlo.text.contains("AUTH"), "{ehlo}");
    let r = c.auth_plain("demo@localhost", password.trim()).await.unwrap();
    assert_eq!(r.code, 235, "{r}");
    c.quit().await;
    pf.stop().await;

    // SIGTERM: the script's trap stops its daemons.
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    assert!(status.is_ok(), "the script did not stop on SIGTERM");
    let config = rundir.path().join("greyd.toml");
    let left = std::process::Command::new("pgrep").args(["-f", &config.display().to_string()]).output().unwrap();
    assert!(left.stdout.is_empty(), "daemons left running: {}", String::from_utf8_lossy(&left.stdout));
}
