//! SASL mechanisms: what each one parses out of the client's responses. The exchanges
//! themselves (who sends what, when) read top to bottom in [`crate::request`].

pub mod cram;
pub mod plain;
pub mod scram;

use crate::protocol::MechFlags;

/// The mechanisms authd speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mech {
    Plain,
    Login,
    CramMd5,
    ScramSha256,
}

impl Mech {
    pub const ALL: [Mech; 4] = [Mech::Plain, Mech::Login, Mech::CramMd5, Mech::ScramSha256];

    /// The IANA name, as announced and logged.
    pub fn name(self) -> &'static str {
        match self {
            Mech::Plain => "PLAIN",
            Mech::Login => "LOGIN",
            Mech::CramMd5 => "CRAM-MD5",
            Mech::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Case-insensitive, as Dovecot matches a client's mechanism.
    pub fn from_name(name: &str) -> Option<Mech> {
        Mech::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Dovecot's flags for the mechanism (`mech-*.c`).
    pub fn flags(self) -> MechFlags {
        match self {
            Mech::Plain | Mech::Login => MechFlags { plaintext: true, ..MechFlags::default() },
            Mech::CramMd5 => MechFlags { dictionary: true, active: true, ..MechFlags::default() },
            Mech::ScramSha256 => MechFlags { mutual_auth: true, ..MechFlags::default() },
        }
    }

    /// True when the mechanism sees the password itself; the others need credentials the
    /// store holds in plaintext or in the mechanism's own scheme.
    pub fn is_plaintext(self) -> bool {
        matches!(self, Mech::Plain | Mech::Login)
    }
}

impl std::fmt::Display for Mech {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Malformed SASL data inside a mechanism. Logged with the request; the client gets the
/// generic failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MechError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("NUL byte in {0}")]
    Nul(&'static str),
    #[error("channel binding requested, which authd cannot offer (no TLS data from Postfix)")]
    ChannelBinding,
}
