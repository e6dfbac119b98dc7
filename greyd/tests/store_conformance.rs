//! Conformance tests for `greyd::store`: one body of tests, run against SQLite (a file in a
//! temporary directory) always, and against PostgreSQL and MySQL/MariaDB when
//! `POSTWARD_TEST_POSTGRES_URL` / `POSTWARD_TEST_MYSQL_URL` are set (CI:
//! `postgres://postgres@127.0.0.1:5432/test`, `mysql://root@127.0.0.1:3306/test`). Without them
//! the server variants print `SKIPPED: <variable> is not set` and pass.
//!
//! Isolation on a shared server: every test creates its own PostgreSQL schema (selected with
//! `options=-c search_path=<schema>` in the URL) or MySQL database, named
//! `pw_test_<pid>_<nanos>_<n>`, so tests run in parallel without seeing each other; the schema or
//! database is dropped when the test's [`TestDb`] is dropped, after a failed assertion too.
//!
//! Layout: [`conformance!`] turns each `async fn name(db: TestDb)` into `sqlite::name`,
//! `postgres::name` and `mysql::name`; backend-specific tests follow it.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use greyd::store::{
    Attempt, Backend, Deleted, DumpRow, Entry, FirstRule, Found, Lookup, PassBook, PassOutcome, Removal, Stats, Store,
    StoreError, StoreOptions, Triplet,
};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PG_ENV: &str = "POSTWARD_TEST_POSTGRES_URL";
const MYSQL_ENV: &str = "POSTWARD_TEST_MYSQL_URL";

// ---------------------------------------------------------------------------------------------
// Test databases

/// One test's private database; dropping it drops the server-side schema or database.
struct TestDb {
    backend: Backend,
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// Server databases: the admin URL and the statement that removes this test's data.
    cleanup: Option<(String, String)>,
}

impl TestDb {
    /// `None` (after printing `SKIPPED`) when the backend's server is not configured.
    async fn create(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/greyd.db", dir.path().display());
                Some(TestDb { backend, url, _dir: Some(dir), cleanup: None })
            }
            Backend::Postgres => {
                let base = server_url(PG_ENV)?;
                let name = unique_name();
                admin_execute(&base, &format!("CREATE SCHEMA {name}")).await;
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
                let cleanup = Some((base, format!("DROP SCHEMA {name} CASCADE")));
                Some(TestDb { backend, url, _dir: None, cleanup })
            }
            Backend::MySql => {
                let base = server_url(MYSQL_ENV)?;
                let name = unique_name();
                admin_execute(&base, &format!("CREATE DATABASE {name}")).await;
                let url = with_database(&base, &name);
                let cleanup = Some((base, format!("DROP DATABASE {name}")));
                Some(TestDb { backend, url, _dir: None, cleanup })
            }
        }
    }

    async fn open(&self) -> Store {
        Store::open(&self.url, &test_options()).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, statement)) = self.cleanup.take() {
            // Drop cannot await, and the test's runtime may be single-threaded: clean up on a
            // thread with a runtime of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(admin_execute(&base, &statement));
            })
            .join();
        }
    }
}

fn test_options() -> StoreOptions {
    // Generous: these tests check behaviour, not speed, and run in parallel.
    StoreOptions { max_connections: 4, op_timeout: Duration::from_secs(10), connect_timeout: Duration::from_secs(5) }
}

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // As postward_tests::skipped! (this crate cannot depend on postward-tests): said
            // on stderr and appended to $POSTWARD_SKIP_LOG, which .ci/run counts.
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            eprintln!("SKIPPED {test}: {var} is not set");
            if let Some(log) = std::env::var_os("POSTWARD_SKIP_LOG") {
                use std::io::Write as _;
                // One write of the whole line: tests skip in parallel, and an appended line
                // written piecemeal interleaves with theirs.
                let line = format!("{test}: {var} is not set\n");
                if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None
        }
    }
}

fn unique_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("pw_test_{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn admin_execute(url: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned())).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// `scheme://authority/old?query` → `scheme://authority/<database>?query`.
fn with_database(url: &str, database: &str) -> String {
    let start = url.find("://").unwrap() + 3;
    let path = url[start..].find('/').map_or(url.len(), |i| start + i);
    let query = url[path..].find('?').map_or(url.len(), |i| path + i);
    format!("{}/{database}{}", &url[..path], &url[query..])
}

/// The `host:port` of a server URL.
fn authority(url: &str) -> &str {
    let start = url.find("://").unwrap() + 3;
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

fn t<'a>(client_net: &'a str, sender: &'a str, recipient: &'a str) -> Triplet<'a> {
    Triplet { client_net, sender, recipient }
}

const T1: Triplet<'static> =
    Triplet { client_net: "192.0.2.0/24", sender: "alice@example.org", recipient: "bob@example.net" };

// ---------------------------------------------------------------------------------------------
// The conformance body, run on every backend

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        conformance!(@backend sqlite, Sqlite, $($name),*);
        conformance!(@backend postgres, Postgres, $($name),*);
        conformance!(@backend mysql, MySql, $($name),*);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = super::TestDb::create(greyd::store::Backend::$backend).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    open_twice_is_idempotent,
    insert_first_keeps_first_row,
    keys_match_exactly,
    record_retry_keeps_first_seen,
    noted_retries_are_counted,
    concurrent_first_attempts,
    restart_starts_over,
    lookup_reads_everything_in_one_query,
    lookup_or_insert_follows_the_rule,
    concurrent_lookups_insert_once,
    record_pass_sets_passed_at_once,
    pool_candidates_filter,
    count_client_pass_once_per_interval,
    domain_awl_needs_two_senders,
    purge_deletes_expired_in_batches,
    stats_counts,
    dump_rows,
    admin_removals_delete_what_they_name_and_raise_the_epoch,
    admin_whitelist_raises_passes_and_never_lowers_them,
    a_migration_applied_by_a_newer_release_does_not_stop_this_one,
    trim_pending_forgets_the_oldest_pending_only,
    pass_writes_its_bookkeeping_in_one_operation,
    concurrent_passes_count_as_they_would_in_turn,
    noted_passes_are_written_by_a_clean_close,
    a_lookup_sees_the_passes_noted_before_it,
    pending_by_network_reports_from_the_floor,
);

