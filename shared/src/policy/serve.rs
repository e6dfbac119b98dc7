//! The per-connection loop of a policy daemon: read a request, ask the service, answer once,
//! log one line, repeat.
//!
//! Postfix's client rules, all enforced here so no daemon can get them wrong:
//! - exactly one reply per request, and never a byte the client did not ask for;
//! - never close an idle connection first (Postfix closes after its own
//!   `smtpd_policy_service_max_idle`/`max_ttl`; a server-side close costs the next request a
//!   1 s retry delay). The idle timeout defaults to far above Postfix's 300 s;
//! - on a malformed request: log a warning naming what was wrong and close without a reply.
//!
//! The service is read from a `watch` channel for each request, so a SIGHUP reload reaches
//! connections that stay open for Postfix's whole `max_ttl`.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::action::Action;
use super::codec::{Limits, RequestReader};
use super::request::PolicyRequest;
use crate::logging::DecisionLine;
use crate::signals::Shutdown;

/// What a service answers, and why (for the log line).
#[derive(Debug, Clone)]
pub struct Decision {
    pub action: Action,
    /// A short machine-friendly reason, e.g. `first-seen`, `spf-fail`, `whitelist`.
    pub reason: String,
    /// Extra `key=value` pairs for the log line.
    pub fields: Vec<(&'static str, String)>,
}

impl Decision {
    pub fn new(action: Action, reason: impl Into<String>) -> Decision {
        Decision { action, reason: reason.into(), fields: Vec::new() }
    }

    pub fn with(mut self, key: &'static str, value: impl ToString) -> Decision {
        self.fields.push((key, value.to_string()));
        self
    }
}

/// A policy daemon's decision logic.
pub trait PolicyService: Send + Sync + 'static {
    /// Decides one request. Must not fail: trouble with a dependency becomes the daemon's
    /// documented fail-open or temp-fail answer inside the service.
    fn decide(&self, request: &PolicyRequest) -> impl Future<Output = Decision> + Send;
}

/// Timeouts and limits for one connection.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub limits: Limits,
    /// How long a connection may sit idle between requests. Must stay above Postfix's
    /// `smtpd_policy_service_max_idle` (300 s) so Postfix always closes first.
    pub idle_timeout: Duration,
    /// How long the rest of a request may take once its first byte has arrived. Postfix
    /// writes a request in one go, so a slow request is a broken or hostile client.
    pub request_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves policy requests on one connection until the client closes it, a request is
/// malformed, a timeout passes, or shutdown is requested while the connection is idle.
pub async fn serve_policy<S, R, W>(
    service: &watch::Receiver<Arc<S>>,
    reader: R,
    mut writer: W,
    peer: &str,
    options: &ServeOptions,
    shutdown: &mut Shutdown,
) where
    S: PolicyService,
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = RequestReader::new(reader, options.limits);
    let mut out = Vec::with_capacity(256);
    loop {
        // Idle: wait for the next request, or for shutdown.
        let ready = tokio::select! {
            biased;
            r = tokio::time::timeout(options.idle_timeout, reader.wait_for_data()) => r,
            () = shutdown.recv() => return,
        };
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return,
            Ok(Err(err)) => {
                tracing::debug!("read error from {peer}: {err}");
                return;
            }
            Err(_) => {
                tracing::info!("closing connection from {peer}: idle for {}s", options.idle_timeout.as_secs());
                return;
            }
        }
        let started = Instant::now();
        let raw = match tokio::time::timeout(options.request_timeout, reader.read_request()).await {
            Ok(Ok(Some(raw))) => raw,
            Ok(Ok(None)) => return,
            Ok(Err(err)) => {
                metrics::counter!("postward_policy_malformed_requests_total").increment(1);
                tracing::warn!("malformed policy request from {peer}: {err}; closing connection without reply");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "malformed policy request from {peer}: incomplete after {}s; closing connection without reply",
                    options.request_timeout.as_secs()
                );
                return;
            }
        };
        if !raw.invalid_utf8.is_empty() {
            tracing::warn!(
                "policy request from {peer}: invalid UTF-8 in {} (decoded with replacement characters)",
                raw.invalid_utf8.join(", ")
            );
        }
        let request = match PolicyRequest::from_raw(raw) {
            Ok(r) => r,
            Err(err) => {
                metrics::counter!("postward_policy_malformed_requests_total").increment(1);
                tracing::warn!("malformed policy request from {peer}: {err}; closing connection without reply");
                return;
            }
        };
        let current = service.borrow().clone();
        let decision = current.decide(&request).await;
        // Counted before the answer leaves, so a scrape after the answer sees it.
        let elapsed = started.elapsed();
        if crate::metrics::enabled() {
            metrics::counter!("postward_policy_requests_total", "action" => decision.action.verb(), "reason" => decision.reason.clone())
                .increment(1);
            metrics::histogram!("postward_policy_request_duration_seconds").record(elapsed.as_secs_f64());
        }
        out.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(out, "action={}\n\n", decision.action);
        if let Err(err) = async {
            writer.write_all(&out).await?;
            writer.flush().await
        }
        .await
        {
            tracing::debug!("write error to {peer}: {err}");
            return;
        }
        DecisionLine { request: &request, decision: &decision, elapsed }.log();
    }
}
