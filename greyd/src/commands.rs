//! `postward-greyd stats | dump | check | delete | whitelist`: the administrator's view of the
//! greylist, like postgreyreport and sqlgrey-logstats, and the changes an admin makes by hand.
//!
//! - `stats [--json]`: counts, pass/defer shares, and the clients and senders that never retried
//!   (likely spam sources, or legitimate senders that need a whitelist entry).
//! - `dump`: every greylist row as one JSON object per line.
//! - `check QUERY`: which whitelist entry, if any, matches an address, hostname, `name[addr]`
//!   or email address.
//! - `delete CLIENT SENDER RECIPIENT`, `delete --client ADDRESS`, `delete --sender ADDRESS`,
//!   `delete --domain DOMAIN`: forget a triplet, a client, a sender, or a sender domain's
//!   auto-whitelist entries, so the next attempt is greylisted afresh.
//! - `whitelist ADDRESS`: put a client in the auto-whitelist now, as if it had passed
//!   `greylist.auto_whitelist_clients` times.
//!
//! Keys are built with the daemon's own normalization (client network, folded sender, privacy
//! hashing), so an admin types addresses as they appear in the mail log. The changes reach
//! running daemons on every host sharing the store within a few seconds (`store/admin.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use shared::daemon::Daemon;

use crate::config::Config;
use crate::service::Service;
use crate::store::{Deleted, Removal, Store, StoreOptions, Triplet as Key};
use crate::triplet::Normalizer;
use crate::whitelist::Whitelists;

/// Every command's name, for `dispatch` and `command_first`.
pub const COMMANDS: [&str; 5] = ["stats", "dump", "check", "delete", "whitelist"];

/// The subcommands, or `None` when `args` does not start with one.
pub fn dispatch(args: &[String]) -> Option<ExitCode> {
    let (cmd, rest) = args.split_first()?;
    if !COMMANDS.contains(&cmd.as_str()) {
        return None;
    }
    Some(match run(cmd, rest) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {cmd}: {e}", Service::NAME);
            ExitCode::from(1)
        }
    })
}

struct Options {
    config: Option<PathBuf>,
    json: bool,
    /// `delete --client | --sender | --domain`.
    by: Option<By>,
    args: Vec<String>,
}

/// What `delete` removes besides a whole triplet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Client,
    Sender,
    Domain,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { config: None, json: false, by: None, args: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let by = match a.as_str() {
            "-c" | "--config" => {
                o.config = Some(PathBuf::from(it.next().ok_or("--config needs a file path")?));
                continue;
            }
            "--json" => {
                o.json = true;
                continue;
            }
            "--client" => By::Client,
            "--sender" => By::Sender,
            "--domain" => By::Domain,
            // A sender may be empty (the null sender): only option-looking words are options.
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s:?}")),
            s => {
                o.args.push(s.to_owned());
                continue;
            }
        };
        if o.by.replace(by).is_some() {
            return Err("give one of --client, --sender and --domain".into());
        }
    }
    Ok(o)
}

const USAGE_CHECK: &str = "usage: postward-greyd check ADDRESS|HOSTNAME|NAME[ADDR]|EMAIL";
const USAGE_DELETE: &str =
    "usage: postward-greyd delete CLIENT SENDER RECIPIENT | --client ADDRESS | --sender ADDRESS | --domain DOMAIN";
const USAGE_WHITELIST: &str = "usage: postward-greyd whitelist ADDRESS";

fn run(cmd: &str, args: &[String]) -> Result<ExitCode, String> {
    let o = parse(args)?;
    let (config, _) = shared::daemon::load_config_from::<Config>(o.config.as_deref(), Service::DEFAULT_CONFIG)
        .map_err(|e| format!("invalid configuration: {e}"))?;
    if o.by.is_some() && cmd != "delete" {
        return Err(format!("{cmd} takes no --client, --sender or --domain"));
    }
    match cmd {
        "check" => match o.args.as_slice() {
            [query] => check(&config, query),
            _ => Err(USAGE_CHECK.into()),
        },
        "delete" => {
            let target = DeleteTarget::from_args(o.by, &o.args)?;
            let normalizer = Normalizer::from_config(&config.greylist)?;
            with_store(&config, async |store| delete(store, &normalizer, &target).await)
        }
        "whitelist" => match o.args.as_slice() {
            [client] => {
                let ip =
                    client_ip(client).ok_or_else(|| format!("{client:?} is not an IP address\n{USAGE_WHITELIST}"))?;
                with_store(&config, async |store| whitelist(store, &config, ip).await)
            }
            _ => Err(USAGE_WHITELIST.into()),
        },
        _ if !o.args.is_empty() => Err(format!("{cmd} takes no argument")),
        "stats" => with_store(&config, async |store| stats(store, o.json).await),
        _ => with_store(&config, async |store| dump(store).await),
    }
}

