//! Logging through `tracing`, to stderr (journald under systemd) or to syslog with facility
//! `mail`, so decisions land in the mail log beside Postfix's own lines.
//!
//! Lines look like Postfix's: a `warning: ` or `error: ` prefix on problems, nothing on
//! information, and one line per policy decision in the shape of Postfix's `log_whatsup`:
//! `NOQUEUE: defer_if_permit: RCPT from unknown[198.51.100.4]: 4.7.1 greylisted; from=<a@b.example> to=<c@d.example> helo=<x> reason=new time=0.21ms`.
//! Every value that came from the network is made printable first: SMTP clients choose their
//! HELO and envelope addresses, and must not be able to forge log lines.

use std::borrow::Cow;
use std::ffi::CString;
use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Deserialize;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::policy::{Decision, PolicyRequest};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogDestination {
    /// Standard error; under systemd this is the journal.
    #[default]
    Stderr,
    /// The local syslog daemon (`/dev/log`).
    Syslog,
}

/// Lowest level that is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn tracing(self) -> Level {
        match self {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        }
    }
}

/// Syslog facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    #[default]
    Mail,
    Daemon,
    User,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub destination: LogDestination,
    pub level: LogLevel,
    pub facility: Facility,
}

/// Sets up the global subscriber. Call once, before anything else logs.
///
/// # Errors
/// Syslog was requested but could not be opened, or a subscriber was already installed.
pub fn init(program: &str, config: &LogConfig) -> Result<(), String> {
    // Under systemd, stderr is the journal: each line then starts with its syslog priority
    // (`<20>` = mail.warning), which journald reads, so `journalctl -p warning` and
    // `SYSLOG_FACILITY=2` work and rsyslog files the lines into the mail log.
    let journal = (config.destination == LogDestination::Stderr && stderr_is_journal()).then_some(config.facility);
    let builder = tracing_subscriber::fmt()
        .with_max_level(config.level.tracing())
        .with_ansi(false)
        .event_format(PostfixFormat { journal });
    let result = match config.destination {
        LogDestination::Stderr => builder.with_writer(std::io::stderr).try_init(),
        LogDestination::Syslog => {
            let ident = CString::new(program).map_err(|_| "program name contains NUL".to_owned())?;
            let facility = match config.facility {
                Facility::Mail => syslog_tracing::Facility::Mail,
                Facility::Daemon => syslog_tracing::Facility::Daemon,
                Facility::User => syslog_tracing::Facility::User,
                Facility::Local0 => syslog_tracing::Facility::Local0,
                Facility::Local1 => syslog_tracing::Facility::Local1,
                Facility::Local2 => syslog_tracing::Facility::Local2,
                Facility::Local3 => syslog_tracing::Facility::Local3,
                Facility::Local4 => syslog_tracing::Facility::Local4,
                Facility::Local5 => syslog_tracing::Facility::Local5,
                Facility::Local6 => syslog_tracing::Facility::Local6,
                Facility::Local7 => syslog_tracing::Facility::Local7,
            };
            let syslog = syslog_tracing::Syslog::new(ident, syslog_tracing::Options::LOG_PID, facility)
                .ok_or_else(|| "syslog is already open".to_owned())?;
            builder.with_writer(syslog).try_init()
        }
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}

/// Replaces control characters with `?`, as Postfix's `printable()` does, so text from the
/// network cannot start a new log line or smuggle terminal escapes.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(text.chars().map(|c| if c.is_control() { '?' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Longest piece of client-supplied text a log line carries. Postfix keeps envelope
/// addresses far shorter; a longer value is a broken or hostile client, and a syslog daemon
/// would cut the whole line at its own limit (rsyslog: 8 KiB) and lose the reason after it.
pub const MAX_LOGGED_VALUE: usize = 320;

/// [`printable`], cut to [`MAX_LOGGED_VALUE`] bytes with a note of how much was left out.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_LOGGED_VALUE {
        return printable(text);
    }
    let mut end = MAX_LOGGED_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...[{} more bytes]", printable(&text[..end]), text.len() - end))
}

/// Formats events as Postfix formats its own messages.
struct PostfixFormat {
    /// The facility for journal priority prefixes, when stderr is the journal.
    journal: Option<Facility>,
}

impl Facility {
    /// The syslog facility number (RFC 5424 §6.2.1).
    fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// `<N>`, the sd-daemon(3) prefix journald reads: facility × 8 + severity (error 3,
/// warning 4, info 6, debug 7).
fn journal_prefix(facility: Facility, level: Level) -> String {
    let severity = match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    };
    format!("<{}>", u16::from(facility.code()) * 8 + severity)
}

