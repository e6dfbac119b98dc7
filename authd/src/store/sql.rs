//! Accounts in an SQL database (SQLite, PostgreSQL, MySQL/MariaDB) through sqlx.
//!
//! The admin writes the query with named placeholders, bound as parameters (never spliced
//! into the text, so no name can inject SQL):
//!
//! | placeholder | value |
//! |---|---|
//! | `:user` | the normalised name, e.g. `alice@example.com` |
//! | `:localpart` | before the last `@` |
//! | `:domain` | after the last `@` (empty without one) |
//! | `:service` | Postfix's `service=` (`smtp`, `submission`, …) |
//! | `:rip` | the SMTP client address (empty when unknown) |
//!
//! Result columns: `password` (required; NULL means the account has no password), and
//! optionally `user` (the canonical name to report), `disabled` or `nologin` (true or
//! non-zero refuses the login). No row means an unknown user; only the first row is used.
//! The pool connects lazily, so authd starts while the database is down and answers
//! temporary failures until it is back.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Column, Row};

use super::{Account, LookupContext, Status, StoreError};
use crate::scheme::{Scheme, Stored};
use crate::username::{UsernamePolicy, split};

/// A value a query can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    User,
    Localpart,
    Domain,
    Service,
    Rip,
}

const PARAMS: [(&str, Param); 5] = [
    ("user", Param::User),
    ("localpart", Param::Localpart),
    ("domain", Param::Domain),
    ("service", Param::Service),
    ("rip", Param::Rip),
];

/// `[passdb]` settings of the SQL store.
#[derive(Debug, Clone)]
pub struct SqlSettings {
    pub url: String,
    pub query: String,
    pub default_scheme: Scheme,
    pub timeout: Duration,
    pub max_connections: u32,
}

pub struct SqlDb {
    pool: AnyPool,
    sql: String,
    params: Vec<Param>,
    display: String,
    redactor: shared::dburl::Redactor,
    default_scheme: Scheme,
    timeout: Duration,
    names: UsernamePolicy,
}

/// What `open` derives from the settings before it makes the pool.
struct Prepared {
    display: String,
    redactor: shared::dburl::Redactor,
    sql: String,
    params: Vec<Param>,
    options: AnyConnectOptions,
}

fn prepare(settings: &SqlSettings) -> Result<Prepared, StoreError> {
    sqlx::any::install_default_drivers();
    let (display, password) = shared::dburl::split_password(&settings.url);
    let redactor = shared::dburl::Redactor::new(password.as_deref());
    let dollar = settings.url.starts_with("postgres");
    let (sql, params) = compile(&settings.query, dollar).map_err(StoreError::Config)?;
    let options = AnyConnectOptions::from_str(&settings.url)
        .map_err(|e| StoreError::Config(format!("passdb.url \"{display}\": {}", redactor.redact(&e.to_string()))))?;
    Ok(Prepared { display, redactor, sql, params, options })
}

impl SqlDb {
    /// `--check-config`: the URL and the query's placeholders, without a pool or a
    /// connection.
    ///
    /// # Errors
    /// As [`SqlDb::open`].
    pub fn check(settings: &SqlSettings) -> Result<(), StoreError> {
        prepare(settings).map(|_| ())
    }

