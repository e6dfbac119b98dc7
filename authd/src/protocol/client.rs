//! Lines a client sends: `VERSION`, `CPID`, `AUTH`, `CONT` and `CANCEL`.
//!
//! Parsing borrows from the line; nothing is decoded here except numbers and addresses, so
//! the base64 payloads (which carry passwords) are never copied before they are needed.

use std::net::IpAddr;

/// One parsed client line.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientLine<'a> {
    Version {
        major: u32,
        minor: u32,
    },
    Cpid(u32),
    Auth(AuthLine<'a>),
    /// `CONT\t<id>\t<base64>`; an empty payload is an empty response.
    Cont {
        id: u32,
        data: &'a str,
    },
    /// `CANCEL\t<id>`: Dovecot's client library sends it when it gives up on a request.
    Cancel {
        id: u32,
    },
}

/// `AUTH\t<id>\t<mech>\tservice=…[\tparams]…[\tresp=<base64>]` (auth-anchors §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLine<'a> {
    pub id: u32,
    /// As the client typed it; matched case-insensitively.
    pub mech: &'a str,
    pub service: &'a str,
    /// Server address; Postfix sends an empty value when it does not know it.
    pub lip: Option<IpAddr>,
    /// SMTP client address: the key of throttling and of the log line.
    pub rip: Option<IpAddr>,
    /// The SMTP session runs TLS.
    pub secured: bool,
    /// The initial response, still base64. `None` when absent.
    pub resp: Option<&'a str>,
}

/// Why a line was refused. Each one is a protocol error after which Dovecot closes the
/// connection, and so do we: a client that sends them is broken, not unlucky.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("{command} without {what}")]
    Missing { command: &'static str, what: &'static str },
    #[error("{command}: {what} {value:?} is not a positive number")]
    BadNumber { command: &'static str, what: &'static str, value: String },
    #[error("AUTH: parameters after resp=")]
    AfterResp,
    #[error("AUTH without service=")]
    NoService,
}

/// Parses one line (without its LF). `client_minor` is the minor version the client
/// announced: before 1.2 an empty `resp=` means "no initial response" (Postfix sends 1.0).
///
/// # Errors
/// The [`LineError`]s, all of which end the connection.
pub fn parse_line(line: &str, client_minor: u32) -> Result<ClientLine<'_>, LineError> {
    let mut fields = line.split('\t');
    let command = fields.next().unwrap_or_default();
    match command {
        "VERSION" => {
            let major = number("VERSION", "major version", fields.next(), true)?;
            let minor = number("VERSION", "minor version", fields.next(), true)?;
            Ok(ClientLine::Version { major, minor })
        }
        "CPID" => Ok(ClientLine::Cpid(number("CPID", "process id", fields.next(), false)?)),
        "AUTH" => parse_auth(fields, client_minor).map(ClientLine::Auth),
        "CONT" => {
            // Everything after the id is the payload, as Dovecot takes it: a stray tab makes
            // it invalid base64 (a FAIL), rather than silently cutting it.
            let mut parts = line.splitn(3, '\t').skip(1);
            let id = number("CONT", "request id", parts.next(), false)?;
            let data = parts.next().ok_or(LineError::Missing { command: "CONT", what: "data" })?;
            Ok(ClientLine::Cont { id, data })
        }
        "CANCEL" => Ok(ClientLine::Cancel { id: number("CANCEL", "request id", fields.next(), false)? }),
        other => Err(LineError::UnknownCommand(shared::logging::printable(truncate(other, 32)).into_owned())),
    }
}

fn parse_auth<'a>(mut fields: impl Iterator<Item = &'a str>, client_minor: u32) -> Result<AuthLine<'a>, LineError> {
    let id = number("AUTH", "request id", fields.next(), false)?;
    let mech =
        fields.next().filter(|m| !m.is_empty()).ok_or(LineError::Missing { command: "AUTH", what: "mechanism" })?;
    let mut auth = AuthLine { id, mech, service: "", lip: None, rip: None, secured: false, resp: None };
    let mut service = None;
    let mut after_resp = false;
    for field in fields {
        if after_resp {
            return Err(LineError::AfterResp);
        }
        let (name, value) = field.split_once('=').unwrap_or((field, ""));
        let has_value = field.contains('=');
        match name {
            "service" => service = Some(value),
            // Dovecot ignores an address it cannot parse, and so do we.
            "lip" => auth.lip = value.parse().ok(),
            "rip" => auth.rip = value.parse().ok(),
            "secured" => auth.secured = true,
            // Only `resp=…`: a bare `resp` is an unknown parameter, as for Dovecot.
            "resp" if has_value => {
                after_resp = true;
                // `resp=` with nothing after it from a pre-1.2 client is "no response"; `resp==`
                // is an empty one (RFC 4954's "=").
                auth.resp = Some(value).filter(|v| !v.is_empty() || client_minor >= 2);
            }
            // nologin, lport, rport, session, transport, tls_*, … carry nothing we use.
            _ => {}
        }
    }
    auth.service = service.filter(|s| !s.is_empty()).ok_or(LineError::NoService)?;
    Ok(auth)
}

