//! Configuration files: one TOML file per daemon, unknown keys refused, and errors that name
//! the file, the line and the key, e.g.
//! `/etc/postward/greyd.toml: line 7: key greylist.delay: invalid duration "5x" (…)`.
//!
//! Also the sections every daemon shares: `[server]` (sockets, limits, privileges) and `[log]`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::duration::ConfigDuration;
use crate::listen::{ListenAddr, SocketPermissions};
use crate::logging::LogConfig;

/// A configuration file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    /// Dotted key, e.g. `server.listen`, when it can be told.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and parses a configuration file.
///
/// # Errors
/// The file cannot be read, is not valid TOML, has unknown keys or invalid values.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_owned(),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, path)
}

/// Parses configuration text; `path` is only used in error messages.
///
/// # Errors
/// As [`load`].
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, key) = match e.span() {
            Some(span) => locate(text, span.start),
            None => (None, None),
        };
        ConfigError { path: path.to_owned(), line, key, message: plain_words(e.message().trim()) }
    })
}

/// serde's messages in the admin's words: `invalid type: string "x", expected i32` is
/// `expected a whole number, not the text "x"`; no Rust type names.
fn plain_words(message: &str) -> String {
    const TYPES: &[(&str, &str)] = &[
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected u32", "expected a whole number of 0 or more"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list in [ ]"),
    ];
    let mut out = message.to_owned();
    for (rust, words) in TYPES {
        out = out.replace(rust, words);
    }
    // `invalid type: string "x", expected …` → `expected …, not the text "x"`.
    if let Some(rest) = out.strip_prefix("invalid type: ").or_else(|| out.strip_prefix("invalid value: "))
        && let Some((got, want)) = rest.split_once(", expected ")
    {
        let got = got
            .replacen("string ", "the text ", 1)
            .replacen("integer ", "the number ", 1)
            .replacen("boolean ", "", 1)
            .replace('`', "");
        out = format!("expected {want}, not {got}");
    }
    out
}

/// An error found after parsing (a cross-field check), located by searching for its key.
pub fn invalid(text: Option<&str>, path: &Path, key: &str, message: impl Into<String>) -> ConfigError {
    let line = text.and_then(|t| find_key_line(t, key));
    ConfigError { path: path.to_owned(), line, key: Some(key.to_owned()), message: message.into() }
}

/// The 1-based line of byte `offset` and the dotted key written on that line, if any.
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let section = text
        .lines()
        .take(line_no)
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && !l.starts_with("[[") && l.ends_with(']'))
                .then(|| l[1..l.len() - 1].trim().to_owned())
        })
        .last();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let key = match (section, key) {
        (Some(s), Some(k)) => Some(format!("{s}.{k}")),
        (None, Some(k)) => Some(k),
        (_, None) => None,
    };
    (Some(line_no), key)
}

/// Finds the line that sets dotted `key` (`section.name`), for errors found after parsing.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    // `dnsbl.sites[1]`: the key `sites`, then its second element (an array of strings may
    // span lines, one entry per line).
    let (key, index) = match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some((k, n)) => (k, n.parse::<usize>().ok()),
        None => (key, None),
    };
    let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
            continue;
        }
        if let Some((k, _)) = l.split_once('=')
            && current == section
            && k.trim() == name
        {
            return Some(match index {
                Some(n) => nth_string_line(text, i, n).unwrap_or(i) + 1,
                None => i + 1,
            });
        }
    }
    None
}

/// The 0-based line, from line `from` on, where the `n`th (0-based) quoted string starts.
fn nth_string_line(text: &str, from: usize, n: usize) -> Option<usize> {
    let mut seen = 0;
    for (i, line) in text.lines().enumerate().skip(from) {
        let value = if i == from { line.split_once('=').map_or("", |(_, v)| v) } else { line };
        let mut in_string = false;
        let mut escaped = false;
        for c in value.chars() {
            match c {
                '\\' if in_string => escaped = !escaped,
                '"' if !escaped => {
                    if !in_string {
                        if seen == n {
                            return Some(i);
                        }
                        seen += 1;
                    }
                    in_string = !in_string;
                }
                '#' if !in_string => break,
                _ => escaped = false,
            }
        }
    }
    None
}

