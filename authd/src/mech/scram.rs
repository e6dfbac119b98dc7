//! SCRAM-SHA-256 (RFC 5802, RFC 7677) message parsing and proof checking, without channel
//! binding: Postfix passes no TLS data, so `p=` is refused, and `y`/`n` are accepted.
//!
//! Postfix does not send `final-resp-ok`, so the server-final message goes out as one more
//! challenge and the login succeeds on the client's (empty) answer to it (auth-anchors §1.6).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::MechError;

type HmacSha256 = Hmac<Sha256>;

/// The parts of a client-first message we keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` / `y,,` / `n,a=…,` exactly as sent: the client-final `c=` must repeat it.
    pub gs2_header: String,
    /// `a=`, unescaped.
    pub authzid: Option<String>,
    /// `n=`, unescaped.
    pub user: String,
    pub client_nonce: String,
    /// client-first-message-bare, part of the AuthMessage.
    pub bare: String,
}

/// Parses `gs2-header client-first-message-bare`.
///
/// # Errors
/// Channel binding, `m=`, a missing or malformed field, or a NUL.
pub fn parse_client_first(data: &[u8]) -> Result<ClientFirst, MechError> {
    let text = text(data)?;
    let mut parts = text.splitn(3, ',');
    let (Some(flag), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(MechError::Malformed("SCRAM client-first message without a GS2 header"));
    };
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(MechError::ChannelBinding),
        _ => return Err(MechError::Malformed("SCRAM GS2 channel-binding flag is not n, y or p=")),
    }
    let authzid = match authz {
        "" => None,
        a => Some(unescape(a.strip_prefix("a=").ok_or(MechError::Malformed("SCRAM GS2 authzid without a="))?)?),
    };
    let mut fields = bare.split(',');
    let user = match fields.next() {
        Some(f) if f.starts_with("m=") => {
            return Err(MechError::Malformed("SCRAM mandatory extension (m=) not supported"));
        }
        Some(f) => unescape(f.strip_prefix("n=").ok_or(MechError::Malformed("SCRAM client-first without n="))?)?,
        None => return Err(MechError::Malformed("SCRAM client-first without n=")),
    };
    let client_nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or(MechError::Malformed("SCRAM client-first without a printable nonce (r=)"))?;
    if user.is_empty() {
        return Err(MechError::Malformed("SCRAM client-first with an empty user name"));
    }
    Ok(ClientFirst {
        gs2_header: format!("{flag},{authz},"),
        authzid,
        user,
        client_nonce: client_nonce.to_owned(),
        bare: bare.to_owned(),
    })
}

/// The server-first message: `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
pub fn server_first(first: &ClientFirst, server_nonce: &str, salt: &[u8], iterations: u32) -> String {
    format!("r={}{server_nonce},s={},i={iterations}", first.client_nonce, STANDARD.encode(salt))
}

/// A fresh server nonce: 18 random bytes, base64 (printable, no comma).
pub fn server_nonce() -> String {
    let mut random = [0u8; 18];
    let _ = getrandom::fill(&mut random);
    STANDARD.encode(random)
}

