//! [`StoreError`]: the failures a caller of the store must tell apart, and the mapping from
//! sqlx errors onto them (per backend, by SQLSTATE or error number).
//!
//! Messages never carry a database password: everything that may quote the URL or a server
//! message goes through [`Redactor`].

use std::borrow::Cow;
use std::path::PathBuf;

use super::Backend;

/// A store operation failed. What to answer (fail open with `DUNNO`, or `DEFER_IF_PERMIT`) is
/// the caller's decision; [`StoreError::is_temporary`] says whether a retry can succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot do the work now: connection refused or lost,
    /// server shutting down, locked, disk full, no free connection. Temporary: the pool
    /// reconnects by itself once the database is back.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish within `StoreOptions::op_timeout`.
    #[error("database operation timed out")]
    Timeout,
    /// The embedded migrations could not be applied (or the database has migrations this
    /// build does not know).
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The database URL is malformed or names an unsupported backend (password elided).
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The directory that should hold the SQLite file does not exist. greyd does not create
    /// it: a typo in the path should not silently start an empty greylist elsewhere.
    #[error("database directory \"{}\" does not exist", .0.display())]
    MissingDirectory(PathBuf),
    /// The database reports damaged data (SQLite `SQLITE_CORRUPT`/`SQLITE_NOTADB`,
    /// PostgreSQL `XX001`/`XX002`, InnoDB "table is marked as crashed").
    #[error("database corrupt: {0}")]
    Corrupt(String),
    /// Any other database error: a rejected statement or an unexpected value, which points at a
    /// schema changed behind greyd's back or a bug.
    #[error("database query failed: {0}")]
    Query(String),
}

impl StoreError {
    /// Whether the same operation may succeed later without anyone intervening.
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout)
    }
}

/// What kind of failure an sqlx error is; see [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Unavailable,
    Timeout,
    Corrupt,
    Query,
}

/// Turns sqlx errors into [`StoreError`]s with the password removed from the text.
#[derive(Clone, Default)]
pub(super) struct Redactor(shared::dburl::Redactor);

impl Redactor {
    pub(super) fn new(password: Option<&str>) -> Redactor {
        Redactor(shared::dburl::Redactor::new(password))
    }

    pub(super) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.0.redact(text)
    }

    /// Maps an error of an operation on `backend`.
    pub(super) fn error(&self, backend: Backend, err: &sqlx::Error) -> StoreError {
        let text = self.redact(&err.to_string()).into_owned();
        match classify(backend, err) {
            Class::Unavailable => StoreError::Unavailable(text),
            Class::Timeout => StoreError::Timeout,
            Class::Corrupt => StoreError::Corrupt(text),
            Class::Query => StoreError::Query(text),
        }
    }

    /// Maps a migration error; a database that went away mid-way stays `Unavailable`.
    pub(super) fn migration(&self, backend: Backend, err: &sqlx::migrate::MigrateError) -> StoreError {
        use sqlx::migrate::MigrateError;
        if let MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) = err {
            match classify(backend, inner) {
                Class::Unavailable | Class::Timeout => return self.error(backend, inner),
                Class::Corrupt | Class::Query => {}
            }
        }
        StoreError::Migration(self.redact(&err.to_string()).into_owned())
    }
}

fn classify(backend: Backend, err: &sqlx::Error) -> Class {
    match err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => classify_code(backend, &code),
            None => Class::Query,
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Unavailable,
        _ => Class::Query,
    }
}

/// Sorts a backend's error code: SQLite extended result codes, PostgreSQL SQLSTATEs, MySQL
/// error numbers.
fn classify_code(backend: Backend, code: &str) -> Class {
    match backend {
        Backend::Sqlite => match code.parse::<u32>().map(|c| c & 0xff) {
            // SQLITE_CORRUPT, SQLITE_NOTADB
            Ok(11 | 26) => Class::Corrupt,
            // SQLITE_BUSY, _LOCKED, _NOMEM, _READONLY, _IOERR, _FULL, _CANTOPEN, _PROTOCOL
            Ok(5 | 6 | 7 | 8 | 10 | 13 | 14 | 15) => Class::Unavailable,
            _ => Class::Query,
        },
        Backend::Postgres => match code {
            // query_canceled: our statement_timeout (or an operator) stopped it.
            "57014" => Class::Timeout,
            "XX001" | "XX002" => Class::Corrupt,
            // read-only transaction: a standby after a failover, the primary comes back.
            "25006" => Class::Unavailable,
            // connection exception, transaction rollback (serialization, deadlock), insufficient
            // resources (disk full, too many connections), operator intervention (shutdown),
            // lock not available, system error.
            _ if ["08", "40", "53", "57", "58"].iter().any(|class| code.starts_with(class)) => Class::Unavailable,
            "55P03" => Class::Unavailable,
            _ => Class::Query,
        },
        Backend::MySql => match code.parse::<u32>() {
            // MariaDB max_statement_time, MySQL max_execution_time.
            Ok(1969 | 3024) => Class::Timeout,
            // crashed table, bad key file.
            Ok(126 | 127 | 145 | 1034 | 1194 | 1195) => Class::Corrupt,
            // disk full, too many connections, shutdown, lock wait timeout, deadlock, table full,
            // interrupted, read-only server, lost connection.
            Ok(
                1021 | 1030 | 1040 | 1053 | 1205 | 1213 | 1114 | 1317 | 1290 | 1792 | 1836 | 2002 | 2003 | 2006 | 2013,
            ) => Class::Unavailable,
            _ => Class::Query,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_error_codes() {
        const CASES: &[(Backend, &str, Class)] = &[
            (Backend::Sqlite, "5", Class::Unavailable),
            (Backend::Sqlite, "517", Class::Unavailable), // SQLITE_BUSY_SNAPSHOT
            (Backend::Sqlite, "13", Class::Unavailable),
            (Backend::Sqlite, "11", Class::Corrupt),
            (Backend::Sqlite, "1", Class::Query),
            (Backend::Postgres, "57014", Class::Timeout),
            (Backend::Postgres, "57P01", Class::Unavailable),
            (Backend::Postgres, "08006", Class::Unavailable),
            (Backend::Postgres, "53100", Class::Unavailable),
            (Backend::Postgres, "XX001", Class::Corrupt),
            (Backend::Postgres, "42P01", Class::Query),
            (Backend::MySql, "1205", Class::Unavailable),
            (Backend::MySql, "1969", Class::Timeout),
            (Backend::MySql, "145", Class::Corrupt),
            (Backend::MySql, "1064", Class::Query),
        ];
        for &(backend, code, class) in CASES {
            assert_eq!(classify_code(backend, code), class, "{backend:?} {code}");
        }
    }
}
