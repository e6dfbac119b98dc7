//! authd's SQL store against real databases: SQLite always, PostgreSQL and MariaDB when
//! `POSTWARD_TEST_POSTGRES_URL` / `POSTWARD_TEST_MYSQL_URL` are set (CI sets both; elsewhere
//! those tests print SKIPPED).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use shared::policy::ServeOptions;
use shared::server::Conn;
use shared::signals::Shutdown;
use sqlx::{AnyPool, AssertSqlSafe};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// username, domain, password, canonical name, disabled.
type Row<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, i32);

/// Creates a users table of our own (unique name: runs may share a database) and fills it.
async fn fill(url: &str, table: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    let sha = authd::scheme::hash(authd::scheme::Scheme::Sha256Crypt, b"cryptpw", Some(1000)).unwrap();
    let ddl = format!(
        "CREATE TABLE {table} (username VARCHAR(255) PRIMARY KEY, domain VARCHAR(255), password VARCHAR(255), \
         canonical VARCHAR(255), disabled INTEGER NOT NULL DEFAULT 0)"
    );
    sqlx::query(AssertSqlSafe(ddl)).execute(&pool).await.unwrap();
    let rows: [Row<'_>; 4] = [
        ("alice", "example.com", Some("{PLAIN}alicepw"), None, 0),
        ("bob", "example.com", Some(sha.as_str()), Some("Bob@Example.com"), 0),
        ("erin", "example.com", Some("{PLAIN}erinpw"), None, 1),
        ("nopw", "example.com", None, None, 0),
    ];
    for (user, domain, password, canonical, disabled) in rows {
        let q = format!(
            "INSERT INTO {table} (username, domain, password, canonical, disabled) VALUES ('{user}', '{domain}', {}, {}, {disabled})",
            password.map_or("NULL".to_owned(), |p| format!("'{p}'")),
            canonical.map_or("NULL".to_owned(), |c| format!("'{c}'"))
        );
        sqlx::query(AssertSqlSafe(q)).execute(&pool).await.unwrap();
    }
    pool
}

async fn serve(dir: &Path, url: &str, table: &str) -> tokio::task::JoinHandle<()> {
    let text = format!(
        "[auth]\nfailure_delay = \"0s\"\n[passdb]\ndriver = \"sql\"\nurl = \"{url}\"\n\
         query = \"SELECT password, canonical AS user, disabled FROM {table} WHERE username = :localpart AND domain = :domain AND :service <> 'imap'\"\n"
    );
    let config: authd::Config = shared::config::parse(&text, Path::new("t.toml")).unwrap();
    shared::config::check(&config, Some(&text), Path::new("t.toml")).unwrap();
    let service = Arc::new(authd::Service::build(Arc::new(config)).await.unwrap());
    let (tx, rx) = tokio::sync::watch::channel(service);
    let listener = UnixListener::bind(dir.join("auth")).unwrap();
    tokio::spawn(async move {
        let _tx = tx;
        while let Ok((s, _)) = listener.accept().await {
            let o = ServeOptions { idle_timeout: Duration::from_secs(60), ..ServeOptions::default() };
            tokio::spawn(authd::conn::serve(rx.clone(), Conn::Unix(s), "t".into(), o, Shutdown::never()));
        }
    })
}

/// A client that has done Postfix's handshake.
async fn connect(dir: &Path) -> BufReader<UnixStream> {
    let mut c = BufReader::new(UnixStream::connect(dir.join("auth")).await.unwrap());
    c.get_mut().write_all(b"VERSION\t1\t0\nCPID\t1\n").await.unwrap();
    let mut line = String::new();
    while line.trim_end() != "DONE" {
        line.clear();
        c.read_line(&mut line).await.unwrap();
    }
    c
}

async fn ask(c: &mut BufReader<UnixStream>, line: &str) -> String {
    c.get_mut().write_all(format!("{line}\n").as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_line(&mut reply)).await.unwrap().unwrap();
    reply.trim_end().to_owned()
}

fn plain(id: u32, service: &str, user: &str, pass: &str) -> String {
    format!(
        "AUTH\t{id}\tPLAIN\tservice={service}\tnologin\tlip=\trip=192.0.2.1\tresp={}",
        B64.encode(format!("\0{user}\0{pass}"))
    )
}

async fn check_store(url: &str) {
    let table = format!("authd_users_{}", std::process::id());
    let pool = fill(url, &table).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), url, &table).await;
    let mut c = connect(dir.path()).await;
    let fail = |id: u32, user: &str| format!("FAIL\t{id}\tuser={user}\treason=Authentication failed");
    let results = [
        (
            ask(&mut c, &plain(1, "smtp", "alice@example.com", "alicepw")).await,
            "OK\t1\tuser=alice@example.com".to_owned(),
        ),
        (ask(&mut c, &plain(2, "smtp", "alice@example.com", "nope")).await, fail(2, "alice@example.com")),
        // The canonical name comes from the `user` column; SHA256-CRYPT from the database.
        (ask(&mut c, &plain(3, "smtp", "bob@example.com", "cryptpw")).await, "OK\t3\tuser=Bob@Example.com".to_owned()),
        (ask(&mut c, &plain(4, "smtp", "erin@example.com", "erinpw")).await, fail(4, "erin@example.com")),
        (ask(&mut c, &plain(5, "smtp", "nopw@example.com", "")).await, fail(5, "nopw@example.com")),
        (ask(&mut c, &plain(6, "smtp", "ghost@example.com", "x")).await, fail(6, "ghost@example.com")),
        // :service is bound too: this query admits no imap logins.
        (ask(&mut c, &plain(7, "imap", "alice@example.com", "alicepw")).await, fail(7, "alice@example.com")),
        // An injection attempt is just an unknown (and refused) name.
        (
            ask(&mut c, &plain(8, "smtp", "x'or'1'='1@example.com", "x")).await,
            "FAIL\t8\treason=Authentication failed".to_owned(),
        ),
    ];
    server.abort();
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {table}"))).execute(&pool).await.unwrap();
    for (got, want) in results {
        assert_eq!(got, want, "{url}");
    }
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    check_store(&format!("sqlite://{}/users.db?mode=rwc", dir.path().display())).await;
}

#[tokio::test]
async fn postgres_store() {
    match std::env::var("POSTWARD_TEST_POSTGRES_URL") {
        Ok(url) => check_store(&url).await,
        Err(_) => postward_tests::skipped!("POSTWARD_TEST_POSTGRES_URL is not set"),
    }
}

#[tokio::test]
async fn mysql_store() {
    match std::env::var("POSTWARD_TEST_MYSQL_URL") {
        Ok(url) => check_store(&url).await,
        Err(_) => postward_tests::skipped!("POSTWARD_TEST_MYSQL_URL is not set"),
    }
}

#[tokio::test]
async fn database_down_is_a_temporary_failure_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: connect refused at once.
    let _server = serve(dir.path(), "postgres://nobody@127.0.0.1:1/none", "users").await;
    let mut c = connect(dir.path()).await;
    let started = std::time::Instant::now();
    let reply = ask(&mut c, &plain(1, "smtp", "alice@example.com", "alicepw")).await;
    assert_eq!(reply, "FAIL\t1\tcode=temp_fail\tuser=alice@example.com\treason=Temporary authentication failure");
    assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());
}
