//! Framing of policy requests: `name=value` lines up to an empty line.
//!
//! Decisions recorded here (SMTPD_POLICY_README leaves them open):
//! - A line ends in LF; a CR before the LF is dropped, so CRLF clients (an admin testing with
//!   telnet or `nc -C`) work. A CR anywhere else stays part of the value.
//! - A NUL byte anywhere makes the request malformed: the protocol forbids it in names and
//!   values, and no Postfix sends one.
//! - A value that is not valid UTF-8 is decoded lossily (U+FFFD) and the attribute is named in
//!   [`RawRequest::invalid_utf8`], so the caller can warn. Postfix with `smtputf8_enable=no` may
//!   pass 8-bit envelope addresses; refusing them would turn such mail into a Postfix
//!   `451 4.3.5` after retries. A name that is not UTF-8 is malformed.
//! - Unknown attributes are kept; repeated attributes are kept in order (the typed view takes
//!   the last one).
//! - An empty request (a blank line with no attribute before it) is malformed.
//! - Limits on line length, attribute count and total size stop a client from making us buffer
//!   without bound; the reader never holds more than one line beyond the limits.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Bounds on one request. Postfix 3.7 sends 29 attributes in well under 2 KiB, so the
/// defaults leave room for long TLS subjects and future attributes without inviting abuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted line in bytes, without its line ending.
    pub max_line: usize,
    /// Most attributes in one request.
    pub max_attributes: usize,
    /// Most bytes in one request, line endings included.
    pub max_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_line: 8 * 1024, max_attributes: 256, max_request: 64 * 1024 }
    }
}

/// Why a request could not be read. Each message names what was wrong, for the warning that
/// precedes closing the connection.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("line {line} is longer than {limit} bytes")]
    LineTooLong { line: usize, limit: usize },
    #[error("request is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("NUL byte in line {line}")]
    NulByte { line: usize },
    #[error("line {line} is not name=value: {excerpt:?}")]
    NoEquals { line: usize, excerpt: String },
    #[error("line {line} has an empty attribute name")]
    EmptyName { line: usize },
    #[error("attribute name in line {line} is not valid UTF-8")]
    NameNotUtf8 { line: usize },
    #[error("empty request (blank line without attributes)")]
    EmptyRequest,
    #[error("connection closed after {bytes} bytes, before the empty line that ends a request")]
    Truncated { bytes: usize },
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// A request as read off the wire: every attribute, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    pub attributes: Vec<(String, String)>,
    /// Names of attributes whose value was not valid UTF-8 and was decoded lossily.
    pub invalid_utf8: Vec<String>,
}