/// `[server]`: sockets, limits, timeouts and privileges. Set up once, at start: a change
/// needs a restart, and a SIGHUP that meets one names it in a warning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where to listen; empty means the daemon's default socket.
    pub listen: Vec<ListenAddr>,
    /// Octal mode of Unix sockets, as a string ("0660").
    pub socket_mode: String,
    pub socket_owner: Option<String>,
    pub socket_group: Option<String>,
    /// Unprivileged user to switch to after binding; required when started as root.
    pub user: Option<String>,
    /// Primary group; the user's own group when unset.
    pub group: Option<String>,
    /// Supplementary groups; the user's groups from /etc/group when unset.
    pub supplementary_groups: Option<Vec<String>>,
    /// Keep running as root. Only for setups that cannot avoid it.
    pub allow_root: bool,
    pub max_connections: usize,
    /// Idle time before the server closes a connection; keep it above Postfix's
    /// `smtpd_policy_service_max_idle` (300s) so Postfix closes first.
    pub idle_timeout: ConfigDuration,
    /// Time allowed for the rest of a request once it has started.
    pub request_timeout: ConfigDuration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: ConfigDuration,
    /// `host:port` of the Prometheus endpoint (`GET /metrics`); empty turns it off.
    pub metrics_listen: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            socket_mode: "0660".into(),
            socket_owner: None,
            socket_group: None,
            user: None,
            group: None,
            supplementary_groups: None,
            allow_root: false,
            max_connections: 1000,
            idle_timeout: ConfigDuration::secs(3600),
            request_timeout: ConfigDuration::secs(10),
            shutdown_grace: ConfigDuration::secs(10),
            metrics_listen: String::new(),
        }
    }
}

impl ServerConfig {
    /// Mode, owner and group for Unix sockets.
    ///
    /// # Errors
    /// A `socket_mode` that is not an octal number up to 0777.
    pub fn socket_permissions(&self) -> Result<SocketPermissions, String> {
        let mode = u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| format!("invalid socket_mode {:?} (expected octal, e.g. \"0660\")", self.socket_mode))?;
        Ok(SocketPermissions { mode, owner: self.socket_owner.clone(), group: self.socket_group.clone() })
    }

    /// The Prometheus endpoint's address, if one is configured.
    ///
    /// # Errors
    /// Not an `ip:port` address.
    pub fn metrics_addr(&self) -> Result<Option<std::net::SocketAddr>, (String, String)> {
        if self.metrics_listen.is_empty() {
            return Ok(None);
        }
        self.metrics_listen.parse().map(Some).map_err(|_| {
            (
                "server.metrics_listen".to_owned(),
                format!("{:?} is not ip:port, e.g. \"127.0.0.1:9311\"", self.metrics_listen),
            )
        })
    }

    /// Checks values serde cannot check alone.
    ///
    /// # Errors
    /// The dotted key and what is wrong with it.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.socket_permissions().map_err(|m| ("server.socket_mode".to_owned(), m))?;
        self.metrics_addr()?;
        if self.max_connections == 0 {
            return Err(("server.max_connections".into(), "must be at least 1".into()));
        }
        if self.request_timeout.get().is_zero() || self.idle_timeout.get().is_zero() {
            return Err(("server.request_timeout".into(), "timeouts must be greater than zero".into()));
        }
        Ok(())
    }
}

/// What every daemon's configuration has.
pub trait CommonConfig: DeserializeOwned + Default + Clone + Send + Sync + 'static {
    fn server(&self) -> &ServerConfig;
    fn server_mut(&mut self) -> &mut ServerConfig;
    fn log(&self) -> &LogConfig;
    /// Cross-field checks of the daemon's own sections; returns the dotted key and message.
    ///
    /// # Errors
    /// The first invalid setting.
    fn validate(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}

/// Loads a daemon configuration and runs every check, so `--check-config`, start-up and
/// SIGHUP reload accept and refuse exactly the same files.
///
/// # Errors
/// As [`load`], plus the cross-field checks.
pub fn load_checked<C: CommonConfig>(path: &Path) -> Result<C, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_owned(),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    let config: C = parse(&text, path)?;
    check(&config, Some(&text), path)?;
    Ok(config)
}

