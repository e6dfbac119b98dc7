//! Database URLs carry passwords (`postgres://user:secret@host/db`); these helpers keep them
//! out of every message and log line. Used by greyd's store and authd's SQL passdb.

use std::borrow::Cow;

/// The URL with its password replaced by `***` (for display), and the password itself.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return (url.to_owned(), None);
    };
    let authority_len = url[start..].find(['/', '?', '#']).unwrap_or(url.len() - start);
    let authority = &url[start..start + authority_len];
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_owned(), None);
    };
    let password_start = start + user.len() + 1;
    let display = format!("{}***{}", &url[..password_start], &url[password_start + password.len()..]);
    (display, Some(password.to_owned()))
}

/// Removes a URL's password from error texts (driver errors sometimes echo the URL).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// The password as written and percent-decoded; empty strings are dropped.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(password: Option<&str>) -> Redactor {
        let mut secrets = Vec::new();
        if let Some(raw) = password.filter(|p| !p.is_empty()) {
            let decoded = percent_decode(raw);
            if decoded != raw {
                secrets.push(decoded);
            }
            secrets.push(raw.to_owned());
        }
        Redactor { secrets }
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), "***"));
            }
        }
        text
    }
}

/// Decodes `%XX` escapes (as a URL password may carry them); invalid escapes stay as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_raw_and_decoded_password() {
        let redactor = Redactor::new(Some("p%40ss"));
        assert_eq!(redactor.redact("x p@ss y p%40ss"), "x *** y ***");
        assert_eq!(Redactor::new(None).redact("p@ss"), "p@ss");
        assert_eq!(Redactor::new(Some("")).redact("abc"), "abc");
    }

    #[test]
    fn splits_password() {
        assert_eq!(
            split_password("postgres://u:s3cret@h/db"),
            ("postgres://u:***@h/db".to_owned(), Some("s3cret".to_owned()))
        );
        assert_eq!(split_password("sqlite:///var/x.db"), ("sqlite:///var/x.db".to_owned(), None));
        assert_eq!(split_password("mysql://root@h/db").1, None);
    }
}