/// Reads requests one after another from a buffered stream.
pub struct RequestReader<R> {
    inner: R,
    limits: Limits,
    line: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> RequestReader<R> {
    pub fn new(inner: R, limits: Limits) -> Self {
        RequestReader { inner, limits, line: Vec::with_capacity(256) }
    }

    /// Waits until at least one byte of the next request is available.
    ///
    /// Returns `false` on a clean end of stream (Postfix closed the connection between
    /// requests, the normal way a policy connection ends).
    ///
    /// # Errors
    /// I/O errors from the underlying stream.
    pub async fn wait_for_data(&mut self) -> std::io::Result<bool> {
        Ok(!self.inner.fill_buf().await?.is_empty())
    }

    /// Reads one request up to and including its empty line.
    ///
    /// Returns `Ok(None)` when the stream ends before the first byte of a request.
    ///
    /// # Errors
    /// A [`CodecError`] naming what was wrong; the connection should then be closed without
    /// a reply.
    pub async fn read_request(&mut self) -> Result<Option<RawRequest>, CodecError> {
        let mut request = RawRequest::default();
        let mut total = 0usize;
        let mut line_no = 0usize;
        loop {
            line_no += 1;
            let ended = self.read_line(line_no, &mut total).await?;
            if !ended {
                return if total == 0 { Ok(None) } else { Err(CodecError::Truncated { bytes: total }) };
            }
            let mut bytes: &[u8] = &self.line;
            if let [rest @ .., b'\r'] = bytes {
                bytes = rest;
            }
            if bytes.is_empty() {
                if request.attributes.is_empty() {
                    return Err(CodecError::EmptyRequest);
                }
                return Ok(Some(request));
            }
            if request.attributes.len() >= self.limits.max_attributes {
                return Err(CodecError::TooManyAttributes { limit: self.limits.max_attributes });
            }
            let (name, value, lossy) = split_attribute(bytes, line_no)?;
            if lossy {
                request.invalid_utf8.push(name.clone());
            }
            request.attributes.push((name, value));
        }
    }

    /// Reads one line into `self.line` without its LF. Returns `false` at end of stream
    /// (with whatever partial line was read left in `self.line`).
    async fn read_line(&mut self, line_no: usize, total: &mut usize) -> Result<bool, CodecError> {
        self.line.clear();
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Ok(false);
            }
            let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            let consumed = chunk.len() + usize::from(found);
            if let Some(err) = first_violation(chunk, consumed, self.line.len(), *total, &self.limits, line_no) {
                return Err(err);
            }
            *total += consumed;
            self.line.extend_from_slice(chunk);
            self.inner.consume(consumed);
            if found {
                let without_cr = self.line.strip_suffix(b"\r").unwrap_or(&self.line).len();
                if without_cr > self.limits.max_line {
                    return Err(CodecError::LineTooLong { line: line_no, limit: self.limits.max_line });
                }
                return Ok(true);
            }
        }
    }
}

/// The first limit a chunk of one line breaks, as if its bytes had arrived one at a time, so
/// that the reason given never depends on how the client's writes were split.
///
/// `chunk` is line content (no LF); `consumed` adds the LF when the chunk ends the line.
/// At one and the same byte, the line limit is reported before the request limit, and both
/// before a NUL.
fn first_violation(
    chunk: &[u8],
    consumed: usize,
    line_len: usize,
    total: usize,
    limits: &Limits,
    line_no: usize,
) -> Option<CodecError> {
    // The CR of a CRLF ending is still line content here: allow one extra byte for it, so a
    // maximal CRLF line is not refused where its LF twin is accepted. (The exact length is
    // checked once the LF has arrived.)
    let line_room = (limits.max_line + 1).saturating_sub(line_len);
    let total_room = limits.max_request.saturating_sub(total);
    let candidates = [
        (chunk.len() > line_room).then_some((line_room, 0)),
        (consumed > total_room).then_some((total_room, 1)),
        chunk.iter().position(|&b| b == 0).map(|at| (at, 2)),
    ];
    let (_, kind) = candidates.into_iter().flatten().min()?;
    Some(match kind {
        0 => CodecError::LineTooLong { line: line_no, limit: limits.max_line },
        1 => CodecError::TooLarge { limit: limits.max_request },
        _ => CodecError::NulByte { line: line_no },
    })
}

/// Splits `name=value` on the first `=`.
fn split_attribute(bytes: &[u8], line: usize) -> Result<(String, String, bool), CodecError> {
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return Err(CodecError::NoEquals { line, excerpt: excerpt(bytes) });
    };
    let (name, value) = (&bytes[..eq], &bytes[eq + 1..]);
    if name.is_empty() {
        return Err(CodecError::EmptyName { line });
    }
    let name = std::str::from_utf8(name).map_err(|_| CodecError::NameNotUtf8 { line })?.to_owned();
    match std::str::from_utf8(value) {
        Ok(v) => Ok((name, v.to_owned(), false)),
        Err(_) => Ok((name, String::from_utf8_lossy(value).into_owned(), true)),
    }
}

/// The start of a bad line, printable, for a log message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
    crate::logging::printable(&text).into_owned()
}

#[cfg(test)]
mod tests;
