//! Replies a policy server may give, rendered exactly as Postfix parses them
//! (access(5), `check_table_result()` in smtpd_check.c).
//!
//! Every piece of text is a [`Text`], which cannot hold CR, LF, NUL or other control
//! characters: a reply carrying one would break the framing or be refused by Postfix as
//! malformed (and a `String` already guarantees valid UTF-8, which Postfix checks when
//! SMTPUTF8 is on). An enhanced status code carries no class digit of its own; the class comes
//! from the action, so a `REJECT 4.7.1` cannot be written.

use std::fmt;
use std::str::FromStr;

/// Text safe to put in a reply or header: control characters become spaces, ends trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(String);

impl Text {
    pub fn new(text: &str) -> Text {
        let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        Text(cleaned.trim().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An RFC 3463 enhanced status code without its class digit: `subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    pub const fn new(subject: u16, detail: u16) -> EnhancedStatus {
        EnhancedStatus { subject, detail }
    }

    /// Parses `C.S.D`, checking that the class is the one the action needs.
    ///
    /// # Errors
    /// Malformed text or a class other than `class`.
    pub fn parse(text: &str, class: u8) -> Result<EnhancedStatus, ActionError> {
        let bad = || ActionError::BadStatus(text.to_owned());
        let mut parts = text.split('.');
        let (Some(c), Some(s), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let num = |p: &str, max_len: usize| -> Result<u16, ActionError> {
            if p.is_empty() || p.len() > max_len || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let c = num(c, 1)?;
        if c != u16::from(class) {
            return Err(ActionError::StatusClass { status: text.to_owned(), class });
        }
        Ok(EnhancedStatus { subject: num(s, 3)?, detail: num(d, 3)? })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, class: u8) -> fmt::Result {
        write!(f, "{class}.{}.{}", self.subject, self.detail)
    }
}

/// A literal SMTP reply code, 400-599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// 550, the usual permanent rejection ("mailbox unavailable / not allowed").
    pub const PERMANENT: ReplyCode = ReplyCode(550);
    /// 450, the usual temporary one.
    pub const TEMPORARY: ReplyCode = ReplyCode(450);

    /// # Errors
    /// A code outside 400-599.
    pub fn new(code: u16) -> Result<ReplyCode, ActionError> {
        if (400..=599).contains(&code) { Ok(ReplyCode(code)) } else { Err(ActionError::BadCode(code)) }
    }

    pub fn get(self) -> u16 {
        self.0
    }

    pub fn class(self) -> u8 {
        if self.0 >= 500 { 5 } else { 4 }
    }
}

/// Optional enhanced status code plus optional text, as in `REJECT 5.7.1 text`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Reply {
    pub status: Option<EnhancedStatus>,
    pub text: Text,
}

impl Reply {
    pub fn new(status: Option<EnhancedStatus>, text: &str) -> Reply {
        Reply { status, text: Text::new(text) }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, class: u8) -> fmt::Result {
        if let Some(status) = &self.status {
            f.write_str(" ")?;
            status.write(f, class)?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }

    /// Parses `[C.S.D] [text]` for an action of the given class.
    fn parse(rest: &str, class: u8) -> Result<Reply, ActionError> {
        let rest = rest.trim();
        let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if first.bytes().next().is_some_and(|b| b.is_ascii_digit()) && first.contains('.') {
            let status = EnhancedStatus::parse(first, class)?;
            Ok(Reply::new(Some(status), tail))
        } else {
            Ok(Reply::new(None, rest))
        }
    }
}

/// A header for `PREPEND`: an RFC 5322 field name and a sanitized value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    name: String,
    value: Text,
}

impl Header {
    /// # Errors
    /// A name that is empty or not printable ASCII without `:` and spaces.
    pub fn new(name: &str, value: &str) -> Result<Header, ActionError> {
        let ok = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !ok {
            return Err(ActionError::BadHeaderName(crate::logging::printable(name).into_owned()));
        }
        Ok(Header { name: name.to_owned(), value: Text::new(value) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        self.value.as_str()
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

/// Errors building or parsing an action (configuration mistakes, never runtime input).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionError {
    #[error("malformed enhanced status code {0:?}")]
    BadStatus(String),
    #[error("enhanced status code {status:?} must start with {class}")]
    StatusClass { status: String, class: u8 },
    #[error("reply code {0} is not between 400 and 599")]
    BadCode(u16),
    #[error("invalid header name {0:?}")]
    BadHeaderName(String),
    #[error("PREPEND needs \"Name: value\", got {0:?}")]
    BadPrepend(String),
    #[error("{action} needs {what}, got {got:?}")]
    BadArgument { action: &'static str, what: &'static str, got: String },
    #[error("unknown action {0:?}")]
    Unknown(String),
}

/// One policy answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// No opinion: Postfix goes on to the next restriction.
    Dunno,
    /// Permit (ends the restriction list).
    Ok,
    Reject(Reply),
    Defer(Reply),
    /// Temporary failure only if a later restriction would permit: the greylisting answer,
    /// which lets a later REJECT win.
    DeferIfPermit(Reply),
    DeferIfReject(Reply),
    /// A literal `4NN`/`5NN` reply.
    Literal(ReplyCode, Reply),
    Prepend(Header),
    Warn(Text),
    Info(Text),
    Hold(Text),
    Discard(Text),
    /// `FILTER transport:destination`.
    Filter(Text),
    /// `REDIRECT user@domain`.
    Redirect(Text),
}

impl Action {
    /// `FILTER transport:destination`.
    ///
    /// # Errors
    /// A destination without `:` or with white space.
    pub fn filter(destination: &str) -> Result<Action, ActionError> {
        single_word("FILTER", "transport:destination", destination, |d| d.contains(':')).map(Action::Filter)
    }

    /// `REDIRECT user@domain`.
    ///
    /// # Errors
    /// An address without `@` or with white space.
    pub fn redirect(address: &str) -> Result<Action, ActionError> {
        single_word("REDIRECT", "an address", address, |a| a.contains('@')).map(Action::Redirect)
    }

    /// The word Postfix logs for this kind of action (`reject`, `defer_if_permit`, …).
    pub fn log_word(&self) -> &'static str {
        match self {
            Action::Dunno => "dunno",
            Action::Ok => "ok",
            Action::Reject(_) => "reject",
            Action::Defer(_) => "defer",
            Action::DeferIfPermit(_) => "defer_if_permit",
            Action::DeferIfReject(_) => "defer_if_reject",
            Action::Literal(code, _) if code.class() == 5 => "reject",
            Action::Literal(..) => "defer",
            Action::Prepend(_) => "prepend",
            Action::Warn(_) => "warn",
            Action::Info(_) => "info",
            Action::Hold(_) => "hold",
            Action::Discard(_) => "discard",
            Action::Filter(_) => "filter",
            Action::Redirect(_) => "redirect",
        }
    }

    /// The human text of the reply, if any (for log lines).
    pub fn text(&self) -> String {
        match self {
            Action::Dunno | Action::Ok => String::new(),
            Action::Prepend(h) => h.to_string(),
            // Postfix logs a reject with its code: "reject: RCPT from …: 550 5.7.23 …".
            Action::Literal(..) => self.to_string(),
            _ => {
                let full = self.to_string();
                full.split_once(' ').map(|(_, t)| t.to_owned()).unwrap_or_default()
            }
        }
    }
}

fn single_word(
    action: &'static str,
    what: &'static str,
    value: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<Text, ActionError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) || !valid(value) {
        return Err(ActionError::BadArgument { action, what, got: crate::logging::printable(value).into_owned() });
    }
    Ok(Text::new(value))
}

impl Action {
    /// The action word alone (`DUNNO`, `DEFER_IF_PERMIT`, ...): a metrics label.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Dunno => "DUNNO",
            Action::Ok => "OK",
            Action::Reject(_) => "REJECT",
            Action::Defer(_) => "DEFER",
            Action::DeferIfPermit(_) => "DEFER_IF_PERMIT",
            Action::DeferIfReject(_) => "DEFER_IF_REJECT",
            Action::Literal(code, _) if code.class() == 5 => "5XX",
            Action::Literal(..) => "4XX",
            Action::Prepend(_) => "PREPEND",
            Action::Warn(_) => "WARN",
            Action::Info(_) => "INFO",
            Action::Hold(_) => "HOLD",
            Action::Discard(_) => "DISCARD",
            Action::Filter(_) => "FILTER",
            Action::Redirect(_) => "REDIRECT",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word_text = |f: &mut fmt::Formatter<'_>, word: &str, text: &Text| {
            f.write_str(word)?;
            if !text.is_empty() {
                write!(f, " {text}")?;
            }
            Ok(())
        };
        match self {
            Action::Dunno => f.write_str("DUNNO"),
            Action::Ok => f.write_str("OK"),
            Action::Reject(r) => {
                f.write_str("REJECT")?;
                r.write(f, 5)
            }
            Action::Defer(r) => {
                f.write_str("DEFER")?;
                r.write(f, 4)
            }
            Action::DeferIfPermit(r) => {
                f.write_str("DEFER_IF_PERMIT")?;
                r.write(f, 4)
            }
            Action::DeferIfReject(r) => {
                f.write_str("DEFER_IF_REJECT")?;
                r.write(f, 4)
            }
            Action::Literal(code, r) => {
                write!(f, "{}", code.get())?;
                r.write(f, code.class())
            }
            Action::Prepend(h) => write!(f, "PREPEND {h}"),
            Action::Warn(t) => word_text(f, "WARN", t),
            Action::Info(t) => word_text(f, "INFO", t),
            Action::Hold(t) => word_text(f, "HOLD", t),
            Action::Discard(t) => word_text(f, "DISCARD", t),
            Action::Filter(t) => word_text(f, "FILTER", t),
            Action::Redirect(t) => word_text(f, "REDIRECT", t),
        }
    }
}

/// Parses an action as written in a configuration file, e.g. `DEFER_IF_PERMIT 4.7.1 Try later`
/// or `451 4.3.0 Temporary problem`. Keywords are case-insensitive, as in Postfix.
impl FromStr for Action {
    type Err = ActionError;

    fn from_str(s: &str) -> Result<Action, ActionError> {
        let s = s.trim();
        let (word, rest) = s.split_once(' ').unwrap_or((s, ""));
        let upper = word.to_ascii_uppercase();
        if upper.len() == 3 && upper.bytes().all(|b| b.is_ascii_digit()) {
            let code = ReplyCode::new(upper.parse().map_err(|_| ActionError::Unknown(s.to_owned()))?)?;
            return Ok(Action::Literal(code, Reply::parse(rest, code.class())?));
        }
        Ok(match upper.as_str() {
            "DUNNO" => Action::Dunno,
            "OK" => Action::Ok,
            "REJECT" => Action::Reject(Reply::parse(rest, 5)?),
            "DEFER" => Action::Defer(Reply::parse(rest, 4)?),
            "DEFER_IF_PERMIT" => Action::DeferIfPermit(Reply::parse(rest, 4)?),
            "DEFER_IF_REJECT" => Action::DeferIfReject(Reply::parse(rest, 4)?),
            "PREPEND" => {
                let (name, value) = rest.split_once(':').ok_or_else(|| ActionError::BadPrepend(rest.to_owned()))?;
                Action::Prepend(Header::new(name.trim(), value)?)
            }
            "WARN" => Action::Warn(Text::new(rest)),
            "INFO" => Action::Info(Text::new(rest)),
            "HOLD" => Action::Hold(Text::new(rest)),
            "DISCARD" => Action::Discard(Text::new(rest)),
            "FILTER" => Action::filter(rest.trim())?,
            "REDIRECT" => Action::redirect(rest.trim())?,
            _ => return Err(ActionError::Unknown(crate::logging::printable(s).into_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: u16, d: u16) -> Option<EnhancedStatus> {
        Some(EnhancedStatus::new(s, d))
    }

    #[test]
    fn renders_as_postfix_parses() {
        let cases: Vec<(&str, Action, &str)> = vec![
            ("dunno", Action::Dunno, "DUNNO"),
            ("ok", Action::Ok, "OK"),
            ("bare reject", Action::Reject(Reply::default()), "REJECT"),
            (
                "reject with status and text",
                Action::Reject(Reply::new(st(7, 23), "SPF fail")),
                "REJECT 5.7.23 SPF fail",
            ),
            ("defer text only", Action::Defer(Reply::new(None, "later")), "DEFER later"),
            (
                "defer_if_permit",
                Action::DeferIfPermit(Reply::new(st(7, 1), "Greylisted, retry in 300 s")),
                "DEFER_IF_PERMIT 4.7.1 Greylisted, retry in 300 s",
            ),
            ("defer_if_reject", Action::DeferIfReject(Reply::new(None, "x")), "DEFER_IF_REJECT x"),
            (
                "literal 550",
                Action::Literal(ReplyCode::new(550).unwrap(), Reply::new(st(7, 23), "no")),
                "550 5.7.23 no",
            ),
            (
                "literal 451",
                Action::Literal(ReplyCode::new(451).unwrap(), Reply::new(st(3, 0), "try again")),
                "451 4.3.0 try again",
            ),
            (
                "prepend",
                Action::Prepend(Header::new("X-Greylist", "delayed 301 seconds").unwrap()),
                "PREPEND X-Greylist: delayed 301 seconds",
            ),
            ("warn", Action::Warn(Text::new("dry run")), "WARN dry run"),
            ("info empty", Action::Info(Text::new("")), "INFO"),
            ("hold", Action::Hold(Text::new("review")), "HOLD review"),
            ("discard", Action::Discard(Text::new("gone")), "DISCARD gone"),
            ("filter", Action::filter("smtp:[127.0.0.1]:10025").unwrap(), "FILTER smtp:[127.0.0.1]:10025"),
            ("redirect", Action::redirect("abuse@example.org").unwrap(), "REDIRECT abuse@example.org"),
            ("CR LF NUL stripped", Action::Reject(Reply::new(None, "a\r\nb\0c\td")), "REJECT a  b c d"),
            (
                "header value sanitized",
                Action::Prepend(Header::new("X-A", "v\nX-Evil: 1").unwrap()),
                "PREPEND X-A: v X-Evil: 1",
            ),
        ];
        for (label, action, want) in cases {
            let rendered = action.to_string();
            assert_eq!(rendered, want, "{label}");
            assert!(!rendered.contains(['\r', '\n', '\0']), "{label}");
            // Every rendering parses back to the same action.
            assert_eq!(rendered.parse::<Action>().unwrap(), action, "{label} round trip");
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            "REJECT 4.7.1 x".parse::<Action>(),
            Err(ActionError::StatusClass { status: "4.7.1".into(), class: 5 })
        );
        assert_eq!(
            "DEFER_IF_PERMIT 5.7.1 x".parse::<Action>(),
            Err(ActionError::StatusClass { status: "5.7.1".into(), class: 4 })
        );
        assert_eq!("REJECT 5.7 x".parse::<Action>(), Err(ActionError::BadStatus("5.7".into())));
        assert_eq!("350 nope".parse::<Action>(), Err(ActionError::BadCode(350)));
        assert_eq!("PREPEND nocolon".parse::<Action>(), Err(ActionError::BadPrepend("nocolon".into())));
        assert!(matches!("PREPEND Bad Name: v".parse::<Action>(), Err(ActionError::BadHeaderName(_))));
        assert!(matches!("FILTER nodest".parse::<Action>(), Err(ActionError::BadArgument { .. })));
        assert!(matches!("REDIRECT a b@c".parse::<Action>(), Err(ActionError::BadArgument { .. })));
        assert_eq!("permit".parse::<Action>(), Err(ActionError::Unknown("permit".into())));
        assert_eq!(
            "defer_if_permit 4.7.1 lower case".parse::<Action>().unwrap().to_string(),
            "DEFER_IF_PERMIT 4.7.1 lower case"
        );
    }

    #[test]
    fn log_words_and_text() {
        let a: Action = "550 5.7.23 SPF fail".parse().unwrap();
        assert_eq!(a.log_word(), "reject");
        assert_eq!(a.text(), "550 5.7.23 SPF fail", "Postfix logs a literal reply with its code");
        let a: Action = "450 4.7.1 later".parse().unwrap();
        assert_eq!(a.log_word(), "defer");
        assert_eq!(Action::Dunno.text(), "");
    }
}
