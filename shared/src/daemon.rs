//! The start-up sequence every postward daemon follows, in one place (Postfix's "skeleton"
//! idea): command line → configuration → logging → bind → drop privileges → runtime → serve,
//! with SIGHUP reload and SIGTERM drain.
//!
//! A daemon supplies a [`Daemon`] implementation: its name, its configuration type, how to
//! build its service from a configuration, and how to serve one connection.
//!
//! Exit codes: 0 after a clean shutdown or a successful `--check-config`, 64 for a bad command
//! line, 78 (EX_CONFIG) for a bad configuration, 1 for any other start-up failure.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::BufReader;
use tokio::sync::watch;

use crate::config::{self, CommonConfig, ConfigError};
use crate::listen::ListenAddr;
use crate::policy::{PolicyService, ServeOptions, serve_policy};
use crate::server::{self, Conn, ServerOptions};
use crate::signals::{self, Shutdown, Signal};

/// Errors from building a daemon's service (database unreachable, bad file, …).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// One postward daemon.
pub trait Daemon: Send + Sync + Sized + 'static {
    /// Program name, e.g. `postward-greyd`.
    const NAME: &'static str;
    /// Configuration file read when `--config` is not given, if it exists.
    const DEFAULT_CONFIG: &'static str;
    /// Listening address when the configuration names none.
    const DEFAULT_LISTEN: &'static str;
    type Config: CommonConfig;
    /// The daemon's commands for `--help`, one `  name ARGS   what it does` line each; empty
    /// when it has none.
    const COMMANDS: &'static str = "";
    /// Whether the daemon can serve one conversation on stdin/stdout (`--stdio`, spawn(8)).
    const STDIO: bool = true;

    /// `--check-config`: what start-up would find wrong beyond the file's own syntax and
    /// values (files the configuration names, queries), without binding sockets, dropping
    /// privileges, opening databases or creating files. Nothing by default.
    fn check(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Builds the service. Called at start and again for every reload.
    fn build(config: Arc<Self::Config>) -> impl Future<Output = Result<Self, BuildError>> + Send;

    /// Called on a reload with the service being replaced, before the new one is put in
    /// service: what the old one learnt at run time (penalty records, measured costs) is
    /// taken over here. Keeps nothing by default.
    #[must_use]
    fn inherit(self, _previous: &Self) -> Self {
        self
    }

    /// Called once at a clean stop (SIGTERM, or the end of a `--stdio` conversation) with the
    /// service in use, after the last connection ended: what the service writes behind is
    /// written here and its databases closed, before the process exits. Nothing by default.
    fn stop(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Serves one connection. `service` always holds the newest configuration's service.
    fn serve(
        service: watch::Receiver<Arc<Self>>,
        conn: Conn,
        peer: String,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> impl Future<Output = ()> + Send;

    /// Serves one conversation on stdin/stdout, as Postfix spawn(8) runs a policy program.
    /// Daemons that cannot (authd) keep this default, which refuses.
    fn serve_stdio(
        service: watch::Receiver<Arc<Self>>,
        options: ServeOptions,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = (service, options, shutdown);
        async { Err(format!("{} cannot run on stdin/stdout; give it a socket with --listen", Self::NAME)) }
    }
}

/// Serves a policy-protocol connection with a [`PolicyService`]: the `serve` of greyd and
/// policyd.
pub async fn serve_policy_conn<S: PolicyService>(
    service: watch::Receiver<Arc<S>>,
    conn: Conn,
    peer: String,
    options: ServeOptions,
    mut shutdown: Shutdown,
) {
    let (r, w) = conn.into_split();
    serve_policy(&service, BufReader::with_capacity(4096, r), w, &peer, &options, &mut shutdown).await;
}

/// Serves one policy conversation on stdin/stdout: the `serve_stdio` of greyd and policyd.
///
/// # Errors
/// Never; the signature matches [`Daemon::serve_stdio`].
pub async fn serve_policy_stdio<S: PolicyService>(
    service: watch::Receiver<Arc<S>>,
    options: ServeOptions,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    let reader = BufReader::with_capacity(4096, tokio::io::stdin());
    serve_policy(&service, reader, tokio::io::stdout(), "stdin", &options, &mut shutdown).await;
    Ok(())
}

/// The parsed command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    pub check_config: bool,
    pub version: bool,
    pub help: bool,
    /// Overrides `server.listen`.
    pub listen: Vec<ListenAddr>,
    /// One conversation on stdin/stdout (spawn(8) mode), even when stdin is not a socket.
    pub stdio: bool,
}

impl Cli {
    /// Parses options (program name already removed).
    ///
    /// # Errors
    /// An unknown option or a missing value.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value =
                |what: &str| inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs {what}"));
            match name.as_str() {
                "-c" | "--config" => cli.config = Some(PathBuf::from(value("a file path")?)),
                "-t" | "--check-config" => cli.check_config = true,
                "-V" | "--version" => cli.version = true,
                "-h" | "--help" => cli.help = true,
                "-l" | "--listen" => cli.listen.push(value("an address")?.parse()?),
                "--stdio" => cli.stdio = true,
                _ => return Err(format!("unknown option {arg:?} (see --help)")),
            }
        }
        Ok(cli)
    }
}

