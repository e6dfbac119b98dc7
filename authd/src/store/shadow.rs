//! System accounts read straight from /etc/shadow, for hosts without PAM (or admins who
//! prefer not to run PAM modules in a mail daemon).
//!
//! `/etc/shadow`, `/etc/passwd` and `/etc/group` are parsed together and re-read when any of
//! them changes. An account is refused when its password field is locked (`!…`, `*…`) or
//! empty (an empty shadow field would mean "no password"; never for SMTP AUTH), when its
//! `expire` date has passed, when its password is past `max` + `inactive` days, when its uid
//! is below `min_uid` (root and system accounts), and when `required_group` is set and the
//! user is not in it (as member or by primary group) — the classic "only members of
//! mail_login may send" setup. Hashes are the crypt(3) formats distributions write: yescrypt
//! `$y$`, SHA-512 `$6$`, SHA-256 `$5$`, bcrypt `$2?$` (and MD5 `$1$` on old systems).
//!
//! Reading /etc/shadow needs root or the `shadow` group: run with
//! `server.supplementary_groups = ["shadow"]` rather than as root.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::watch::Watched;
use super::{Account, Status, StoreError};
use crate::scheme::{Scheme, Stored};

/// Where the files are and who may log in.
#[derive(Debug, Clone)]
pub struct ShadowSettings {
    pub shadow: PathBuf,
    pub passwd: PathBuf,
    pub group: PathBuf,
    pub min_uid: u32,
    pub required_group: Option<String>,
}

/// The parsed files: accounts by name.
#[derive(Debug, Default)]
pub struct Table {
    accounts: HashMap<String, Arc<Account>>,
}

pub struct Shadow {
    files: Watched<Table>,
}

impl Shadow {
    /// Reads the files and starts watching them.
    ///
    /// # Errors
    /// A file cannot be read or does not parse, or the required group does not exist.
    pub fn open(settings: ShadowSettings) -> Result<Shadow, StoreError> {
        let paths = vec![settings.shadow.clone(), settings.passwd.clone(), settings.group.clone()];
        let files = Watched::open(paths, move |texts| match texts {
            [shadow, passwd, group] => parse(shadow, passwd, group, &settings, today()),
            _ => Err(StoreError::Config("shadow store needs three files".to_owned())),
        })?;
        Ok(Shadow { files })
    }

    pub fn lookup(&self, user: &str) -> Option<Arc<Account>> {
        self.files.current().accounts.get(user).cloned()
    }

    /// One credential per cost class (see [`super::PassDb::cost_samples`]).
    pub fn cost_samples(&self) -> Vec<Stored> {
        super::one_per_class(self.files.current().accounts.values())
    }

    pub fn generation(&self) -> u64 {
        self.files.generation()
    }

    pub fn path(&self) -> &Path {
        self.files.path()
    }
}

/// Days since 1970-01-01, the unit of shadow's date fields.
fn today() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0))
}

/// Parses the three files as of day `today`.
///
/// # Errors
/// The required group is missing. Malformed lines are skipped (these files are the
/// system's, and one odd line must not lock everybody out), never quoted.
pub fn parse(
    shadow: &str,
    passwd: &str,
    group: &str,
    settings: &ShadowSettings,
    today: i64,
) -> Result<Table, StoreError> {
    let mut uids: HashMap<&str, (u32, u32)> = HashMap::new();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let [name, _, uid, gid, ..] = f.as_slice()
            && let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse())
        {
            uids.insert(name, (uid, gid));
        }
    }
    let members = match &settings.required_group {
        None => None,
        Some(wanted) => Some(group_members(group, wanted, &uids).ok_or_else(|| {
            StoreError::Config(format!("passdb.required_group {wanted:?} is not in {}", settings.group.display()))
        })?),
    };
    let mut accounts = HashMap::new();
    for line in shadow.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let [name, hash, lastchg, _min, max, _warn, inactive, expire, ..] = f.as_slice() else { continue };
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        let day = |s: &str| s.parse::<i64>().ok();
        let mut status = Status::Active;
        let password = if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
            status = Status::Disabled("locked or no password in shadow");
            None
        } else {
            match Stored::parse(hash, Scheme::Crypt) {
                Ok(s) => Some(s),
                Err(_) => {
                    status = Status::Disabled("shadow hash in a format authd cannot verify");
                    None
                }
            }
        };
        if day(expire).is_some_and(|e| today >= e) {
            status = Status::Expired;
        }
        if let (Some(changed), Some(max)) = (day(lastchg), day(max))
            && changed > 0
            && today > changed + max + day(inactive).unwrap_or(0).max(0)
        {
            status = Status::Expired;
        }
        match uids.get(name) {
            None => status = Status::Disabled("not in /etc/passwd"),
            Some((uid, _)) if *uid < settings.min_uid => status = Status::Disabled("uid below passdb.min_uid"),
            Some(_) => {}
        }
        if members.as_ref().is_some_and(|m| !m.contains(name)) {
            status = Status::Disabled("not in passdb.required_group");
        }
        let account = Account { user: (*name).to_owned(), password, status, allow_nets: Vec::new() };
        accounts.insert((*name).to_owned(), Arc::new(account));
    }
    Ok(Table { accounts })
}

