//! Opening a store: the database URL, the one-time setup on a connection of our own (SQLite WAL,
//! embedded migrations), and the pool with its per-connection settings.
//!
//! Not here: the statements themselves (`sql.rs`) and the operations (`mod.rs`).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection};

use super::error::Redactor;
use super::{Backend, StoreError, StoreOptions};

/// The embedded migrations. A migration this binary does not know (applied by a newer
/// postward on another host sharing the database, or before a downgrade) is no reason to stop:
/// every migration only adds to the schema what older code does not read, so an older greyd
/// keeps working during a rolling upgrade. Keep it that way: a migration must never rename,
/// drop or retype what an earlier release reads or writes.
fn migrator(migrations: Migrator) -> Migrator {
    let mut m = migrations;
    m.set_ignore_missing(true);
    m
}
static MIGRATOR_SQLITE: LazyLock<Migrator> = LazyLock::new(|| migrator(sqlx::migrate!("migrations/sqlite")));
static MIGRATOR_POSTGRES: LazyLock<Migrator> = LazyLock::new(|| migrator(sqlx::migrate!("migrations/postgres")));
static MIGRATOR_MYSQL: LazyLock<Migrator> = LazyLock::new(|| migrator(sqlx::migrate!("migrations/mysql")));

/// Migrations may wait for another host that is migrating the same database (PostgreSQL and
/// MySQL take a lock), so they get more time than a single operation.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Pooled connections idle this long are closed; the pool opens new ones on demand.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A database URL, taken apart as far as greyd needs.
#[derive(Debug)]
pub(super) struct Target {
    pub backend: Backend,
    /// What sqlx gets. SQLite: `mode=rwc` added unless the URL chooses a mode.
    pub url: String,
    /// The URL with its password replaced by `***`, for messages and logs.
    pub display: String,
    /// SQLite: the database file; `None` for an in-memory database.
    pub sqlite_file: Option<PathBuf>,
    password: Option<String>,
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Target, StoreError> {
        let (display, password) = shared::dburl::split_password(url);
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(StoreError::InvalidUrl(format!("\"{display}\" has no scheme")));
        };
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            _ => {
                return Err(StoreError::InvalidUrl(format!(
                    "unsupported scheme \"{scheme}\" in \"{display}\" (expected sqlite:, postgres: or mysql:)"
                )));
            }
        };
        let mut target = Target { backend, url: url.to_owned(), display, sqlite_file: None, password };
        if backend == Backend::Sqlite {
            // The same split as sqlx's SqliteConnectOptions::from_str.
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (database, params) = match rest.split_once('?') {
                Some((database, params)) => (database, Some(params)),
                None => (rest, None),
            };
            let mode = params.and_then(|p| p.split('&').find_map(|kv| kv.strip_prefix("mode=")));
            if database.is_empty() || database == ":memory:" || mode == Some("memory") {
                return Ok(target);
            }
            target.sqlite_file = Some(PathBuf::from(shared::dburl::percent_decode(database)));
            if mode.is_none() {
                target.url.push(if params.is_some() { '&' } else { '?' });
                target.url.push_str("mode=rwc");
            }
        }
        Ok(target)
    }

    pub(super) fn redactor(&self) -> Redactor {
        Redactor::new(self.password.as_deref())
    }
}

/// Opens the pool, after checking the URL, connecting once and applying the migrations.
pub(super) async fn open_pool(target: &Target, options: &StoreOptions) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let redactor = target.redactor();
    if let Some(file) = &target.sqlite_file {
        check_directory(file).await?;
    }
    let connect_options = AnyConnectOptions::from_str(&target.url).map_err(|err| {
        StoreError::InvalidUrl(format!("\"{}\": {}", target.display, redactor.redact(&err.to_string())))
    })?;

    // A connection of our own first: it reports the real cause of a failure (refused,
    // authentication) where the pool would only say it timed out, and it runs the one-time
    // setup without the per-operation statement timeout.
    let mut conn =
        match tokio::time::timeout(options.connect_timeout, AnyConnection::connect_with(&connect_options)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => return Err(connect_error(target, &redactor, &err)),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to \"{}\": no answer within {:?}",
                    target.display, options.connect_timeout
                )));
            }
        };
    let setup = async {
        if target.backend == Backend::Sqlite {
            // WAL persists in the file; switching needs an exclusive lock, so it is done once here
            // rather than on every pooled connection. An in-memory database answers "memory".
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await
                .map_err(|err| redactor.error(target.backend, &err))?;
        }
        let migrator = match target.backend {
            Backend::Sqlite => &MIGRATOR_SQLITE,
            Backend::Postgres => &MIGRATOR_POSTGRES,
            Backend::MySql => &MIGRATOR_MYSQL,
        };
        // run_direct takes the connection itself; `run` goes through `Acquire`, whose future
        // the compiler cannot prove `Send` for every lifetime.
        migrator.run_direct(None, &mut conn, false).await.map_err(|err| redactor.migration(target.backend, &err))
    };
    let setup = tokio::time::timeout(MIGRATION_TIMEOUT, setup).await;
    // A failed close only means the server already dropped the connection.
    let _ = conn.close().await;
    match setup {
        Ok(result) => result?,
        Err(_) => {
            return Err(StoreError::Migration(format!(
                "not finished within {MIGRATION_TIMEOUT:?} (another host migrating?)"
            )));
        }
    }

    connect_pool(target, options, options.max_connections).await
}

