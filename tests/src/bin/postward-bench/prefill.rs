//! `prefill-greylist`: writes a [`Population`] (a busy site's 35 days of greylisting) into
//! the stores of greyd, sqlgrey and postgrey, so a benchmark starts where sites really run
//! them: a full database and a cold cache.
//!
//! - greyd: any store URL greyd takes (SQLite, PostgreSQL, MySQL/MariaDB). The schema comes
//!   from greyd's own migrations ([`Store::open`]); the rows are greyd's normalized keys
//!   ([`Normalizer`] with the default /24 and /64), written in first-seen order as a site's
//!   inserts would have left them, and the client auto-whitelist.
//! - sqlgrey: its SQLite file, made by sqlgrey itself beforehand (its schema is its own):
//!   pending triplets in `connect`, passed ones in `from_awl` (sqlgrey keeps a passed
//!   sender per client network, not the triplet), the whitelisted clients' domains in
//!   `domain_awl`. Client networks as sqlgrey's `greymethod = classc` writes them (`a.b.c`).
//! - postgrey: two text files, `postgrey.tsv` and `postgrey_clients.tsv` (`key TAB value`,
//!   postgrey's keys and values), for `tests/bench/greyd.sh` to load into its BerkeleyDB
//!   (no Rust crate writes BerkeleyDB; the Perl module postgrey itself uses does).
//!
//! Every value is generated here from letters, digits, `.`, `@`, `:` and `/`, so the SQL is
//! written with literals (one statement shape for all three SQL dialects); [`literal`]
//! refuses anything else.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use greyd::store::{Store, StoreOptions};
use greyd::triplet::Normalizer;
use sqlx::{AnyConnection, AssertSqlSafe, Connection as _, Executor as _};

use crate::workloads::population::{Population, State, Stored};

/// Rows per INSERT statement, and per transaction.
const ROWS_PER_STATEMENT: usize = 500;
const ROWS_PER_TRANSACTION: usize = 50_000;

/// What to write, from `prefill-greylist`'s options.
#[derive(Debug, Clone)]
pub struct PrefillArgs {
    pub triplets: u64,
    pub seed: u64,
    pub greyd: Option<String>,
    pub sqlgrey: Option<PathBuf>,
    pub postgrey_dir: Option<PathBuf>,
}

pub async fn run(args: PrefillArgs) -> anyhow::Result<()> {
    let population = Population::new(args.triplets, args.seed);
    let now = unix_now();
    // First-seen order: the order in which a site's greyd would have inserted them.
    let started = Instant::now();
    let mut order: Vec<(i64, u64)> = (0..population.size).map(|i| (population.stored(i, now).first_seen, i)).collect();
    order.sort_unstable();
    let rows = || order.iter().map(|&(_, i)| population.stored(i, now));
    println!(
        "history: {} triplets ({} pending, {} passed), {} auto-whitelisted clients, seed {} ({:.1} s)",
        population.size,
        population.pending(),
        population.passed(),
        population.awl_clients(),
        population.seed,
        started.elapsed().as_secs_f64()
    );
    if let Some(url) = &args.greyd {
        let t = Instant::now();
        greyd(url, &population, rows(), now).await?;
        println!("greyd: {} rows in {url} ({:.1} s)", population.size, t.elapsed().as_secs_f64());
    }
    if let Some(file) = &args.sqlgrey {
        let t = Instant::now();
        sqlgrey(file, &population, rows(), now).await?;
        println!("sqlgrey: {} ({:.1} s)", file.display(), t.elapsed().as_secs_f64());
    }
    if let Some(dir) = &args.postgrey_dir {
        let t = Instant::now();
        postgrey(dir, &population, rows(), now)?;
        println!("postgrey: {}/postgrey.tsv, postgrey_clients.tsv ({:.1} s)", dir.display(), t.elapsed().as_secs_f64());
    }
    Ok(())
}

fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(0)
}

