//! postward-authd: SMTP AUTH for Postfix over the Dovecot auth protocol
//! (`smtpd_sasl_type = dovecot`), replacing Cyrus saslauthd or a Dovecot run only for SMTP AUTH.
//!
//! Status: the foundation release ships the configuration, command line and packaging hooks;
//! the protocol server itself is not implemented yet, and the binary says so and exits with
//! status 1 rather than accept connections it cannot answer.

use serde::Deserialize;
use shared::config::{CommonConfig, ServerConfig};
use shared::logging::LogConfig;

/// Program name.
pub const NAME: &str = "postward-authd";
/// Configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/postward/authd.toml";

/// The whole configuration file (`/etc/postward/authd.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
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
}
