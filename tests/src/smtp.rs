//! A minimal SMTP client for end-to-end tests against a real Postfix: enough to greet, to
//! authenticate with PLAIN and LOGIN, and to send envelope commands, reading each reply
//! (multi-line included) as one [`Reply`].

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// One SMTP reply: its code and its lines' texts joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

pub struct SmtpClient {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

impl SmtpClient {
    /// Connects from `source` (any 127.0.0.x: all of 127/8 is local) and reads the banner.
    ///
    /// # Errors
    /// Connection failure, timeout, or a banner that is not 220.
    pub async fn connect(addr: &str, source: std::net::Ipv4Addr) -> std::io::Result<SmtpClient> {
        let socket = TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        let target = addr.parse().map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
        let stream = socket.connect(target).await?;
        let mut client = SmtpClient { stream: BufReader::new(stream), timeout: Duration::from_secs(30) };
        let banner = client.read_reply().await?;
        if banner.code != 220 {
            return Err(std::io::Error::other(format!("banner: {banner}")));
        }
        Ok(client)
    }

    /// Sends one command line and reads the reply.
    ///
    /// # Errors
    /// I/O failure or timeout.
    pub async fn command(&mut self, line: &str) -> std::io::Result<Reply> {
        self.stream.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    /// `EHLO`; the reply lists the extensions (`AUTH PLAIN LOGIN`, ...).
    ///
    /// # Errors
    /// I/O failure or timeout.
    pub async fn ehlo(&mut self, name: &str) -> std::io::Result<Reply> {
        self.command(&format!("EHLO {name}")).await
    }

    /// `AUTH PLAIN` with an initial response; the final reply (235 or 535, ...).
    ///
    /// # Errors
    /// I/O failure or timeout.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> std::io::Result<Reply> {
        let response = b64(format!("\0{user}\0{password}").as_bytes());
        self.command(&format!("AUTH PLAIN {response}")).await
    }

    /// `AUTH LOGIN` through both 334 challenges; the final reply, or the first that is not 334.
    ///
    /// # Errors
    /// I/O failure or timeout.
    pub async fn auth_login(&mut self, user: &str, password: &str) -> std::io::Result<Reply> {
        let first = self.command("AUTH LOGIN").await?;
        if first.code != 334 {
            return Ok(first);
        }
        let second = self.command(&b64(user.as_bytes())).await?;
        if second.code != 334 {
            return Ok(second);
        }
        self.command(&b64(password.as_bytes())).await
    }

    /// `DATA` with `message` (headers, blank line, body; `\n` line ends are sent as CRLF
    /// and leading dots are doubled); the reply after the final dot, or the first reply
    /// that is not 354.
    ///
    /// # Errors
    /// I/O failure or timeout.
    pub async fn data(&mut self, message: &str) -> std::io::Result<Reply> {
        let go = self.command("DATA").await?;
        if go.code != 354 {
            return Ok(go);
        }
        let mut wire = String::new();
        for line in message.lines() {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        self.stream.get_mut().write_all(wire.as_bytes()).await?;
        self.read_reply().await
    }

    /// `XCLIENT ADDR=… [NAME=…]`: Postfix then treats the session as coming from that
    /// client (needs `smtpd_authorized_xclient_hosts`), and answers with a new banner.
    ///
    /// # Errors
    /// I/O failure or timeout.
    pub async fn xclient(&mut self, addr: &str, name: Option<&str>) -> std::io::Result<Reply> {
        let name = name.map(|n| format!(" NAME={n}")).unwrap_or_default();
        self.command(&format!("XCLIENT ADDR={addr}{name}")).await
    }

    /// `QUIT`, ignoring what happens next.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut texts = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.timeout, self.stream.read_line(&mut line))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no SMTP reply"))??;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let (Some(digits), rest) = (line.get(..3), line.get(3..).unwrap_or("")) else {
                return Err(std::io::Error::other(format!("not an SMTP reply: {line:?}")));
            };
            let code = digits.parse().map_err(|_| std::io::Error::other(format!("not an SMTP reply: {line:?}")))?;
            texts.push(rest.get(1..).unwrap_or("").to_owned());
            if !rest.starts_with('-') {
                return Ok(Reply { code, text: texts.join("\n") });
            }
        }
    }
}
