//! postward-greyd: greylisting for Postfix over the SMTP access policy delegation protocol,
//! replacing postgrey and sqlgrey.
//!
//! # Layout
//! - [`service`]: one request's path, top to bottom, and store-outage handling.
//! - [`greylist`]: the decision rules as pure functions of lookups and time.
//! - [`triplet`]: the key (client network, folded sender, recipient).
//! - [`store`]: SQLite, PostgreSQL and MySQL/MariaDB through sqlx, migrations, expiry.
//! - [`cache`]: what may be answered from memory when several MX hosts share a database.
//! - [`pending`]: the per-network bound on pending triplets, against floods of first attempts.
//! - [`whitelist`]: client, recipient and sender lists (postgrey's format) and the built-in list.
//! - [`pool`]: sender pools recognised through SPF.
//! - [`selective`]: what makes a client suspicious in selective mode.
//! - [`header`]: the `X-Greylist` header.
//! - [`config`]: the configuration file, `/etc/postward/greyd.toml`.
//! - [`commands`]: `stats`, `dump`, `check`, `delete` and `whitelist`.

use std::sync::Arc;

use shared::daemon::{BuildError, Daemon, serve_policy_conn};
use shared::policy::{Decision, PolicyRequest, PolicyService, ServeOptions};
use shared::server::Conn;
use shared::signals::Shutdown;
use tokio::sync::watch;

pub mod cache;
pub mod commands;
pub mod config;
pub mod greylist;
pub mod header;
pub mod pending;
pub mod pool;
pub mod selective;
pub mod service;
pub mod store;
pub mod triplet;
pub mod whitelist;

pub use config::Config;
pub use service::Service;

impl PolicyService for Service {
    async fn decide(&self, request: &PolicyRequest) -> Decision {
        Service::decide(self, request).await
    }
}

impl Daemon for Service {
    const NAME: &'static str = "postward-greyd";

    /// The whitelist files load (start-up stops on a missing or malformed one).
    fn check(config: &Config) -> Result<(), String> {
        let wl = &config.whitelist;
        crate::whitelist::Whitelists::load(&wl.clients, &wl.recipients, &wl.senders, wl.builtins())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    const DEFAULT_CONFIG: &'static str = "/etc/postward/greyd.toml";
    const DEFAULT_LISTEN: &'static str = "unix:/var/spool/postfix/private/postward-greyd";
    type Config = Config;
    const COMMANDS: &'static str = "  stats [--json]       counts, pass and wait shares, clients and senders that never retried\n\
                                    \x20 dump                 every greylist row, one JSON object per line\n\
                                    \x20 check QUERY          which whitelist entry matches an address, name, name[addr] or email\n\
                                    \x20 delete CLIENT SENDER RECIPIENT | --client ADDR | --sender ADDR | --domain DOMAIN\n\
                                    \x20                      forget greylist and auto-whitelist state, so the next attempt starts over\n\
                                    \x20 whitelist ADDR       put a client in the auto-whitelist now\n";

    async fn build(config: Arc<Config>) -> Result<Self, BuildError> {
        Service::build(config).await
    }

    /// Writes the passes and retry counts written behind (SQLite), and closes the store.
    async fn stop(&self) {
        self.close().await;
    }

    fn serve(
        service: watch::Receiver<Arc<Self>>,
        conn: Conn,
        peer: String,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> impl Future<Output = ()> + Send {
        serve_policy_conn(service, conn, peer, options, shutdown)
    }
}