/// Runs `f` on the configured store: never creates the SQLite database, and run as root
/// works as the database's owner (see [`become_owner_of`]).
fn with_store(config: &Config, f: impl AsyncFnOnce(&Store) -> Result<ExitCode, String>) -> Result<ExitCode, String> {
    let url = config.store.effective_url();
    if let Some(file) = crate::store::sqlite_file(&url).map_err(|e| e.to_string())? {
        become_owner_of(&file)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // Reports read whole tables: give them minutes, not the request path's seconds.
        let options = StoreOptions {
            max_connections: 1,
            op_timeout: std::time::Duration::from_secs(600),
            ..StoreOptions::default()
        };
        let store = Store::open(&url, &options).await.map_err(|e| e.to_string())?;
        let result = f(&store).await;
        store.close().await;
        result
    })
}

/// The commands never create the SQLite database, and never leave a file in its directory
/// that the daemon cannot write: a missing database is an error, and run as root they
/// switch to the database's owner first (SQLite makes `-wal` and `-shm` files beside it
/// when the daemon is not running; root-owned, they would make the daemon's store
/// read-only, and greylisting would stop).
fn become_owner_of(file: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("no greylist database at {} yet: greyd makes it on its first start", file.display())
        }
        _ => format!("cannot read {}: {e}", file.display()),
    })?;
    if !nix::unistd::geteuid().is_root() || meta.uid() == 0 {
        return Ok(());
    }
    let (uid, gid) = (nix::unistd::Uid::from_raw(meta.uid()), nix::unistd::Gid::from_raw(meta.gid()));
    nix::unistd::setgroups(&[gid]).map_err(|e| format!("cannot drop supplementary groups: {e}"))?;
    nix::unistd::setgid(gid).map_err(|e| format!("cannot switch to group {gid}: {e}"))?;
    nix::unistd::setuid(uid)
        .map_err(|e| format!("cannot switch to user {uid}, the owner of {}: {e}", file.display()))?;
    Ok(())
}

