//! [`Stored`]: a credential as a password store holds it, parsed and validated once, then
//! verified any number of times.
//!
//! Parsing follows Dovecot's `password_get_scheme` and `password_decode`
//! (`password-scheme.c`): a `{SCHEME}` or `{SCHEME.encoding}` prefix names the scheme; without
//! one, a `$1$` string is MD5-CRYPT, another crypt(3) `$id$` string is CRYPT, and anything else
//! is the store's default scheme. Binary schemes (digests, CRAM-MD5) are decoded from their
//! default encoding or the one the suffix names; text schemes (crypt strings, PBKDF2, Argon2,
//! SCRAM) take the suffix to mean the whole string was encoded.

use std::fmt;

use zeroize::Zeroizing;

use super::argon2::Argon2Hash;
use super::cram::{self, CramMd5Key};
use super::crypt::{CryptHash, Kind};
use super::digest::DigestHash;
use super::encoding::{Encoding, unbase64};
use super::pbkdf2::Pbkdf2Hash;
use super::scram::{self, ScramKeys, ScramSha1Keys};
use super::{Scheme, SchemeError};

/// A stored credential parsed from a password store: "{SCHEME}data", "{SCHEME.b64}data"/".hex"/
/// ".base64" encoding suffixes, or a bare value: "$1$…" → MD5-CRYPT, any other "$id$…" crypt
/// string ($5$, $6$, $2a$/$2b$/$2y$, $y$) → CRYPT, otherwise `default`.
///
/// Validated at parse time (ASCII only, well-formed for its scheme) so verify never panics on a
/// tampered store. PLAIN is the exception to "ASCII only": a plaintext password may be any
/// UTF-8. The data is wiped from memory when the value is dropped, and `Debug` shows only the
/// scheme.
#[derive(Clone)]
pub struct Stored {
    scheme: Scheme,
    credential: Credential,
}

/// The parsed data, one variant per family.
#[derive(Clone)]
enum Credential {
    Plain(Zeroizing<Vec<u8>>),
    Crypt(CryptHash),
    Digest(DigestHash),
    Pbkdf2(Pbkdf2Hash),
    Argon2(Argon2Hash),
    CramMd5(CramMd5Key),
    ScramSha1(ScramSha1Keys),
    ScramSha256(ScramKeys),
}

impl Stored {
    /// Parses `text` from a password store, taking `default` for a value with neither a
    /// `{SCHEME}` prefix nor a recognisable crypt(3) prefix.
    ///
    /// # Errors
    /// [`SchemeError::Unknown`] for an unknown `{SCHEME}` or encoding suffix,
    /// [`SchemeError::Malformed`], [`SchemeError::Unsupported`] or
    /// [`SchemeError::RoundsOutOfRange`] for data its scheme cannot verify.
    pub fn parse(text: &str, default: Scheme) -> Result<Stored, SchemeError> {
        let Some((name, data)) = text.strip_prefix('{').and_then(|rest| rest.split_once('}')) else {
            let scheme = match Kind::detect(text) {
                Some(Kind::Md5) => Scheme::Md5Crypt,
                Some(_) => Scheme::Crypt,
                None => default,
            };
            return Stored::from_parts(scheme, text, None, binary_encoding(scheme));
        };
        let (base, suffix) = match name.split_once('.') {
            Some((base, suffix)) => {
                (base, Some(Encoding::from_suffix(suffix).ok_or_else(|| SchemeError::unknown(name))?))
            }
            None => (name, None),
        };
        let scheme = Scheme::from_name(base).ok_or_else(|| SchemeError::unknown(name))?;
        if base.eq_ignore_ascii_case("LDAP-MD5") {
            // PLAIN-MD5's digest, written in base64 by LDAP tools.
            return Stored::from_parts(scheme, data, suffix, Some(Encoding::Base64));
        }
        if base.eq_ignore_ascii_case("MD5") && !data.starts_with(super::md5_crypt::MAGIC) {
            // Dovecot's "MD5" is MD5-CRYPT for `$1$` strings and PLAIN-MD5 otherwise.
            return Stored::from_parts(Scheme::PlainMd5, data, suffix, binary_encoding(Scheme::PlainMd5));
        }
        Stored::from_parts(scheme, data, suffix, binary_encoding(scheme))
    }