/// Checks the client-final message against the stored keys. `Ok(Some(server_final))` when
/// the proof is right, `Ok(None)` when it is wrong.
///
/// # Errors
/// A malformed message, a channel-binding mismatch or a foreign nonce.
pub fn verify_client_final(
    data: &[u8],
    first: &ClientFirst,
    server_first: &str,
    stored_key: &[u8; 32],
    server_key: &[u8; 32],
) -> Result<Option<Vec<u8>>, MechError> {
    let text = text(data)?;
    let (without_proof, proof) =
        text.rsplit_once(",p=").ok_or(MechError::Malformed("SCRAM client-final without a proof (p=)"))?;
    let mut fields = without_proof.split(',');
    let binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or(MechError::Malformed("SCRAM client-final without channel binding (c=)"))?;
    if STANDARD.decode(binding).ok().as_deref() != Some(first.gs2_header.as_bytes()) {
        return Err(MechError::Malformed("SCRAM channel binding differs from the GS2 header"));
    }
    let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).unwrap_or_default();
    let expected_nonce = server_first.strip_prefix("r=").and_then(|s| s.split(',').next()).unwrap_or_default();
    if nonce != expected_nonce {
        return Err(MechError::Malformed("SCRAM client-final nonce differs from the server's"));
    }
    let proof: [u8; 32] = STANDARD
        .decode(proof)
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or(MechError::Malformed("SCRAM proof is not 32 bytes of base64"))?;
    let auth_message = format!("{},{server_first},{without_proof}", first.bare);
    let signature = hmac(stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
    let computed: [u8; 32] = Sha256::digest(&client_key).into();
    if !bool::from(computed.ct_eq(stored_key)) {
        return Ok(None);
    }
    let server_signature = hmac(server_key, auth_message.as_bytes());
    Ok(Some(format!("v={}", STANDARD.encode(server_signature)).into_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; the error arm cannot happen.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else { return [0; 32] };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn text(data: &[u8]) -> Result<&str, MechError> {
    if data.contains(&0) {
        return Err(MechError::Nul("SCRAM message"));
    }
    std::str::from_utf8(data).map_err(|_| MechError::Malformed("SCRAM message is not UTF-8"))
}

/// saslname: `=2C` is a comma, `=3D` an equals sign, any other `=` is an error.
fn unescape(name: &str) -> Result<String, MechError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(MechError::Malformed("SCRAM name with a bad = escape")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scheme::ScramKeys;

    /// RFC 7677 §3.
    #[test]
    fn rfc7677_exchange() {
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.user, "user");
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = ScramKeys::derive(b"pencil", &salt, 4096);
        let sf = server_first(&first, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", &salt, 4096);
        assert_eq!(sf, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let final_msg = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = verify_client_final(final_msg, &first, &sf, &keys.stored_key, &keys.server_key).unwrap();
        assert_eq!(server_final.unwrap(), b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // A wrong password gives other keys: the proof fails, no error.
        let wrong = ScramKeys::derive(b"pencil2", &salt, 4096);
        assert_eq!(verify_client_final(final_msg, &first, &sf, &wrong.stored_key, &wrong.server_key).unwrap(), None);
        // A flipped proof byte fails too.
        let bad = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(verify_client_final(bad, &first, &sf, &keys.stored_key, &keys.server_key).unwrap(), None);
        // Another nonce or binding is an error.
        let other = b"c=biws,r=rOprNGfwEbeRWgbNEkqOxx,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(verify_client_final(other, &first, &sf, &keys.stored_key, &keys.server_key).is_err());
        let cb = b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(verify_client_final(cb, &first, &sf, &keys.stored_key, &keys.server_key).is_err());
    }

    #[test]
    fn client_first_forms() {
        let f = parse_client_first(b"n,a=boss,n=us=2Cer=3D,r=abc,ext=1").unwrap();
        assert_eq!(
            (f.authzid.as_deref(), f.user.as_str(), f.gs2_header.as_str()),
            (Some("boss"), "us,er=", "n,a=boss,")
        );
        assert_eq!(f.bare, "n=us=2Cer=3D,r=abc,ext=1");
        assert!(parse_client_first(b"y,,n=u,r=x").is_ok());
        assert_eq!(parse_client_first(b"p=tls-unique,,n=u,r=x"), Err(MechError::ChannelBinding));
        assert!(parse_client_first(b"n,,m=x,n=u,r=x").is_err());
        assert!(parse_client_first(b"n,,n=u").is_err());
        assert!(parse_client_first(b"n,,n=u=2,r=x").is_err());
        assert!(parse_client_first(b"n,,n=,r=x").is_err());
        assert!(parse_client_first(b"n,,n=u\0,r=x").is_err());
        assert!(parse_client_first(b"x,,n=u,r=x").is_err());
    }
}