/// Whether stderr is a journal stream: systemd sets `JOURNAL_STREAM=<dev>:<inode>` of the
/// stream it connects, and a redirected stderr no longer matches it (sd_journal_stream_fd).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}

impl<S, N> FormatEvent<S, N> for PostfixFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        if let Some(facility) = self.journal {
            writer.write_str(&journal_prefix(facility, *event.metadata().level()))?;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        writeln!(writer, "{prefix}{}{}", printable(&visitor.message), printable(&visitor.rest))
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

/// The one log line written for every policy decision.
pub struct DecisionLine<'a> {
    pub request: &'a PolicyRequest,
    pub decision: &'a Decision,
    pub elapsed: Duration,
}

impl DecisionLine<'_> {
    pub fn log(&self) {
        tracing::info!("{self}");
    }
}

impl fmt::Display for DecisionLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.request;
        let queue_id = if r.queue_id.is_empty() { "NOQUEUE" } else { &r.queue_id };
        write!(
            f,
            "{}: {}: {} from {}",
            excerpt(queue_id),
            self.decision.action.log_word(),
            excerpt(r.protocol_state.as_str()),
            excerpt(&r.client())
        )?;
        let text = self.decision.action.text();
        if !text.is_empty() {
            write!(f, ": {}", excerpt(&text))?;
        }
        write!(f, "; from=<{}> to=<{}>", excerpt(&r.sender), excerpt(&r.recipient))?;
        if !r.helo_name.is_empty() {
            write!(f, " helo=<{}>", excerpt(&r.helo_name))?;
        }
        if !r.sasl_username.is_empty() {
            write!(f, " sasl_username={}", excerpt(&r.sasl_username))?;
        }
        write!(f, " reason={}", excerpt(&self.decision.reason))?;
        for (k, v) in &self.decision.fields {
            write!(f, " {k}={}", excerpt(v))?;
        }
        write!(f, " time={:.2}ms", self.elapsed.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_prefixes_carry_facility_and_severity() {
        assert_eq!(journal_prefix(Facility::Mail, Level::WARN), "<20>");
        assert_eq!(journal_prefix(Facility::Mail, Level::INFO), "<22>");
        assert_eq!(journal_prefix(Facility::Mail, Level::ERROR), "<19>");
        assert_eq!(journal_prefix(Facility::Daemon, Level::DEBUG), "<31>");
        assert_eq!(journal_prefix(Facility::Local7, Level::INFO), "<190>");
    }
    use crate::policy::codec::RawRequest;
    use crate::policy::{Action, Decision};

    #[test]
    fn excerpt_cuts_long_values_at_a_character_boundary() {
        assert_eq!(excerpt("short\u{7}"), "short?");
        let long = format!("{}é{}", "a".repeat(MAX_LOGGED_VALUE - 1), "b".repeat(100));
        let cut = excerpt(&long);
        // The two-byte é straddles the limit: it is left out whole.
        assert_eq!(cut, format!("{}...[102 more bytes]", "a".repeat(MAX_LOGGED_VALUE - 1)));
    }

    #[test]
    fn decision_line_is_postfix_shaped_and_printable() {
        let raw = RawRequest {
            attributes: [
                ("request", "smtpd_access_policy"),
                ("protocol_state", "RCPT"),
                ("client_address", "198.51.100.4"),
                ("client_name", "unknown"),
                ("helo_name", "evil\rhelo"),
                ("sender", "a@b.example"),
                ("recipient", "c@d.example"),
            ]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
            invalid_utf8: vec![],
        };
        let request = PolicyRequest::from_raw(raw).unwrap();
        let decision =
            Decision::new("DEFER_IF_PERMIT 4.7.1 Greylisted".parse::<Action>().unwrap(), "new").with("age", "0s");
        let line =
            DecisionLine { request: &request, decision: &decision, elapsed: Duration::from_micros(210) }.to_string();
        assert_eq!(
            line,
            "NOQUEUE: defer_if_permit: RCPT from unknown[198.51.100.4]: 4.7.1 Greylisted; from=<a@b.example> to=<c@d.example> helo=<evil?helo> reason=new age=0s time=0.21ms"
        );
    }

    #[test]
    fn printable_replaces_controls() {
        assert_eq!(printable("a\nb\x1b[31m"), "a?b?[31m");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
    }
}
