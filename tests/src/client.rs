//! A Postfix-like policy client: one persistent connection, requests strictly one after
//! another, each answered by exactly one `action=…` line and an empty line.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

/// Errors a policy client can see.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection closed by server")]
    Closed,
    #[error("malformed reply: {0:?}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Boxed stream so one client type serves Unix, TCP and child-process pipes.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens a stream to `unix:/path` or `inet:host:port` (TCP with Nagle off); shared with
/// [`crate::auth_client`].
///
/// # Errors
/// Connection failure or an unknown address form.
pub async fn connect_stream(addr: &str) -> Result<Box<dyn Stream>, ClientError> {
    if let Some(path) = addr.strip_prefix("unix:") {
        return Ok(Box::new(UnixStream::connect(Path::new(path)).await?));
    }
    let hostport = addr.strip_prefix("inet:").unwrap_or(addr);
    let hostport = hostport.replace(['[', ']'], "");
    let (host, port) = hostport.rsplit_once(':').ok_or_else(|| ClientError::Malformed(addr.to_owned()))?;
    let port: u16 = port.parse().map_err(|_| ClientError::Malformed(addr.to_owned()))?;
    let s = TcpStream::connect((host, port)).await?;
    s.set_nodelay(true)?;
    Ok(Box::new(s))
}

/// One policy connection.
pub struct PolicyClient {
    stream: BufReader<Box<dyn Stream>>,
    line: String,
}

impl PolicyClient {
    pub fn new(stream: Box<dyn Stream>) -> PolicyClient {
        PolicyClient { stream: BufReader::new(stream), line: String::new() }
    }

    /// Connects to `unix:/path` or `inet:host:port`.
    ///
    /// # Errors
    /// Connection failure or an unknown address form.
    pub async fn connect(addr: &str) -> Result<PolicyClient, ClientError> {
        Ok(PolicyClient::new(connect_stream(addr).await?))
    }

    /// # Errors
    /// Connection failure.
    pub async fn connect_unix(path: &Path) -> Result<PolicyClient, ClientError> {
        Ok(PolicyClient::new(Box::new(UnixStream::connect(path).await?)))
    }

    /// Sends raw bytes (for malformed-input tests).
    ///
    /// # Errors
    /// Write failure.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let s = self.stream.get_mut();
        s.write_all(bytes).await?;
        s.flush().await?;
        Ok(())
    }

    /// Sends one request built from attributes and returns the action text (what follows
    /// `action=`).
    ///
    /// # Errors
    /// I/O errors, a closed connection, or a reply that is not `action=…` + empty line.
    pub async fn request(&mut self, attrs: &[(&str, &str)]) -> Result<String, ClientError> {
        let mut buf = String::with_capacity(512);
        for (n, v) in attrs {
            buf.push_str(n);
            buf.push('=');
            buf.push_str(v);
            buf.push('\n');
        }
        buf.push('\n');
        self.send_raw(buf.as_bytes()).await?;
        self.read_reply().await
    }

    /// Reads one reply.
    ///
    /// # Errors
    /// As [`PolicyClient::request`].
    pub async fn read_reply(&mut self) -> Result<String, ClientError> {
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            return Err(ClientError::Closed);
        }
        let action = self
            .line
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("action="))
            .ok_or_else(|| ClientError::Malformed(self.line.clone()))?
            .to_owned();
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            return Err(ClientError::Closed);
        }
        if self.line != "\n" {
            return Err(ClientError::Malformed(format!("expected empty line after action, got {:?}", self.line)));
        }
        Ok(action)
    }

    /// True if the server has closed the connection (reads EOF without blocking long).
    pub async fn is_closed(&mut self) -> bool {
        let mut tmp = String::new();
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read_line(&mut tmp)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// A typical RCPT-stage request, as Postfix 3.7 sends it.
pub fn rcpt_request<'a>(
    client: &'a str,
    helo: &'a str,
    sender: &'a str,
    recipient: &'a str,
    instance: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("protocol_name", "ESMTP"),
        ("client_address", client),
        ("client_name", "unknown"),
        ("reverse_client_name", "unknown"),
        ("helo_name", helo),
        ("sender", sender),
        ("recipient", recipient),
        ("recipient_count", "0"),
        ("queue_id", ""),
        ("instance", instance),
        ("size", "0"),
        ("sasl_method", ""),
        ("sasl_username", ""),
        ("sasl_sender", ""),
        ("policy_context", ""),
    ]
}
