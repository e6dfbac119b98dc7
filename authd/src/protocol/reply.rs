//! Server replies: `OK`, `CONT` and `FAIL` (auth-anchors §1.4).
//!
//! Postfix reads only `user=` (and `reason=` on a failure) and never unescapes, so every
//! value written here must be free of TAB, CR, LF and `\001`: user names are checked when
//! they are normalised ([`crate::username`]), reasons are our own fixed texts, and `CONT`
//! data is base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Dovecot's failure codes (`auth-client-interface.h`). Postfix ignores them (a `temp_fail`
/// still becomes 535), but Dovecot's own clients and our `test` command read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailCode {
    /// The login is refused because of who it is for (master user rules).
    AuthzFail,
    /// The password store could not answer; the client may retry.
    TempFail,
    UserDisabled,
    PassExpired,
    InvalidBase64,
}

impl FailCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailCode::AuthzFail => "authz_fail",
            FailCode::TempFail => "temp_fail",
            FailCode::UserDisabled => "user_disabled",
            FailCode::PassExpired => "pass_expired",
            FailCode::InvalidBase64 => "invalid_base64",
        }
    }
}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `OK\t<id>\tuser=<name>`; the user is always present: without it Postfix fails the login.
    Ok { id: u32, user: &'a str },
    /// `CONT\t<id>\t<base64>`: a challenge. Postfix needs the data field even when empty.
    Cont { id: u32, data: &'a [u8] },
    /// `FAIL\t<id>[\tcode=…][\tuser=…]\treason=…`. The reason is always sent: Postfix before
    /// 3.7.11 showed a stale challenge in its place.
    Fail { id: u32, code: Option<FailCode>, user: Option<&'a str>, reason: &'a str },
}

impl Reply<'_> {
    /// Appends the line, LF-terminated, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Ok { id, user } => {
                push_head(out, "OK", *id);
                out.extend_from_slice(b"\tuser=");
                out.extend_from_slice(user.as_bytes());
            }
            Reply::Cont { id, data } => {
                push_head(out, "CONT", *id);
                out.push(b'\t');
                let start = out.len();
                out.resize(start + base64::encoded_len(data.len(), true).unwrap_or(0), 0);
                let written = STANDARD.encode_slice(data, &mut out[start..]).unwrap_or(0);
                out.truncate(start + written);
            }
            Reply::Fail { id, code, user, reason } => {
                push_head(out, "FAIL", *id);
                if let Some(code) = code {
                    out.extend_from_slice(b"\tcode=");
                    out.extend_from_slice(code.as_str().as_bytes());
                }
                if let Some(user) = user {
                    out.extend_from_slice(b"\tuser=");
                    out.extend_from_slice(user.as_bytes());
                }
                out.extend_from_slice(b"\treason=");
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out.push(b'\n');
    }
}

fn push_head(out: &mut Vec<u8>, command: &str, id: u32) {
    out.extend_from_slice(command.as_bytes());
    out.push(b'\t');
    out.extend_from_slice(id.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: Reply<'_>) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn lines() {
        assert_eq!(text(Reply::Ok { id: 6, user: "bob@example.com" }), "OK\t6\tuser=bob@example.com\n");
        assert_eq!(text(Reply::Cont { id: 6, data: b"Username:" }), "CONT\t6\tVXNlcm5hbWU6\n");
        assert_eq!(text(Reply::Cont { id: 4, data: b"" }), "CONT\t4\t\n");
        assert_eq!(
            text(Reply::Fail { id: 2, code: None, user: Some("a@b"), reason: "Authentication failed" }),
            "FAIL\t2\tuser=a@b\treason=Authentication failed\n"
        );
        assert_eq!(
            text(Reply::Fail {
                id: 4,
                code: Some(FailCode::InvalidBase64),
                user: None,
                reason: "Invalid base64 data in initial response"
            }),
            "FAIL\t4\tcode=invalid_base64\treason=Invalid base64 data in initial response\n"
        );
    }
}
