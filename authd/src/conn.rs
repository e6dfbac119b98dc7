//! One client connection: the handshake, then lines in and replies out, with every request
//! running as its own task ([`crate::request`]) so a slow hash or a penalty never holds up
//! the others.
//!
//! Protocol errors are handled as Dovecot handles them (auth-anchors §1.3): a line that is
//! too long, not a known command, a duplicate request id, a mechanism we do not offer or an
//! AUTH before VERSION closes the connection (Postfix reconnects on its next AUTH); a CONT
//! for an unknown request or one not waiting for an answer gets a FAIL. Nothing a client
//! sends is ever logged, only what was wrong with it: lines carry passwords.
//!
//! Every request takes the service current when its AUTH line arrives, so a reload reaches
//! the connections Postfix's smtpd keeps open for its whole life. A request the client
//! leaves (CANCEL, disconnect) is not killed: it ends as abandoned, and is logged and
//! counted for throttling like any other attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shared::policy::ServeOptions;
use shared::server::Conn;
use shared::signals::Shutdown;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::outcome::Failure;
use crate::protocol::{ClientLine, MAX_LINE, Reply, parse_line};
use crate::request::{self, Answer, Link, Out};
use crate::service::{Attempt, Service};

/// Requests in flight on one connection (Postfix has one at a time).
const MAX_IN_FLIGHT: usize = 128;
/// How long a request waits for the client's answer to a challenge (Dovecot: 150 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(150);

/// A request the connection routes answers to.
struct Pending {
    answers: mpsc::Sender<Answer>,
    /// True while the request waits for a CONT.
    waiting: bool,
    /// Which request holds the id: only its lines are written.
    seq: u64,
}

/// Why a connection ends early.
#[derive(Debug, thiserror::Error)]
enum Close {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serves one connection until the client leaves, breaks the protocol, idles out, or the
/// daemon shuts down.
pub async fn serve(
    service: watch::Receiver<Arc<Service>>,
    conn: Conn,
    peer: String,
    options: ServeOptions,
    mut shutdown: Shutdown,
) {
    let handshake = service.borrow().handshake();
    let (r, mut w) = conn.into_split();
    let mut reader = BufReader::with_capacity(4096, r);
    if let Err(e) = w.write_all(handshake.as_bytes()).await {
        tracing::debug!("{peer}: handshake not sent: {e}");
        return;
    }
    let mut session = Session::new(service, &peer);
    match session.run(&mut reader, &mut w, &options, &mut shutdown).await {
        Ok(()) => {}
        Err(Close::Io(e)) => tracing::debug!("{peer}: connection error: {e}"),
        Err(e) => tracing::warn!("{peer}: closing the connection: {e}"),
    }
    if !session.pending.is_empty() {
        // Dropping their answer channels ends the waiting ones as abandoned (logged); the
        // ones being computed finish inside their reply budget and are logged too.
        tracing::debug!("{peer}: disconnected with {} request(s) pending", session.pending.len());
    }
}

struct Session<'a> {
    /// The newest configuration's service; each request takes the current one.
    service: watch::Receiver<Arc<Service>>,
    peer: &'a str,
    /// The client's minor version, once VERSION arrived.
    minor: Option<u32>,
    pending: HashMap<u32, Pending>,
    /// Numbers the requests of this connection.
    next_seq: u64,
    /// Request tasks not yet ended, cancelled ones included: what [`MAX_IN_FLIGHT`] bounds,
    /// so AUTH-then-CANCEL cannot pile up work.
    running: usize,
    out_tx: mpsc::UnboundedSender<Out>,
    out_rx: mpsc::UnboundedReceiver<Out>,
    /// Replies gathered for one write.
    wbuf: Vec<u8>,
}

