//! The load runner: N tasks, each with one persistent connection and one request in flight,
//! the way Postfix's smtpd processes use a policy or auth service. A task sends requests one
//! after another until its count is done or the run's time is up; on an error it counts it,
//! drops the connection, reconnects and goes on.
//!
//! Latency is taken per request, from just before the request is written to the end of its
//! reply, in microseconds. Requests started during the warm-up are not counted. What is
//! sent, and how, belongs to a [`Driver`] (`drivers.rs`); turning the tally into figures
//! belongs to `report.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::report::ProcMemory;

/// Pause before reconnecting after a failed connect, so a dead target is not hammered.
const RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// A connection gives up after this many failed connects in a row (about 5 s), so a run
/// against a dead target ends even in `--requests` mode.
const MAX_CONNECT_FAILURES: u32 = 50;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// This many measured requests per connection.
    Requests(u64),
    /// Measure for this long.
    Duration(Duration),
}

/// How a run is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub stop: Stop,
    /// Time before measuring starts; requests in it are sent but not counted.
    pub warmup: Duration,
    /// Limit for one connect or one request; past it the request counts as a `timeout` error.
    pub timeout: Duration,
}

/// A failed connect or request: a short kind for counting (`connect`, `closed`, `timeout`,
/// …) and the first message, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(kind: &'static str, message: impl ToString) -> Failure {
        Failure { kind, message: message.to_string() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Answer class for the distribution, e.g. `DUNNO`, `DEFER_IF_PERMIT`, `OK`.
    pub label: String,
    /// The workload's class of the request (e.g. `new`/`repeat`); empty for none.
    pub tag: &'static str,
}

/// What a connection speaks: how to open one and how to send one request on it.
pub trait Driver: Send + 'static {
    type Conn: Send + 'static;

    fn connect(&mut self) -> impl Future<Output = Result<Self::Conn, Failure>> + Send;

    /// Generates the next request, sends it and reads the whole reply.
    fn request(&mut self, conn: &mut Self::Conn) -> impl Future<Output = Result<Answer, Failure>> + Send;

    /// Closes a connection (and ends a spawned child).
    fn close(&mut self, conn: Self::Conn) -> impl Future<Output = ()> + Send;

    /// Memory of the process behind `conn`, if the driver started it.
    fn memory(&self, _conn: &Self::Conn) -> Option<ProcMemory> {
        None
    }
}

/// Everything counted during the measured part of a run.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of each answered request, in microseconds.
    pub latencies_us: Vec<u32>,
    pub answers: HashMap<String, u64>,
    pub mix: HashMap<&'static str, u64>,
    /// Latencies per request class, in microseconds: where a server's tail comes from.
    pub class_latencies_us: HashMap<&'static str, Vec<u32>>,
    /// Answers per request class: whether each class got the answer it is there to get.
    pub class_answers: HashMap<&'static str, HashMap<String, u64>>,
    pub errors: HashMap<&'static str, u64>,
    pub first_errors: HashMap<&'static str, String>,
    /// Summed memory of spawned children, read just before they were stopped.
    pub children_memory: Option<ProcMemory>,
    last_done: Option<Instant>,
}