/// `postward-greyd delete`: each removal deletes exactly its rows, in every table it names;
/// the epoch moves only when something was deleted, so daemons drop caches only then.
async fn admin_removals_delete_what_they_name_and_raise_the_epoch(db: TestDb) {
    let store = db.open().await;
    let (net, other) = ("192.0.2.0/24", "198.51.100.0/24");
    for (n, s, r) in [
        (net, "alice@example.org", "bob@example.net"),
        (net, "alice@example.org", "carol@example.net"),
        (net, "dave@example.com", "bob@example.net"),
        (other, "alice@example.org", "bob@example.net"),
    ] {
        store.insert_first(&t(n, s, r), "192.0.2.1", 1000).await.unwrap();
    }
    store.count_client_pass("192.0.2.7", 1000, 3600).await.unwrap();
    store.count_client_pass("192.0.2.8", 1000, 3600).await.unwrap();
    store.note_domain_pass("example.org", net, "alice@example.org", 1000).await.unwrap();
    store.note_domain_pass("example.org", other, "alice@example.org", 1000).await.unwrap();
    store.note_domain_pass("example.com", net, "dave@example.com", 1000).await.unwrap();
    let epoch = store.admin_epoch().await.unwrap();

    // Nothing matches: nothing deleted, the epoch stays.
    let none = store.delete(&Removal::Triplet(t(net, "nobody@example.org", "bob@example.net"))).await.unwrap();
    assert_eq!(none, Deleted::default());
    assert_eq!(store.admin_epoch().await.unwrap(), epoch);

    let one = store.delete(&Removal::Triplet(t(net, "alice@example.org", "carol@example.net"))).await.unwrap();
    assert_eq!(one, Deleted { greylist: 1, awl_clients: 0, awl_domains: 0 });
    assert_eq!(store.admin_epoch().await.unwrap(), epoch + 1);
    assert_eq!(store.get(&t(net, "alice@example.org", "carol@example.net")).await.unwrap(), None);

    let sender = store.delete(&Removal::Sender("alice@example.org")).await.unwrap();
    assert_eq!(sender.greylist, 2, "both networks' rows of the sender");
    assert!(store.get(&t(net, "dave@example.com", "bob@example.net")).await.unwrap().is_some());

    let client = store.delete(&Removal::Client { client_net: net, client: "192.0.2.7" }).await.unwrap();
    assert_eq!(client, Deleted { greylist: 1, awl_clients: 1, awl_domains: 2 });
    assert_eq!(store.client_passes("192.0.2.7").await.unwrap(), 0);
    assert_eq!(store.client_passes("192.0.2.8").await.unwrap(), 1, "another address of the network stays");

    let domain = store.delete(&Removal::Domain("example.org")).await.unwrap();
    assert_eq!(domain, Deleted { greylist: 0, awl_clients: 0, awl_domains: 1 }, "the other network's entry");
    assert_eq!(store.admin_epoch().await.unwrap(), epoch + 4);
    assert_eq!(store.dump().await.unwrap().len(), 0);
    store.close().await;
}

/// `postward-greyd whitelist`: the client reaches the threshold at once; a client already
/// above it keeps its count; the epoch moves.
async fn admin_whitelist_raises_passes_and_never_lowers_them(db: TestDb) {
    let store = db.open().await;
    let epoch = store.admin_epoch().await.unwrap();
    assert_eq!(store.whitelist_client("192.0.2.7", 5, 1000).await.unwrap(), 5);
    assert_eq!(store.client_passes("192.0.2.7").await.unwrap(), 5);
    assert_eq!(store.admin_epoch().await.unwrap(), epoch + 1);
    for now in [1000, 4600, 8200, 11_800, 15_400, 19_000, 22_600] {
        store.count_client_pass("192.0.2.8", now, 3600).await.unwrap();
    }
    assert_eq!(store.whitelist_client("192.0.2.8", 5, 30_000).await.unwrap(), 7);
    // The hourly counting goes on from the entry's own last count.
    assert_eq!(store.count_client_pass("192.0.2.7", 1100, 3600).await.unwrap(), 5);
    assert_eq!(store.count_client_pass("192.0.2.7", 4600, 3600).await.unwrap(), 6);
    // Expiry ages it from the whitelisting (last_seen = 30,000 for .8).
    assert_eq!(store.purge(30_000 + 99, 10, 100, 100).await.unwrap(), 1, "only .7, last seen at 4600");
    assert_eq!(store.client_passes("192.0.2.8").await.unwrap(), 7);
    store.close().await;
}

/// `Store::pass`: the pass, the client count and the domain note together, as the three
/// separate operations would write them; with `insert_for`, a triplet never stored is
/// inserted passed (a sender-pool pass).
async fn pass_writes_its_bookkeeping_in_one_operation(db: TestDb) {
    let store = db.open().await;
    let (net, domain) = ("192.0.2.0/24", "example.org");
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    let book = PassBook { insert_for: None, count_client: Some(("192.0.2.1", 3600)), note_domain: Some(domain) };
    let first = store.pass(&T1, 1400, &book).await.unwrap();
    assert_eq!(first, PassOutcome { client_passes: 1, domain_promoted: false });
    let e = store.get(&T1).await.unwrap().unwrap();
    assert_eq!((e.first_seen, e.passed_at, e.last_seen), (1000, Some(1400), 1400));
    // Within the hour: not counted again; the same sender does not promote the domain.
    assert_eq!(store.pass(&T1, 1500, &book).await.unwrap(), first);
    // A second sender of the domain from the network, inserted passed by a pool pass.
    let bob = t(net, "bob@example.org", "carol@example.net");
    let pooled = PassBook { insert_for: Some("192.0.2.9"), ..book };
    let second = store.pass(&bob, 5100, &pooled).await.unwrap();
    assert_eq!(second, PassOutcome { client_passes: 2, domain_promoted: true });
    let e = store.get(&bob).await.unwrap().unwrap();
    assert_eq!((e.first_seen, e.passed_at, e.client_address.as_str()), (5100, Some(5100), "192.0.2.9"));
    assert!(store.domain_whitelisted(domain, net, 5100, 86_400).await.unwrap());
    // Nothing but the pass when the auto-whitelists are off.
    let plain = store.pass(&T1, 9000, &PassBook::default()).await.unwrap();
    assert_eq!(plain, PassOutcome::default());
    assert_eq!(store.client_passes("192.0.2.1").await.unwrap(), 2);
    assert_eq!(store.get(&T1).await.unwrap().unwrap().last_seen, 9000);
    store.close().await;
}

