//! Process signals as messages: SIGTERM/SIGINT ask for a graceful shutdown, SIGHUP for a
//! configuration reload (spf-milter's signal task, linkerd's shutdown future).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Shutdown,
    Reload,
}

/// Starts a task that turns SIGTERM, SIGINT and SIGHUP into [`Signal`] messages.
///
/// # Errors
/// Installing a handler failed (only possible outside a Tokio runtime or if the OS refuses).
pub fn listen() -> std::io::Result<mpsc::Receiver<Signal>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received; shutting down"); Signal::Shutdown }
                _ = int.recv() => { tracing::info!("SIGINT received; shutting down"); Signal::Shutdown }
                _ = hup.recv() => Signal::Reload,
            };
            if tx.send(sig).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Tells every listener and idle connection to stop.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// Listens for shutdown. Cheap to clone; `recv` is cancel-safe, so it can sit in `select!`.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn channel() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// A `Shutdown` that never fires (for tools and tests that stop by other means).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive for the life of the program: the receiver must not see it go.
        std::mem::forget(tx);
        Shutdown(rx)
    }

    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown has been triggered. If the trigger is dropped without firing,
    /// this never completes.
    pub async fn recv(&mut self) {
        if self.0.wait_for(|&stop| stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