impl<'a> Session<'a> {
    fn new(service: watch::Receiver<Arc<Service>>, peer: &'a str) -> Session<'a> {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        Session {
            service,
            peer,
            minor: None,
            pending: HashMap::new(),
            next_seq: 0,
            running: 0,
            out_tx,
            out_rx,
            wbuf: Vec::with_capacity(512),
        }
    }

    async fn run<R, W>(
        &mut self,
        reader: &mut R,
        w: &mut W,
        options: &ServeOptions,
        shutdown: &mut Shutdown,
    ) -> Result<(), Close>
    where
        R: AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let mut line = Vec::with_capacity(256);
        let mut reading = true;
        let mut idle_since = tokio::time::Instant::now();
        // When the line being read got its first byte: a line must be complete within the
        // request timeout, so a client trickling bytes cannot hold a connection for ever.
        let mut line_since: Option<tokio::time::Instant> = None;
        loop {
            let idle = self.pending.is_empty();
            let line_deadline = line_since.map(|t| t + options.request_timeout);
            tokio::select! {
                biased;
                Some(out) = self.out_rx.recv() => {
                    self.collect(out);
                    while let Ok(more) = self.out_rx.try_recv() {
                        self.collect(more);
                    }
                    w.write_all(&self.wbuf).await?;
                    self.wbuf.clear();
                    idle_since = tokio::time::Instant::now();
                    if !reading && self.pending.is_empty() {
                        return Ok(());
                    }
                }
                () = shutdown.recv(), if reading => {
                    // Requests being computed finish (inside the reply budget); those
                    // waiting for a client's answer are given up.
                    reading = false;
                    self.pending.retain(|_, p| !p.waiting);
                    if self.pending.is_empty() {
                        return Ok(());
                    }
                }
                read = next_line(reader, &mut line), if reading => {
                    match read? {
                        Read::Eof => return Ok(()),
                        Read::Partial => {
                            line_since.get_or_insert_with(tokio::time::Instant::now);
                            continue;
                        }
                        Read::Line => line_since = None,
                    }
                    let text = std::str::from_utf8(&line).map_err(|_| Close::NotUtf8)?;
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    self.handle(text)?;
                    line.clear();
                    if !self.wbuf.is_empty() {
                        w.write_all(&self.wbuf).await?;
                        self.wbuf.clear();
                    }
                    idle_since = tokio::time::Instant::now();
                }
                () = sleep_until_some(line_deadline), if reading && line_deadline.is_some() => {
                    return Err(Close::Protocol(format!(
                        "line incomplete after {}s ({} bytes so far)",
                        options.request_timeout.as_secs(),
                        line.len()
                    )));
                }
                () = tokio::time::sleep_until(idle_since + options.idle_timeout), if idle && reading && line_deadline.is_none() => {
                    tracing::debug!("{}: idle for {:?}, closing", self.peer, options.idle_timeout);
                    return Ok(());
                }
            }
        }
    }

    /// Notes a request's output and queues its line, unless the request was cancelled.
    fn collect(&mut self, out: Out) {
        match out {
            Out::Challenge { id, seq, line } => {
                if let Some(p) = self.pending.get_mut(&id).filter(|p| p.seq == seq) {
                    p.waiting = true;
                    self.wbuf.extend_from_slice(&line);
                }
            }
            Out::Done { id, seq, line } => {
                self.running = self.running.saturating_sub(1);
                if self.pending.get(&id).is_some_and(|p| p.seq == seq) {
                    self.pending.remove(&id);
                    self.wbuf.extend_from_slice(&line);
                }
            }
        }
    }

