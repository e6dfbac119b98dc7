//! The admin commands' changes to the greylist (`postward-greyd delete` and `whitelist`), and
//! the epoch that makes every running greyd drop its caches after one.
//!
//! greyd answers a triplet it has seen from memory (see `cache.rs`), so a row deleted behind
//! its back would go on passing, or waiting, on every host. Each change here therefore raises
//! `admin_epoch` in the same transaction; the daemons read it every few seconds
//! ([`Store::admin_epoch`]) and start their caches afresh when it moved.
//!
//! These statements scan where no index serves them (a client network on SQLite, whose key
//! index starts with the sender): fine for a command an admin runs by hand, not for the
//! request path.

use sqlx::{Any, Transaction};

use super::{Backend, Store, StoreError, Triplet};

/// What a change removed, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Greylist rows (triplets).
    pub greylist: u64,
    /// Client auto-whitelist entries.
    pub awl_clients: u64,
    /// Sender-domain auto-whitelist entries (domain, client network).
    pub awl_domains: u64,
}

impl Deleted {
    pub fn total(&self) -> u64 {
        self.greylist + self.awl_clients + self.awl_domains
    }
}

/// A removal, as the admin names it. Values are in their stored form (normalized, and
/// hashed in privacy mode): the caller builds them with the daemon's `Normalizer`.
#[derive(Debug, Clone, Copy)]
pub enum Removal<'a> {
    /// One triplet.
    Triplet(Triplet<'a>),
    /// Every triplet of a client network, the client address's auto-whitelist entry, and
    /// the network's sender-domain auto-whitelist entries.
    Client { client_net: &'a str, client: &'a str },
    /// Every triplet of one sender.
    Sender(&'a str),
    /// The sender domain's auto-whitelist entries, for every network.
    Domain(&'a str),
}

/// Which table a statement deletes from.
#[derive(Clone, Copy)]
enum Table {
    Greylist,
    AwlClient,
    AwlDomain,
}

/// One statement: `$n` text (SQLite, PostgreSQL), `?` text (MySQL), and its binds in order.
struct Statement<'a> {
    numbered: &'static str,
    positional: &'static str,
    binds: Vec<&'a str>,
    table: Table,
}

fn statements<'a>(removal: &Removal<'a>) -> Vec<Statement<'a>> {
    let s = |numbered, positional, binds, table| Statement { numbered, positional, binds, table };
    match *removal {
        Removal::Triplet(t) => vec![s(
            "DELETE FROM greylist WHERE client_net = $1 AND sender = $2 AND recipient = $3",
            "DELETE FROM greylist WHERE client_net = ? AND sender = ? AND recipient = ?",
            vec![t.client_net, t.sender, t.recipient],
            Table::Greylist,
        )],
        Removal::Client { client_net, client } => vec![
            s(
                "DELETE FROM greylist WHERE client_net = $1",
                "DELETE FROM greylist WHERE client_net = ?",
                vec![client_net],
                Table::Greylist,
            ),
            s(
                "DELETE FROM awl_client WHERE client = $1",
                "DELETE FROM awl_client WHERE client = ?",
                vec![client],
                Table::AwlClient,
            ),
            s(
                "DELETE FROM awl_domain WHERE client_net = $1",
                "DELETE FROM awl_domain WHERE client_net = ?",
                vec![client_net],
                Table::AwlDomain,
            ),
        ],
        Removal::Sender(sender) => vec![s(
            "DELETE FROM greylist WHERE sender = $1",
            "DELETE FROM greylist WHERE sender = ?",
            vec![sender],
            Table::Greylist,
        )],
        Removal::Domain(domain) => vec![s(
            "DELETE FROM awl_domain WHERE domain = $1",
            "DELETE FROM awl_domain WHERE domain = ?",
            vec![domain],
            Table::AwlDomain,
        )],
    }
}

const BUMP_EPOCH: &str = "UPDATE admin_epoch SET epoch = epoch + 1 WHERE id = 1";
const READ_EPOCH: &str = "SELECT epoch FROM admin_epoch WHERE id = 1";

/// Raises a client's pass count to at least the given one; keeps `last_counted`, so the
/// hourly counting goes on as before. Binds: client, passes, last_counted, last_seen.
const WHITELIST_CLIENT: &str = "INSERT INTO awl_client (client, passes, last_counted, last_seen) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (client) DO UPDATE SET \
     passes = CASE WHEN awl_client.passes < excluded.passes THEN excluded.passes ELSE awl_client.passes END, \
     last_seen = excluded.last_seen";
const WHITELIST_CLIENT_MYSQL: &str = "INSERT INTO awl_client (client, passes, last_counted, last_seen) \
     VALUES (?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE passes = GREATEST(passes, VALUES(passes)), last_seen = VALUES(last_seen)";

impl Store {
    fn dialect(&self, numbered: &'static str, positional: &'static str) -> &'static str {
        if self.backend == Backend::MySql { positional } else { numbered }
    }

    /// Removes what `removal` names, and raises the admin epoch when anything went, in one
    /// transaction.
    pub async fn delete(&self, removal: &Removal<'_>) -> Result<Deleted, StoreError> {
        let statements = statements(removal);
        self.run(Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let mut deleted = Deleted::default();
            for st in &statements {
                let mut query = sqlx::query::<Any>(self.dialect(st.numbered, st.positional));
                for b in &st.binds {
                    query = query.bind(*b);
                }
                let n = query.execute(&mut *tx).await?.rows_affected();
                match st.table {
                    Table::Greylist => deleted.greylist += n,
                    Table::AwlClient => deleted.awl_clients += n,
                    Table::AwlDomain => deleted.awl_domains += n,
                }
            }
            if deleted.total() > 0 {
                bump_epoch(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(deleted)
        }))
        .await
    }

    /// Puts `client` (an address, as the request path keys it) in the client auto-whitelist
    /// with at least `passes` passes, seen `now`; raises the admin epoch. Returns the count
    /// now stored. The entry then ages like any other: the request path refreshes it while
    /// the client's mail passes, and expiry removes it `max_age` after it was last seen.
    pub async fn whitelist_client(&self, client: &str, passes: i64, now: i64) -> Result<i64, StoreError> {
        self.run(Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query::<Any>(self.dialect(WHITELIST_CLIENT, WHITELIST_CLIENT_MYSQL))
                .bind(client)
                .bind(passes)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let stored: i64 =
                sqlx::query_scalar::<Any, i64>(self.sql.client_passes).bind(client).fetch_one(&mut *tx).await?;
            bump_epoch(&mut tx).await?;
            tx.commit().await?;
            Ok(stored)
        }))
        .await
    }

    /// The admin epoch: changes whenever an admin command changed the greylist.
    pub async fn admin_epoch(&self) -> Result<i64, StoreError> {
        let query = sqlx::query_scalar::<Any, i64>(READ_EPOCH);
        Ok(self.run(Box::pin(query.fetch_optional(&self.pool))).await?.unwrap_or(0))
    }
}

async fn bump_epoch(tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
    sqlx::query::<Any>(BUMP_EPOCH).execute(&mut **tx).await.map(|_| ())
}
