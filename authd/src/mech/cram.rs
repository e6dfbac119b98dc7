//! CRAM-MD5 (RFC 2195): a challenge in Dovecot's form and the client's `user SP hex-digest`.

use std::time::{SystemTime, UNIX_EPOCH};

use super::MechError;

/// `<random digits.unixtime@hostname>` (Dovecot's form, `mech-cram-md5.c`). The random part
/// makes replays useless; 64 random bits written as decimal digits.
pub fn challenge(hostname: &str) -> Vec<u8> {
    let mut random = [0u8; 8];
    // Without the OS generator the time still changes every second; never fail the login.
    let _ = getrandom::fill(&mut random);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("<{}.{now}@{hostname}>", u64::from_le_bytes(random)).into_bytes()
}

/// The user name and the 16-byte digest of a response. The user is everything before the
/// rightmost space, as Dovecot splits it.
///
/// # Errors
/// No space, a NUL, or a digest that is not 32 hex digits.
pub fn parse_response(data: &[u8]) -> Result<(&[u8], [u8; 16]), MechError> {
    if data.contains(&0) {
        return Err(MechError::Nul("CRAM-MD5 response"));
    }
    let space =
        data.iter().rposition(|&b| b == b' ').ok_or(MechError::Malformed("CRAM-MD5 response without a space"))?;
    let (user, hex) = (&data[..space], &data[space + 1..]);
    if user.is_empty() {
        return Err(MechError::Malformed("CRAM-MD5 response with an empty user name"));
    }
    let digest = std::str::from_utf8(hex)
        .ok()
        .and_then(crate::scheme::unhex)
        .and_then(|d| <[u8; 16]>::try_from(d).ok())
        .ok_or(MechError::Malformed("CRAM-MD5 digest is not 32 hex digits"))?;
    Ok((user, digest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn response() {
        let (user, digest) = parse_response(b"tim b913a602c7eda7a495b4e6e7334d3890").unwrap();
        assert_eq!(user, b"tim");
        assert_eq!(digest[0], 0xb9);
        assert_eq!(digest[15], 0x90);
        let (user, _) = parse_response(b"a b b913a602c7eda7a495b4e6e7334d3890").unwrap();
        assert_eq!(user, b"a b");
        assert!(parse_response(b"tim").is_err());
        assert!(parse_response(b" b913a602c7eda7a495b4e6e7334d3890").is_err());
        assert!(parse_response(b"tim b913a602c7eda7a495b4e6e7334d389").is_err());
        assert!(parse_response(b"tim z913a602c7eda7a495b4e6e7334d3890").is_err());
        assert!(parse_response(b"t\0m b913a602c7eda7a495b4e6e7334d3890").is_err());
    }

    #[test]
    fn challenge_form() {
        let c = String::from_utf8(challenge("mx.example")).unwrap();
        assert!(c.starts_with('<') && c.ends_with("@mx.example>"), "{c}");
        assert_ne!(challenge("h"), challenge("h"));
    }
}