/// Passes arriving together (on SQLite: one writer batch, grouped statements) count as they
/// would one after the other: one client pass per hour, the domain promoted by its second
/// sender, every triplet passed.
async fn concurrent_passes_count_as_they_would_in_turn(db: TestDb) {
    let store = db.open().await;
    let senders: Vec<String> = (0..24).map(|i| format!("s{}@example.org", letter(i))).collect();
    for s in &senders {
        store.insert_first(&t("192.0.2.0/24", s, "r@example.net"), "192.0.2.1", 1000).await.unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for s in senders.clone() {
        let store = store.clone();
        tasks.spawn(async move {
            let book = PassBook {
                insert_for: None,
                count_client: Some(("192.0.2.1", 3600)),
                note_domain: Some("example.org"),
            };
            store.pass(&t("192.0.2.0/24", &s, "r@example.net"), 1400, &book).await.unwrap()
        });
    }
    let outcomes = tasks.join_all().await;
    assert!(outcomes.iter().all(|o| o.client_passes == 1), "{outcomes:?}");
    assert!(outcomes.iter().any(|o| o.domain_promoted), "{outcomes:?}");
    assert_eq!(store.client_passes("192.0.2.1").await.unwrap(), 1);
    assert!(store.domain_whitelisted("example.org", "192.0.2.0/24", 1400, 86_400).await.unwrap());
    for s in &senders {
        let e = store.get(&t("192.0.2.0/24", s, "r@example.net")).await.unwrap().unwrap();
        assert_eq!((e.passed_at, e.last_seen), (Some(1400), 1400), "{s}");
    }
    store.close().await;
}

/// `Store::note_pass` (written behind on SQLite): every noted pass, with its bookkeeping, is
/// in the database once the store is closed, as a clean stop closes it.
async fn noted_passes_are_written_by_a_clean_close(db: TestDb) {
    let store = db.open().await;
    let senders: Vec<String> = (0..20).map(|i| format!("s{}@example.org", letter(i))).collect();
    for s in &senders {
        store.insert_first(&t("192.0.2.0/24", s, "r@example.net"), "192.0.2.1", 1000).await.unwrap();
    }
    let book = PassBook { insert_for: None, count_client: Some(("192.0.2.1", 3600)), note_domain: Some("example.org") };
    for s in &senders {
        let noted = store.note_pass(&t("192.0.2.0/24", s, "r@example.net"), 1400, &book).await.unwrap();
        assert_eq!(noted.is_none(), db.backend == Backend::Sqlite, "written behind on SQLite only");
    }
    store.close().await;
    let store = db.open().await;
    for s in &senders {
        let e = store.get(&t("192.0.2.0/24", s, "r@example.net")).await.unwrap().unwrap();
        assert_eq!(e.passed_at, Some(1400), "{s}");
    }
    assert_eq!(store.client_passes("192.0.2.1").await.unwrap(), 1);
    assert!(store.domain_whitelisted("example.org", "192.0.2.0/24", 1400, 86_400).await.unwrap());
    store.close().await;
}

/// A lookup queued right after a pass was noted (well within the writer's tick) is decided
/// with that pass's auto-whitelist counts: the writer writes noted passes before its batch.
/// CI once saw a new triplet of a just-whitelisted client deferred because the order was the
/// other way round.
async fn a_lookup_sees_the_passes_noted_before_it(db: TestDb) {
    let store = db.open().await;
    let net = "192.0.2.0/24";
    for s in ["a@example.org", "b@example.org"] {
        store.insert_first(&t(net, s, "r@example.net"), "192.0.2.1", 1000).await.unwrap();
    }
    let book = PassBook { insert_for: None, count_client: Some(("192.0.2.1", 3600)), note_domain: Some("example.org") };
    for s in ["a@example.org", "b@example.org"] {
        store.note_pass(&t(net, s, "r@example.net"), 1400, &book).await.unwrap();
    }
    let at = Attempt { client: "192.0.2.1", domain: "example.org", now: 1401, max_age: 86_400, pool_cutoff: None };
    let client = FirstRule { awl_client_passes: 1, awl_domains: false };
    let (inserted, read) = first_inserted(&store, &t(net, "c@other.example", "r@example.net"), &at, client).await;
    assert!(!inserted && read.client_passes == 1, "the client's pass was not seen: {read:?}");
    let domain = FirstRule { awl_client_passes: 0, awl_domains: true };
    let (inserted, read) = first_inserted(&store, &t(net, "d@example.org", "r@example.net"), &at, domain).await;
    assert!(!inserted && read.domain_whitelisted, "the domain's passes were not seen: {read:?}");
    store.close().await;
}

fn letter(i: usize) -> char {
    char::from(b'a' + u8::try_from(i).unwrap())
}

/// The store-wide bound: the oldest pending rows go first, passed rows never.
async fn trim_pending_forgets_the_oldest_pending_only(db: TestDb) {
    let store = db.open().await;
    for i in 0..12_i64 {
        let sender = format!("s{i}@example.org");
        store.insert_first(&t("192.0.2.0/24", &sender, "r@example.net"), "192.0.2.1", 1000 + i).await.unwrap();
    }
    store.record_pass(&t("192.0.2.0/24", "s0@example.org", "r@example.net"), 2000).await.unwrap();
    assert_eq!(store.trim_pending(20, 3).await.unwrap(), 0, "under the bound");
    assert_eq!(store.trim_pending(5, 3).await.unwrap(), 6, "11 pending, 5 kept, in batches of 3");
    let rows = store.dump().await.unwrap();
    let mut kept: Vec<i64> = rows.iter().filter(|r| r.passed_at.is_none()).map(|r| r.first_seen).collect();
    kept.sort_unstable();
    assert_eq!(kept, [1007, 1008, 1009, 1010, 1011]);
    assert!(rows.iter().any(|r| r.first_seen == 1000 && r.passed_at == Some(2000)), "the passed row stays");
    store.close().await;
}

/// The per-network counts: only networks at the floor or above, pending rows only.
async fn pending_by_network_reports_from_the_floor(db: TestDb) {
    let store = db.open().await;
    for (net, n) in [("192.0.2.0/24", 5), ("198.51.100.0/24", 2), ("203.0.113.0/24", 3)] {
        for i in 0..n {
            let sender = format!("s{i}@example.org");
            store.insert_first(&t(net, &sender, "r@example.net"), "192.0.2.1", 1000).await.unwrap();
        }
    }
    store.record_pass(&t("203.0.113.0/24", "s0@example.org", "r@example.net"), 2000).await.unwrap();
    let mut counts = store.pending_by_network(3).await.unwrap();
    counts.sort();
    assert_eq!(counts, [("192.0.2.0/24".to_owned(), 5)]);
    let mut counts = store.pending_by_network(2).await.unwrap();
    counts.sort();
    let want = [("192.0.2.0/24", 5), ("198.51.100.0/24", 2), ("203.0.113.0/24", 2)];
    assert_eq!(counts, want.map(|(n, c)| (n.to_owned(), c)));
    store.close().await;
}

/// A rolling upgrade: once a newer postward on another host applied a migration this build
/// does not know, this build still opens the database (and keeps working on the schema it
/// knows) instead of refusing to start.
async fn a_migration_applied_by_a_newer_release_does_not_stop_this_one(db: TestDb) {
    let store = db.open().await;
    store.close().await;
    let checksum = match db.backend {
        Backend::Postgres => "decode('00', 'hex')",
        _ => "X'00'",
    };
    let success = match db.backend {
        Backend::Postgres => "TRUE",
        _ => "1",
    };
    admin_execute(
        &db.url,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from a newer release', {success}, {checksum}, 1)"
        ),
    )
    .await;
    let store = db.open().await;
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    assert!(store.get(&T1).await.unwrap().is_some());
    store.close().await;
}

async fn open_twice_is_idempotent(db: TestDb) {
    let first = db.open().await;
    assert_eq!(first.backend(), db.backend);
    first.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    first.close().await;
    // The migrations are applied already: opening again neither fails nor resets anything.
    let second = db.open().await;
    let third = db.open().await;
    assert_eq!(second.get(&T1).await.unwrap().unwrap().first_seen, 1000);
    assert_eq!(third.get(&t("192.0.2.0/24", "x@example.org", "y@example.net")).await.unwrap(), None);
}

async fn insert_first_keeps_first_row(db: TestDb) {
    // Two MX hosts on one database.
    let mx1 = db.open().await;
    let mx2 = db.open().await;
    let first = mx1.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    let expected =
        Entry { first_seen: 1000, last_seen: 1000, passed_at: None, attempts: 0, client_address: "192.0.2.1".into() };
    assert_eq!(first, expected);
    let second = mx2.insert_first(&T1, "192.0.2.9", 1005).await.unwrap();
    assert_eq!(second, expected, "the second host keeps the first host's row");
    assert_eq!(mx2.get(&T1).await.unwrap(), Some(expected));

    // Both hosts at the same moment: both answer with the one stored row.
    let t2 = t("198.51.100.0/24", "list@example.org", "carol@example.net");
    let (a, b) = tokio::join!(mx1.insert_first(&t2, "198.51.100.1", 2000), mx2.insert_first(&t2, "198.51.100.2", 2001));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(mx1.get(&t2).await.unwrap(), Some(a));
}