/// A pool of at most `max_connections` on an already set-up database (see [`open_pool`]).
pub(super) async fn connect_pool(
    target: &Target,
    options: &StoreOptions,
    max_connections: u32,
) -> Result<AnyPool, StoreError> {
    let redactor = target.redactor();
    let connect_options = AnyConnectOptions::from_str(&target.url).map_err(|err| {
        StoreError::InvalidUrl(format!("\"{}\": {}", target.display, redactor.redact(&err.to_string())))
    })?;
    let backend = target.backend;
    let op_timeout = options.op_timeout;
    let pool_options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .idle_timeout(IDLE_TIMEOUT)
        // For a server, each connection is tested before use: one that died while idle (server
        // restarted) is replaced, so the first request after an outage succeeds. A SQLite file
        // cannot go away under an open connection, and the test would double every operation.
        .test_before_acquire(backend != Backend::Sqlite)
        .after_connect(move |conn, _meta| Box::pin(configure_session(conn, backend, op_timeout)));
    match tokio::time::timeout(options.connect_timeout, pool_options.connect_with(connect_options)).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(err)) => Err(connect_error(target, &redactor, &err)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot connect to \"{}\": no answer within {:?}",
            target.display, options.connect_timeout
        ))),
    }
}

/// Session settings for each pooled connection, so that the server, too, gives up on work the
/// client has stopped waiting for.
async fn configure_session(
    conn: &mut AnyConnection,
    backend: Backend,
    op_timeout: Duration,
) -> Result<(), sqlx::Error> {
    let millis = op_timeout.as_millis().max(1);
    match backend {
        Backend::Sqlite => {
            // WAL + NORMAL: a commit is in the WAL before the call returns, so it survives the
            // process being killed (not necessarily a power loss), without an fsync per commit.
            sqlx::raw_sql("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
            // 1 MiB of page cache per connection instead of 2: a lookup needs the upper levels
            // of one index, and eight connections' caches were a quarter of greyd's memory.
            // The writer takes more (checkpoint.rs).
            sqlx::raw_sql("PRAGMA cache_size = -1024").execute(&mut *conn).await?;
            // After a checkpoint, cut the WAL file back to 64 MiB at most: its high-water mark
            // otherwise stays on disk for good.
            sqlx::raw_sql("PRAGMA journal_size_limit = 67108864").execute(&mut *conn).await?;
            // Wait for the writer lock for half the operation's time: SQLite then gives up by
            // itself ("database is locked") before the client stops waiting, so a write that
            // timed out is not applied later behind the caller's back.
            let busy = (millis / 2).max(1);
            sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {busy}"))).execute(&mut *conn).await?;
        }
        Backend::Postgres => {
            sqlx::raw_sql(AssertSqlSafe(format!("SET statement_timeout = {millis}"))).execute(&mut *conn).await?;
        }
        Backend::MySql => {
            // Whole seconds, at least 1; MySQL has no portable per-statement limit (MariaDB's
            // max_statement_time and MySQL's max_execution_time differ), the client timeout
            // covers the rest.
            let secs = op_timeout.as_secs().max(1);
            sqlx::raw_sql(AssertSqlSafe(format!("SET SESSION innodb_lock_wait_timeout = {secs}")))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// A missing directory would otherwise surface as SQLite's "unable to open database file".
async fn check_directory(file: &std::path::Path) -> Result<(), StoreError> {
    let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    match tokio::fs::metadata(dir).await {
        Ok(meta) if meta.is_dir() => Ok(()),
        _ => Err(StoreError::MissingDirectory(dir.to_owned())),
    }
}

fn connect_error(target: &Target, redactor: &Redactor, err: &sqlx::Error) -> StoreError {
    if let sqlx::Error::Configuration(cause) = err {
        let cause = redactor.redact(&cause.to_string()).into_owned();
        return StoreError::InvalidUrl(format!("\"{}\": {cause}", target.display));
    }
    match redactor.error(target.backend, err) {
        corrupt @ StoreError::Corrupt(_) => corrupt,
        _ => StoreError::Unavailable(format!(
            "cannot connect to \"{}\": {}",
            target.display,
            redactor.redact(&err.to_string())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("postgres://greyd:s3cret@db.example:5432/grey?sslmode=require").unwrap();
        assert_eq!(t.backend, Backend::Postgres);
        assert_eq!(t.display, "postgres://greyd:***@db.example:5432/grey?sslmode=require");
        assert_eq!(t.redactor().redact("x s3cret y"), "x *** y");

        let t = Target::parse("mariadb://root@127.0.0.1/grey").unwrap();
        assert_eq!(t.backend, Backend::MySql);
        assert_eq!(t.display, "mariadb://root@127.0.0.1/grey");

        let t = Target::parse("sqlite:///var/lib/postward/greyd.db").unwrap();
        assert_eq!(t.url, "sqlite:///var/lib/postward/greyd.db?mode=rwc");
        assert_eq!(t.sqlite_file, Some(PathBuf::from("/var/lib/postward/greyd.db")));

        let t = Target::parse("sqlite:grey.db?mode=ro").unwrap();
        assert_eq!(t.url, "sqlite:grey.db?mode=ro");
        assert_eq!(t.sqlite_file, Some(PathBuf::from("grey.db")));

        let t = Target::parse("sqlite::memory:").unwrap();
        assert_eq!(t.sqlite_file, None);

        let err = Target::parse("redis://u:pw@host/0").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme \"redis\""), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }
}