fn usage<D: Daemon>() -> String {
    let (stdio_usage, stdio_help) = if D::STDIO {
        (
            " [--stdio]",
            concat!(
                "--stdio              serve one policy conversation on stdin/stdout (Postfix spawn(8));\n",
                "                     automatic when stdin is a socket and no --listen is given\n",
            ),
        )
    } else {
        ("", "")
    };
    let commands = if D::COMMANDS.is_empty() {
        String::new()
    } else {
        format!(
            "\nCommands (the options above may come before or after the command; each takes --help):\n{}",
            D::COMMANDS
        )
    };
    format!(
        "usage: {name} [--config PATH] [--listen ADDR]...{stdio_usage} [--check-config] [--version]\n\
         \x20      {name} [--config PATH] COMMAND [ARGS]\n\n\
         -c, --config PATH    configuration file (default {cfg} if it exists, else built-in defaults)\n\
         -l, --listen ADDR    listen on ADDR instead of server.listen (unix:/path, inet:host:port, systemd)\n\
         {stdio_help}\
         -t, --check-config   check the configuration and exit (0 = valid)\n\
         -V, --version        print the version and exit\n\
         {commands}\n\
         Default socket: {listen}. See {name}(8).",
        name = D::NAME,
        cfg = D::DEFAULT_CONFIG,
        listen = D::DEFAULT_LISTEN
    )
}

/// What start-up checks beyond the file: the accounts and groups `[server]` names, then the
/// daemon's own [`Daemon::check`].
fn check_startup<D: Daemon>(config: &D::Config) -> Result<(), String> {
    let server = config.server();
    if let Some(user) = &server.user {
        crate::privdrop::lookup_user(user).map_err(|e| format!("server.user: {e}"))?;
    }
    for (key, group) in [("server.group", &server.group), ("server.socket_group", &server.socket_group)] {
        if let Some(group) = group {
            crate::privdrop::lookup_group(group).map_err(|e| format!("{key}: {e}"))?;
        }
    }
    if let Some(owner) = &server.socket_owner {
        crate::privdrop::lookup_user(owner).map_err(|e| format!("server.socket_owner: {e}"))?;
    }
    for group in server.supplementary_groups.iter().flatten() {
        crate::privdrop::lookup_group(group).map_err(|e| format!("server.supplementary_groups: {e}"))?;
    }
    // Inside a runtime: opening a store may start its file watcher (never run here).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let _inside = runtime.enter();
    D::check(config)
}

/// `args` with the first of `commands` moved to the front, so `-c FILE stats` works as
/// `stats -c FILE` does: global options may come before or after a command. The values of
/// `-c`/`--config` and `-l`/`--listen` are skipped, so a file named like a command is not
/// taken for one. Unchanged when no command is named.
pub fn command_first(args: &[String], commands: &[&str]) -> Vec<String> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if commands.contains(&arg) {
            let mut out = Vec::with_capacity(args.len());
            out.push(args[i].clone());
            out.extend(args[..i].iter().cloned());
            out.extend(args[i + 1..].iter().cloned());
            return out;
        }
        if matches!(arg, "-c" | "--config" | "-l" | "--listen") {
            i += 1;
        } else if !arg.starts_with('-') {
            // Not an option and not a command: the daemon's parser will say so.
            break;
        }
        i += 1;
    }
    args.to_vec()
}

/// Where the configuration came from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Defaults,
}

/// Loads a configuration the way every daemon and command does: `explicit` if given, else
/// `default_path` if it exists, else the built-in defaults. Returns the file used, if any.
///
/// # Errors
/// The file cannot be read or is invalid.
pub fn load_config_from<C: CommonConfig>(
    explicit: Option<&Path>,
    default_path: &str,
) -> Result<(C, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(default_path)).filter(|p| p.exists()),
    };
    let config = match &path {
        Some(p) => config::load_checked::<C>(p)?,
        None => {
            let c = C::default();
            config::check(&c, None, Path::new("(built-in defaults)"))?;
            c
        }
    };
    Ok((config, path))
}

