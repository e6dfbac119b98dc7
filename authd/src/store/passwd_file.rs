//! Dovecot's passwd-file: `user:password:uid:gid:gecos:home:shell:extra_fields`.
//!
//! Only the user, the password and the extra fields matter for SMTP AUTH. Extra fields are
//! space-separated; `nologin`, `disabled` and `fail` lock the account (where Dovecot would
//! answer OK with a `nologin` flag that Postfix ignores), `allow_nets=` limits the client
//! addresses, and everything else (`userdb_*`, …) is ignored. `#` comments and empty lines
//! are skipped. A user listed twice is an error, as in Dovecot: which line wins would
//! otherwise be a guess.
//!
//! Names are normalised as the incoming ones are (lower-cased by default), so a file written
//! with `Alice@Example.com` still matches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use super::watch::Watched;
use super::{Account, Status, StoreError};
use crate::scheme::{Scheme, Stored};
use crate::username::UsernamePolicy;

/// The parsed file.
#[derive(Debug, Default)]
pub struct Table {
    accounts: HashMap<String, Arc<Account>>,
}

impl Table {
    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// One credential per cost class (see [`super::PassDb::cost_samples`]).
    pub fn cost_samples(&self) -> Vec<Stored> {
        super::one_per_class(self.accounts.values())
    }

    /// Whether any account's stored credential can answer `probe` (CRAM-MD5, SCRAM).
    pub fn any(&self, probe: impl Fn(&Stored) -> bool) -> bool {
        self.accounts.values().any(|a| a.password.as_ref().is_some_and(&probe))
    }
}

/// A passwd-file, re-read when it changes.
pub struct PasswdFile {
    file: Watched<Table>,
}

impl PasswdFile {
    /// Reads `path` and starts watching it.
    ///
    /// # Errors
    /// Unreadable file or a line that does not parse.
    pub fn open(path: &Path, default: Scheme, names: UsernamePolicy) -> Result<PasswdFile, StoreError> {
        let display = path.display().to_string();
        let file = Watched::open(vec![path.to_owned()], move |texts| {
            parse(texts.first().map_or("", String::as_str), &display, default, &names)
        })?;
        Ok(PasswdFile { file })
    }

    pub fn lookup(&self, user: &str) -> Option<Arc<Account>> {
        self.file.current().accounts.get(user).cloned()
    }

    pub fn table(&self) -> Arc<Table> {
        self.file.current()
    }

    pub fn generation(&self) -> u64 {
        self.file.generation()
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Parses a whole file.
///
/// # Errors
/// The first bad line, by number; the message never quotes a password field.
pub fn parse(text: &str, path: &str, default: Scheme, names: &UsernamePolicy) -> Result<Table, StoreError> {
    let mut accounts = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |message: String| StoreError::Parse { path: path.to_owned(), line: line_no, message };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(8, ':');
        let name = fields.next().unwrap_or_default();
        let password = fields.next().ok_or_else(|| err("no password field (user:password:…)".to_owned()))?;
        let extra = fields.nth(5).unwrap_or_default();
        let user = names.normalize(name.as_bytes()).map_err(|e| err(format!("user {:?}: {e}", printable(name))))?;
        let mut account =
            Account { user: user.clone(), password: None, status: Status::Active, allow_nets: Vec::new() };
        if password.is_empty() {
            account.status = Status::Disabled("no password in the file");
        } else {
            let stored = Stored::parse(password, default).map_err(|e| err(format!("user {user:?}: {e}")))?;
            account.password = Some(stored);
        }
        for field in extra.split_ascii_whitespace() {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            match key {
                "nologin" | "disabled" | "fail" => account.status = Status::Disabled("marked nologin in the file"),
                "allow_nets" => {
                    for net in value.split(',').filter(|s| !s.is_empty()) {
                        account.allow_nets.push(parse_net(net).map_err(|m| err(format!("user {user:?}: {m}")))?);
                    }
                }
                _ => {}
            }
        }
        if accounts.insert(user.clone(), Arc::new(account)).is_some() {
            return Err(err(format!("user {user:?} exists more than once")));
        }
    }
    Ok(Table { accounts })
}

/// `192.0.2.0/24`, `2001:db8::/32` or a single address.
fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("allow_nets: {:?} is not an address or network", printable(text)))
}

fn printable(s: &str) -> String {
    shared::logging::printable(s).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str = "# users\n\
        alice@example.com:{PLAIN}alicepw::::::\n\
        \n\
        Bob@Example.COM:{PLAIN}bobpw:1000:1000::/home/bob:/bin/false:userdb_quota=1G allow_nets=192.0.2.0/24,2001:db8::1\n\
        erin@example.com:{PLAIN}erinpw::::::nologin\n\
        frank@example.com:::::::\n";

    #[test]
    fn accounts() {
        let t = parse(FILE, "f", Scheme::Crypt, &UsernamePolicy::default()).unwrap();
        assert_eq!(t.len(), 4);
        let bob = t.accounts.get("bob@example.com").unwrap();
        assert_eq!(bob.user, "bob@example.com");
        assert!(bob.password.as_ref().unwrap().verify(b"bobpw"));
        assert!(bob.allows(Some("192.0.2.9".parse().unwrap())));
        assert!(bob.allows(Some("2001:db8::1".parse().unwrap())));
        assert!(!bob.allows(Some("198.51.100.1".parse().unwrap())));
        assert!(!bob.allows(None));
        assert!(t.accounts.get("alice@example.com").unwrap().allows(None));
        assert_eq!(t.accounts.get("erin@example.com").unwrap().status, Status::Disabled("marked nologin in the file"));
        let frank = t.accounts.get("frank@example.com").unwrap();
        assert!(frank.password.is_none() && matches!(frank.status, Status::Disabled(_)));
    }

    #[test]
    fn errors_name_the_line_not_the_hash() {
        let e = parse("a:{PLAIN}x\nb:{NOPE}s3cr3t\n", "/etc/p", Scheme::Crypt, &UsernamePolicy::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("/etc/p:2: user \"b\""), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        let e = parse("a:{PLAIN}x\nA:{PLAIN}y\n", "f", Scheme::Crypt, &UsernamePolicy::default()).unwrap_err();
        assert!(e.to_string().contains("exists more than once"), "{e}");
        assert!(parse("justaname\n", "f", Scheme::Crypt, &UsernamePolicy::default()).is_err());
        assert!(parse("a b:{PLAIN}x\n", "f", Scheme::Crypt, &UsernamePolicy::default()).is_err());
        let e = parse("a:{PLAIN}x::::::allow_nets=nowhere\n", "f", Scheme::Crypt, &UsernamePolicy::default());
        assert!(e.is_err());
    }
}
