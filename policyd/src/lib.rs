//! postward-policyd: SPF and DNS list checks (pypolicyd-spf / policyd-weight replacement), speaking the Postfix SMTP access policy delegation protocol.
//!
//! Status: the foundation release. The daemon runs on the shared runtime (sockets, limits,
//! reload, privilege drop, logging) and answers every request with `DUNNO` ("no opinion",
//! Postfix goes on to its next restriction), so wiring it into Postfix is already safe; the
//! SPF and DNSBL checks themselves are added on top of this skeleton.

use std::sync::Arc;

use serde::Deserialize;
use shared::config::{CommonConfig, ServerConfig};
use shared::daemon::{BuildError, Daemon, serve_policy_conn};
use shared::dns::DnsConfig;
use shared::logging::LogConfig;
use shared::policy::{Action, Decision, PolicyRequest, PolicyService, ServeOptions};
use shared::server::Conn;
use shared::signals::Shutdown;
use tokio::sync::watch;

/// The whole configuration file (`/etc/postward/policyd.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
}

impl CommonConfig for Config {
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn server_mut(&mut self) -> &mut ServerConfig {
        &mut self.server
    }
    fn log(&self) -> &LogConfig {
        &self.log
    }
    fn validate(&self) -> Result<(), (String, String)> {
        self.dns.check("dns")
    }
}

/// The running service, rebuilt on every reload.
pub struct Service {
    #[allow(dead_code)]
    config: Arc<Config>,
}

impl PolicyService for Service {
    async fn decide(&self, _request: &PolicyRequest) -> Decision {
        Decision::new(Action::Dunno, "no-checks")
    }
}

impl Daemon for Service {
    const NAME: &'static str = "postward-policyd";
    const DEFAULT_CONFIG: &'static str = "/etc/postward/policyd.toml";
    const DEFAULT_LISTEN: &'static str = "unix:/var/spool/postfix/private/postward-policyd";
    type Config = Config;

    async fn build(config: Arc<Config>) -> Result<Self, BuildError> {
        Ok(Service { config })
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