fn load_config<D: Daemon>(cli: &Cli) -> Result<(D::Config, Source), ConfigError> {
    let (mut config, path) = load_config_from::<D::Config>(cli.config.as_deref(), D::DEFAULT_CONFIG)?;
    apply_cli::<D>(&mut config, cli);
    Ok((config, path.map_or(Source::Defaults, Source::File)))
}

fn apply_cli<D: Daemon>(config: &mut D::Config, cli: &Cli) {
    let server = config.server_mut();
    if !cli.listen.is_empty() {
        server.listen = cli.listen.clone();
    }
    if server.listen.is_empty()
        && let Ok(addr) = D::DEFAULT_LISTEN.parse()
    {
        server.listen = vec![addr];
    }
}

/// Runs a daemon: the whole life of the process. Call from `main`.
pub fn main<D: Daemon>(args: impl IntoIterator<Item = String>) -> ExitCode {
    let cli = match Cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", D::NAME);
            return ExitCode::from(64);
        }
    };
    if cli.help {
        println!("{}", usage::<D>());
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!("{} {}", D::NAME, env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let (config, source) = match load_config::<D>(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: invalid configuration: {e}", D::NAME);
            return ExitCode::from(78);
        }
    };
    if cli.check_config {
        if let Err(e) = check_startup::<D>(&config) {
            eprintln!("{}: invalid configuration: {e}", D::NAME);
            return ExitCode::from(78);
        }
        match &source {
            Source::File(p) => println!("{}: configuration {} is valid", D::NAME, p.display()),
            Source::Defaults => println!("{}: no configuration file; the built-in defaults are valid", D::NAME),
        }
        return ExitCode::SUCCESS;
    }
    let stdio = cli.stdio || (cli.listen.is_empty() && std::env::var_os("LISTEN_FDS").is_none() && is_socket(0));
    // Under spawn(8) stderr is the client's socket too: log to syslog, never into the protocol.
    let mut log = config.log().clone();
    if stdio && is_socket(2) {
        log.destination = crate::logging::LogDestination::Syslog;
    }
    // No logging before this point: errors above go to stderr (spf-milter's rule).
    if let Err(e) = crate::logging::init(D::NAME, &log) {
        eprintln!("{}: {e}", D::NAME);
        return ExitCode::from(1);
    }
    let started = if stdio { start_stdio::<D>(config) } else { start::<D>(cli, config, source) };
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: logged to stderr already unless the log goes to syslog.
            if log.destination == crate::logging::LogDestination::Stderr {
                tracing::error!("{e}");
            } else {
                tracing::error!("{e}");
                eprintln!("{}: fatal: {e}", D::NAME);
            }
            ExitCode::from(1)
        }
    }
}

/// True when standard descriptor `fd` (0, 1 or 2) is a socket: spawn(8) hands its child the
/// client's socket, a shell or a service manager hands it a terminal, a pipe or /dev/null.
fn is_socket(fd: i32) -> bool {
    use nix::sys::stat::{SFlag, fstat};
    use std::os::fd::AsFd;
    let stat = match fd {
        0 => fstat(std::io::stdin().as_fd()),
        1 => fstat(std::io::stdout().as_fd()),
        2 => fstat(std::io::stderr().as_fd()),
        _ => return false,
    };
    stat.is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFSOCK)
}

/// The per-connection timeouts from `[server]`, the same on a socket and on stdin/stdout.
fn serve_options(server: &crate::config::ServerConfig) -> ServeOptions {
    ServeOptions {
        idle_timeout: server.idle_timeout.get(),
        request_timeout: server.request_timeout.get(),
        ..ServeOptions::default()
    }
}

/// spawn(8) mode: no socket, no privilege change (spawn already runs us as `user=`), no
/// reload; one conversation, then exit.
fn start_stdio<D: Daemon>(config: D::Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let server = config.server().clone();
        let options = serve_options(&server);
        let service = D::build(Arc::new(config)).await.map_err(|e| format!("cannot start: {e}"))?;
        let service = Arc::new(service);
        let (_tx, rx) = watch::channel(service.clone());
        tracing::debug!("serving one policy conversation on stdin/stdout");
        let served = D::serve_stdio(rx, options, Shutdown::never()).await;
        service.stop().await;
        served
    })
}