async fn keys_match_exactly(db: TestDb) {
    let store = db.open().await;
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    // No case folding (MySQL's default collations fold case; the schema uses utf8mb4_bin).
    let upper = t("192.0.2.0/24", "Alice@example.org", "bob@example.net");
    assert_eq!(store.get(&upper).await.unwrap(), None);
    // Trailing spaces: significant in SQLite and PostgreSQL. MySQL's utf8mb4_bin is a PAD SPACE
    // collation (the only binary utf8mb4 collation MySQL and MariaDB share), so there they are
    // ignored; harmless, as normalized triplets never end in a space.
    let padded = t("192.0.2.0/24", "alice@example.org ", "bob@example.net");
    let expected = if db.backend == Backend::MySql { store.get(&T1).await.unwrap() } else { None };
    assert_eq!(store.get(&padded).await.unwrap(), expected);
    // Non-ASCII and maximum-length keys (255 bytes each) round-trip.
    let long = |c: char| std::iter::repeat_n(c, 255).collect::<String>();
    let (net, sender, recipient) = (long('n'), format!("{}@b", long('s').split_at(253).0), long('r'));
    assert_eq!(sender.len(), 255);
    for key in [t("2001:db8::/64", "jürgen@exämple.org", "🙂@example.net"), t(&net, &sender, &recipient)] {
        let entry = store.insert_first(&key, "2001:db8::1", 3000).await.unwrap();
        assert_eq!(entry.first_seen, 3000);
        assert_eq!(store.get(&key).await.unwrap(), Some(entry));
    }
}

/// The request path's retries: on SQLite written behind and merged per triplet, on a server
/// at once; either way counted once each, with the latest client, by the time the store closes.
async fn noted_retries_are_counted(db: TestDb) {
    let store = db.open().await;
    let other = t("198.51.100.0/24", "carol@example.org", "dave@example.net");
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.insert_first(&other, "198.51.100.1", 1000).await.unwrap();
    store.note_retry(&T1, "192.0.2.2", 1100).await.unwrap();
    store.note_retry(&T1, "192.0.2.3", 1200).await.unwrap();
    store.note_retry(&other, "198.51.100.7", 1300).await.unwrap();
    // A triplet that is not stored is left alone.
    let unknown = t("203.0.113.0/24", "x@example.org", "y@example.net");
    store.note_retry(&unknown, "203.0.113.5", 1300).await.unwrap();
    store.close().await;

    let store = db.open().await;
    let row = store.get(&T1).await.unwrap().unwrap();
    assert_eq!(
        (row.first_seen, row.last_seen, row.attempts, row.client_address.as_str()),
        (1000, 1200, 2, "192.0.2.3")
    );
    let row = store.get(&other).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.last_seen, row.client_address.as_str()), (1, 1300, "198.51.100.7"));
    assert_eq!(store.get(&unknown).await.unwrap(), None);
}

/// 300 first attempts at once, every triplet asked for twice (SQLite's writer takes them into
/// shared statements): each triplet stored once, and both callers get the stored row.
async fn concurrent_first_attempts(db: TestDb) {
    let store = db.open().await;
    let senders: Vec<String> = (0..150).map(|i| format!("s{i}@example.org")).collect();
    let mut calls = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let now = 1000 + i64::try_from(i).unwrap();
        for k in 0..2 {
            let (store, sender) = (store.clone(), sender.clone());
            calls.push(tokio::spawn(async move {
                let key = t("192.0.2.0/24", &sender, "r@example.net");
                let entry = store.insert_first(&key, &format!("192.0.2.{k}"), now).await.unwrap();
                (sender, entry)
            }));
        }
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    assert_eq!(answers.len(), 300);
    for pair in answers.chunks(2) {
        assert_eq!(pair[0], pair[1], "both callers answered with the one stored row");
        let (sender, entry) = &pair[0];
        let key = t("192.0.2.0/24", sender, "r@example.net");
        assert_eq!(store.get(&key).await.unwrap().as_ref(), Some(entry));
        assert_eq!(entry.attempts, 0);
    }
    let rows = store.dump().await.unwrap();
    assert_eq!(rows.len(), 150);
}

async fn record_retry_keeps_first_seen(db: TestDb) {
    let store = db.open().await;
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.record_retry(&T1, "192.0.2.2", 1100).await.unwrap();
    store.record_retry(&T1, "192.0.2.3", 1200).await.unwrap();
    let expected =
        Entry { first_seen: 1000, last_seen: 1200, passed_at: None, attempts: 2, client_address: "192.0.2.3".into() };
    assert_eq!(store.get(&T1).await.unwrap(), Some(expected));

    // A triplet that is not stored (purged meanwhile) stays absent.
    let unknown = t("203.0.113.0/24", "x@example.org", "y@example.net");
    store.record_retry(&unknown, "203.0.113.5", 1300).await.unwrap();
    assert_eq!(store.get(&unknown).await.unwrap(), None);
}

async fn lookup_reads_everything_in_one_query(db: TestDb) {
    let store = db.open().await;
    let empty = store.lookup(&T1, "192.0.2.1", "example.org", 1000, 100).await.unwrap();
    assert_eq!(empty, greyd::store::Lookup::default(), "nothing stored");
    let entry = store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.count_client_pass("192.0.2.1", 1000, 3600).await.unwrap();
    store.count_client_pass("192.0.2.1", 9000, 3600).await.unwrap();
    store.note_domain_pass("example.org", T1.client_net, "a@example.org", 1000).await.unwrap();
    store.note_domain_pass("example.org", T1.client_net, "b@example.org", 1000).await.unwrap();
    let found = store.lookup(&T1, "192.0.2.1", "example.org", 1050, 100).await.unwrap();
    assert_eq!(found.entry, Some(entry));
    assert_eq!(found.client_passes, 2);
    assert!(found.domain_whitelisted);
    // Promotion older than max_age does not count; another client has no passes.
    let later = store.lookup(&T1, "192.0.2.99", "example.org", 5000, 100).await.unwrap();
    assert!(!later.domain_whitelisted);
    assert_eq!(later.client_passes, 0);
    assert!(later.entry.is_some());
}

fn attempt(client: &str, now: i64, pool_cutoff: Option<i64>) -> Attempt<'_> {
    Attempt { client, domain: "example.org", now, max_age: 100, pool_cutoff }
}

/// What `lookup_or_insert` did with a triplet that is not stored: on SQLite, inserted (true) or
/// only read; a server always only reads. Checks the row is stored exactly when inserted.
async fn first_inserted(store: &Store, key: &Triplet<'_>, attempt: &Attempt<'_>, rule: FirstRule) -> (bool, Lookup) {
    let found = store.lookup_or_insert(key, attempt, &rule).await.unwrap();
    let stored = store.get(key).await.unwrap();
    match found {
        Found::Inserted(entry) => {
            assert_eq!(entry, Entry::first(attempt.now, attempt.client));
            assert_eq!(stored, Some(entry));
            assert_eq!(store.backend(), Backend::Sqlite, "only SQLite's writer inserts");
            (true, Lookup::default())
        }
        Found::Looked(lookup) => {
            assert_eq!(stored, None, "read only, yet stored");
            (false, lookup)
        }
    }
}

