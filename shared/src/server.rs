//! The accept loop every daemon runs: one task per connection, a cap on connections, and a
//! bounded drain at shutdown (mini-redis's `Listener`, linkerd's drain).
//!
//! When the cap is reached the loop stops accepting: new clients wait in the kernel's listen
//! backlog instead of being refused, connections already open keep being served, and a
//! warning says so (at most once a minute).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};

use crate::listen::{BoundListener, UnixPathGuard};
use crate::signals::Shutdown;

/// An accepted connection on either kind of socket.
#[derive(Debug)]
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    /// Splits into owned read and write halves (no locking between them).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Conn::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
            Conn::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
        }
    }
}

/// Read half of a [`Conn`].
#[derive(Debug)]
pub enum ReadHalf {
    Unix(tokio::net::unix::OwnedReadHalf),
    Tcp(tokio::net::tcp::OwnedReadHalf),
}

/// Write half of a [`Conn`].
#[derive(Debug)]
pub enum WriteHalf {
    Unix(tokio::net::unix::OwnedWriteHalf),
    Tcp(tokio::net::tcp::OwnedWriteHalf),
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Unix(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Unix(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Unix(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Unix(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown is requested.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { max_connections: 1000, shutdown_grace: Duration::from_secs(10) }
    }
}

/// Serves connections from every listener until `shutdown` fires, then waits up to
/// `shutdown_grace` for open connections to finish. Returns the number of connections that
/// were still open when the grace period ran out (0 on a clean drain).
///
/// `handler` is called once per connection with a label for the peer (for log lines).
///
/// # Errors
/// A listener could not be registered with the runtime.
pub async fn run<H, F>(
    listeners: Vec<BoundListener>,
    options: ServerOptions,
    shutdown: Shutdown,
    handler: H,
) -> std::io::Result<usize>
where
    H: Fn(Conn, String, Shutdown) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut accept_tasks = Vec::new();
    for bound in listeners {
        let label = bound.label();
        let (listener, guard) = register(bound)?;
        tracing::info!("listening on {label}");
        let ctx = AcceptCtx {
            limit: limit.clone(),
            max: options.max_connections,
            shutdown: shutdown.clone(),
            alive: alive_tx.clone(),
            open: open.clone(),
        };
        accept_tasks.push(tokio::spawn(accept_loop(listener, guard, label, ctx, handler.clone())));
    }
    drop(alive_tx);
    for task in accept_tasks {
        let _ = task.await;
    }
    // Every connection task holds a sender; recv() returns None once all have ended.
    let drained = tokio::time::timeout(options.shutdown_grace, alive_rx.recv()).await.is_ok();
    let left = open.load(std::sync::atomic::Ordering::SeqCst);
    if !drained && left > 0 {
        tracing::warn!(
            "shutdown grace period of {}s over; {left} connection(s) still open are dropped",
            options.shutdown_grace.as_secs()
        );
        return Ok(left);
    }
    Ok(0)
}

enum AnyListener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

fn register(bound: BoundListener) -> std::io::Result<(AnyListener, Option<UnixPathGuard>)> {
    match bound {
        BoundListener::Unix { listener, path } => {
            listener.set_nonblocking(true)?;
            Ok((AnyListener::Unix(UnixListener::from_std(listener)?), path))
        }
        BoundListener::Tcp(listener) => {
            listener.set_nonblocking(true)?;
            Ok((AnyListener::Tcp(TcpListener::from_std(listener)?), None))
        }
    }
}

struct AcceptCtx {
    limit: Arc<Semaphore>,
    max: usize,
    shutdown: Shutdown,
    alive: mpsc::Sender<()>,
    open: Arc<std::sync::atomic::AtomicUsize>,
}

async fn accept_loop<H, F>(
    listener: AnyListener,
    guard: Option<UnixPathGuard>,
    label: String,
    mut ctx: AcceptCtx,
    handler: H,
) where
    H: Fn(Conn, String, Shutdown) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut last_limit_warning: Option<Instant> = None;
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = match ctx.limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_limit_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        "connection limit of {} reached on {label}; new connections wait until one closes",
                        ctx.max
                    );
                    last_limit_warning = Some(Instant::now());
                }
                tokio::select! {
                    p = ctx.limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    () = ctx.shutdown.recv() => break,
                }
            }
        };
        let accepted = tokio::select! {
            r = accept(&listener) => r,
            () = ctx.shutdown.recv() => break,
        };
        let (conn, peer) = match accepted {
            Ok(c) => {
                backoff = Duration::from_millis(10);
                c
            }
            Err(err) => {
                // EMFILE and friends: back off instead of spinning, keep serving.
                tracing::warn!("accept on {label} failed: {err}; retrying in {}ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let alive = ctx.alive.clone();
        let open = ctx.open.clone();
        let fut = handler(conn, peer, ctx.shutdown.clone());
        open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            fut.await;
            open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            drop(permit);
            drop(alive);
        });
    }
    // Stop accepting: close the listening socket now, and remove our socket file.
    drop(listener);
    drop(guard);
}

async fn accept(listener: &AnyListener) -> std::io::Result<(Conn, String)> {
    match listener {
        AnyListener::Unix(l) => {
            let (s, _) = l.accept().await?;
            let peer = match s.peer_cred().ok().and_then(|c| c.pid()) {
                Some(pid) => format!("unix peer pid {pid}"),
                None => "unix peer".to_owned(),
            };
            Ok((Conn::Unix(s), peer))
        }
        AnyListener::Tcp(l) => {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Conn::Tcp(s), format!("{addr}")))
        }
    }
}
