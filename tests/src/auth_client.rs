//! A Postfix-like client of the Dovecot auth protocol (auth-anchors §1.1-1.4): the handshake
//! Postfix sends, then one `AUTH` request at a time with `PLAIN` (initial response) or `LOGIN`
//! (`CONT` rounds), exactly as `xsasl_dovecot_server.c` writes them.
//!
//! Used by the integration tests and by `postward-bench auth`. What it does not do: Dovecot
//! value unescaping (Postfix never unescapes either), pipelining, or `CANCEL`.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::client::{ClientError, Stream, connect_stream};

/// Dovecot's `AUTH_CLIENT_MAX_LINE_LENGTH`: longer server lines are refused.
pub const MAX_LINE: usize = 16_384;
/// Handshake lines accepted before `DONE`.
const MAX_HANDSHAKE_LINES: usize = 256;
/// Lines for other request ids or unknown commands skipped while waiting for a reply.
const MAX_SKIPPED_LINES: usize = 256;
/// `CONT` rounds a `LOGIN` exchange may take (Username:, Password:, and one spare).
const MAX_CONT_ROUNDS: usize = 3;

/// Errors an auth client can see. A `FAIL` reply is not an error but an [`AuthOutcome`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("connection closed by server")]
    Closed,
    #[error("server line exceeds {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error(transparent)]
    Connect(#[from] ClientError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// SASL mechanisms the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    Plain,
    Login,
}

impl Mech {
    pub fn name(self) -> &'static str {
        match self {
            Mech::Plain => "PLAIN",
            Mech::Login => "LOGIN",
        }
    }
}

/// What the server announced before `DONE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// `VERSION` major and minor.
    pub version: (u32, u32),
    /// `MECH` names in the order sent.
    pub mechs: Vec<String>,
    pub spid: Option<String>,
    pub cuid: Option<String>,
    pub cookie: Option<String>,
}

impl Handshake {
    /// True if `mech` was announced (case-insensitively, as Dovecot matches).
    pub fn offers(&self, mech: Mech) -> bool {
        self.mechs.iter().any(|m| m.eq_ignore_ascii_case(mech.name()))
    }
}

/// The end of one authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// `OK\t<id>\tuser=…`.
    Ok { user: Option<String> },
    /// `FAIL\t<id>[\tuser=…][\treason=…]`.
    Fail { user: Option<String>, reason: Option<String> },
}

/// One server reply to the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Done(AuthOutcome),
    Cont(String),
}

/// One auth connection, one request in flight at a time (as Postfix).
pub struct AuthClient {
    stream: BufReader<Box<dyn Stream>>,
    line: String,
    next_id: u32,
    service: String,
    lip: String,
    rip: String,
}

impl AuthClient {
    pub fn new(stream: Box<dyn Stream>) -> AuthClient {
        AuthClient {
            stream: BufReader::new(stream),
            line: String::new(),
            next_id: 1,
            service: "smtp".to_owned(),
            lip: "127.0.0.1".to_owned(),
            rip: "127.0.0.1".to_owned(),
        }
    }

    /// Connects to `unix:/path` or `inet:host:port`; call [`AuthClient::handshake`] next.
    ///
    /// # Errors
    /// Connection failure or an unknown address form.
    pub async fn connect(addr: &str) -> Result<AuthClient, AuthError> {
        Ok(AuthClient::new(connect_stream(addr).await?))
    }

    /// Sets the `rip=` (SMTP client address) sent with the following requests.
    pub fn set_rip(&mut self, rip: &str) {
        rip.clone_into(&mut self.rip);
    }

    /// Sets `service=` (Postfix's `smtpd_sasl_service`, default `smtp`).
    pub fn set_service(&mut self, service: &str) {
        service.clone_into(&mut self.service);
    }

    /// Sends `VERSION\t1\t0` and `CPID\t<cpid>` in one write, as Postfix does, then reads the
    /// server's handshake up to `DONE`.
    ///
    /// # Errors
    /// I/O errors, EOF before `DONE`, a major version other than 1, or an endless handshake.
    pub async fn handshake(&mut self, cpid: u32) -> Result<Handshake, AuthError> {
        self.send(&format!("VERSION\t1\t0\nCPID\t{cpid}\n")).await?;
        let mut hs = Handshake::default();
        for _ in 0..MAX_HANDSHAKE_LINES {
            self.read_line().await?;
            let mut fields = self.line.split('\t');
            match fields.next().unwrap_or("") {
                "VERSION" => {
                    let mut num = || fields.next().and_then(|f| f.parse::<u32>().ok());
                    let (Some(major), Some(minor)) = (num(), num()) else {
                        return Err(AuthError::Protocol(format!("malformed VERSION line {:?}", self.line)));
                    };
                    if major != 1 {
                        return Err(AuthError::Protocol(format!("server speaks protocol version {major}, not 1")));
                    }
                    hs.version = (major, minor);
                }
                "MECH" => hs.mechs.extend(fields.next().map(str::to_owned)),
                "SPID" => hs.spid = fields.next().map(str::to_owned),
                "CUID" => hs.cuid = fields.next().map(str::to_owned),
                "COOKIE" => hs.cookie = fields.next().map(str::to_owned),
                "DONE" => return Ok(hs),
                // Postfix ignores every other handshake line (xds.c:362-364).
                _ => {}
            }
        }
        Err(AuthError::Protocol(format!("no DONE after {MAX_HANDSHAKE_LINES} handshake lines")))
    }