/// SQLite's writer inserts an absent triplet in the lookup's turn unless the rule finds its
/// client or sender domain auto-whitelisted or a sender-pool candidate exists; a server only
/// reads. Each guard is checked both ways.
async fn lookup_or_insert_follows_the_rule(db: TestDb) {
    let store = db.open().await;
    let sqlite = db.backend == Backend::Sqlite;
    let plain = FirstRule::default();
    let key = |i: u32| format!("s{i}@example.org");
    let net = "192.0.2.0/24";

    let (inserted, read) = first_inserted(&store, &T1, &attempt("192.0.2.1", 1000, None), plain).await;
    assert_eq!((inserted, read), (sqlite, Lookup::default()));
    if !sqlite {
        store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    }
    // A stored triplet is only read.
    let again = store.lookup_or_insert(&T1, &attempt("192.0.2.2", 1010, None), &plain).await.unwrap();
    let Found::Looked(found) = again else { panic!("a stored triplet was inserted again: {again:?}") };
    assert_eq!(found.entry, Some(Entry::first(1000, "192.0.2.1")));

    // Client auto-whitelist: two counted passes.
    store.count_client_pass("192.0.2.7", 1000, 3600).await.unwrap();
    store.count_client_pass("192.0.2.7", 9000, 3600).await.unwrap();
    let at = attempt("192.0.2.7", 9100, None);
    let awl = |n| FirstRule { awl_client_passes: n, awl_domains: false };
    let s1 = key(1);
    let (inserted, read) = first_inserted(&store, &t(net, &s1, "r@example.net"), &at, awl(2)).await;
    assert!(!inserted && read.client_passes == 2, "whitelisted client: {read:?}");
    for (i, rule) in [(2, awl(3)), (3, awl(0))] {
        let s = key(i);
        let (inserted, _) = first_inserted(&store, &t(net, &s, "r@example.net"), &at, rule).await;
        assert_eq!(inserted, sqlite, "{rule:?}");
    }

    // Domain auto-whitelist: example.org promoted for 198.51.100.0/24, last seen at 1000.
    let dnet = "198.51.100.0/24";
    store.note_domain_pass("example.org", dnet, "a@example.org", 1000).await.unwrap();
    store.note_domain_pass("example.org", dnet, "b@example.org", 1000).await.unwrap();
    let domains = FirstRule { awl_client_passes: 0, awl_domains: true };
    let s4 = key(4);
    let (inserted, read) =
        first_inserted(&store, &t(dnet, &s4, "r@example.net"), &attempt("198.51.100.1", 1050, None), domains).await;
    assert!(!inserted && read.domain_whitelisted, "whitelisted domain: {read:?}");
    // Off, or the promotion older than max_age (100 s): a first attempt.
    for (i, rule, now) in [(5, plain, 1050), (6, domains, 1101)] {
        let s = key(i);
        let (inserted, _) =
            first_inserted(&store, &t(dnet, &s, "r@example.net"), &attempt("198.51.100.1", now, None), rule).await;
        assert_eq!(inserted, sqlite, "{rule:?} at {now}");
    }

    // Sender pools: T1's sender and recipient from another network, first seen at 1000.
    let other = t("203.0.113.0/24", T1.sender, T1.recipient);
    for cutoff in [Some(1000), Some(5000)] {
        let (inserted, read) = first_inserted(&store, &other, &attempt("203.0.113.9", 9000, cutoff), plain).await;
        assert!(!inserted && read.entry.is_none(), "pool candidate at {cutoff:?}");
    }
    // First seen after the cutoff: no candidate yet, so the attempt is an ordinary first one.
    let (inserted, _) = first_inserted(&store, &other, &attempt("203.0.113.9", 9000, Some(999)), plain).await;
    assert_eq!(inserted, sqlite);
}

