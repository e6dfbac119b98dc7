//! postward-authd: SMTP AUTH for Postfix over the Dovecot authentication protocol
//! (`smtpd_sasl_type = dovecot`), replacing Cyrus saslauthd or a Dovecot run only for SMTP
//! AUTH.
//!
//! # Layout
//! - [`conn`]: one client connection: handshake, lines in, replies out.
//! - [`request`]: one request's exchange, per mechanism, top to bottom.
//! - [`service`]: what happens to credentials: names, cache, store, hashing, penalties, log.
//! - [`protocol`]: the wire format. [`mech`]: what each mechanism's messages contain.
//! - [`scheme`]: Dovecot's password schemes. [`store`]: passwd-file, SQL and shadow.
//! - [`hasher`], [`throttle`], [`cache`], [`username`], [`outcome`]: one job each.
//! - [`config`]: `/etc/postward/authd.toml`. [`commands`]: `pw` and `test`.

use std::sync::Arc;

use shared::daemon::{BuildError, Daemon};
use shared::policy::ServeOptions;
use shared::server::Conn;
use shared::signals::Shutdown;
use tokio::sync::watch;

pub mod cache;
pub mod commands;
pub mod config;
pub mod conn;
pub mod hasher;
pub mod mech;
pub mod outcome;
pub mod pace;
pub mod protocol;
pub mod request;
pub mod scheme;
pub mod secret;
pub mod service;
pub mod store;
pub mod throttle;
pub mod username;

pub use config::Config;
pub use service::Service;

/// Program name.
pub const NAME: &str = "postward-authd";
/// Configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/postward/authd.toml";
/// Where Postfix's chrooted smtpd finds us: `smtpd_sasl_path = private/postward-auth`.
pub const DEFAULT_LISTEN: &str = "unix:/var/spool/postfix/private/postward-auth";

impl Daemon for Service {
    const NAME: &'static str = NAME;
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    const DEFAULT_LISTEN: &'static str = DEFAULT_LISTEN;
    type Config = Config;
    const COMMANDS: &'static str = "  pw [-s SCHEME] [-r ROUNDS] [-p PASSWORD] [-l]   print a stored password (doveadm pw)\n\
                                    \x20 pw -t STORED [-p PASSWORD]                     check a password against a stored one\n\
                                    \x20 test [-a ADDR] [-m PLAIN|LOGIN] USER [PASSWORD]  authenticate through the running daemon\n";
    const STDIO: bool = false;

    fn check(config: &Config) -> Result<(), String> {
        Service::check(config)
    }

    async fn build(config: Arc<Config>) -> Result<Self, BuildError> {
        Service::build(config).await
    }

    fn inherit(self, previous: &Self) -> Self {
        Service::inherit(self, previous)
    }

    fn serve(
        service: watch::Receiver<Arc<Self>>,
        conn: Conn,
        peer: String,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> impl Future<Output = ()> + Send {
        conn::serve(service, conn, peer, options, shutdown)
    }
}