    fn handle(&mut self, text: &str) -> Result<(), Close> {
        let minor = self.minor.unwrap_or(0);
        let parsed = parse_line(text, minor).map_err(|e| Close::Protocol(e.to_string()))?;
        match parsed {
            ClientLine::Version { major, minor } => {
                if major != crate::protocol::VERSION.0 {
                    return Err(Close::Protocol(format!(
                        "client speaks protocol version {major}.{minor}, not {}.x (mixed old and new binaries?)",
                        crate::protocol::VERSION.0
                    )));
                }
                self.minor = Some(minor);
            }
            _ if self.minor.is_none() => return Err(Close::Protocol("first line is not VERSION".to_owned())),
            ClientLine::Cpid(_) => {}
            ClientLine::Auth(auth) => {
                let service = self.service.borrow().clone();
                let Some(mech) = service.mechanism(auth.mech) else {
                    return Err(Close::Protocol(format!(
                        "AUTH with mechanism {:?}, which is not offered",
                        shared::logging::printable(auth.mech)
                    )));
                };
                if self.pending.contains_key(&auth.id) {
                    return Err(Close::Protocol(format!("AUTH with id {} already in use", auth.id)));
                }
                if self.running >= MAX_IN_FLIGHT {
                    self.fail(auth.id, &Failure::Busy(crate::hasher::Busy::QueueFull));
                    return Ok(());
                }
                let attempt = Attempt {
                    id: auth.id,
                    mech,
                    service: shared::logging::printable(auth.service).into_owned(),
                    rip: auth.rip,
                    lip: auth.lip,
                    secured: auth.secured,
                    started: tokio::time::Instant::now(),
                };
                let (answers_tx, answers) = mpsc::channel(1);
                self.next_seq += 1;
                let seq = self.next_seq;
                let link = Link { id: auth.id, seq, answers, out: self.out_tx.clone(), answer_timeout: ANSWER_TIMEOUT };
                let resp = auth.resp.map(str::to_owned);
                // Not tied to the connection: a request outlives a client that leaves, to be
                // logged and counted.
                tokio::spawn(request::run(service, attempt, resp, link));
                self.running += 1;
                self.pending.insert(auth.id, Pending { answers: answers_tx, waiting: false, seq });
            }
            ClientLine::Cont { id, data } => match self.pending.get_mut(&id) {
                None => self.fail(id, &Failure::Timeout),
                Some(p) if !p.waiting => {
                    let _ = p.answers.try_send(Answer::Cancel);
                    self.pending.remove(&id);
                    self.fail(id, &Failure::UnexpectedContinuation);
                }
                Some(p) => {
                    p.waiting = false;
                    // Capacity 1 and the request is waiting: this cannot be full.
                    let _ = p.answers.try_send(Answer::Data(data.to_owned()));
                }
            },
            ClientLine::Cancel { id } => {
                if let Some(p) = self.pending.remove(&id) {
                    // The request ends as abandoned at its next challenge; its lines are
                    // not written.
                    let _ = p.answers.try_send(Answer::Cancel);
                }
            }
        }
        Ok(())
    }

    /// A FAIL for a request that never reached a mechanism.
    fn fail(&mut self, id: u32, failure: &Failure) {
        tracing::info!("{}: request {id}: {}", self.peer, failure.log_reason());
        Reply::Fail { id, code: failure.code(), user: None, reason: failure.reply_reason() }.write_to(&mut self.wbuf);
    }
}

/// What one read of [`next_line`] produced.
enum Read {
    /// A whole line is in the buffer.
    Line,
    /// Bytes arrived, but no LF yet: the caller starts the line's deadline.
    Partial,
    Eof,
}

/// Sleeps until `deadline`; never returns without one (the branch is disabled then).
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads into `line` until an LF (dropped) or the end of what has arrived.
/// Cancel-safe: bytes already read stay in `line`, and the next call continues.
///
/// # Errors
/// I/O errors, or a line longer than [`MAX_LINE`].
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> Result<Read, Close> {
    let chunk = reader.fill_buf().await?;
    if chunk.is_empty() {
        return Ok(Read::Eof);
    }
    let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&chunk[..i]);
            (i + 1, true)
        }
        None => {
            line.extend_from_slice(chunk);
            (chunk.len(), false)
        }
    };
    reader.consume(used);
    if line.len() > MAX_LINE {
        return Err(Close::TooLong);
    }
    Ok(if done { Read::Line } else { Read::Partial })
}