    /// Authenticates with `PLAIN`, the credentials in the initial response
    /// (`resp=base64("\0user\0pass")`).
    ///
    /// # Errors
    /// I/O errors, EOF, or a reply Postfix would not accept (e.g. `CONT` after a full
    /// initial response).
    pub async fn plain(&mut self, user: &str, pass: &str) -> Result<AuthOutcome, AuthError> {
        let id = self.start(Mech::Plain, Some(&plain_response(user, pass))).await?;
        match self.read_reply(id).await? {
            Reply::Done(outcome) => Ok(outcome),
            Reply::Cont(_) => {
                Err(AuthError::Protocol(format!("CONT for request {id} after a complete PLAIN response")))
            }
        }
    }

    /// Authenticates with `LOGIN`: `AUTH` without a response, then the user name and the
    /// password, each base64-encoded in a `CONT` line answering the server's challenge.
    ///
    /// # Errors
    /// As [`AuthClient::plain`], plus more challenges than `LOGIN` has.
    pub async fn login(&mut self, user: &str, pass: &str) -> Result<AuthOutcome, AuthError> {
        let id = self.start(Mech::Login, None).await?;
        let answers = [base64_encode(user.as_bytes()), base64_encode(pass.as_bytes())];
        for round in 0..MAX_CONT_ROUNDS {
            match self.read_reply(id).await? {
                Reply::Done(outcome) => return Ok(outcome),
                Reply::Cont(_) => {
                    let Some(answer) = answers.get(round) else {
                        return Err(AuthError::Protocol(format!(
                            "LOGIN request {id}: challenge {} after the password",
                            round + 1
                        )));
                    };
                    self.send(&format!("CONT\t{id}\t{answer}\n")).await?;
                }
            }
        }
        Err(AuthError::Protocol(format!("LOGIN request {id}: more than {MAX_CONT_ROUNDS} challenges")))
    }

    /// Authenticates with `mech`.
    ///
    /// # Errors
    /// As [`AuthClient::plain`] and [`AuthClient::login`].
    pub async fn authenticate(&mut self, mech: Mech, user: &str, pass: &str) -> Result<AuthOutcome, AuthError> {
        match mech {
            Mech::Plain => self.plain(user, pass).await,
            Mech::Login => self.login(user, pass).await,
        }
    }

    /// Writes raw text (for malformed-input tests).
    ///
    /// # Errors
    /// Write failure.
    pub async fn send(&mut self, text: &str) -> Result<(), AuthError> {
        let s = self.stream.get_mut();
        s.write_all(text.as_bytes()).await?;
        s.flush().await?;
        Ok(())
    }

    /// Sends the `AUTH` line Postfix sends (auth-anchors §1.3) and returns its id.
    async fn start(&mut self, mech: Mech, resp: Option<&str>) -> Result<u32, AuthError> {
        let id = self.next_id;
        // Ids start at 1 and are never 0 (Dovecot refuses 0).
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let mut line = format!(
            "AUTH\t{id}\t{mech}\tservice={service}\tnologin\tlip={lip}\trip={rip}",
            mech = mech.name(),
            service = self.service,
            lip = self.lip,
            rip = self.rip
        );
        if let Some(resp) = resp {
            // `resp=` is always last.
            line.push_str("\tresp=");
            line.push_str(resp);
        }
        line.push('\n');
        self.send(&line).await?;
        Ok(id)
    }

    /// Reads until a reply for `id`, skipping other ids and unknown commands as Postfix does
    /// (xds.c:529-532, 613-615).
    async fn read_reply(&mut self, id: u32) -> Result<Reply, AuthError> {
        for _ in 0..MAX_SKIPPED_LINES {
            self.read_line().await?;
            let mut fields = self.line.split('\t');
            let command = fields.next().unwrap_or("");
            if fields.next().and_then(|f| f.parse::<u32>().ok()) != Some(id) {
                continue;
            }
            // Postfix reads only `user=` and, for FAIL, `reason=` (xds.c:536-565).
            let param = |name: &str| {
                let prefix = format!("{name}=");
                fields.clone().find_map(|p| p.strip_prefix(prefix.as_str())).map(str::to_owned)
            };
            match command {
                "OK" => return Ok(Reply::Done(AuthOutcome::Ok { user: param("user") })),
                "FAIL" => {
                    return Ok(Reply::Done(AuthOutcome::Fail { user: param("user"), reason: param("reason") }));
                }
                "CONT" => {
                    let data = fields
                        .next()
                        .ok_or_else(|| AuthError::Protocol(format!("CONT for request {id} without data")))?;
                    return Ok(Reply::Cont(data.to_owned()));
                }
                _ => {}
            }
        }
        Err(AuthError::Protocol(format!("no reply for request {id} in {MAX_SKIPPED_LINES} lines")))
    }

