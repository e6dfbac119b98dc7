//! How an attempt ended: the reply Postfix gets, the reason the log gets.
//!
//! Clients see only generic texts (Dovecot's advice: never tell "unknown user" from "wrong
//! password"); the log line says exactly what happened.

use crate::hasher::Busy;
use crate::mech::MechError;
use crate::protocol::FailCode;
use crate::username::BadUsername;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not base64 (strict, padded). `initial`: in the AUTH line rather than a CONT.
    InvalidBase64 {
        initial: bool,
    },
    Malformed(MechError),
    BadUsername(BadUsername),
    UnknownUser,
    WrongPassword,
    /// The account exists but may not log in; `why` is for the log.
    Disabled(&'static str),
    Expired,
    /// allow_nets of the account does not cover the client.
    NotFromHere,
    /// An authorization identity other than the user, not allowed by `master_users`.
    Authz,
    /// The store could not answer; the text is for the log.
    Store(String),
    Busy(Busy),
    /// A CONT for a request that is not (or no longer) known.
    Timeout,
    /// The client left an exchange it had started: no answer to a challenge within the
    /// answer timeout, a CANCEL, or a closed connection. It counts as a guess: a SCRAM
    /// exchange dropped after the server-first message is how names would be probed.
    Abandoned(Abandon),
    /// A CONT arrived when no challenge was pending.
    UnexpectedContinuation,
    /// The mechanism is known but not offered by this configuration.
    MechanismNotOffered,
}

impl Failure {
    /// The `reason=` Postfix shows the SMTP client.
    pub fn reply_reason(&self) -> &'static str {
        match self {
            Failure::InvalidBase64 { initial: true } => "Invalid base64 data in initial response",
            Failure::InvalidBase64 { initial: false } => "Invalid base64 data in continued response",
            Failure::Store(_) | Failure::Busy(_) => "Temporary authentication failure",
            Failure::Timeout | Failure::Abandoned(_) => "Authentication request timed out",
            Failure::UnexpectedContinuation => "Unexpected continuation",
            _ => "Authentication failed",
        }
    }

    /// Dovecot's `code=`.
    pub fn code(&self) -> Option<FailCode> {
        match self {
            Failure::InvalidBase64 { .. } => Some(FailCode::InvalidBase64),
            Failure::Store(_) | Failure::Busy(_) => Some(FailCode::TempFail),
            Failure::Authz => Some(FailCode::AuthzFail),
            // Disabled and expired accounts get the same code-less reply as a wrong password:
            // the client learns nothing about the account.
            _ => None,
        }
    }

    /// The reason as one word: the start of the log's `reason=` field (fail2ban filters
    /// match on these) and the `result` label of the attempts metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::InvalidBase64 { .. } => "invalid-base64",
            Failure::Malformed(_) => "malformed",
            Failure::BadUsername(_) => "bad-username",
            Failure::UnknownUser => "unknown-user",
            Failure::WrongPassword => "password-mismatch",
            Failure::Disabled(_) => "disabled",
            Failure::Expired => "expired",
            Failure::NotFromHere => "client-not-allowed",
            Failure::Authz => "authzid-not-allowed",
            Failure::Store(_) | Failure::Busy(_) => "temporary-failure",
            Failure::Timeout => "timeout",
            Failure::Abandoned(_) => "abandoned",
            Failure::UnexpectedContinuation => "unexpected-continuation",
            Failure::MechanismNotOffered => "mechanism-not-offered",
        }
    }

    /// The log's `reason=` field: [`Self::kind`] and, where there is one, the detail.
    pub fn log_reason(&self) -> String {
        let detail = match self {
            Failure::Malformed(e) => e.to_string(),
            Failure::BadUsername(e) => e.to_string(),
            Failure::Disabled(why) => (*why).to_owned(),
            Failure::Store(e) => e.clone(),
            Failure::Busy(e) => e.to_string(),
            Failure::Abandoned(how) => how.as_str().to_owned(),
            _ => return self.kind().to_owned(),
        };
        format!("{} ({detail})", self.kind())
    }

    /// Failures answered after the pad and the failure delay. Dovecot answers bad base64 at
    /// once, temporary failures gain nothing from waiting, and an abandoned exchange has
    /// nobody waiting for its answer.
    pub fn is_delayed(&self) -> bool {
        !matches!(
            self,
            Failure::InvalidBase64 { .. }
                | Failure::Store(_)
                | Failure::Busy(_)
                | Failure::Timeout
                | Failure::Abandoned(_)
        )
    }

    /// Failures that count toward the brute-force penalty: guesses, not breakage.
    pub fn is_guess(&self) -> bool {
        matches!(
            self,
            Failure::UnknownUser
                | Failure::WrongPassword
                | Failure::Authz
                | Failure::Disabled(_)
                | Failure::Expired
                | Failure::NotFromHere
                | Failure::BadUsername(_)
                | Failure::Abandoned(_)
        )
    }
}

/// How an exchange was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandon {
    NoAnswer,
    Cancelled,
    Disconnected,
}

impl Abandon {
    fn as_str(self) -> &'static str {
        match self {
            Abandon::NoAnswer => "no answer to the challenge in time",
            Abandon::Cancelled => "cancelled by the client",
            Abandon::Disconnected => "the client disconnected",
        }
    }
}

/// The end of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The canonical user on success; on failure the normalised name when there is one.
    pub user: Option<String>,
    pub result: Result<(), Failure>,
}

impl Outcome {
    pub fn success(user: String) -> Outcome {
        Outcome { user: Some(user), result: Ok(()) }
    }

    pub fn failure(user: Option<String>, failure: Failure) -> Outcome {
        Outcome { user, result: Err(failure) }
    }
}