    /// Builds the credential from its stored `data`, the encoding its suffix names, and, for a
    /// binary scheme, the encoding it has without a suffix.
    fn from_parts(
        scheme: Scheme,
        data: &str,
        suffix: Option<Encoding>,
        binary: Option<Encoding>,
    ) -> Result<Stored, SchemeError> {
        let bad_suffix = SchemeError::Malformed { scheme, what: "not valid in the encoding its suffix names" };
        if scheme == Scheme::Plain {
            let password = match suffix {
                Some(encoding) => encoding.decode(data).ok_or(bad_suffix)?,
                None => data.as_bytes().to_vec(),
            };
            return Ok(Stored { scheme, credential: Credential::Plain(Zeroizing::new(password)) });
        }
        ascii(scheme, data.as_bytes())?;
        let credential = match binary {
            Some(default) => {
                let raw = match suffix {
                    Some(encoding) => encoding.decode(data).ok_or(bad_suffix)?,
                    None => decode_default(scheme, data, default)?,
                };
                Stored::from_raw(scheme, Zeroizing::new(raw))?
            }
            None => match suffix {
                // The whole string was encoded; what it decodes to must be ASCII again.
                Some(encoding) => {
                    let decoded = Zeroizing::new(encoding.decode(data).ok_or(bad_suffix)?);
                    Stored::from_text(scheme, ascii(scheme, &decoded)?)?
                }
                None => Stored::from_text(scheme, data)?,
            },
        };
        Ok(Stored { scheme, credential })
    }

    /// A binary scheme's credential from its decoded bytes.
    fn from_raw(scheme: Scheme, raw: Zeroizing<Vec<u8>>) -> Result<Credential, SchemeError> {
        Ok(match scheme {
            Scheme::CramMd5 => {
                let state: &[u8; cram::STORED_LEN] = raw[..]
                    .try_into()
                    .map_err(|_| SchemeError::Malformed { scheme, what: "not 32 bytes (64 hex digits)" })?;
                Credential::CramMd5(CramMd5Key::from_stored(state))
            }
            _ => Credential::Digest(DigestHash::from_raw(scheme, raw)?),
        })
    }

    /// A text scheme's credential from its (ASCII) string.
    fn from_text(scheme: Scheme, text: &str) -> Result<Credential, SchemeError> {
        Ok(match scheme {
            Scheme::Argon2i | Scheme::Argon2id => Credential::Argon2(Argon2Hash::parse(scheme, text)?),
            Scheme::Pbkdf2 => Credential::Pbkdf2(Pbkdf2Hash::parse(text)?),
            Scheme::ScramSha1 => Credential::ScramSha1(ScramSha1Keys::parse(text)?),
            Scheme::ScramSha256 => Credential::ScramSha256(ScramKeys::parse(text)?),
            // The crypt family; binary schemes and PLAIN never get here.
            _ => Credential::Crypt(CryptHash::parse(scheme, text)?),
        })
    }