/// Members of `wanted`: listed in /etc/group, or with it as primary group.
fn group_members<'a>(group: &'a str, wanted: &str, uids: &HashMap<&'a str, (u32, u32)>) -> Option<HashSet<&'a str>> {
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let [name, _, gid, list] = f.as_slice()
            && *name == wanted
        {
            let gid: u32 = gid.parse().ok()?;
            let mut members: HashSet<&str> = list.split(',').filter(|m| !m.is_empty()).collect();
            members.extend(uids.iter().filter(|(_, (_, g))| *g == gid).map(|(n, _)| *n));
            return Some(members);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Made with `openssl passwd -6 -salt saltsalt secret`.
    const SHA512: &str =
        "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

    fn settings(group: Option<&str>) -> ShadowSettings {
        ShadowSettings {
            shadow: "/s".into(),
            passwd: "/p".into(),
            group: "/g".into(),
            min_uid: 1000,
            required_group: group.map(str::to_owned),
        }
    }

    #[test]
    fn accounts_and_refusals() {
        let shadow = format!(
            "root:{SHA512}:19000:0:99999:7:::\nalice:{SHA512}:19000:0:99999:7:::\nlocked:!{SHA512}:19000::::::\n\
             empty::19000::::::\nold:{SHA512}:19000:0:99999:7::19500:\naged:{SHA512}:19000:0:30:7:10::\n\
             carol:{SHA512}:19000:0:99999:7:::\n"
        );
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nlocked:x:1001:1001::/:/bin/sh\n\
                      empty:x:1002:1002::/:/bin/sh\nold:x:1003:1003::/:/bin/sh\naged:x:1004:1004::/:/bin/sh\n\
                      carol:x:1005:500::/:/bin/sh\n";
        let group = "mail_login:x:500:alice\nother:x:501:\n";
        let t = parse(&shadow, passwd, group, &settings(None), 19_800).unwrap();
        let status = |n: &str| t.accounts.get(n).unwrap().status;
        assert_eq!(status("alice"), Status::Active);
        assert!(t.accounts.get("alice").unwrap().password.as_ref().unwrap().verify(b"secret"));
        assert!(matches!(status("root"), Status::Disabled(_)));
        assert!(matches!(status("locked"), Status::Disabled(_)));
        assert!(matches!(status("empty"), Status::Disabled(_)));
        assert_eq!(status("old"), Status::Expired);
        assert_eq!(status("aged"), Status::Expired);
        let t = parse(&shadow, passwd, group, &settings(Some("mail_login")), 19_800).unwrap();
        assert_eq!(t.accounts.get("alice").unwrap().status, Status::Active);
        assert_eq!(t.accounts.get("carol").unwrap().status, Status::Active, "primary group");
        let t = parse(&shadow, passwd, group, &settings(Some("other")), 19_800).unwrap();
        assert!(matches!(t.accounts.get("alice").unwrap().status, Status::Disabled(_)));
        assert!(parse(&shadow, passwd, group, &settings(Some("nope")), 19_800).is_err());
    }
}