    /// Checks the URL and the query and creates the (lazy) pool.
    ///
    /// # Errors
    /// A URL sqlx does not accept, or a query with an unknown placeholder.
    pub fn open(settings: &SqlSettings, names: UsernamePolicy) -> Result<SqlDb, StoreError> {
        let Prepared { display, redactor, sql, params, options } = prepare(settings)?;
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options);
        Ok(SqlDb {
            pool,
            sql,
            params,
            display,
            redactor,
            default_scheme: settings.default_scheme,
            timeout: settings.timeout,
            names,
        })
    }

    pub fn uses_rip(&self) -> bool {
        self.params.contains(&Param::Rip)
    }

    pub fn describe(&self) -> &str {
        &self.display
    }

    /// Runs the query for `user`.
    ///
    /// # Errors
    /// The database is unreachable, slow, or the query fails.
    pub async fn lookup(&self, user: &str, ctx: LookupContext<'_>) -> Result<Option<Arc<Account>>, StoreError> {
        let (localpart, domain) = split(user);
        let rip = ctx.rip.map(|ip| ip.to_string()).unwrap_or_default();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str()));
        for param in &self.params {
            let value = match param {
                Param::User => user,
                Param::Localpart => localpart,
                Param::Domain => domain,
                Param::Service => ctx.service,
                Param::Rip => rip.as_str(),
            };
            query = query.bind(value.to_owned());
        }
        let row = match tokio::time::timeout(self.timeout, query.fetch_optional(&self.pool)).await {
            Err(_) => return Err(StoreError::Timeout(self.timeout)),
            Ok(Err(e)) => return Err(StoreError::Database(self.redactor.redact(&e.to_string()).into_owned())),
            Ok(Ok(None)) => return Ok(None),
            Ok(Ok(Some(row))) => row,
        };
        self.account(user, &row).map(|a| Some(Arc::new(a)))
    }

    fn account(&self, user: &str, row: &AnyRow) -> Result<Account, StoreError> {
        let has = |name: &str| row.columns().iter().any(|c| c.name().eq_ignore_ascii_case(name));
        if !has("password") {
            return Err(StoreError::Config("passdb.query returns no \"password\" column".to_owned()));
        }
        let password: Option<String> = text(row, "password");
        let mut account =
            Account { user: user.to_owned(), password: None, status: Status::Active, allow_nets: Vec::new() };
        if has("user")
            && let Some(canonical) = text(row, "user")
        {
            if !self.names.is_safe(&canonical) {
                return Err(StoreError::Database(
                    "the \"user\" column holds a name with control characters or of bad length".to_owned(),
                ));
            }
            account.user = canonical;
        }
        match password.filter(|p| !p.is_empty()) {
            None => account.status = Status::Disabled("no password in the database"),
            Some(p) => match Stored::parse(&p, self.default_scheme) {
                Ok(stored) => account.password = Some(stored),
                Err(e) => return Err(StoreError::Database(format!("stored password of {user:?}: {e}"))),
            },
        }
        if ["disabled", "nologin"].iter().any(|c| has(c) && flag(row, c)) {
            account.status = Status::Disabled("disabled in the database");
        }
        Ok(account)
    }
}

/// A text column that may be NULL; other types are read as absent.
fn text(row: &AnyRow, column: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(column).ok().flatten()
}

/// A true-ish column: a non-zero number, a true boolean, or "1"/"true"/"yes"/"y"/"t".
fn flag(row: &AnyRow, column: &str) -> bool {
    if let Ok(Some(n)) = row.try_get::<Option<i64>, _>(column) {
        return n != 0;
    }
    if let Ok(Some(n)) = row.try_get::<Option<i32>, _>(column) {
        return n != 0;
    }
    if let Ok(Some(b)) = row.try_get::<Option<bool>, _>(column) {
        return b;
    }
    text(row, column).is_some_and(|t| matches!(t.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "y" | "t"))
}

/// Replaces named placeholders with the driver's positional ones (`$1…` for PostgreSQL, `?`
/// otherwise). Text inside single quotes is left alone, and so is PostgreSQL's `::type`.
///
/// # Errors
/// An unknown placeholder, or none at all (a query that ignores the user is a mistake).
fn compile(query: &str, dollar: bool) -> Result<(String, Vec<Param>), String> {
    let mut sql = String::with_capacity(query.len());
    let mut params = Vec::new();
    let mut quoted = false;
    let mut chars = query.char_indices().peekable();
    let mut previous = ' ';
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        let starts_name = chars.peek().is_some_and(|(_, n)| n.is_ascii_alphabetic());
        if c == ':' && !quoted && previous != ':' && starts_name {
            let name: String = query[i + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let Some((_, param)) = PARAMS.iter().find(|(n, _)| *n == name) else {
                let known: Vec<String> = PARAMS.iter().map(|(n, _)| format!(":{n}")).collect();
                return Err(format!("passdb.query: unknown placeholder :{name} (known: {})", known.join(", ")));
            };
            params.push(*param);
            if dollar {
                sql.push_str(&format!("${}", params.len()));
            } else {
                sql.push('?');
            }
            for _ in 0..name.len() {
                chars.next();
            }
            previous = 'x';
            continue;
        }
        sql.push(c);
        previous = c;
    }
    if params.is_empty() {
        return Err("passdb.query uses no placeholder (:user, :localpart, :domain)".to_owned());
    }
    Ok((sql, params))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let q = "SELECT password, 'a:b' AS x, id::text FROM users WHERE name = :localpart AND domain = :domain AND :service <> ''";
        let (sql, params) = compile(q, true).unwrap();
        assert_eq!(
            sql,
            "SELECT password, 'a:b' AS x, id::text FROM users WHERE name = $1 AND domain = $2 AND $3 <> ''"
        );
        assert_eq!(params, [Param::Localpart, Param::Domain, Param::Service]);
        let (sql, _) = compile("SELECT password FROM u WHERE u = :user", false).unwrap();
        assert_eq!(sql, "SELECT password FROM u WHERE u = ?");
        assert!(compile("SELECT password FROM u WHERE u = :usr", false).unwrap_err().contains(":usr"));
        assert!(compile("SELECT password FROM u", false).is_err());
    }
}
