//! The Dovecot authentication protocol, server side, as Postfix's `smtpd_sasl_type = dovecot`
//! client speaks it (auth-anchors §1): the handshake we announce, the lines a client sends,
//! and the replies we write.
//!
//! Everything here is pure text handling; what a request means is decided in
//! [`crate::conn`] and [`crate::service`].

mod client;
mod handshake;
mod reply;

pub use client::{AuthLine, ClientLine, LineError, parse_line};
pub use handshake::{Handshake, MechFlags};
pub use reply::{FailCode, Reply};

/// Dovecot's `AUTH_CLIENT_MAX_LINE_LENGTH`: a longer line from a client closes the connection.
pub const MAX_LINE: usize = 16_384;
/// The protocol version we announce: 1.2, as Dovecot 2.3. Clients compare only the major.
pub const VERSION: (u32, u32) = (1, 2);