fn number(command: &'static str, what: &'static str, field: Option<&str>, zero_ok: bool) -> Result<u32, LineError> {
    let field = field.ok_or(LineError::Missing { command, what })?;
    match field.parse::<u32>() {
        Ok(n) if n > 0 || zero_ok => Ok(n),
        _ => Err(LineError::BadNumber {
            command,
            what,
            value: shared::logging::printable(truncate(field, 32)).into_owned(),
        }),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary (for error messages).
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn postfix_auth_line() {
        let line =
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tsecured\tresp=AGFsaWNlAHNlY3JldA==";
        let ClientLine::Auth(a) = parse_line(line, 0).unwrap() else { panic!() };
        assert_eq!(a.id, 1);
        assert_eq!(a.mech, "PLAIN");
        assert_eq!(a.service, "smtp");
        assert_eq!(a.lip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(a.rip, Some("192.0.2.7".parse().unwrap()));
        assert!(a.secured);
        assert_eq!(a.resp, Some("AGFsaWNlAHNlY3JldA=="));
    }

    #[test]
    fn empty_addresses_and_unknown_params() {
        let ClientLine::Auth(a) =
            parse_line("AUTH\t7\tLOGIN\tservice=submission\tlip=\trip=\tfuture=1\tweird", 0).unwrap()
        else {
            panic!()
        };
        assert_eq!((a.lip, a.rip, a.resp, a.secured), (None, None, None, false));
        assert_eq!(a.service, "submission");
        let ClientLine::Auth(a) = parse_line("AUTH\t7\tPLAIN\tservice=smtp\tresp", 2).unwrap() else { panic!() };
        assert_eq!(a.resp, None, "a bare resp is not an initial response");
    }

    #[test]
    fn empty_resp_depends_on_client_minor() {
        let ClientLine::Auth(a) = parse_line("AUTH\t1\tPLAIN\tservice=smtp\tresp=", 0).unwrap() else { panic!() };
        assert_eq!(a.resp, None);
        let ClientLine::Auth(a) = parse_line("AUTH\t1\tPLAIN\tservice=smtp\tresp=", 2).unwrap() else { panic!() };
        assert_eq!(a.resp, Some(""));
        let ClientLine::Auth(a) = parse_line("AUTH\t1\tPLAIN\tservice=smtp\tresp==", 0).unwrap() else { panic!() };
        assert_eq!(a.resp, Some("="));
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(parse_line("AUTH\t1\tPLAIN\tnologin", 0), Err(LineError::NoService));
        assert_eq!(parse_line("AUTH\t1\tPLAIN\tservice=", 0), Err(LineError::NoService));
        assert_eq!(parse_line("AUTH\t1\tPLAIN\tservice=smtp\tresp=AA==\tx=1", 0), Err(LineError::AfterResp));
        assert!(matches!(parse_line("AUTH\t0\tPLAIN\tservice=smtp", 0), Err(LineError::BadNumber { .. })));
        assert!(matches!(parse_line("AUTH\tx\tPLAIN\tservice=smtp", 0), Err(LineError::BadNumber { .. })));
        assert!(matches!(parse_line("AUTH\t1", 0), Err(LineError::Missing { what: "mechanism", .. })));
        assert!(matches!(parse_line("CONT\t1", 0), Err(LineError::Missing { what: "data", .. })));
        assert_eq!(parse_line("HELLO\tthere", 0), Err(LineError::UnknownCommand("HELLO".into())));
        assert_eq!(parse_line("VERSION\t1\t0", 0), Ok(ClientLine::Version { major: 1, minor: 0 }));
        assert!(parse_line("VERSION", 0).is_err());
        assert_eq!(parse_line("CPID\t4242", 0), Ok(ClientLine::Cpid(4242)));
        assert!(parse_line("CPID\t0", 0).is_err());
        assert_eq!(parse_line("CONT\t3\t", 0), Ok(ClientLine::Cont { id: 3, data: "" }));
        assert_eq!(parse_line("CONT\t3\tAAAA\tjunk", 0), Ok(ClientLine::Cont { id: 3, data: "AAAA\tjunk" }));
    }
}