    /// The scheme the value was stored under (or detected as).
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether `password` matches. Blocking; may take tens of ms for slow schemes (see
    /// [`Scheme::is_slow`]). Compares in constant time.
    ///
    /// A password containing a NUL byte never matches: Dovecot refuses NUL in every mechanism's
    /// password, and crypt(3) would stop reading at it, so accepting it would let
    /// "secret\0anything" pass for "secret" wherever a C library is involved.
    pub fn verify(&self, password: &[u8]) -> bool {
        if password.contains(&0) {
            return false;
        }
        match &self.credential {
            Credential::Plain(stored) => super::encoding::ct_eq(password, stored),
            Credential::Crypt(hash) => hash.verify(password),
            Credential::Digest(hash) => hash.verify(password),
            Credential::Pbkdf2(hash) => hash.verify(password),
            Credential::Argon2(hash) => hash.verify(password),
            Credential::CramMd5(key) => key.matches(&CramMd5Key::from_password(password)),
            Credential::ScramSha1(keys) => keys.verify(password),
            Credential::ScramSha256(keys) => keys.verify(password),
        }
    }

    /// CRAM-MD5 key when this credential can answer CRAM-MD5 (PLAIN or {CRAM-MD5} stored
    /// state), else None.
    pub fn cram_md5(&self) -> Option<CramMd5Key> {
        match &self.credential {
            Credential::Plain(password) => Some(CramMd5Key::from_password(password)),
            Credential::CramMd5(key) => Some(key.clone()),
            _ => None,
        }
    }

    /// SCRAM-SHA-256 server keys when this credential can serve SCRAM-SHA-256: from
    /// {SCRAM-SHA-256} stored data, or derived from PLAIN with `salt` and 4096 iterations
    /// (what Dovecot announces for plaintext), else None.
    ///
    /// The caller gives the salt: for PLAIN it must be the one an unknown user of the same
    /// name would get ([`crate::secret`]), so the two look alike. Deriving from PLAIN is a
    /// deliberate key stretch: call it off the async workers.
    pub fn scram_sha256(&self, salt: &[u8]) -> Option<ScramKeys> {
        match &self.credential {
            Credential::ScramSha256(keys) => Some(keys.clone()),
            Credential::Plain(password) => Some(ScramKeys::derive(password, salt, scram::MIN_ITERATIONS)),
            _ => None,
        }
    }

    /// What decides how long a verification takes: the scheme and its cost parameters
    /// (rounds, bcrypt cost, Argon2 memory and passes), never the salt or the hash.
    pub fn cost_class(&self) -> String {
        match &self.credential {
            Credential::Crypt(hash) => hash.cost_class(),
            Credential::Argon2(hash) => hash.cost_class(),
            Credential::Pbkdf2(hash) => format!("PBKDF2 rounds={}", hash.rounds()),
            Credential::ScramSha1(keys) => format!("SCRAM-SHA-1 i={}", keys.iterations),
            Credential::ScramSha256(keys) => format!("SCRAM-SHA-256 i={}", keys.iterations),
            Credential::Plain(_) | Credential::Digest(_) | Credential::CramMd5(_) => self.scheme.name().to_owned(),
        }
    }

    /// SCRAM-SHA-1 server keys, like [`Stored::scram_sha256`]: from {SCRAM-SHA-1} data or
    /// derived from PLAIN.
    pub fn scram_sha1(&self) -> Option<ScramSha1Keys> {
        match &self.credential {
            Credential::ScramSha1(keys) => Some(keys.clone()),
            Credential::Plain(password) => {
                let mut salt = [0u8; scram::SALT_LEN];
                super::random::fill_with_fallback(&mut salt);
                Some(ScramSha1Keys::derive(password, &salt, scram::MIN_ITERATIONS))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

/// The encoding of a binary scheme's bytes when no suffix names one; `None` for text schemes.
fn binary_encoding(scheme: Scheme) -> Option<Encoding> {
    match scheme {
        Scheme::Sha | Scheme::Sha256 | Scheme::Sha512 | Scheme::Ssha | Scheme::Ssha256 | Scheme::Ssha512 => {
            Some(Encoding::Base64)
        }
        Scheme::PlainMd5 | Scheme::CramMd5 => Some(Encoding::Hex),
        _ => None,
    }
}

/// Decodes a binary scheme's text in its default encoding. Like Dovecot, hex that does not
/// decode is tried as base64: some tools write PLAIN-MD5 in base64 without saying so.
fn decode_default(scheme: Scheme, text: &str, encoding: Encoding) -> Result<Vec<u8>, SchemeError> {
    let decoded = match encoding {
        Encoding::Hex => encoding.decode(text).or_else(|| unbase64(text)),
        Encoding::Base64 => encoding.decode(text),
    };
    decoded.ok_or(SchemeError::Malformed { scheme, what: "not valid hex or base64" })
}

/// `text` as `&str` when it is ASCII.
fn ascii(scheme: Scheme, text: &[u8]) -> Result<&str, SchemeError> {
    match std::str::from_utf8(text) {
        Ok(text) if text.is_ascii() => Ok(text),
        _ => Err(SchemeError::Malformed { scheme, what: "non-ASCII characters" }),
    }
}
