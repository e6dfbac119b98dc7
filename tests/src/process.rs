//! Running the real daemon binaries in tests: find them, start them with a configuration,
//! collect what they log, signal them and wait for them.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of a workspace binary next to the running test executable (`target/<profile>/`).
///
/// # Panics
/// If the binary has not been built: run `cargo build --workspace` before the tests (the
/// README's test command does).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile> directory");
    let path = dir.join(name);
    assert!(path.exists(), "{} not found: build the daemons first with `cargo build --workspace`", path.display());
    path
}

/// True when the tests run as root (CI does): daemons then need `allow_root` or a `user`.
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `[server]` lines that let a daemon start under the current user in tests.
pub fn root_ok() -> &'static str {
    if running_as_root() { "allow_root = true\n" } else { "" }
}

/// A daemon process whose stderr is collected line by line.
pub struct DaemonProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// The tasks copying stdout and stderr into `log`; they end at EOF.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl DaemonProcess {
    /// Starts `bin` with `args`.
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn start(bin: &str, args: &[&str]) -> DaemonProcess {
        let mut child = Command::new(bin_path(bin))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start daemon");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stdout.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let sink = log.clone();
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().expect("log lock").push(line);
                }
            }));
        }
        DaemonProcess { child, log, readers }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().map_or(0, |p| p as i32)
    }

    /// Everything logged so far, one line per entry.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until a logged line contains `needle`; returns that line.
    ///
    /// # Panics
    /// After `timeout`, with the log so far.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line containing {needle:?} within {timeout:?}; log:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal.
    ///
    /// # Panics
    /// If the process is gone.
    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.pid()), signal).expect("send signal");
    }

    /// Waits for the process to exit, and for everything it wrote to be in [`Self::log`].
    pub async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(timeout, self.child.wait()).await.ok().and_then(Result::ok)?;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(timeout, reader).await;
        }
        Some(status)
    }

    /// Resident memory in kB from /proc, if the process is alive.
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// Waits until `path` exists (a daemon's socket after start-up).
///
/// # Panics
/// After `timeout`.
pub async fn wait_for_path(path: &std::path::Path, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "{} did not appear within {timeout:?}", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts `bin --config config` and waits until it has created `socket` and logged that it
/// started: the start-up every test of a real daemon needs.
///
/// # Panics
/// The process cannot be started, or does either not within `timeout`.
pub async fn start_with_config(
    bin: &str,
    config: &std::path::Path,
    socket: &std::path::Path,
    timeout: Duration,
) -> DaemonProcess {
    let config = config.to_str().expect("UTF-8 config path");
    let daemon = DaemonProcess::start(bin, &["--config", config]);
    wait_for_path(socket, timeout).await;
    daemon.wait_for_log("started with configuration", timeout).await;
    daemon
}

/// A test daemon's two files in one directory: its configuration `<name>.toml` and the Unix
/// socket `<name>.sock` it listens on. Every test writes the same `[server]` head, so it lives here.
#[derive(Debug, Clone)]
pub struct TestFiles {
    pub config: PathBuf,
    pub socket: PathBuf,
}

impl TestFiles {
    pub fn new(dir: &std::path::Path, name: &str) -> TestFiles {
        TestFiles { config: dir.join(format!("{name}.toml")), socket: dir.join(format!("{name}.sock")) }
    }

    /// The socket as a listen address (`unix:<path>`).
    pub fn address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Writes the configuration: `[server]` listening on the socket, allowed to run as root when
    /// the tests do, with the `server` lines added to that section; then `sections` as given.
    ///
    /// # Panics
    /// The file cannot be written.
    pub fn write(&self, server: &str, sections: &str) {
        let head = format!("[server]\nlisten = [\"{}\"]\n{}{server}\n", self.address(), root_ok());
        std::fs::write(&self.config, format!("{head}{sections}")).expect("write test configuration");
    }

    /// Writes the configuration (see [`TestFiles::write`]) and starts `bin` with it.
    pub async fn start(&self, bin: &str, server: &str, sections: &str, timeout: Duration) -> DaemonProcess {
        self.write(server, sections);
        start_with_config(bin, &self.config, &self.socket, timeout).await
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for servers started later).
///
/// # Errors
/// No port could be bound.
pub fn free_tcp_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port())
}

pub use nix::sys::signal::Signal as Sig;