/// 200 lookups at once, two for each of 100 new triplets: on SQLite each is stored once, and
/// both callers get the stored row.
async fn concurrent_lookups_insert_once(db: TestDb) {
    let store = db.open().await;
    let rule = FirstRule::default();
    let mut calls = Vec::new();
    for i in 0..100_i64 {
        for k in 0..2 {
            let store = store.clone();
            calls.push(tokio::spawn(async move {
                let sender = format!("s{i}@example.org");
                let key = t("192.0.2.0/24", &sender, "r@example.net");
                let client = format!("192.0.2.{k}");
                store.lookup_or_insert(&key, &attempt(&client, 1000 + i, None), &rule).await.unwrap()
            }));
        }
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let rows = store.dump().await.unwrap();
    if db.backend != Backend::Sqlite {
        assert!(answers.iter().all(|a| *a == Found::Looked(Lookup::default())));
        assert!(rows.is_empty());
        return;
    }
    assert_eq!(rows.len(), 100);
    for (i, pair) in (0_i64..).zip(answers.chunks(2)) {
        // In one turn, both are told of the insert; in two, the later one reads the row.
        let row = |found: &Found| match found {
            Found::Inserted(entry) => Some(entry.clone()),
            Found::Looked(lookup) => lookup.entry.clone(),
        };
        assert!(pair.iter().any(|f| matches!(f, Found::Inserted(_))), "triplet {i} not inserted: {pair:?}");
        let (a, b) = (row(&pair[0]), row(&pair[1]));
        assert_eq!(a, b, "both callers see the one stored row");
        assert_eq!(a.map(|e| (e.first_seen, e.attempts)), Some((1000 + i, 0)));
    }
}

async fn restart_starts_over(db: TestDb) {
    let store = db.open().await;
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.record_retry(&T1, "192.0.2.1", 1100).await.unwrap();
    store.record_pass(&T1, 1400).await.unwrap();
    store.restart(&T1, "192.0.2.9", 9000).await.unwrap();
    let expected =
        Entry { first_seen: 9000, last_seen: 9000, passed_at: None, attempts: 0, client_address: "192.0.2.9".into() };
    assert_eq!(store.get(&T1).await.unwrap(), Some(expected));
    // A row that expiry deleted meanwhile is inserted again.
    let gone = t("203.0.113.0/24", "x@example.org", "y@example.net");
    store.restart(&gone, "203.0.113.5", 9100).await.unwrap();
    assert_eq!(store.get(&gone).await.unwrap().map(|e| e.first_seen), Some(9100));
}

async fn record_pass_sets_passed_at_once(db: TestDb) {
    let store = db.open().await;
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.record_retry(&T1, "192.0.2.1", 1100).await.unwrap();
    store.record_pass(&T1, 1400).await.unwrap();
    let entry = store.get(&T1).await.unwrap().unwrap();
    assert_eq!((entry.first_seen, entry.last_seen, entry.passed_at, entry.attempts), (1000, 1400, Some(1400), 1));
    store.record_pass(&T1, 1500).await.unwrap();
    let entry = store.get(&T1).await.unwrap().unwrap();
    assert_eq!((entry.first_seen, entry.last_seen, entry.passed_at, entry.attempts), (1000, 1500, Some(1400), 1));
}

async fn pool_candidates_filter(db: TestDb) {
    let store = db.open().await;
    let (sender, recipient) = ("news@example.org", "bob@example.net");
    for (net, address, first_seen) in [
        ("192.0.2.0/24", "192.0.2.10", 100),
        ("198.51.100.0/24", "198.51.100.20", 200),
        ("203.0.113.0/24", "203.0.113.30", 300),
        ("2001:db8:1::/64", "2001:db8:1::40", 400),
        ("2001:db8:9::/64", "2001:db8:9::1", 250), // the excluded net
    ] {
        store.insert_first(&t(net, sender, recipient), address, first_seen).await.unwrap();
    }
    // Other sender or other recipient: never candidates.
    store.insert_first(&t("233.252.0.0/24", sender, "eve@example.net"), "233.252.0.1", 250).await.unwrap();
    store.insert_first(&t("233.252.1.0/24", "other@example.org", recipient), "233.252.1.1", 250).await.unwrap();

    let all = store.pool_candidates(sender, recipient, "2001:db8:9::/64", 300, 10).await.unwrap();
    let expected = [("203.0.113.30", 300), ("198.51.100.20", 200), ("192.0.2.10", 100)].map(|(a, s)| (a.to_owned(), s));
    assert_eq!(all, expected);
    assert_eq!(store.pool_candidates(sender, recipient, "2001:db8:9::/64", 300, 2).await.unwrap(), expected[..2]);
    assert_eq!(store.pool_candidates(sender, recipient, "2001:db8:9::/64", 99, 10).await.unwrap(), []);
    let with_excluded = store.pool_candidates(sender, recipient, "192.0.2.0/24", 1000, 10).await.unwrap();
    assert_eq!(with_excluded.iter().map(|(_, s)| *s).collect::<Vec<_>>(), [400, 300, 250, 200]);
}

async fn count_client_pass_once_per_interval(db: TestDb) {
    let store = db.open().await;
    let client = "192.0.2.7";
    assert_eq!(store.client_passes(client).await.unwrap(), 0);
    for (now, expected) in [(1000, 1), (1100, 1), (4599, 1), (4600, 2), (4601, 2), (9000, 3)] {
        assert_eq!(store.count_client_pass(client, now, 3600).await.unwrap(), expected, "at {now}");
    }
    assert_eq!(store.client_passes(client).await.unwrap(), 3);
    assert_eq!(store.count_client_pass("192.0.2.8", 9000, 3600).await.unwrap(), 1);
    assert_eq!(store.client_passes(client).await.unwrap(), 3);
}

async fn domain_awl_needs_two_senders(db: TestDb) {
    let store = db.open().await;
    let (domain, net, other_net) = ("example.org", "192.0.2.0/24", "198.51.100.0/24");
    let day = 86_400;
    assert!(!store.note_domain_pass(domain, net, "alice@example.org", 1000).await.unwrap());
    assert!(!store.note_domain_pass(domain, net, "alice@example.org", 1100).await.unwrap(), "same sender again");
    assert!(!store.domain_whitelisted(domain, net, 1100, day).await.unwrap());
    assert!(!store.note_domain_pass(domain, other_net, "bob@example.org", 1150).await.unwrap(), "other net");
    assert!(store.note_domain_pass(domain, net, "bob@example.org", 1200).await.unwrap());
    assert!(store.domain_whitelisted(domain, net, 1200, day).await.unwrap());
    assert!(!store.domain_whitelisted(domain, other_net, 1200, day).await.unwrap());
    assert!(!store.domain_whitelisted("example.com", net, 1200, day).await.unwrap());
    assert!(store.note_domain_pass(domain, net, "alice@example.org", 1300).await.unwrap(), "stays promoted");
    // Expiry counts from the last pass (1300).
    assert!(store.domain_whitelisted(domain, net, 1300 + day, day).await.unwrap());
    assert!(!store.domain_whitelisted(domain, net, 1301 + day, day).await.unwrap());
}

async fn purge_deletes_expired_in_batches(db: TestDb) {
    let store = db.open().await;
    let day = 86_400;
    let (now, retry_window, max_age) = (100 * day, day, 35 * day);

    // 2500 waiting rows past the retry window, inserted from 10 tasks.
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..10 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..250 {
                let sender = format!("spam{task}-{i}@example.org");
                store.insert_first(&t("192.0.2.0/24", &sender, "bob@example.net"), "192.0.2.1", now - 2 * day).await?;
            }
            Ok::<_, StoreError>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    // Kept: waiting within the window, passed and seen within max_age (however old).
    for i in 0..10 {
        let sender = format!("fresh{i}@example.org");
        store
            .insert_first(&t("198.51.100.0/24", &sender, "bob@example.net"), "198.51.100.1", now - 3600)
            .await
            .unwrap();
    }
    for i in 0..5 {
        let (expired, fresh) = (format!("old{i}@example.org"), format!("busy{i}@example.org"));
        let (expired, fresh) =
            (t("203.0.113.0/24", &expired, "bob@example.net"), t("203.0.113.0/24", &fresh, "bob@example.net"));
        store.insert_first(&expired, "203.0.113.1", now - 40 * day).await.unwrap();
        store.record_pass(&expired, now - 36 * day).await.unwrap();
        store.insert_first(&fresh, "203.0.113.1", now - 40 * day).await.unwrap();
        store.record_pass(&fresh, now - day).await.unwrap();
    }
    for (i, seen) in [now - 36 * day, now - 36 * day, now - 36 * day, now - day, now].into_iter().enumerate() {
        store.count_client_pass(&format!("192.0.2.{i}"), seen, 3600).await.unwrap();
    }
    for (domain, seen) in [("old1.example", now - 36 * day), ("old2.example", now - 40 * day), ("new.example", now)] {
        store.note_domain_pass(domain, "192.0.2.0/24", "a@x", seen).await.unwrap();
        assert!(store.note_domain_pass(domain, "192.0.2.0/24", "b@x", seen).await.unwrap());
    }

    // A budget stops a run early; the rest is deleted by the next run.
    assert_eq!(store.purge_with_budget(now, retry_window, max_age, 100, 250).await.unwrap(), 250);
    assert_eq!(store.purge(now, retry_window, max_age, 1000).await.unwrap(), 2250 + 5 + 3 + 2);
    assert_eq!(store.purge(now, retry_window, max_age, 1000).await.unwrap(), 0);

    let rows = store.dump().await.unwrap();
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r.passed_at.is_some() || r.first_seen == now - 3600), "{rows:?}");
    assert!(rows.iter().all(|r| r.last_seen >= now - max_age), "{rows:?}");
    for i in 0..5 {
        assert_eq!(store.client_passes(&format!("192.0.2.{i}")).await.unwrap(), i64::from(i >= 3));
    }
    let forever = i64::MAX / 2;
    assert!(!store.domain_whitelisted("old1.example", "192.0.2.0/24", now, forever).await.unwrap());
    assert!(!store.domain_whitelisted("old2.example", "192.0.2.0/24", now, forever).await.unwrap());
    assert!(store.domain_whitelisted("new.example", "192.0.2.0/24", now, forever).await.unwrap());
}

