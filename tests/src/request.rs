//! Policy requests as Postfix writes them, for tests that answer them in-process through
//! [`PolicyService::decide`] and assert the exact action line.

use std::sync::atomic::{AtomicU64, Ordering};

use shared::policy::{Decision, PolicyRequest, PolicyService, RawRequest};

/// A unique `instance` per call: each request built with it is its own message.
pub fn next_instance() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("inst{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A number written in letters (a, b, …, z, ba, bb, …), for unique addresses: greyd folds
/// digit runs (VERP counters) into one key, so digits would make them collide.
pub fn letters(mut n: usize) -> String {
    let mut out = String::new();
    loop {
        out.insert(0, char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return out;
        }
    }
}

/// One policy request's attributes, in the order Postfix writes them.
#[derive(Debug, Clone)]
pub struct Req {
    attributes: Vec<(String, String)>,
}

impl Req {
    /// An RCPT-stage request (recipient `u@rcpt.test`), a new message.
    pub fn rcpt(ip: &str, helo: &str, sender: &str) -> Req {
        let attributes = [
            ("request", "smtpd_access_policy"),
            ("protocol_state", "RCPT"),
            ("protocol_name", "ESMTP"),
            ("client_address", ip),
            ("helo_name", helo),
            ("sender", sender),
            ("recipient", "u@rcpt.test"),
            ("instance", &next_instance()),
        ];
        Req { attributes: attributes.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect() }
    }

    /// Sets an attribute, replacing any earlier value.
    #[must_use]
    pub fn with(mut self, name: &str, value: &str) -> Req {
        self.attributes.retain(|(n, _)| n != name);
        self.attributes.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes an attribute.
    #[must_use]
    pub fn without(mut self, name: &str) -> Req {
        self.attributes.retain(|(n, _)| n != name);
        self
    }

    /// The parsed request.
    ///
    /// # Panics
    /// The attributes do not make a valid request (a mistake in the test).
    pub fn build(&self) -> PolicyRequest {
        let raw = RawRequest { attributes: self.attributes.clone(), invalid_utf8: vec![] };
        PolicyRequest::from_raw(raw).unwrap_or_else(|e| panic!("invalid test request: {e}"))
    }
}

/// The service's decision for `r`.
pub async fn decide<S: PolicyService>(svc: &S, r: &Req) -> Decision {
    svc.decide(&r.build()).await
}

/// The exact action line Postfix receives.
pub async fn answer<S: PolicyService>(svc: &S, r: &Req) -> String {
    decide(svc, r).await.action.to_string()
}

/// A `key=value` field of the decision's log line.
pub fn field<'a>(d: &'a Decision, key: &str) -> Option<&'a str> {
    d.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}
