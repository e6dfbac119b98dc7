//! `serve-trivial`: an always-DUNNO policy server built on postward's own runtime (listener,
//! accept loop, request reader, serve loop), so it measures our plumbing and nothing else.
//! It is the protocol floor every other result is compared with.

use std::sync::Arc;

use shared::daemon::serve_policy_conn;
use shared::listen::BoundListener;
use shared::policy::{Action, Decision, PolicyRequest, PolicyService, ServeOptions};
use shared::server::{self, Conn, ServerOptions};
use shared::signals::{self, Shutdown, Signal};
use tokio::sync::watch;

/// The floor's decision: always `DUNNO`.
#[derive(Debug)]
pub struct Floor;

impl PolicyService for Floor {
    async fn decide(&self, _request: &PolicyRequest) -> Decision {
        Decision::new(Action::Dunno, "floor")
    }
}

/// Serves until `shutdown` fires; returns the number of connections cut off at the end.
///
/// # Errors
/// A listener could not be registered with the runtime.
pub async fn serve(listeners: Vec<BoundListener>, shutdown: Shutdown) -> std::io::Result<usize> {
    let (_keep, service) = watch::channel(Arc::new(Floor));
    let handler = move |conn: Conn, peer: String, shutdown: Shutdown| {
        serve_policy_conn(service.clone(), conn, peer, ServeOptions::default(), shutdown)
    };
    server::run(listeners, ServerOptions::default(), shutdown, handler).await
}

/// Serves until SIGTERM or SIGINT (SIGHUP is ignored: there is nothing to reload).
///
/// # Errors
/// Signal handlers or listeners could not be installed.
pub async fn serve_until_signal(listeners: Vec<BoundListener>) -> std::io::Result<()> {
    let mut signals = signals::listen()?;
    let (trigger, shutdown) = Shutdown::channel();
    let mut server = tokio::spawn(serve(listeners, shutdown));
    let stop = async {
        while let Some(signal) = signals.recv().await {
            if signal == Signal::Shutdown {
                return;
            }
        }
    };
    tokio::select! {
        // The server only ends by itself when it failed to start.
        ended = &mut server => return flatten(ended),
        () = stop => {}
    }
    trigger.trigger();
    flatten(server.await)
}

fn flatten(joined: Result<std::io::Result<usize>, tokio::task::JoinError>) -> std::io::Result<()> {
    match joined {
        Ok(result) => result.map(drop),
        Err(e) => Err(std::io::Error::other(e)),
    }
}
