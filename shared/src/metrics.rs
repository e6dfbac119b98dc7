//! The optional Prometheus endpoint: `server.metrics_listen = "127.0.0.1:9311"` serves the
//! daemon's counters and histograms as Prometheus text on `GET /metrics`.
//!
//! Code anywhere in the daemons records through the `metrics` facade macros
//! (`metrics::counter!`, `metrics::histogram!`); with the endpoint off no recorder is
//! installed. The macros still build their labels then, so per-request paths ask
//! [`enabled`] first. The exposition format is the
//! `metrics-exporter-prometheus` crate's; the HTTP side is this small responder (one GET
//! per connection, no keep-alive), so no HTTP stack is linked. The address is loopback in
//! every example: the figures say how much mail a host handles and who is refused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Latency buckets in seconds: from a cached answer (sub-millisecond) to a password hash
/// under load or a slow DNS list (seconds).
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Scrapes served at once.
const MAX_SCRAPES: usize = 16;

/// The longest request head read (the request line and headers of a scrape are small).
const MAX_REQUEST: usize = 8192;

/// Set once the recorder is installed.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether a recorder is installed: without one, recording is skipped altogether (the label
/// strings a per-request counter builds cost more than the rest of a cached answer's bookkeeping).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the process-wide recorder. Once per process: a reload that changes the address
/// needs a restart (the log says so), the recorded figures survive reloads.
///
/// # Errors
/// A recorder is already installed.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(handle)
}

/// Binds the endpoint.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("metrics endpoint {addr}: {e}"))
}

/// Serves scrapes until the task is dropped, and runs the recorder's upkeep (histogram
/// draining) every few seconds.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    // Scrapes at once; more are closed at once, so a flood of slow clients cannot hold
    // descriptors the daemon's own socket needs.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, usually: wait instead of spinning on the error.
                tracing::debug!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("metrics scrape from {peer}: {MAX_SCRAPES} already in progress, closing");
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = tokio::time::timeout(Duration::from_secs(10), answer(stream, &handle)).await {
                tracing::debug!("metrics scrape from {peer}: {e}");
            }
        });
    }
}

/// One HTTP exchange: `GET /metrics` gets the text, anything else 404 (or 405).
async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, kind, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", handle.render()),
        (b"GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_owned()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
