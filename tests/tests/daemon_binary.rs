//! The real daemon binary (`postward-greyd`, on the shared runtime) under process-level
//! events: graceful shutdown, SIGHUP reload, stale and live sockets, configuration checks,
//! privileges. Requires `cargo build --workspace` first (the README's test command does it).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use postward_tests::client::{ClientError, PolicyClient, rcpt_request};
use postward_tests::process::{
    DaemonProcess, Sig, TestFiles, bin_path, root_ok, running_as_root, start_with_config, wait_for_path,
};

const BIN: &str = "postward-greyd";
const T: Duration = Duration::from_secs(10);

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup { dir: tempfile::tempdir().unwrap() }
    }
    /// Where the configuration and the socket are: one place, [`TestFiles`], decides both.
    fn files(&self) -> TestFiles {
        TestFiles::new(self.dir.path(), "greyd")
    }
    fn socket(&self) -> PathBuf {
        self.files().socket
    }
    fn config_path(&self) -> PathBuf {
        self.files().config
    }
    /// The greyd sections every test config gets: a store in the test directory (writable
    /// by nobody for the privilege test), and the test clients' network trusted, so these
    /// tests exercise the runtime, not greylisting.
    fn greyd_sections(&self) -> String {
        let state = self.dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        format!(
            "\n[greylist]\ntrusted_networks = [\"192.0.2.0/24\"]\n[sender_pools]\nspf = false\n[store]\nurl = \"sqlite://{}/greyd.sqlite\"\n",
            state.display()
        )
    }
    fn write_config(&self, extra_server: &str, rest: &str) -> PathBuf {
        let files = self.files();
        files.write(&format!("shutdown_grace = \"3s\"\n{extra_server}"), &format!("{rest}{}", self.greyd_sections()));
        files.config
    }
    async fn start(&self) -> DaemonProcess {
        let cfg = self.config_path();
        start_with_config(BIN, &cfg, &self.socket(), T).await
    }
    async fn client(&self) -> PolicyClient {
        PolicyClient::connect_unix(&self.socket()).await.unwrap()
    }
}