fn start<D: Daemon>(cli: Cli, config: D::Config, source: Source) -> Result<(), String> {
    let server = config.server().clone();
    let perms = server.socket_permissions()?;
    let listeners = crate::listen::bind_all(&server.listen, &perms).map_err(|e| e.to_string())?;
    match crate::privdrop::drop_privileges(&server).map_err(|e| e.to_string())? {
        crate::privdrop::Dropped::To { user, uid, gid } => {
            tracing::info!("running as user {user} (uid {uid}, gid {gid})")
        }
        crate::privdrop::Dropped::StayedRoot => tracing::warn!("running as root because server.allow_root = true"),
        crate::privdrop::Dropped::Unchanged => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(run::<D>(cli, config, source, listeners))
}

async fn run<D: Daemon>(
    cli: Cli,
    config: D::Config,
    source: Source,
    listeners: Vec<crate::listen::BoundListener>,
) -> Result<(), String> {
    let mut signals = signals::listen().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let config = Arc::new(config);
    let service = D::build(config.clone()).await.map_err(|e| format!("cannot start: {e}"))?;
    let (service_tx, service_rx) = watch::channel(Arc::new(service));
    let server_cfg = config.server().clone();
    let options = serve_options(&server_cfg);
    let (trigger, shutdown) = Shutdown::channel();
    let handler =
        move |conn: Conn, peer: String, shutdown: Shutdown| D::serve(service_rx.clone(), conn, peer, options, shutdown);
    let server_options =
        ServerOptions { max_connections: server_cfg.max_connections, shutdown_grace: server_cfg.shutdown_grace.get() };
    let server = tokio::spawn(server::run(listeners, server_options, shutdown, handler));
    let metrics = start_metrics(&server_cfg).await?;
    match &source {
        Source::File(p) => {
            tracing::info!("{} {} started with configuration {}", D::NAME, env!("CARGO_PKG_VERSION"), p.display())
        }
        Source::Defaults => tracing::info!(
            "{} {} started with built-in defaults (no configuration file)",
            D::NAME,
            env!("CARGO_PKG_VERSION")
        ),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let mut current = config;
    while let Some(signal) = signals.recv().await {
        match signal {
            Signal::Reload => {
                // Type=notify-reload wants RELOADING=1 together with the monotonic time.
                if let Ok(now) = sd_notify::NotifyState::monotonic_usec_now() {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading, now]);
                }
                if let Some(next) = reload::<D>(&cli, &source, &current, &service_tx).await {
                    current = next;
                }
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            }
            Signal::Shutdown => break,
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if let Some(task) = metrics {
        task.abort();
    }
    trigger.trigger();
    let served = server.await;
    let last = service_tx.borrow().clone();
    last.stop().await;
    match served {
        Ok(Ok(0)) => tracing::info!("{} stopped", D::NAME),
        Ok(Ok(n)) => tracing::warn!("{} stopped with {n} connection(s) cut off", D::NAME),
        Ok(Err(e)) => return Err(format!("server failed: {e}")),
        Err(e) => return Err(format!("server task failed: {e}")),
    }
    Ok(())
}

/// Starts the Prometheus endpoint when `server.metrics_listen` is set.
///
/// # Errors
/// The address cannot be bound.
async fn start_metrics(server: &crate::config::ServerConfig) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(addr) = server.metrics_addr().map_err(|(k, m)| format!("{k}: {m}"))? else { return Ok(None) };
    let handle = crate::metrics::install()?;
    let listener = crate::metrics::bind(addr).await?;
    if !addr.ip().is_loopback() {
        tracing::warn!("metrics endpoint on {addr}, not loopback: anyone who reaches it sees the figures");
    }
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(Some(tokio::spawn(crate::metrics::serve(listener, handle))))
}

/// Re-reads the configuration file. On any error the running configuration stays.
async fn reload<D: Daemon>(
    cli: &Cli,
    source: &Source,
    current: &Arc<D::Config>,
    tx: &watch::Sender<Arc<D>>,
) -> Option<Arc<D::Config>> {
    let Source::File(path) = source else {
        tracing::info!("SIGHUP: no configuration file to reload (running on built-in defaults)");
        return None;
    };
    let path = path.clone();
    let loaded = tokio::task::spawn_blocking(move || config::load_checked::<D::Config>(&path).map(|c| (c, path))).await;
    let (mut next, path) = match loaded {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::error!("reload failed, keeping the running configuration: {e}");
            return None;
        }
        Err(e) => {
            tracing::error!("reload failed, keeping the running configuration: {e}");
            return None;
        }
    };
    apply_cli::<D>(&mut next, cli);
    let pending = restart_only_changes(current.server(), next.server(), current.log(), next.log());
    if !pending.is_empty() {
        tracing::warn!(
            "{}: {} changed; {} take effect only after a restart (the rest of the file is applied now)",
            path.display(),
            pending.join(", "),
            if pending.len() == 1 { "it does" } else { "they" }
        );
    }
    let next = Arc::new(next);
    match D::build(next.clone()).await {
        Ok(service) => {
            let service = service.inherit(&tx.borrow());
            tx.send_replace(Arc::new(service));
            tracing::info!("configuration reloaded from {}", path.display());
            Some(next)
        }
        Err(e) => {
            tracing::error!("reload failed, keeping the running configuration: {e}");
            None
        }
    }
}