impl Tally {
    fn answer(&mut self, latency: Duration, answer: Answer) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(us);
        if !answer.tag.is_empty() {
            let answers = self.class_answers.entry(answer.tag).or_default();
            match answers.get_mut(answer.label.as_str()) {
                Some(n) => *n += 1,
                None => {
                    answers.insert(answer.label.clone(), 1);
                }
            }
        }
        match self.answers.get_mut(answer.label.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.answers.insert(answer.label, 1);
            }
        }
        if !answer.tag.is_empty() {
            *self.mix.entry(answer.tag).or_default() += 1;
            self.class_latencies_us.entry(answer.tag).or_default().push(us);
        }
    }

    fn error(&mut self, failure: Failure) {
        *self.errors.entry(failure.kind).or_default() += 1;
        self.first_errors.entry(failure.kind).or_insert(failure.message);
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        for (k, v) in other.answers {
            *self.answers.entry(k).or_default() += v;
        }
        for (k, v) in other.mix {
            *self.mix.entry(k).or_default() += v;
        }
        for (k, v) in other.class_latencies_us {
            self.class_latencies_us.entry(k).or_default().extend_from_slice(&v);
        }
        for (class, answers) in other.class_answers {
            let mine = self.class_answers.entry(class).or_default();
            for (label, n) in answers {
                *mine.entry(label).or_default() += n;
            }
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.first_errors {
            self.first_errors.entry(k).or_insert(v);
        }
        if let Some(m) = other.children_memory {
            self.children_memory = Some(self.children_memory.map_or(m, |sum| sum + m));
        }
        self.last_done = self.last_done.max(other.last_done);
    }

    pub fn answered(&self) -> u64 {
        self.answers.values().sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    pub tally: Tally,
    /// From the start of measuring to the last measured request's end.
    pub elapsed: Duration,
}

/// Runs one task per driver. Every connection is opened before the clock starts.
///
/// # Errors
/// The first connection cannot be opened (a wrong target is reported, not measured).
pub async fn run<D: Driver>(mut drivers: Vec<D>, plan: Plan) -> Result<Outcome, Failure> {
    let mut total = Tally::default();
    let mut conns = Vec::with_capacity(drivers.len());
    for (i, driver) in drivers.iter_mut().enumerate() {
        match bounded(plan.timeout, driver.connect()).await {
            Ok(c) => conns.push(Some(c)),
            Err(f) if i == 0 => return Err(f),
            Err(f) => {
                total.error(f);
                conns.push(None);
            }
        }
    }
    let measure_start = Instant::now() + plan.warmup;
    let tasks: Vec<_> = drivers
        .into_iter()
        .zip(conns)
        .map(|(driver, conn)| tokio::spawn(drive(driver, conn, plan, measure_start)))
        .collect();
    for task in tasks {
        match task.await {
            Ok(tally) => total.merge(tally),
            Err(e) => total.error(Failure::new("panic", e)),
        }
    }
    // A timed run lasts at least its duration: a connection stops at its first look past the
    // end, so its last answer may have come a moment before it.
    let end = match plan.stop {
        Stop::Duration(d) if total.last_done.is_some() => Some(measure_start + d),
        _ => None,
    };
    let elapsed = total.last_done.max(end).map_or(Duration::ZERO, |t| t.saturating_duration_since(measure_start));
    Ok(Outcome { tally: total, elapsed })
}

/// One connection's loop.
async fn drive<D: Driver>(mut driver: D, mut conn: Option<D::Conn>, plan: Plan, measure_start: Instant) -> Tally {
    let mut tally = Tally::default();
    let end = match plan.stop {
        Stop::Duration(d) => Some(measure_start + d),
        Stop::Requests(_) => None,
    };
    let mut sent = 0u64;
    let mut connect_failures = 0u32;
    loop {
        let now = Instant::now();
        if now >= measure_start {
            let done = match plan.stop {
                Stop::Requests(n) => sent >= n,
                Stop::Duration(_) => end.is_some_and(|e| now >= e),
            };
            if done {
                break;
            }
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match bounded(plan.timeout, driver.connect()).await {
                Ok(c) => {
                    connect_failures = 0;
                    c
                }
                Err(f) => {
                    // A connect that fails in the measured part uses up a request.
                    if Instant::now() >= measure_start {
                        tally.error(f);
                        sent += 1;
                        tally.last_done = Some(Instant::now());
                    }
                    connect_failures += 1;
                    if connect_failures >= MAX_CONNECT_FAILURES {
                        tally.error(Failure::new(
                            "abandoned",
                            format!("connection given up after {MAX_CONNECT_FAILURES} failed connects in a row"),
                        ));
                        break;
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let result = bounded(plan.timeout, driver.request(&mut c)).await;
        let latency = started.elapsed();
        let measured = started >= measure_start;
        match result {
            Ok(answer) => {
                if measured {
                    tally.answer(latency, answer);
                }
                conn = Some(c);
            }
            Err(f) => {
                if measured {
                    tally.error(f);
                }
                driver.close(c).await;
            }
        }
        if measured {
            sent += 1;
            tally.last_done = Some(Instant::now());
        }
    }
    if let Some(c) = conn {
        tally.children_memory = driver.memory(&c);
        driver.close(c).await;
    }
    tally
}

async fn bounded<T>(limit: Duration, fut: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new("timeout", format!("no answer within {}", shared::duration::render(limit)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers instantly; fails every `fail_every`-th request; counts connects.
    struct Fake {
        n: u64,
        fail_every: u64,
        connects: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }

    impl Driver for Fake {
        type Conn = ();
        async fn connect(&mut self) -> Result<(), Failure> {
            self.connects.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        async fn request(&mut self, _: &mut ()) -> Result<Answer, Failure> {
            self.n += 1;
            if self.fail_every > 0 && self.n.is_multiple_of(self.fail_every) {
                return Err(Failure::new("closed", "connection closed by server"));
            }
            Ok(Answer { label: "DUNNO".into(), tag: if self.n.is_multiple_of(2) { "even" } else { "" } })
        }
        async fn close(&mut self, _: ()) {}
    }

    #[tokio::test]
    async fn counts_errors_and_reconnects() {
        let connects = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let drivers = (0..3).map(|_| Fake { n: 0, fail_every: 10, connects: connects.clone() }).collect();
        let plan = Plan { stop: Stop::Requests(100), warmup: Duration::ZERO, timeout: Duration::from_secs(5) };
        let out = run(drivers, plan).await.unwrap();
        assert_eq!(out.tally.answered(), 270);
        assert_eq!(out.tally.errors.get("closed"), Some(&30));
        assert_eq!(out.tally.latencies_us.len(), 270);
        assert_eq!(out.tally.mix.get("even"), Some(&(3 * 40)));
        assert_eq!(out.tally.class_latencies_us.get("even").map(Vec::len), Some(3 * 40));
        // 3 initial connects plus one reconnect after each of the 30 errors (the last
        // request of each connection is the 100th, an error, so no reconnect follows it).
        assert_eq!(connects.load(std::sync::atomic::Ordering::SeqCst), 3 + 27);
    }

    #[tokio::test]
    async fn duration_mode_ends_and_warmup_is_not_counted() {
        let connects = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let drivers = vec![Fake { n: 0, fail_every: 0, connects }];
        let plan = Plan {
            stop: Stop::Duration(Duration::from_millis(100)),
            warmup: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
        };
        let started = Instant::now();
        let out = run(drivers, plan).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(out.elapsed >= Duration::from_millis(100) && out.elapsed < Duration::from_secs(1), "{:?}", out.elapsed);
        assert!(out.tally.answered() > 0);
    }
}
