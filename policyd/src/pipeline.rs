//! The checks' common result and how several combine into one answer.
//!
//! Postfix takes one action per request, so the pipeline reduces: the first check that
//! refuses (reject or defer) decides, and every check's headers are queued for the message
//! (one `PREPEND` per later request of that message, see [`crate::message`]).

use shared::policy::{Action, Header};

/// What one check (or the whole pipeline) concluded about a message.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// A reject or defer, when the check refuses the message.
    pub refuse: Option<Action>,
    /// Headers to prepend, in order.
    pub headers: Vec<Header>,
    /// Short reason for the log (`spf-fail`, `exempt`).
    pub reason: String,
    /// `key=value` pairs for the log line.
    pub fields: Vec<(&'static str, String)>,
}

impl Verdict {
    /// Adds `next` (a later check) to this verdict: a refusal here stays the answer.
    pub fn then(mut self, next: Verdict) -> Verdict {
        if self.refuse.is_none() && next.refuse.is_some() {
            self.refuse = next.refuse;
            self.reason = next.reason;
        } else if self.reason.is_empty() {
            self.reason = next.reason;
        }
        self.headers.extend(next.headers);
        self.fields.extend(next.fields);
        self
    }
}
