//! The typed view of a policy request.
//!
//! Postfix always sends every attribute it knows, with an empty value when it has none
//! (SMTPD_POLICY_README). The typed fields therefore use `""`/`None` for "not available";
//! anything not modelled here stays reachable through [`PolicyRequest::attribute`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::codec::RawRequest;

/// The SMTP protocol stage the request was made at (`protocol_state`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProtocolState {
    Connect,
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    /// `DATA`; Postfix also reports BDAT as DATA.
    Data,
    EndOfMessage,
    Vrfy,
    Etrn,
    /// A state this version does not know (a future Postfix), kept verbatim.
    Other(String),
}

impl ProtocolState {
    pub fn as_str(&self) -> &str {
        match self {
            ProtocolState::Connect => "CONNECT",
            ProtocolState::Ehlo => "EHLO",
            ProtocolState::Helo => "HELO",
            ProtocolState::Mail => "MAIL",
            ProtocolState::Rcpt => "RCPT",
            ProtocolState::Data => "DATA",
            ProtocolState::EndOfMessage => "END-OF-MESSAGE",
            ProtocolState::Vrfy => "VRFY",
            ProtocolState::Etrn => "ETRN",
            ProtocolState::Other(s) => s,
        }
    }
}

impl From<&str> for ProtocolState {
    fn from(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "CONNECT" => ProtocolState::Connect,
            "EHLO" => ProtocolState::Ehlo,
            "HELO" => ProtocolState::Helo,
            "MAIL" => ProtocolState::Mail,
            "RCPT" => ProtocolState::Rcpt,
            "DATA" | "BDAT" => ProtocolState::Data,
            "END-OF-MESSAGE" => ProtocolState::EndOfMessage,
            "VRFY" => ProtocolState::Vrfy,
            "ETRN" => ProtocolState::Etrn,
            _ => ProtocolState::Other(s.to_owned()),
        }
    }
}

impl fmt::Display for ProtocolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a well-framed request still cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("missing attribute request=smtpd_access_policy")]
    MissingRequest,
    #[error("unsupported request type {0:?} (expected smtpd_access_policy)")]
    UnknownRequest(String),
    #[error("invalid {name} {value:?}")]
    InvalidAttribute { name: &'static str, value: String },
}

/// One `smtpd_access_policy` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRequest {
    pub protocol_state: ProtocolState,
    /// `SMTP` or `ESMTP`.
    pub protocol_name: String,
    /// The SMTP client's address. IPv4-mapped IPv6 addresses are turned into IPv4, so every
    /// check sees one form. `None` only if Postfix sent an empty value.
    pub client_address: Option<IpAddr>,
    pub client_port: Option<u16>,
    /// Forward-confirmed reverse name, or `unknown`.
    pub client_name: String,
    /// Unverified PTR name, or `unknown`.
    pub reverse_client_name: String,
    pub server_address: Option<IpAddr>,
    pub server_port: Option<u16>,
    pub helo_name: String,
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    pub recipient: String,
    pub sasl_method: String,
    pub sasl_username: String,
    /// Groups the requests of one message on one connection.
    pub instance: String,
    pub queue_id: String,
    pub policy_context: String,
    attributes: Vec<(String, String)>,
}

impl PolicyRequest {
    /// Builds the typed view. For a repeated attribute, the last value wins.
    ///
    /// # Errors
    /// A missing or foreign `request` attribute, or an address or port that does not parse.
    pub fn from_raw(raw: RawRequest) -> Result<Self, RequestError> {
        let attributes = raw.attributes;
        let get = |name: &str| -> &str {
            attributes.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("")
        };
        match attributes.iter().rev().find(|(n, _)| n == "request") {
            None => return Err(RequestError::MissingRequest),
            Some((_, v)) if v != "smtpd_access_policy" => {
                return Err(RequestError::UnknownRequest(v.clone()));
            }
            Some(_) => {}
        }
        let request = PolicyRequest {
            protocol_state: ProtocolState::from(get("protocol_state")),
            protocol_name: get("protocol_name").to_owned(),
            client_address: parse_ip("client_address", get("client_address"))?,
            client_port: parse_opt("client_port", get("client_port"))?,
            client_name: get("client_name").to_owned(),
            reverse_client_name: get("reverse_client_name").to_owned(),
            server_address: parse_ip("server_address", get("server_address"))?,
            server_port: parse_opt("server_port", get("server_port"))?,
            helo_name: get("helo_name").to_owned(),
            sender: get("sender").to_owned(),
            recipient: get("recipient").to_owned(),
            sasl_method: get("sasl_method").to_owned(),
            sasl_username: get("sasl_username").to_owned(),
            instance: get("instance").to_owned(),
            queue_id: get("queue_id").to_owned(),
            policy_context: get("policy_context").to_owned(),
            attributes: Vec::new(),
        };
        Ok(PolicyRequest { attributes, ..request })
    }