fn check(config: &Config, query: &str) -> Result<ExitCode, String> {
    let wl = &config.whitelist;
    let lists = Whitelists::load(&wl.clients, &wl.recipients, &wl.senders, wl.builtins()).map_err(|e| e.to_string())?;
    let mut lines: Vec<String> = lists.check(query).iter().map(ToString::to_string).collect();
    lines.extend(auto_whitelisted(config, query)?);
    if lines.is_empty() {
        println!("{query}: no whitelist entry matches");
        return Ok(ExitCode::from(1));
    }
    for line in lines {
        println!("{query}: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// For an address (or `name[addr]`): whether the client auto-whitelist holds it, read from
/// the store as `stats` reads it. `None` when it does not, or there is no store yet.
fn auto_whitelisted(config: &Config, query: &str) -> Result<Option<String>, String> {
    let threshold = config.greylist.auto_whitelist_clients;
    let Some(ip) = client_ip(query) else { return Ok(None) };
    if threshold <= 0 {
        return Ok(None);
    }
    let url = config.store.effective_url();
    if let Some(file) = crate::store::sqlite_file(&url).map_err(|e| e.to_string())? {
        if !file.exists() {
            return Ok(None);
        }
        become_owner_of(&file)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
        let store = Store::open(&url, &options).await.map_err(|e| e.to_string())?;
        let passes = store.client_passes(&ip.to_string()).await.map_err(|e| e.to_string());
        store.close().await;
        let passes = passes?;
        Ok((passes >= threshold).then(|| {
            format!("auto-whitelisted client ({passes} passes; greylist.auto_whitelist_clients = {threshold})")
        }))
    })
}

async fn stats(store: &Store, json: bool) -> Result<ExitCode, String> {
    let now = crate::service::unix_now();
    let s = store.stats(now).await.map_err(|e| e.to_string())?;
    if json {
        println!("{}", serde_json::to_string(&s).map_err(|e| e.to_string())?);
        return Ok(ExitCode::SUCCESS);
    }
    let share = |n: i64| {
        if s.triplets > 0 { 100.0 * n as f64 / s.triplets as f64 } else { 0.0 }
    };
    println!("store            {}", store.display_url());
    println!("triplets         {}", s.triplets);
    println!("  passed         {} ({:.1}%)", s.passed, share(s.passed));
    println!("  waiting        {} ({:.1}%)", s.waiting, share(s.waiting));
    println!("auto-whitelist   {} clients, {} sender domains", s.awl_clients, s.awl_domains);
    println!("never retried, by client network (likely spam sources):");
    for (net, n) in &s.unretried_clients {
        println!("  {n:>8}  {net}");
    }
    println!("never retried, by sender:");
    for (sender, n) in &s.unretried_senders {
        println!("  {n:>8}  {sender}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn dump(store: &Store) -> Result<ExitCode, String> {
    for row in store.dump().await.map_err(|e| e.to_string())? {
        println!("{}", serde_json::to_string(&row).map_err(|e| e.to_string())?);
    }
    Ok(ExitCode::SUCCESS)
}

/// An address as the mail log shows a client: `192.0.2.7`, `name[192.0.2.7]`, `[2001:db8::7]`,
/// canonical (an IPv4-mapped IPv6 address is the IPv4 address, as in the request path).
fn client_ip(text: &str) -> Option<std::net::IpAddr> {
    let address = text.rsplit_once('[').map_or(text, |(_, a)| a.trim_end_matches(']'));
    address.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// What `delete` was asked to remove, as typed.
enum DeleteTarget {
    Triplet { client: std::net::IpAddr, sender: String, recipient: String },
    Client(std::net::IpAddr),
    Sender(String),
    Domain(String),
}

impl DeleteTarget {
    fn from_args(by: Option<By>, args: &[String]) -> Result<DeleteTarget, String> {
        let ip = |s: &str| client_ip(s).ok_or_else(|| format!("{s:?} is not an IP address\n{USAGE_DELETE}"));
        Ok(match (by, args) {
            (None, [client, sender, recipient]) => DeleteTarget::Triplet {
                client: ip(client)?,
                sender: strip_angles(sender).to_owned(),
                recipient: strip_angles(recipient).to_owned(),
            },
            (Some(By::Client), [client]) => DeleteTarget::Client(ip(client)?),
            (Some(By::Sender), [sender]) => DeleteTarget::Sender(strip_angles(sender).to_owned()),
            (Some(By::Domain), [domain]) if !domain.is_empty() && !domain.contains('@') => {
                DeleteTarget::Domain(domain.trim_end_matches('.').to_ascii_lowercase())
            }
            _ => return Err(USAGE_DELETE.into()),
        })
    }
}

/// `<a@example.org>` as the log shows it is `a@example.org`; `<>` stays the null sender.
fn strip_angles(address: &str) -> &str {
    match address.strip_prefix('<').and_then(|a| a.strip_suffix('>')) {
        Some(inner) if !inner.is_empty() => inner,
        _ => address,
    }
}

async fn delete(store: &Store, n: &Normalizer, target: &DeleteTarget) -> Result<ExitCode, String> {
    let (what, deleted) = match target {
        DeleteTarget::Triplet { client, sender, recipient } => {
            let t = n.triplet(*client, sender, recipient);
            let key = Key { client_net: &t.client_net, sender: &t.sender, recipient: &t.recipient };
            let what =
                format!("triplet ({}, {}, {})", t.client_net, shown(sender, &t.sender), shown(recipient, &t.recipient));
            (what, store.delete(&Removal::Triplet(key)).await)
        }
        DeleteTarget::Client(ip) => {
            let net = n.client_net(*ip);
            let removal = Removal::Client { client_net: &net, client: &ip.to_string() };
            (format!("client {ip} (network {net})"), store.delete(&removal).await)
        }
        DeleteTarget::Sender(sender) => {
            let stored = n.protect(crate::triplet::normalize_sender(sender));
            (format!("sender {}", shown(sender, &stored)), store.delete(&Removal::Sender(&stored)).await)
        }
        DeleteTarget::Domain(domain) => {
            let stored = n.domain_of(&format!("x@{domain}"));
            (format!("sender domain {domain}"), store.delete(&Removal::Domain(&stored)).await)
        }
    };
    let deleted = deleted.map_err(|e| e.to_string())?;
    if deleted.total() == 0 {
        println!("{what}: nothing stored, nothing deleted");
        return Ok(ExitCode::from(1));
    }
    println!("{what}: deleted {}", describe(&deleted));
    println!("running greyd daemons sharing {} apply it within 5 s", store.display_url());
    Ok(ExitCode::SUCCESS)
}

/// A key part as typed, with its stored form when normalization changed it.
fn shown(typed: &str, stored: &str) -> String {
    if stored.starts_with("k:") {
        format!("{typed} (stored hashed)")
    } else if typed == stored {
        typed.to_owned()
    } else {
        format!("{typed} (stored as {stored})")
    }
}

fn describe(d: &Deleted) -> String {
    let part = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if d.greylist > 0 {
        parts.push(part(d.greylist, "greylist entry", "greylist entries"));
    }
    if d.awl_clients > 0 {
        parts.push(part(d.awl_clients, "client auto-whitelist entry", "client auto-whitelist entries"));
    }
    if d.awl_domains > 0 {
        parts.push(part(d.awl_domains, "sender-domain auto-whitelist entry", "sender-domain auto-whitelist entries"));
    }
    parts.join(", ")
}

async fn whitelist(store: &Store, config: &Config, ip: std::net::IpAddr) -> Result<ExitCode, String> {
    let threshold = config.greylist.auto_whitelist_clients;
    if threshold <= 0 {
        return Err(format!(
            "the client auto-whitelist is off (greylist.auto_whitelist_clients = {threshold}): \
             list {ip} in whitelist.clients instead"
        ));
    }
    let passes = store.whitelist_client(&ip.to_string(), threshold, crate::service::unix_now()).await;
    let passes = passes.map_err(|e| e.to_string())?;
    println!(
        "{ip}: auto-whitelisted ({passes} passes; greylist.auto_whitelist_clients = {threshold}); \
         it expires after greylist.max_age without mail, like any auto-whitelist entry \
         (for a permanent entry, list it in whitelist.clients)"
    );
    println!("running greyd daemons sharing {} apply it within 5 s", store.display_url());
    Ok(ExitCode::SUCCESS)
}