/// Runs the cross-field checks on a parsed configuration.
///
/// # Errors
/// The first invalid setting, located in `text` when given.
pub fn check<C: CommonConfig>(config: &C, text: Option<&str>, path: &Path) -> Result<(), ConfigError> {
    config.server().validate().map_err(|(k, m)| invalid(text, path, &k, m))?;
    config.validate().map_err(|(k, m)| invalid(text, path, &k, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors say what was wanted in words, name the key and its line, a list entry's own
    /// line included.
    #[test]
    fn errors_in_the_admins_words_at_the_right_line() {
        let path = Path::new("/etc/postward/x.toml");
        let err = parse::<ServerConfig>("max_connections = -4\n", path).unwrap_err().to_string();
        assert!(err.contains("expected a whole number of 0 or more, not the number -4"), "{err}");
        assert!(!err.contains("usize"), "{err}");
        let err = parse::<ServerConfig>("allow_root = \"yes\"\n", path).unwrap_err().to_string();
        assert!(err.contains("expected true or false, not the text \"yes\""), "{err}");
        let text = "[dnsbl]\nreject_threshold = 1\nsites = [\n  \"a.test\",  # first\n  \"b=zz\",\n]\n";
        assert_eq!(find_key_line(text, "dnsbl.sites[1]"), Some(5));
        assert_eq!(find_key_line(text, "dnsbl.sites[0]"), Some(4));
        assert_eq!(find_key_line("[d]\nsites = [\"a\", \"b\"]\n", "d.sites[1]"), Some(2));
        assert_eq!(find_key_line(text, "dnsbl.reject_threshold"), Some(2));
    }

    #[derive(Debug, Default, Clone, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        server: ServerConfig,
        log: LogConfig,
        greylist: Grey,
    }

    #[derive(Debug, Default, Clone, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Grey {
        delay: ConfigDuration,
    }

    impl CommonConfig for Sample {
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

    fn err(text: &str) -> String {
        let path = Path::new("/etc/postward/test.toml");
        match parse::<Sample>(text, path) {
            Ok(c) => check(&c, Some(text), path).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        assert_eq!(
            err("[server]\nmax_connections = 10\n\n[greylist]\ndelay = \"5x\"\n"),
            "/etc/postward/test.toml: line 5: key greylist.delay: invalid duration \"5x\" (expected e.g. \"300s\", \"5m\", \"2d\", \"250ms\")"
        );
        let e = err("[server]\nlisten = [\"inet:127.0.0.1:10023\"]\nlisten_backlog = 5\n");
        assert!(
            e.starts_with("/etc/postward/test.toml: line 3: key server.listen_backlog: unknown field `listen_backlog`"),
            "{e}"
        );
        let e = err("[server]\nlisten = [\"tcp:1.2.3.4:5\"]\n");
        assert!(e.starts_with("/etc/postward/test.toml: line 2: key server.listen: invalid listen address"), "{e}");
        let e = err("[server]\nsocket_mode = \"999\"\n");
        assert_eq!(
            e,
            "/etc/postward/test.toml: line 2: key server.socket_mode: invalid socket_mode \"999\" (expected octal, e.g. \"0660\")"
        );
        let e = err("[server\n");
        assert!(e.starts_with("/etc/postward/test.toml: line 1"), "{e}");
        let e = err("[log]\nlevel = \"loud\"\n");
        assert!(e.starts_with("/etc/postward/test.toml: line 2: key log.level: unknown variant `loud`"), "{e}");
    }

    #[test]
    fn defaults_and_values() {
        let c: Sample =
            parse("[server]\nsocket_mode = \"0600\"\nidle_timeout = \"2h\"\n[greylist]\ndelay = 300\n", Path::new("x"))
                .unwrap();
        assert_eq!(c.server.socket_permissions().unwrap().mode, 0o600);
        assert_eq!(c.server.idle_timeout, ConfigDuration::secs(7200));
        assert_eq!(c.greylist.delay, ConfigDuration::secs(300));
        assert_eq!(c.server.max_connections, 1000);
        let empty: Sample = parse("", Path::new("x")).unwrap();
        assert_eq!(empty.server, ServerConfig::default());
    }
}
