//! The result headers: `Received-SPF` (RFC 7208 §9.1) and `Authentication-Results`
//! (RFC 8601 §2.7.2). Every value from the network is quoted or reduced so that a hostile
//! HELO or sender cannot end the header, open a comment or add a field.

use std::net::IpAddr;

use shared::policy::Header;

use super::evaluate::Evaluation;
use super::{HeaderKind, Identity, Outcome};

/// This host's name, used as `receiver=` and as the authserv-id unless configured.
pub fn receiver_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Renders the configured headers for a result.
pub struct HeaderWriter {
    kind: HeaderKind,
    receiver: String,
}

impl HeaderWriter {
    pub fn new(kind: HeaderKind, authserv_id: &str) -> HeaderWriter {
        HeaderWriter { kind, receiver: receiver_name(authserv_id) }
    }

    /// The headers for `eval`, in the order they should be prepended. `envelope_from` is
    /// the request's sender (empty for the null sender).
    pub fn headers(&self, eval: &Evaluation, ip: IpAddr, helo: &str, envelope_from: &str) -> Vec<Header> {
        let mut out = Vec::with_capacity(2);
        if matches!(self.kind, HeaderKind::ReceivedSpf | HeaderKind::Both) {
            out.extend(Header::new("Received-SPF", &self.received_spf(eval, ip, helo, envelope_from)).ok());
        }
        if matches!(self.kind, HeaderKind::AuthenticationResults | HeaderKind::Both) {
            out.extend(Header::new("Authentication-Results", &self.authentication_results(eval, helo)).ok());
        }
        out
    }

    /// `pass (mx.example.net: domain of a@example.org designates 192.0.2.1 as permitted
    /// sender) client-ip=192.0.2.1; envelope-from="a@example.org"; helo=mail.example.org;
    /// receiver=mx.example.net; identity=mailfrom; mechanism="ip4:192.0.2.0/24";`
    pub fn received_spf(&self, eval: &Evaluation, ip: IpAddr, helo: &str, envelope_from: &str) -> String {
        let who = match (eval.sender.as_str(), eval.domain.as_str()) {
            ("", "") => "(unnamed)".to_owned(),
            ("", domain) => comment_safe(domain),
            (sender, _) => comment_safe(sender),
        };
        let why = comment_safe(&eval.why());
        let r = &self.receiver;
        let comment = match eval.outcome {
            Outcome::Pass => format!("{r}: domain of {who} designates {ip} as permitted sender"),
            Outcome::Fail => format!("{r}: domain of {who} does not designate {ip} as permitted sender"),
            Outcome::Softfail => {
                format!("{r}: transitioning domain of {who} does not designate {ip} as permitted sender")
            }
            Outcome::Neutral => format!("{r}: {ip} is neither permitted nor denied by domain of {who}"),
            Outcome::None => format!("{r}: {why} for {who}"),
            Outcome::Permerror => format!("{r}: permanent error in processing domain of {who}: {why}"),
            Outcome::Temperror => format!("{r}: temporary error in processing domain of {who}: {why}"),
        };
        let envelope = if envelope_from.is_empty() { eval.sender.as_str() } else { envelope_from };
        let mut value = format!("{} ({comment}) client-ip={ip};", eval.outcome);
        if !envelope.is_empty() {
            value.push_str(&format!(" envelope-from={};", quoted(envelope)));
        }
        if !helo.is_empty() {
            value.push_str(&format!(" helo={};", token_or_quoted(helo)));
        }
        value.push_str(&format!(" receiver={r}; identity={};", eval.identity));
        if let Some(m) = &eval.mechanism {
            value.push_str(&format!(" mechanism={};", quoted(m)));
        }
        if let Some(p) = &eval.problem
            && matches!(eval.outcome, Outcome::Permerror | Outcome::Temperror)
        {
            value.push_str(&format!(" problem={};", quoted(p)));
        }
        value
    }

    /// `mx.example.net; spf=pass (domain of a@example.org designates 192.0.2.1 as permitted
    /// sender) smtp.mailfrom=a@example.org`
    pub fn authentication_results(&self, eval: &Evaluation, helo: &str) -> String {
        let why = comment_safe(&eval.why());
        let comment = if why.is_empty() { String::new() } else { format!(" ({why})") };
        let property = match eval.identity {
            Identity::MailFrom if !eval.sender.is_empty() => format!("smtp.mailfrom={}", token_or_quoted(&eval.sender)),
            Identity::MailFrom => format!("smtp.mailfrom={}", token_or_quoted(&eval.domain)),
            Identity::Helo => {
                format!("smtp.helo={}", token_or_quoted(if helo.is_empty() { &eval.domain } else { helo }))
            }
        };
        format!("{}; spf={}{comment} {property}", self.receiver, eval.outcome)
    }
}

/// Text safe inside a `( … )` comment: printable ASCII without parentheses or backslashes.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '(' | ')' | '\\') || c == ' ' { c } else { '?' })
        .collect()
}

/// An RFC 5322 quoted-string of printable ASCII.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// A dot-atom-like value as is (host names, ordinary addresses), anything else quoted.
fn token_or_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@' | b'+' | b'='));
    if plain { text.to_owned() } else { quoted(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(outcome: Outcome) -> Evaluation {
        Evaluation {
            identity: Identity::MailFrom,
            domain: "example.org".into(),
            sender: "a@example.org".into(),
            outcome,
            explanation: String::new(),
            mechanism: Some("ip4:192.0.2.0/24".into()),
            problem: None,
            no_mail: false,
            trace: Vec::new(),
        }
    }

    #[test]
    fn received_spf_and_authentication_results() {
        let w = HeaderWriter::new(HeaderKind::Both, "mx.example.net");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let h = w.headers(&eval(Outcome::Pass), ip, "mail.example.org", "a@example.org");
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[0].to_string(),
            "Received-SPF: pass (mx.example.net: domain of a@example.org designates 192.0.2.1 as permitted sender) \
             client-ip=192.0.2.1; envelope-from=\"a@example.org\"; helo=mail.example.org; receiver=mx.example.net; \
             identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";"
        );
        assert_eq!(
            h[1].to_string(),
            "Authentication-Results: mx.example.net; spf=pass (matched ip4:192.0.2.0/24) smtp.mailfrom=a@example.org"
        );
    }

    #[test]
    fn hostile_values_stay_inside_their_quotes() {
        let w = HeaderWriter::new(HeaderKind::ReceivedSpf, "mx.example.net");
        let mut e = eval(Outcome::Permerror);
        e.sender = "a\"b)(@example.org".into();
        e.problem = Some("bad ) record".into());
        let v = w.received_spf(&e, "192.0.2.1".parse().unwrap(), "evil; x=\"y\r\n", "a\"b)(@example.org");
        assert!(v.contains(r#"envelope-from="a\"b)(@example.org";"#), "{v}");
        assert!(v.contains(r#"helo="evil; x=\"y??";"#), "{v}");
        assert!(v.contains("domain of a\"b??@example.org: bad ? record)"), "{v}");
    }
}