    /// The last value of any attribute, including ones not modelled above.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every attribute as received, in order.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attributes
    }

    /// True when the client authenticated with SMTP AUTH.
    pub fn is_authenticated(&self) -> bool {
        !self.sasl_username.is_empty()
    }

    /// `name[address]` as Postfix writes a client in its logs.
    pub fn client(&self) -> String {
        let name = if self.client_name.is_empty() { "unknown" } else { &self.client_name };
        match self.client_address {
            Some(ip) => format!("{name}[{ip}]"),
            None => format!("{name}[]"),
        }
    }
}

fn parse_ip(name: &'static str, value: &str) -> Result<Option<IpAddr>, RequestError> {
    if value.is_empty() {
        return Ok(None);
    }
    // Postfix writes IPv6 client addresses bare, but accept the `ipv6:` form of address
    // literals too, since some test tools send it.
    let bare = value.strip_prefix("ipv6:").or_else(|| value.strip_prefix("IPv6:")).unwrap_or(value);
    IpAddr::from_str(bare)
        .map(|ip| Some(ip.to_canonical()))
        .map_err(|_| RequestError::InvalidAttribute { name, value: crate::logging::excerpt(value).into_owned() })
}

fn parse_opt<T: FromStr>(name: &'static str, value: &str) -> Result<Option<T>, RequestError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| RequestError::InvalidAttribute { name, value: crate::logging::excerpt(value).into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawRequest {
        RawRequest {
            attributes: pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            invalid_utf8: vec![],
        }
    }

    #[test]
    fn typed_fields() {
        let req = PolicyRequest::from_raw(raw(&[
            ("request", "smtpd_access_policy"),
            ("protocol_state", "RCPT"),
            ("client_address", "::ffff:192.0.2.7"),
            ("client_name", "mx.example.org"),
            ("server_port", "587"),
            ("sender", "a@example.org"),
            ("sender", "b@example.org"),
            ("sasl_username", "alice"),
            ("x_future", "1"),
        ]))
        .unwrap();
        assert_eq!(req.protocol_state, ProtocolState::Rcpt);
        assert_eq!(req.client_address, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(req.server_port, Some(587));
        assert_eq!(req.sender, "b@example.org", "last value wins");
        assert!(req.is_authenticated());
        assert_eq!(req.attribute("x_future"), Some("1"));
        assert_eq!(req.client(), "mx.example.org[192.0.2.7]");
        assert_eq!(req.recipient, "");
    }

    #[test]
    fn ipv6_and_states() {
        let req = PolicyRequest::from_raw(raw(&[
            ("request", "smtpd_access_policy"),
            ("protocol_state", "BDAT"),
            ("client_address", "2001:db8::1"),
        ]))
        .unwrap();
        assert_eq!(req.protocol_state, ProtocolState::Data);
        assert_eq!(req.client(), "unknown[2001:db8::1]");
        let other = ProtocolState::from("SOMETHING-NEW");
        assert_eq!(other.as_str(), "SOMETHING-NEW");
    }

    #[test]
    fn rejects() {
        assert_eq!(PolicyRequest::from_raw(raw(&[("sender", "a")])), Err(RequestError::MissingRequest));
        assert_eq!(
            PolicyRequest::from_raw(raw(&[("request", "junk")])),
            Err(RequestError::UnknownRequest("junk".into()))
        );
        let err = PolicyRequest::from_raw(raw(&[("request", "smtpd_access_policy"), ("client_address", "999.1.1.1")]))
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid client_address \"999.1.1.1\"");
        let err =
            PolicyRequest::from_raw(raw(&[("request", "smtpd_access_policy"), ("server_port", "99999")])).unwrap_err();
        assert_eq!(err.to_string(), "invalid server_port \"99999\"");
    }
}