async fn greyd(url: &str, population: &Population, rows: impl Iterator<Item = Stored>, now: i64) -> anyhow::Result<()> {
    // greyd's own migrations make (or check) the schema.
    let store = Store::open(url, &StoreOptions::default()).await.context("greyd's store")?;
    store.close().await;
    let normalizer = Normalizer::new(24, 64, None);
    let mut db = connect(url).await?;
    let columns =
        "greylist (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts, client_address)";
    let mut batch = Batch::new(columns);
    for s in rows {
        let t = normalizer.triplet(s.key.client, &s.key.sender, &s.key.recipient);
        let (last_seen, passed_at, attempts) = match s.state {
            State::Pending => (s.first_seen, "NULL".to_owned(), 0),
            State::Passed { passed_at, last_seen, retries } => (last_seen, passed_at.to_string(), retries),
        };
        batch
            .push(
                &mut db,
                format!(
                    "({}, {}, {}, {}, {last_seen}, {passed_at}, {attempts}, {})",
                    literal(&t.client_net)?,
                    literal(&t.sender)?,
                    literal(&t.recipient)?,
                    s.first_seen,
                    literal(&s.key.client.to_string())?
                ),
            )
            .await?;
    }
    batch.finish(&mut db).await?;
    let mut batch = Batch::new("awl_client (client, passes, last_counted, last_seen)");
    for a in (0..population.awl_clients()).map(|a| population.awl_client(a, now)) {
        let row = format!("({}, {}, {}, {})", literal(&a.client.to_string())?, a.passes, a.last_seen, a.last_seen);
        batch.push(&mut db, row).await?;
    }
    batch.finish(&mut db).await?;
    db.close(url.starts_with("sqlite:")).await.context("greyd's store")
}

async fn sqlgrey(
    file: &Path,
    population: &Population,
    rows: impl Iterator<Item = Stored>,
    now: i64,
) -> anyhow::Result<()> {
    if !file.exists() {
        bail!("{}: no such file; let sqlgrey make its database first (start it once)", file.display());
    }
    let mut db = connect(&format!("sqlite://{}", file.display())).await?;
    let mut connect_rows = Batch::new("connect (sender_name, sender_domain, src, rcpt, first_seen)");
    let mut awl_rows = Batch::or_ignore("from_awl (sender_name, sender_domain, src, first_seen, last_seen)");
    for s in rows {
        let (name, domain) = s.key.sender.split_once('@').context("a sender without @")?;
        let src = literal(&class_c(s.key.client))?;
        let (name, domain) = (literal(name)?, literal(domain)?);
        match s.state {
            State::Pending => {
                let row = format!("({name}, {domain}, {src}, {}, {})", literal(&s.key.recipient)?, s.first_seen);
                connect_rows.push(&mut db, row).await?;
            }
            State::Passed { last_seen, .. } => {
                awl_rows.push(&mut db, format!("({name}, {domain}, {src}, {}, {last_seen})", s.first_seen)).await?;
            }
        }
    }
    connect_rows.finish(&mut db).await?;
    awl_rows.finish(&mut db).await?;
    let mut domains = Batch::or_ignore("domain_awl (sender_domain, src, first_seen, last_seen)");
    for a in (0..population.awl_clients()).map(|a| population.awl_client(a, now)) {
        let row = format!(
            "({}, {}, {}, {})",
            literal(&a.domain)?,
            literal(&class_c(a.client))?,
            a.last_seen - 86_400,
            a.last_seen
        );
        domains.push(&mut db, row).await?;
    }
    domains.finish(&mut db).await?;
    db.close(true).await.context("sqlgrey's database")
}

/// sqlgrey's `classc` client network: the first three octets (IPv6 is not generated).
fn class_c(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}")
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