    /// Reads one LF-terminated line into `self.line`, without the LF.
    async fn read_line(&mut self) -> Result<(), AuthError> {
        self.line.clear();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
        let n = (&mut self.stream).take(limit).read_line(&mut self.line).await?;
        if n == 0 {
            return Err(AuthError::Closed);
        }
        match self.line.strip_suffix('\n') {
            Some(l) => {
                let len = l.len();
                self.line.truncate(len);
                Ok(())
            }
            None if n >= MAX_LINE => Err(AuthError::LineTooLong { limit: MAX_LINE }),
            None => Err(AuthError::Closed),
        }
    }
}

/// The SASL PLAIN initial response (RFC 4616) with an empty authorization identity:
/// `base64("\0user\0pass")`.
pub fn plain_response(user: &str, pass: &str) -> String {
    let mut raw = Vec::with_capacity(user.len() + pass.len() + 2);
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(pass.as_bytes());
    base64_encode(&raw)
}

/// Standard base64 with padding (RFC 4648 §4), as SASL uses on the wire.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 §10, and the PLAIN response for user/pass.
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (b"\0user\0pass", "AHVzZXIAcGFzcw=="),
            (&[0xff, 0xfe, 0xfd], "//79"),
        ];
        for (raw, b64) in cases {
            assert_eq!(base64_encode(raw), *b64, "{raw:?}");
        }
        assert_eq!(plain_response("user", "pass"), "AHVzZXIAcGFzcw==");
    }

    /// A scripted server: answers each client line it reads with the next canned lines.
    async fn scripted(script: Vec<(&'static str, &'static str)>) -> AuthClient {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(server);
            let mut r = BufReader::new(r);
            for (expect_prefix, answer) in script {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    return;
                }
                assert!(line.starts_with(expect_prefix), "client sent {line:?}, expected {expect_prefix:?}");
                w.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        AuthClient::new(Box::new(client))
    }

    const HANDSHAKE: &str =
        "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t17885\nCUID\t1\nCOOKIE\tde82\nDONE\n";

    #[tokio::test]
    async fn handshake_then_plain_ok_and_fail() {
        let mut c = scripted(vec![
            ("VERSION\t1\t0", ""),
            ("CPID\t42", HANDSHAKE),
            (
                "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.9\tresp=AHVzZXIAcGFzcw==",
                "OK\t1\tuser=user\n",
            ),
            // A stray reply for another id and an unknown command are skipped.
            (
                "AUTH\t2\tPLAIN",
                "OK\t999\tuser=mallory\nNOTICE\tfoo\nFAIL\t2\tuser=user\treason=Authentication failed\n",
            ),
        ])
        .await;
        let hs = c.handshake(42).await.unwrap();
        assert_eq!(hs.version, (1, 2));
        assert!(hs.offers(Mech::Plain) && hs.offers(Mech::Login));
        assert_eq!(hs.cookie.as_deref(), Some("de82"));
        c.set_rip("127.0.0.9");
        assert_eq!(c.plain("user", "pass").await.unwrap(), AuthOutcome::Ok { user: Some("user".into()) });
        assert_eq!(
            c.plain("user", "bad").await.unwrap(),
            AuthOutcome::Fail { user: Some("user".into()), reason: Some("Authentication failed".into()) }
        );
    }

    #[tokio::test]
    async fn login_takes_two_cont_rounds() {
        let mut c = scripted(vec![
            ("VERSION", ""),
            ("CPID", HANDSHAKE),
            ("AUTH\t1\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\n", "CONT\t1\tVXNlcm5hbWU6\n"),
            ("CONT\t1\tdXNlcg==\n", "CONT\t1\tUGFzc3dvcmQ6\n"),
            ("CONT\t1\tcGFzcw==\n", "OK\t1\tuser=user\n"),
        ])
        .await;
        c.handshake(1).await.unwrap();
        assert_eq!(c.login("user", "pass").await.unwrap(), AuthOutcome::Ok { user: Some("user".into()) });
    }

    #[tokio::test]
    async fn protocol_errors() {
        let mut c = scripted(vec![("VERSION", ""), ("CPID", "VERSION\t2\t0\nDONE\n")]).await;
        assert!(matches!(c.handshake(1).await, Err(AuthError::Protocol(m)) if m.contains("version 2")));
        let mut c = scripted(vec![("VERSION", ""), ("CPID", "VERSION\t1\t2\nMECH\tPLAIN\n")]).await;
        assert!(matches!(c.handshake(1).await, Err(AuthError::Closed)));
        let mut c = scripted(vec![("VERSION", ""), ("CPID", HANDSHAKE), ("AUTH", "CONT\t1\t\n")]).await;
        c.handshake(1).await.unwrap();
        assert!(matches!(c.plain("u", "p").await, Err(AuthError::Protocol(_))));
    }
}