async fn stats_counts(db: TestDb) {
    let store = db.open().await;
    let now = 1_000_000;
    let old = now - 7200;
    let r = "bob@example.net";
    // Waiting, never retried, older than an hour: these are what the top lists count.
    for (net, sender, recipient) in [
        ("net-1", "spam1@x", r),
        ("net-1", "spam2@x", r),
        ("net-1", "spam1@x", "carol@example.net"),
        ("net-2", "spam1@x", "dave@example.net"),
    ] {
        store.insert_first(&t(net, sender, recipient), "192.0.2.1", old).await.unwrap();
    }
    let extra_nets: Vec<String> = (0..12).map(|i| format!("net-a{i:02}")).collect();
    for net in &extra_nets {
        store.insert_first(&t(net, "spam3@x", r), "192.0.2.1", old).await.unwrap();
    }
    // Not counted in the top lists: retried, too young, passed.
    let retried = t("net-3", "ok@x", r);
    store.insert_first(&retried, "192.0.2.1", old).await.unwrap();
    store.record_retry(&retried, "192.0.2.1", old + 60).await.unwrap();
    store.insert_first(&t("net-4", "new@x", r), "192.0.2.1", now - 60).await.unwrap();
    let passed = t("net-5", "ok@x", r);
    store.insert_first(&passed, "192.0.2.1", old).await.unwrap();
    store.record_pass(&passed, now - 3000).await.unwrap();
    // Auto-whitelists: two clients, one promoted domain and one that is not.
    store.count_client_pass("192.0.2.1", now, 3600).await.unwrap();
    store.count_client_pass("192.0.2.2", now, 3600).await.unwrap();
    store.note_domain_pass("a.example", "net-5", "a@a.example", now).await.unwrap();
    store.note_domain_pass("a.example", "net-5", "b@a.example", now).await.unwrap();
    store.note_domain_pass("b.example", "net-5", "a@b.example", now).await.unwrap();

    let mut unretried_clients = vec![("net-1".to_owned(), 3), ("net-2".to_owned(), 1)];
    unretried_clients.extend(extra_nets[..8].iter().map(|net| (net.clone(), 1)));
    let expected = Stats {
        triplets: 19,
        passed: 1,
        waiting: 18,
        awl_clients: 2,
        awl_domains: 1,
        unretried_clients,
        unretried_senders: vec![("spam3@x".into(), 12), ("spam1@x".into(), 3), ("spam2@x".into(), 1)],
    };
    assert_eq!(store.stats(now).await.unwrap(), expected);
}

async fn dump_rows(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.dump().await.unwrap(), []);
    let waiting = t("198.51.100.0/24", "a@example.org", "b@example.net");
    store.insert_first(&waiting, "198.51.100.7", 2000).await.unwrap();
    store.record_retry(&waiting, "198.51.100.8", 2100).await.unwrap();
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.record_pass(&T1, 1500).await.unwrap();
    let row = |t: Triplet<'_>, first_seen, last_seen, passed_at, attempts, client_address: &str| DumpRow {
        client_net: t.client_net.into(),
        sender: t.sender.into(),
        recipient: t.recipient.into(),
        first_seen,
        last_seen,
        passed_at,
        attempts,
        client_address: client_address.into(),
    };
    assert_eq!(
        store.dump().await.unwrap(),
        [row(T1, 1000, 1500, Some(1500), 0, "192.0.2.1"), row(waiting, 2000, 2100, None, 1, "198.51.100.8")]
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite: the file, durability, locking

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/greyd.db", dir.path().display())
}

#[tokio::test]
async fn sqlite_file_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let store = Store::open(&url, &test_options()).await.unwrap();
    let entry = store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();
    store.close().await;
    drop(store);
    assert!(dir.path().join("greyd.db").is_file());

    let store = Store::open(&url, &test_options()).await.unwrap();
    assert_eq!(store.get(&T1).await.unwrap(), Some(entry));
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
}

/// A database created at schema 0001 (rowid table keyed client_net first) keeps every row when
/// a newer greyd opens it, through 0002 (no rowid) and 0003 (rowid again, in first_seen order),
/// and ends up in the current layout.
#[tokio::test]
async fn sqlite_upgrade_keeps_rows_of_older_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    // Schema 0001 only, applied by sqlx's migrator from a copy of that one file.
    let only_first = dir.path().join("migrations");
    std::fs::create_dir(&only_first).unwrap();
    let first = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/0001_init.sql");
    std::fs::copy(first, only_first.join("0001_init.sql")).unwrap();
    let options: sqlx::sqlite::SqliteConnectOptions = format!("{url}?mode=rwc").parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::migrate::Migrator::new(only_first.as_path()).await.unwrap().run(&mut conn).await.unwrap();
    for (i, passed_at) in [(1, None), (2, Some(1500_i64)), (3, None)] {
        sqlx::query(
            "INSERT INTO greylist (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, \
             client_address) VALUES ('192.0.2.0/24', ?, 'r@example.net', 1000, 1600, ?, 2, '192.0.2.9')",
        )
        .bind(format!("s{i}@example.org"))
        .bind(passed_at)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    let store = Store::open(&url, &test_options()).await.unwrap();
    let key = |s: &'static str| Triplet { client_net: "192.0.2.0/24", sender: s, recipient: "r@example.net" };
    let e = store.get(&key("s2@example.org")).await.unwrap().unwrap();
    assert_eq!((e.first_seen, e.last_seen, e.passed_at, e.attempts), (1000, 1600, Some(1500), 2));
    assert_eq!(store.dump().await.unwrap().len(), 3);
    // New rows go in as before, and purge still finds the waiting ones by the partial index.
    store.insert_first(&T1, "192.0.2.1", 2000).await.unwrap();
    assert_eq!(store.purge(2600, 1000, 100_000, 1).await.unwrap(), 2);
    assert_eq!(store.dump().await.unwrap().len(), 2);
    store.close().await;
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let ddl: Vec<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE tbl_name = 'greylist' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(ddl.len(), 4, "{ddl:?}");
    assert!(ddl.iter().all(|sql| !sql.contains("WITHOUT ROWID") && !sql.contains("PRIMARY KEY")), "{ddl:?}");
    assert!(
        ddl.iter().any(|sql| sql.contains("UNIQUE INDEX greylist_key ON greylist (sender, recipient, client_net)"))
    );
    // Rows copied in first_seen order, new ones after them.
    let order: Vec<i64> =
        sqlx::query_scalar("SELECT first_seen FROM greylist ORDER BY rowid").fetch_all(&mut conn).await.unwrap();
    assert_eq!(order, [1000, 2000]);
}

/// Regression: with checkpoints moved out of commits and only PASSIVE ones, the WAL once grew
/// to 15 GB for a million inserts. The writer restarts it at 48 MiB, below the 64 MiB size
/// limit; 12,000 single commits write well over that, and concurrent readers hold snapshots
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_stays_bounded_under_single_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&sqlite_url(&dir), &test_options()).await.unwrap();
    let reading = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                store.get(&T1).await.unwrap();
            }
        })
    };
    for i in 0..12_000 {
        let sender = format!("s{i}@example.org");
        let key = t("192.0.2.0/24", &sender, "r@example.net");
        store.insert_first(&key, "192.0.2.1", 1000).await.unwrap();
    }
    reading.abort();
    let wal = dir.path().join("greyd.db-wal");
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(size < 72 << 20, "WAL is {size} bytes after 12,000 commits");
}

