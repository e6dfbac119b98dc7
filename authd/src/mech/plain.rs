//! PLAIN (RFC 4616) and LOGIN's two answers.

use zeroize::Zeroizing;

use super::MechError;

/// `authzid NUL authcid NUL password`, exactly two NULs.
pub struct PlainResponse {
    /// `None` when empty or equal to the authcid (Dovecot treats both as "no authzid").
    pub authzid: Option<Vec<u8>>,
    pub authcid: Vec<u8>,
    pub password: Zeroizing<Vec<u8>>,
}

/// Splits a PLAIN response.
///
/// # Errors
/// Not exactly two NULs, or an empty authcid.
pub fn parse_plain(data: &[u8]) -> Result<PlainResponse, MechError> {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(MechError::Malformed("PLAIN response without two NUL separators"));
    };
    if password.contains(&0) {
        return Err(MechError::Nul("PLAIN password"));
    }
    if authcid.is_empty() {
        return Err(MechError::Malformed("PLAIN response with an empty user name"));
    }
    let authzid = (!authzid.is_empty() && authzid != authcid).then(|| authzid.to_vec());
    Ok(PlainResponse { authzid, authcid: authcid.to_vec(), password: Zeroizing::new(password.to_vec()) })
}

/// A LOGIN answer: any bytes but NUL (Dovecot 2.3.11 closed NUL truncation in every
/// mechanism but PLAIN).
///
/// # Errors
/// A NUL byte.
pub fn login_answer(data: &[u8], what: &'static str) -> Result<(), MechError> {
    if data.contains(&0) { Err(MechError::Nul(what)) } else { Ok(()) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_forms() {
        let r = parse_plain(b"\0alice\0secret").unwrap();
        assert_eq!((r.authzid, r.authcid.as_slice(), r.password.as_slice()), (None, &b"alice"[..], &b"secret"[..]));
        assert_eq!(parse_plain(b"alice\0alice\0pw").unwrap().authzid, None);
        assert_eq!(parse_plain(b"boss\0alice\0pw").unwrap().authzid, Some(b"boss".to_vec()));
        assert_eq!(parse_plain(b"\0alice\0").unwrap().password.as_slice(), b"");
        assert!(parse_plain(b"").is_err());
        assert!(parse_plain(b"\0alice").is_err());
        assert!(parse_plain(b"\0\0pw").is_err());
        assert_eq!(parse_plain(b"\0alice\0pw\0x").err(), Some(MechError::Nul("PLAIN password")));
        assert!(login_answer(b"hun\0ter2", "LOGIN password").is_err());
        assert!(login_answer(b"hunter2", "LOGIN password").is_ok());
    }
}