/// The keys that a reload cannot apply and that differ: every `[server]` key (sockets,
/// privileges, limits and timeouts are set up once, at start) and every `[log]` key.
fn restart_only_changes(
    now: &crate::config::ServerConfig,
    next: &crate::config::ServerConfig,
    log_now: &crate::logging::LogConfig,
    log_next: &crate::logging::LogConfig,
) -> Vec<&'static str> {
    let server = [
        ("server.listen", now.listen != next.listen),
        ("server.socket_mode", now.socket_mode != next.socket_mode),
        ("server.socket_owner", now.socket_owner != next.socket_owner),
        ("server.socket_group", now.socket_group != next.socket_group),
        ("server.user", now.user != next.user),
        ("server.group", now.group != next.group),
        ("server.supplementary_groups", now.supplementary_groups != next.supplementary_groups),
        ("server.allow_root", now.allow_root != next.allow_root),
        ("server.max_connections", now.max_connections != next.max_connections),
        ("server.idle_timeout", now.idle_timeout != next.idle_timeout),
        ("server.request_timeout", now.request_timeout != next.request_timeout),
        ("server.shutdown_grace", now.shutdown_grace != next.shutdown_grace),
        ("server.metrics_listen", now.metrics_listen != next.metrics_listen),
        ("log.destination", log_now.destination != log_next.destination),
        ("log.level", log_now.level != log_next.level),
        ("log.facility", log_now.facility != log_next.facility),
    ];
    server.into_iter().filter(|(_, changed)| *changed).map(|(key, _)| key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_keys_are_named() {
        let now = crate::config::ServerConfig::default();
        let mut next = now.clone();
        next.metrics_listen = "127.0.0.1:9100".into();
        next.max_connections += 1;
        let log = crate::logging::LogConfig::default();
        let mut log_next = log.clone();
        log_next.level = crate::logging::LogLevel::Debug;
        assert_eq!(
            restart_only_changes(&now, &next, &log, &log_next),
            ["server.max_connections", "server.metrics_listen", "log.level"]
        );
        assert!(restart_only_changes(&now, &now, &log, &log).is_empty());
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commands_move_before_global_options() {
        let cmds = ["stats", "dump"];
        assert_eq!(command_first(&args(&["-c", "/g.toml", "dump"]), &cmds), args(&["dump", "-c", "/g.toml"]));
        assert_eq!(command_first(&args(&["--config", "stats", "dump"]), &cmds), args(&["dump", "--config", "stats"]));
        assert_eq!(command_first(&args(&["stats", "--json"]), &cmds), args(&["stats", "--json"]));
        assert_eq!(command_first(&args(&["-c", "/g.toml", "-t"]), &cmds), args(&["-c", "/g.toml", "-t"]));
        assert_eq!(command_first(&args(&["bogus", "stats"]), &cmds), args(&["bogus", "stats"]));
    }

    #[test]
    fn cli() {
        let cli = Cli::parse(args(&["-c", "/x.toml", "--listen=inet:127.0.0.1:1", "-l", "unix:/s", "-t"])).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/x.toml")));
        assert!(cli.check_config);
        assert_eq!(cli.listen.len(), 2);
        assert_eq!(Cli::parse(args(&["--bogus"])).unwrap_err(), "unknown option \"--bogus\" (see --help)");
        assert_eq!(Cli::parse(args(&["--config"])).unwrap_err(), "--config needs a file path");
        assert!(Cli::parse(args(&["--listen", "tcp:x"])).is_err());
    }
}