const SIGKILL_CHILD_ENV: &str = "POSTWARD_TEST_SIGKILL_DB";

/// Runs in a child process of `sqlite_survives_sigkill`: answers first-seen entries until killed.
#[tokio::test]
#[ignore = "child process of sqlite_survives_sigkill"]
async fn sigkill_child() {
    let Ok(url) = std::env::var(SIGKILL_CHILD_ENV) else {
        return;
    };
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    for i in 0.. {
        let sender = format!("s{i}@example.org");
        store.insert_first(&t("192.0.2.0/24", &sender, "bob@example.net"), "192.0.2.1", i).await.unwrap();
        // The policy answer would go out now.
        println!("answered {i}");
    }
}

#[tokio::test]
async fn sqlite_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["sigkill_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(SIGKILL_CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answered = 0;
    while answered < 500 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
        let Some(line) = line else { panic!("child exited after {answered} entries") };
        if let Some(n) = line.strip_prefix("answered ") {
            answered = n.parse::<i64>().unwrap() + 1;
        }
    }
    child.start_kill().unwrap(); // SIGKILL, mid-write
    child.wait().await.unwrap();

    let store = Store::open(&url, &test_options()).await.unwrap();
    for i in 0..answered {
        let sender = format!("s{i}@example.org");
        let entry = store.get(&t("192.0.2.0/24", &sender, "bob@example.net")).await.unwrap();
        assert_eq!(entry.map(|e| e.first_seen), Some(i), "answered entry {i} lost");
    }
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn sqlite_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let err = Store::open(&format!("sqlite://{}/greyd.db", missing.display()), &test_options()).await.unwrap_err();
    assert!(matches!(&err, StoreError::MissingDirectory(path) if *path == missing), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no/such/dir") && message.contains("does not exist"), "{message}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn sqlite_locked_fails_fast_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let options = StoreOptions { op_timeout: Duration::from_millis(300), ..test_options() };
    let store = Store::open(&url, &options).await.unwrap();
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();

    // Another process holds the write lock.
    let mut locker = AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut locker).await.unwrap();
    let other = t("198.51.100.0/24", "a@example.org", "b@example.net");
    let started = Instant::now();
    let err = store.insert_first(&other, "198.51.100.1", 1100).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    // WAL: readers go on meanwhile.
    assert!(store.get(&T1).await.unwrap().is_some());

    sqlx::raw_sql("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(store.insert_first(&other, "198.51.100.1", 1200).await.unwrap().first_seen, 1200);
}

// ---------------------------------------------------------------------------------------------
// Servers: bad URLs, unreachable and hanging servers, outage and recovery

#[tokio::test]
async fn invalid_url() {
    for url in ["redis://u:topsecret@localhost/0", "postgres://u:topsecret@localhost:notaport/x", "no-scheme"] {
        let err = Store::open(url, &test_options()).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{url}: {err:?}");
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}

#[tokio::test]
async fn unreachable_server_fails_fast() {
    let options = StoreOptions { connect_timeout: Duration::from_secs(1), ..test_options() };
    for url in ["postgres://postgres:hunter2secret@127.0.0.1:1/x", "mysql://root:hunter2secret@127.0.0.1:1/x"] {
        let started = Instant::now();
        let err = Store::open(url, &options).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{url}: took {:?}", started.elapsed());
        assert!(matches!(err, StoreError::Unavailable(_)), "{url}: {err:?}");
        let message = err.to_string();
        assert!(!message.contains("hunter2secret") && !format!("{err:?}").contains("hunter2secret"), "{message}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
    }
}

#[tokio::test]
async fn silent_server_fails_within_connect_timeout() {
    // Accepts connections and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = StoreOptions { connect_timeout: Duration::from_millis(500), ..test_options() };
    for url in [format!("postgres://postgres:hunter2secret@{addr}/x"), format!("mysql://root:hunter2secret@{addr}/x")] {
        let started = Instant::now();
        let err = Store::open(&url, &options).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{url}: took {:?}", started.elapsed());
        assert!(matches!(err, StoreError::Unavailable(_)), "{url}: {err:?}");
        assert!(!err.to_string().contains("hunter2secret"), "{err}");
    }
    holder.abort();
}

#[tokio::test]
async fn postgres_outage_and_recovery() {
    if let Some(db) = TestDb::create(Backend::Postgres).await {
        outage_and_recovery(db).await;
    }
}

#[tokio::test]
async fn mysql_outage_and_recovery() {
    if let Some(db) = TestDb::create(Backend::MySql).await {
        outage_and_recovery(db).await;
    }
}

/// The server hangs, then drops every connection, then comes back: operations fail with a
/// temporary error within the operation timeout, and the same `Store` works again afterwards.
async fn outage_and_recovery(db: TestDb) {
    let upstream = authority(&db.url).to_owned();
    let proxy = Proxy::start(upstream.clone()).await;
    let url = db.url.replacen(&upstream, &proxy.addr.to_string(), 1);
    let options = StoreOptions {
        max_connections: 2,
        op_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
    };
    let store = Store::open(&url, &options).await.unwrap();
    store.insert_first(&T1, "192.0.2.1", 1000).await.unwrap();

    for mode in [Mode::Stall, Mode::Cut] {
        proxy.set(mode);
        let started = Instant::now();
        let err = store.get(&T1).await.unwrap_err();
        assert!(err.is_temporary(), "{mode:?}: {err:?}");
        assert!(started.elapsed() < Duration::from_millis(1500), "{mode:?}: took {:?}", started.elapsed());
    }

    proxy.set(Mode::Forward);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(&T1).await {
            Ok(entry) => {
                assert_eq!(entry.unwrap().first_seen, 1000);
                break;
            }
            Err(err) => {
                assert!(Instant::now() < deadline, "no recovery: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    store.insert_first(&t("198.51.100.0/24", "a@example.org", "b@example.net"), "198.51.100.1", 2000).await.unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pass bytes both ways.
    Forward,
    /// Keep the connections open but pass nothing (a hung server).
    Stall,
    /// Close every connection, and new ones at once (a server restarting).
    Cut,
}

/// A TCP proxy in front of the database whose behaviour a test switches. Switching from
/// `Stall` straight back to `Forward` may lose bytes in flight, so tests go through `Cut`.
struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, mode_rx) = watch::channel(Mode::Forward);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(Self::pump(client, upstream.clone(), mode_rx.clone()));
            }
        });
        Proxy { addr, mode, accept }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    async fn pump(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
        let mut server = None;
        loop {
            let current = *mode.borrow_and_update();
            match current {
                Mode::Cut => return,
                Mode::Stall => {}
                Mode::Forward => {
                    if server.is_none() {
                        server = TcpStream::connect(&upstream).await.ok();
                    }
                    let Some(server) = server.as_mut() else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, server) => return,
                        changed = mode.changed() => if changed.is_err() { return } else { continue },
                    }
                }
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
