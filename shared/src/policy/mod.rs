//! The Postfix SMTP access policy delegation protocol (SMTPD_POLICY_README).
//!
//! Postfix writes `name=value` lines ending in an empty line; the server answers exactly one
//! `action=…` line followed by an empty line, and keeps the connection open for the next
//! request. "In case of trouble the policy server must not send a reply. Instead the server
//! must log a warning and disconnect." This module owns that framing ([`codec`]), the typed
//! view of a request ([`request`]), the replies Postfix understands ([`action`]) and the
//! per-connection loop that ties them together ([`serve`]).

pub mod action;
pub mod codec;
pub mod request;
pub mod serve;

pub use action::{Action, ActionError, EnhancedStatus, Header, Reply, ReplyCode, Text};
pub use codec::{CodecError, Limits, RawRequest, RequestReader};
pub use request::{PolicyRequest, ProtocolState, RequestError};
pub use serve::{Decision, PolicyService, ServeOptions, serve_policy};
