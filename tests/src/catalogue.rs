//! Bad-input catalogues: scripted hostile or broken clients against a running daemon, each
//! with the exact reaction expected (bytes answered, whether the connection is closed, which
//! warning is logged), while a well-behaved client on another connection keeps asking and
//! timing its answers.
//!
//! The runner is protocol-neutral: a case is raw bytes written on a fresh Unix-socket
//! connection (in pieces, slowly, or cut off), and its expectation is what the server writes
//! back after its greeting. Cases run one after another, so the log lines that appear during
//! a case belong to it; the well-behaved client only produces info lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::process::DaemonProcess;

/// One thing a scripted client does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Writes the bytes in one go.
    Send(Vec<u8>),
    /// Writes the bytes one at a time with `gap` between them (slow-loris).
    Trickle { bytes: Vec<u8>, gap: Duration },
    /// Waits.
    Pause(Duration),
    /// Closes the sending direction (the server sees end of input) and keeps reading.
    ShutdownWrite,
    /// Drops the connection at once without reading anything more.
    Abort,
}

/// What the server must do.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Everything written after the greeting, exactly.
    pub output: Vec<u8>,
    /// Whether the server closes the connection (else it must still be open afterwards).
    pub closed: bool,
    /// Text a new `warning:` line must contain; `None`: no warning at all.
    pub warning: Option<String>,
    /// Compare the output's lines as a multiset: requests answered concurrently may finish
    /// in any order.
    pub any_order: bool,
}

/// A named case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
    pub expect: Expect,
}

impl Case {
    pub fn new(name: impl Into<String>, steps: Vec<Step>, expect: Expect) -> Case {
        Case { name: name.into(), steps, expect }
    }
}

impl Expect {
    /// Answered with `output`; the connection stays open; no warning.
    pub fn answered(output: impl Into<Vec<u8>>) -> Expect {
        Expect { output: output.into(), closed: false, warning: None, any_order: false }
    }

    /// Answered with `output`, then closed by the server with a warning containing `warning`.
    pub fn closed_after(output: impl Into<Vec<u8>>, warning: &str) -> Expect {
        Expect { output: output.into(), closed: true, warning: Some(warning.to_owned()), any_order: false }
    }

    /// Closed without an answer, with a warning containing `warning`.
    pub fn closed(warning: &str) -> Expect {
        Expect::closed_after(Vec::new(), warning)
    }

    /// Closed without an answer and without a warning (the client left; nothing was wrong).
    pub fn quiet_close() -> Expect {
        Expect { output: Vec::new(), closed: true, warning: None, any_order: false }
    }

    /// Lines may come in any order.
    pub fn any_order(mut self) -> Expect {
        self.any_order = true;
        self
    }

    /// Adds an expected warning to an answered case.
    pub fn warning(mut self, text: &str) -> Expect {
        self.warning = Some(text.to_owned());
        self
    }
}

/// How a daemon greets a connection: policy servers say nothing, authd sends its handshake.
#[derive(Debug, Clone, Copy)]
pub enum Greeting {
    None,
    /// Lines up to and including this one.
    UntilLine(&'static str),
}

/// How long an open connection must stay silent to count as "answered everything".
const SETTLE: Duration = Duration::from_millis(250);
/// Longest wait for a close or an answer in one case (slow cases set their own pauses).
const CASE_DEADLINE: Duration = Duration::from_secs(8);

/// What one case did, for the failure message.
#[derive(Debug)]
struct Observed {
    output: Vec<u8>,
    closed: bool,
    warnings: Vec<String>,
}

/// Runs every case against the daemon listening on `socket`, logging into `daemon`'s log.
/// Returns the failures (name and what differed); empty when all cases behaved.
pub async fn run_cases(daemon: &DaemonProcess, socket: &Path, greeting: Greeting, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let before = daemon.log().len();
        let observed = run_case(socket, greeting, case).await;
        // A warning is written after the close; give it a moment to reach the log.
        let warnings = match &case.expect.warning {
            Some(needle) => wait_for_new_warning(daemon, before, needle).await,
            None => {
                tokio::time::sleep(Duration::from_millis(30)).await;
                new_warnings(daemon, before)
            }
        };
        let observed = Observed { warnings, ..observed };
        if let Some(problem) = compare(&case.expect, &observed) {
            failures.push(format!(
                "{}: {problem}\n    got output {:?}, closed={}, warnings {:?}",
                case.name,
                String::from_utf8_lossy(&observed.output),
                observed.closed,
                observed.warnings
            ));
        }
    }
    failures
}

fn compare(expect: &Expect, observed: &Observed) -> Option<String> {
    let lines = |bytes: &[u8]| {
        let mut v: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        v.sort();
        v
    };
    let same = if expect.any_order {
        lines(&observed.output) == lines(&expect.output)
    } else {
        observed.output == expect.output
    };
    if !same {
        return Some(format!("expected output {:?}", String::from_utf8_lossy(&expect.output)));
    }
    if observed.closed != expect.closed {
        return Some(format!("expected closed={}", expect.closed));
    }
    match &expect.warning {
        Some(needle) => {
            let matching = observed.warnings.iter().filter(|w| w.contains(needle.as_str())).count();
            if matching != 1 || observed.warnings.len() != 1 {
                return Some(format!("expected exactly one warning containing {needle:?}"));
            }
            if observed.warnings.iter().any(|w| w.len() > 1024) {
                return Some("warning line longer than 1 KiB".to_owned());
            }
        }
        None if !observed.warnings.is_empty() => return Some("expected no warning".to_owned()),
        None => {}
    }
    None
}

fn new_warnings(daemon: &DaemonProcess, before: usize) -> Vec<String> {
    daemon.log().into_iter().skip(before).filter(|l| l.contains("warning:")).collect()
}