fn postgrey(dir: &Path, population: &Population, rows: impl Iterator<Item = Stored>, now: i64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let open = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(std::io::BufWriter::new(f))
    };
    let mut triplets = open("postgrey.tsv")?;
    for s in rows {
        // postgrey's key: lc "$net/$sender/$recipient", the net as NetAddr::IP prints a /24's address.
        let net = match s.key.client {
            IpAddr::V4(_) => format!("{}.0", class_c(s.key.client)),
            IpAddr::V6(v6) => v6.to_string(),
        };
        let last = match s.state {
            State::Pending => s.first_seen,
            State::Passed { last_seen, .. } => last_seen,
        };
        let key = format!("{net}/{}/{}", s.key.sender, s.key.recipient).to_lowercase();
        writeln!(triplets, "{key}\t{},{last}", s.first_seen)?;
    }
    triplets.flush()?;
    let mut clients = open("postgrey_clients.tsv")?;
    for a in (0..population.awl_clients()).map(|a| population.awl_client(a, now)) {
        writeln!(clients, "{}\t{},{}", a.client, a.passes, a.last_seen)?;
    }
    clients.flush()?;
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<Loader> {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.with_context(|| format!("cannot connect to {url}"))?;
    if url.starts_with("sqlite:") {
        // A bulk load: durability comes from the checkpoint at the end.
        db.execute("PRAGMA synchronous = OFF").await?;
    }
    Ok(Loader { db, in_transaction: 0 })
}

/// A quoted SQL string literal of a generated value.
fn literal(value: &str) -> anyhow::Result<String> {
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.@:/_".contains(&b)) {
        bail!("{value:?} holds a character the prefill does not quote");
    }
    Ok(format!("'{value}'"))
}

/// A bulk-loading connection: statements grouped into transactions of about
/// [`ROWS_PER_TRANSACTION`] rows, whichever table they write.
struct Loader {
    db: AnyConnection,
    in_transaction: usize,
}

impl Loader {
    async fn insert(&mut self, sql: String, rows: usize) -> anyhow::Result<()> {
        if self.in_transaction == 0 {
            self.db.execute("BEGIN").await.context("BEGIN")?;
        }
        let head = sql.split(" VALUES ").next().unwrap_or_default().to_owned();
        // Literals only, each checked by `literal`.
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut self.db).await.with_context(|| format!("{head} …"))?;
        self.in_transaction += rows;
        if self.in_transaction >= ROWS_PER_TRANSACTION {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> anyhow::Result<()> {
        if self.in_transaction > 0 {
            self.db.execute("COMMIT").await.context("COMMIT")?;
            self.in_transaction = 0;
        }
        Ok(())
    }

    /// Commits, checkpoints an SQLite file (the daemon starts with an empty WAL, as after a
    /// clean stop) and closes.
    async fn close(mut self, sqlite: bool) -> anyhow::Result<()> {
        self.commit().await?;
        if sqlite {
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").await.context("checkpoint")?;
        }
        self.db.close().await.context("closing the database")
    }
}

/// Rows of one table gathered into multi-row INSERTs of [`ROWS_PER_STATEMENT`].
struct Batch {
    head: String,
    values: Vec<String>,
}

impl Batch {
    fn new(columns: &str) -> Batch {
        Batch { head: format!("INSERT INTO {columns} VALUES "), values: Vec::new() }
    }

    /// For sqlgrey's tables, whose keys two generated rows could share (SQLite syntax).
    fn or_ignore(columns: &str) -> Batch {
        Batch { head: format!("INSERT OR IGNORE INTO {columns} VALUES "), values: Vec::new() }
    }

    async fn push(&mut self, db: &mut Loader, row: String) -> anyhow::Result<()> {
        self.values.push(row);
        if self.values.len() >= ROWS_PER_STATEMENT {
            self.write(db).await?;
        }
        Ok(())
    }

    async fn write(&mut self, db: &mut Loader) -> anyhow::Result<()> {
        if self.values.is_empty() {
            return Ok(());
        }
        let rows = self.values.len();
        let sql = format!("{}{}", self.head, self.values.join(", "));
        self.values.clear();
        db.insert(sql, rows).await
    }

    async fn finish(mut self, db: &mut Loader) -> anyhow::Result<()> {
        self.write(db).await
    }
}
