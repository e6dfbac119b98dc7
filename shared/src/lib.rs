//! postward's shared library: everything the three daemons have in common.
//!
//! # Layout
//! - [`policy`]: the Postfix SMTP access policy delegation protocol (request reader, typed
//!   request, actions and their rendering, the per-connection serve loop).
//! - [`listen`]: listening addresses (`unix:`, `inet:`, `systemd`), socket binding, stale sockets.
//! - [`server`]: the accept loop, connection limit, graceful drain.
//! - [`signals`]: SIGTERM/SIGINT → shutdown, SIGHUP → reload.
//! - [`config`]: TOML loading with errors that name file, key and line; shared config sections.
//! - [`daemon`]: the start-up sequence every binary follows (CLI, config, bind, privilege drop,
//!   runtime, reload).
//! - [`logging`]: tracing to stderr or syslog `mail`, Postfix-style decision lines.
//! - [`privdrop`]: switching to an unprivileged user after binding.
//! - [`dns`]: the hickory resolver built from configuration.
//! - [`singleflight`]: concurrent identical lookups share one.
//! - [`ttl_cache`]: a bounded LRU map with per-entry expiry.
//! - [`duration`]: `"5s"`-style durations used in every config file.
//!
//! What does not live here: anything specific to greylisting, SPF, DNSBL or authentication.

pub mod config;
pub mod daemon;
pub mod dburl;
pub mod dns;
pub mod duration;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod privdrop;
pub mod server;
pub mod signals;
pub mod singleflight;
pub mod ttl_cache;