async fn wait_for_new_warning(daemon: &DaemonProcess, before: usize, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let warnings = new_warnings(daemon, before);
        if warnings.iter().any(|w| w.contains(needle)) || Instant::now() > deadline {
            // Anything else logged by the same case shows up together with it.
            tokio::time::sleep(Duration::from_millis(30)).await;
            return new_warnings(daemon, before);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run_case(socket: &Path, greeting: Greeting, case: &Case) -> Observed {
    let mut stream = UnixStream::connect(socket).await.expect("connect to the daemon");
    let mut output = Vec::new();
    if let Greeting::UntilLine(last) = greeting {
        read_greeting(&mut stream, last).await;
    }
    let mut aborted = false;
    for step in &case.steps {
        // A write error means the server already closed: the rest of the script is moot.
        let ok = match step {
            Step::Send(bytes) => stream.write_all(bytes).await.is_ok(),
            Step::Trickle { bytes, gap } => {
                let mut ok = true;
                for b in bytes {
                    if stream.write_all(std::slice::from_ref(b)).await.is_err() {
                        ok = false;
                        break;
                    }
                    tokio::time::sleep(*gap).await;
                }
                ok
            }
            Step::Pause(d) => {
                tokio::time::sleep(*d).await;
                true
            }
            Step::ShutdownWrite => stream.shutdown().await.is_ok(),
            Step::Abort => {
                aborted = true;
                break;
            }
        };
        if !ok {
            break;
        }
    }
    if aborted {
        drop(stream);
        return Observed { output, closed: true, warnings: Vec::new() };
    }
    let closed = read_until_quiet(&mut stream, &mut output, case.expect.closed).await;
    Observed { output, closed, warnings: Vec::new() }
}

async fn read_greeting(stream: &mut UnixStream, last: &str) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + CASE_DEADLINE;
    let done =
        |seen: &[u8]| seen.ends_with(b"\n") && String::from_utf8_lossy(seen).lines().any(|l| l.starts_with(last));
    while !done(&seen) {
        match tokio::time::timeout_at(deadline, stream.read(&mut byte)).await {
            Ok(Ok(1)) => seen.push(byte[0]),
            other => panic!("no greeting ending in {last:?}: {other:?} after {:?}", String::from_utf8_lossy(&seen)),
        }
    }
}

/// Reads what the server writes. When a close is expected, waits for it (up to the case
/// deadline); otherwise stops once the server has been silent for [`SETTLE`]. Returns
/// whether the server closed.
async fn read_until_quiet(stream: &mut UnixStream, output: &mut Vec<u8>, expect_close: bool) -> bool {
    let deadline = Instant::now() + CASE_DEADLINE;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let wait = if expect_close { deadline } else { (Instant::now() + SETTLE).min(deadline) };
        match tokio::time::timeout_at(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(n)) => output.extend_from_slice(&buf[..n]),
            Err(_) => return false,
        }
    }
}

/// One answer of the well-behaved client: how long it took, and what came (or what failed).
pub type Served = (Duration, Result<Vec<u8>, String>);

/// A well-behaved client asking the same question in a loop on its own connection, timing
/// every answer, until stopped.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Served>>,
}

impl Bystander {
    /// Starts asking `request` every `every`; each answer must be `answer`. `greeting` and
    /// `hello` (bytes sent once after connecting) set up protocols with a handshake.
    pub async fn start(
        socket: PathBuf,
        greeting: Greeting,
        hello: Vec<u8>,
        request: Vec<u8>,
        answer_len: usize,
        every: Duration,
    ) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut stream = UnixStream::connect(&socket).await.expect("bystander connects");
        if let Greeting::UntilLine(last) = greeting {
            read_greeting(&mut stream, last).await;
        }
        stream.write_all(&hello).await.expect("bystander hello");
        let task = tokio::spawn(async move {
            let mut results = Vec::new();
            let mut buf = vec![0u8; answer_len];
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = async {
                    stream.write_all(&request).await.map_err(|e| e.to_string())?;
                    match tokio::time::timeout(CASE_DEADLINE, stream.read_exact(&mut buf)).await {
                        Ok(Ok(_)) => Ok(buf.clone()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("no answer within the deadline".to_owned()),
                    }
                }
                .await;
                let failed = result.is_err();
                results.push((started.elapsed(), result));
                if failed {
                    break;
                }
                tokio::time::sleep(every).await;
            }
            results
        });
        Bystander { stop, task }
    }

    /// Stops and returns every answer with its time.
    ///
    /// # Panics
    /// If the client task panicked.
    pub async fn finish(self) -> Vec<Served> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("bystander task")
    }
}

/// Asserts the bystander was answered correctly every time and never waited long.
///
/// # Panics
/// On a wrong or missing answer, too few answers, or an answer slower than `max_wait`.
pub fn assert_bystander_served(results: &[Served], expected: &[u8], max_wait: Duration) {
    assert!(results.len() >= 20, "the well-behaved client was answered only {} times", results.len());
    for (i, (took, result)) in results.iter().enumerate() {
        match result {
            Ok(answer) => assert_eq!(
                String::from_utf8_lossy(answer),
                String::from_utf8_lossy(expected),
                "well-behaved client's answer {i} differs"
            ),
            Err(e) => panic!("well-behaved client's request {i} failed: {e}"),
        }
        assert!(*took < max_wait, "well-behaved client's request {i} took {took:?} (limit {max_wait:?})");
    }
    let mut times: Vec<Duration> = results.iter().map(|(t, _)| *t).collect();
    times.sort();
    println!(
        "well-behaved client: {} answers, median {:?}, max {:?}",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