async fn ask(client: &mut PolicyClient) -> Result<String, ClientError> {
    client.request(&rcpt_request("192.0.2.10", "mx.example.org", "a@example.org", "b@example.net", "1")).await
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_request_then_exits() {
    let s = Setup::new();
    s.write_config("", "");
    let mut daemon = s.start().await;
    let mut idle = s.client().await;
    assert_eq!(ask(&mut idle).await.unwrap(), "DUNNO");
    // A request that is half written when SIGTERM arrives is still answered.
    let mut busy = s.client().await;
    busy.send_raw(b"request=smtpd_access_policy\nprotocol_state=RCPT\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    daemon.signal(Sig::SIGTERM);
    daemon.wait_for_log("SIGTERM received", T).await;
    busy.send_raw(b"client_address=192.0.2.1\n\n").await.unwrap();
    assert_eq!(busy.read_reply().await.unwrap(), "DUNNO", "in-flight request must be finished");
    // The idle connection is closed, new connections are refused, the process exits 0.
    assert!(idle.is_closed().await, "idle connection must be closed at shutdown");
    let status = daemon.wait(T).await.expect("daemon exits within the grace period");
    assert!(status.success(), "exit status {status:?}");
    assert!(!s.socket().exists(), "socket file removed at shutdown");
    assert!(PolicyClient::connect_unix(&s.socket()).await.is_err());
    assert!(daemon.log().iter().any(|l| l.contains("postward-greyd stopped")), "{:?}", daemon.log());
}

#[tokio::test]
async fn shutdown_grace_bounds_a_stalled_client() {
    let s = Setup::new();
    s.write_config("request_timeout = \"60s\"\n", "");
    let mut daemon = s.start().await;
    let mut stalled = s.client().await;
    stalled.send_raw(b"request=smtpd_access_policy\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    daemon.signal(Sig::SIGTERM);
    let status = daemon.wait(T).await.expect("daemon exits");
    assert!(status.success());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "exit after the 3s grace period, took {took:?}"
    );
    daemon.wait_for_log("still open are dropped", T).await;
}

#[tokio::test]
async fn sighup_reload_good_and_broken_files() {
    let s = Setup::new();
    s.write_config("", "[dns]\ntimeout = \"2s\"\n");
    let daemon = s.start().await;
    let mut client = s.client().await;
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO");

    // A good new file is taken.
    s.write_config("", "[dns]\ntimeout = \"3s\"\n");
    daemon.signal(Sig::SIGHUP);
    let line = daemon.wait_for_log("configuration reloaded from", T).await;
    assert!(line.contains(s.config_path().to_str().unwrap()), "{line}");
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO", "the same connection keeps working");

    // A broken file is refused with file, line and key, and the daemon keeps serving.
    s.write_config("", "[dns]\ntimeout = \"3 parsecs\"\n");
    daemon.signal(Sig::SIGHUP);
    let line = daemon.wait_for_log("reload failed", T).await;
    assert!(line.starts_with("error: reload failed, keeping the running configuration:"), "{line}");
    let text = std::fs::read_to_string(s.config_path()).unwrap();
    let line_no = text.lines().position(|l| l.starts_with("timeout")).unwrap() + 1;
    assert!(line.contains(&format!("line {line_no}: key dns.timeout: invalid duration \"3 parsecs\"")), "{line}");
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO");
    assert_eq!(ask(&mut s.client().await).await.unwrap(), "DUNNO", "new connections are served too");

    // Changing the socket needs a restart, and says so.
    std::fs::write(
        s.config_path(),
        format!(
            "[server]\nlisten = [\"unix:{}/other.sock\"]\n{}{}",
            s.dir.path().display(),
            root_ok(),
            s.greyd_sections()
        ),
    )
    .unwrap();
    daemon.signal(Sig::SIGHUP);
    let line = daemon.wait_for_log("take effect only after a restart", T).await;
    assert!(line.contains(": server.listen") && line.contains(" changed; "), "{line}");
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO");
    assert!(s.socket().exists(), "still listening on the original socket");

    // Every such key is named, not only the socket's (a new metrics endpoint, say).
    std::fs::write(
        s.config_path(),
        format!(
            "[server]\nlisten = [\"unix:{}\"]\nmetrics_listen = \"127.0.0.1:1\"\nmax_connections = 7\n{}{}",
            s.socket().display(),
            root_ok(),
            s.greyd_sections()
        ),
    )
    .unwrap();
    daemon.signal(Sig::SIGHUP);
    let line = daemon.wait_for_log("server.max_connections, server.metrics_listen", T).await;
    assert!(line.starts_with("warning: ") && line.contains("they take effect only after a restart"), "{line}");
}

#[tokio::test]
async fn stale_socket_replaced_live_socket_refused() {
    let s = Setup::new();
    s.write_config("", "");
    drop(std::os::unix::net::UnixListener::bind(s.socket()).unwrap());
    assert!(s.socket().exists(), "stale socket file in place");
    let first = s.start().await;
    first.wait_for_log("replacing stale socket", T).await;
    let mut client = s.client().await;
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO");

    // A second daemon on the same live socket refuses to start and leaves it alone.
    let mut second = DaemonProcess::start(BIN, &["--config", s.config_path().to_str().unwrap()]);
    let status = second.wait(T).await.expect("second daemon exits");
    assert_eq!(status.code(), Some(1));
    let log = second.log().join("\n");
    assert!(log.contains("is in use by a running process"), "{log}");
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO", "first daemon unaffected");
    assert_eq!(ask(&mut s.client().await).await.unwrap(), "DUNNO");
}

#[tokio::test]
async fn malformed_request_is_logged_and_closed_while_others_are_served() {
    let s = Setup::new();
    s.write_config("", "");
    let daemon = s.start().await;
    let mut good = s.client().await;
    let mut bad = s.client().await;
    bad.send_raw(b"request=smtpd_access_policy\nthis line has no equals sign\n\n").await.unwrap();
    assert!(matches!(bad.read_reply().await, Err(ClientError::Closed)));
    let line = daemon.wait_for_log("malformed policy request", T).await;
    assert!(line.starts_with("warning: malformed policy request from unix peer pid"), "{line}");
    assert!(
        line.contains("line 2 is not name=value: \"this line has no equals sign\"; closing connection without reply"),
        "{line}"
    );
    assert_eq!(ask(&mut good).await.unwrap(), "DUNNO");
    // One decision line per request, Postfix style.
    let decision = daemon.wait_for_log("dunno: RCPT from unknown[192.0.2.10]", T).await;
    assert!(
        decision.contains("from=<a@example.org> to=<b@example.net> helo=<mx.example.org> reason=trusted-network time="),
        "{decision}"
    );
}

fn check_config(path: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(bin_path(BIN))
        .args(["--check-config", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn check_config_names_key_and_line() {
    let s = Setup::new();
    let cfg = s.config_path();
    std::fs::write(&cfg, "[server]\nmax_connections = 10\n\n[dns]\nnameserver = [\"127.0.0.1\"]\n").unwrap();
    let (code, out) = check_config(&cfg);
    assert_eq!(code, Some(78), "{out}");
    assert!(
        out.contains(&format!("{}: line 5: key dns.nameserver: unknown field `nameserver`", cfg.display())),
        "{out}"
    );

    std::fs::write(&cfg, "[dns]\nnameservers = [\"not-an-ip\"]\n").unwrap();
    let (code, out) = check_config(&cfg);
    assert_eq!(code, Some(78), "{out}");
    assert!(out.contains("line 2: key dns.nameservers: invalid nameserver \"not-an-ip\""), "{out}");

    std::fs::write(&cfg, "[dns]\n\nattempts = 0\n").unwrap();
    let (code, out) = check_config(&cfg);
    assert_eq!(code, Some(78), "{out}");
    assert!(out.contains("line 3: key dns.attempts: attempts must be at least 1"), "{out}");

    std::fs::write(&cfg, "[server]\nmax_connections = 10\n").unwrap();
    let (code, out) = check_config(&cfg);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("is valid"), "{out}");

    let (code, out) = check_config(&s.dir.path().join("missing.toml"));
    assert_eq!(code, Some(78));
    assert!(out.contains("cannot read"), "{out}");
}

#[test]
fn version_and_usage() {
    for bin in ["postward-greyd", "postward-policyd", "postward-authd"] {
        let out = std::process::Command::new(bin_path(bin)).arg("--version").output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{bin} {}", env!("CARGO_PKG_VERSION")));
        let out = std::process::Command::new(bin_path(bin)).arg("--frobnicate").output().unwrap();
        assert_eq!(out.status.code(), Some(64));
    }
}

#[tokio::test]
async fn root_is_refused_unless_allowed_and_privileges_are_dropped() {
    if !running_as_root() {
        postward_tests::skipped!("privilege tests need root (CI runs them)");
        return;
    }
    let s = Setup::new();
    // No user, no allow_root: refused.
    std::fs::write(
        s.config_path(),
        format!("[server]\nlisten = [\"unix:{}\"]\n{}", s.socket().display(), s.greyd_sections()),
    )
    .unwrap();
    let mut d = DaemonProcess::start(BIN, &["--config", s.config_path().to_str().unwrap()]);
    assert_eq!(d.wait(T).await.expect("exits").code(), Some(1));
    let refusals = d.log().iter().filter(|l| l.contains("refusing to run as root")).count();
    assert_eq!(refusals, 1, "said once: {:?}", d.log());
    assert!(d.log().iter().any(|l| l.contains("postward-greyd")), "names the account to use: {:?}", d.log());

    // user = nobody: the socket is bound as root with the configured mode, then the process
    // runs as nobody.
    std::fs::write(
        s.config_path(),
        format!(
            "[server]\nlisten = [\"unix:{}\"]\nuser = \"nobody\"\nsocket_mode = \"0666\"\n{}",
            s.socket().display(),
            s.greyd_sections()
        ),
    )
    .unwrap();
    let d = s.start().await;
    d.wait_for_log("running as user nobody", T).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    assert!(uid_line.split_whitespace().skip(1).all(|u| u == nobody.to_string()), "{uid_line}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(s.socket()).unwrap().permissions().mode() & 0o777, 0o666);
    assert_eq!(ask(&mut s.client().await).await.unwrap(), "DUNNO");
}

#[test]
fn shipped_example_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for d in ["greyd", "policyd", "authd"] {
        // As contrib/rpm/build.sh does: the accounts and files the packaged file names exist
        // on an installed system, not here; they are pointed at what is here.
        let text = std::fs::read_to_string(root.join(format!("contrib/config/{d}.toml"))).unwrap();
        // The package's /etc/postward/passwd is an empty file.
        std::fs::write(dir.path().join("passwd"), "").unwrap();
        let here = format!("\"{}/", dir.path().display());
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("user = ") {
                    "user = \"root\"".to_owned()
                } else if l.starts_with("socket_group = ") {
                    "socket_group = \"root\"".to_owned()
                } else {
                    l.replace("\"/etc/postward/", &here)
                }
            })
            .map(|l| l + "\n")
            .collect();
        let cfg = dir.path().join(format!("{d}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let out = std::process::Command::new(bin_path(&format!("postward-{d}")))
            .args(["--check-config", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", cfg.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// Socket activation as systemd does it: the listening socket arrives as fd 3 with
/// `LISTEN_FDS=1` and `LISTEN_PID` set to the daemon's own pid. A small Python wrapper plays
/// systemd (it binds, then execs the daemon in its own process so the pid matches).
#[tokio::test]
async fn systemd_socket_activation() {
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        postward_tests::skipped!("python3 is needed to play systemd");
        return;
    }
    let s = Setup::new();
    std::fs::write(s.config_path(), format!("[server]\nlisten = [\"systemd\"]\n{}{}", root_ok(), s.greyd_sections()))
        .unwrap();
    let script = r#"
import os, socket, sys
path, binary, config = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(binary, [binary, "--config", config])
"#;
    let child = tokio::process::Command::new("python3")
        .args([
            "-c",
            script,
            s.socket().to_str().unwrap(),
            bin_path(BIN).to_str().unwrap(),
            s.config_path().to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_path(&s.socket(), T).await;
    let mut client = s.client().await;
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().unwrap() as i32), Sig::SIGTERM).unwrap();
    let out = tokio::time::timeout(T, child.wait_with_output()).await.unwrap().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("listening on unix:"), "{log}");
}

#[tokio::test]
async fn inet_listener_on_loopback() {
    let s = Setup::new();
    std::fs::write(
        s.config_path(),
        format!("[server]\nlisten = [\"inet:127.0.0.1:0\"]\n{}{}", root_ok(), s.greyd_sections()),
    )
    .unwrap();
    let daemon = DaemonProcess::start(BIN, &["--config", s.config_path().to_str().unwrap()]);
    let line = daemon.wait_for_log("listening on inet:", T).await;
    let addr = line.rsplit("inet:").next().unwrap().trim().to_owned();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{line}");
    let mut client = PolicyClient::connect(&format!("inet:{addr}")).await.unwrap();
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO");
    assert_eq!(ask(&mut client).await.unwrap(), "DUNNO", "the connection stays open");
}

/// Under systemd (stderr is the stream `JOURNAL_STREAM` names), every line starts with its
/// syslog priority for journald: `<22>` mail.info, `<20>` mail.warning, so `journalctl -p
/// warning` finds the warnings. A stderr that is not that stream gets no prefix.
#[tokio::test]
async fn lines_carry_their_priority_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let files = TestFiles::new(dir.path(), "policyd");
    files.write("", "[log]\nlevel = \"info\"\n");
    let run = |name: &str, matching: bool| {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let stream = if matching { format!("{}:{}", meta.dev(), meta.ino()) } else { format!("{}:1", meta.dev()) };
        let child = std::process::Command::new(bin_path("postward-policyd"))
            .args(["--config", files.config.to_str().unwrap()])
            .env("JOURNAL_STREAM", stream)
            .stderr(file)
            .spawn()
            .unwrap();
        (path, child)
    };
    for (name, matching) in [("journal.log", true), ("plain.log", false)] {
        let (path, mut child) = run(name, matching);
        let deadline = std::time::Instant::now() + T;
        while !std::fs::read_to_string(&path).unwrap().contains("listening on") && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Sig::SIGTERM).unwrap();
        child.wait().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let started = text.lines().find(|l| l.contains("started with configuration")).unwrap_or_default();
        if matching {
            assert!(started.starts_with("<22>postward-policyd "), "{text}");
            assert!(text.lines().all(|l| l.starts_with('<')), "a line without its priority:\n{text}");
            if running_as_root() {
                assert!(text.lines().any(|l| l.starts_with("<20>warning: running as root")), "{text}");
            }
        } else {
            assert!(started.starts_with("postward-policyd "), "{text}");
        }
    }
}

/// `--help` lists the daemon's own commands (and authd's leaves out `--stdio`, which it
/// refuses); a global option before a command works as it does after it.
#[test]
fn help_lists_each_daemons_commands_and_options_go_either_side() {
    let help = |bin: &str| {
        let out = std::process::Command::new(bin_path(bin)).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{bin}");
        String::from_utf8(out.stdout).unwrap()
    };
    for (bin, commands, stdio) in [
        ("postward-greyd", &["stats", "dump", "check"][..], true),
        ("postward-policyd", &["check"][..], true),
        ("postward-authd", &["pw", "test"][..], false),
    ] {
        let text = help(bin);
        for c in commands {
            assert!(text.contains(&format!("\n  {c} ")), "{bin} --help lacks {c}:\n{text}");
        }
        assert_eq!(text.contains("--stdio"), stdio, "{bin}:\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("greyd.toml");
    std::fs::write(&config, "[whitelist]\nbuiltin_clients = false\n").unwrap();
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| std::process::Command::new(bin_path(BIN)).args(args).output().unwrap();
    let after = run(&["check", "-c", config, "192.0.2.1"]);
    let before = run(&["-c", config, "check", "192.0.2.1"]);
    assert_eq!(after.status.code(), Some(1), "{after:?}");
    assert_eq!((before.status.code(), &before.stdout), (after.status.code(), &after.stdout), "{before:?}");
}
