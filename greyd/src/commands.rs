//! `postward-greyd stats | dump | check`: the administrator's view of the greylist, like
//! postgreyreport and sqlgrey-logstats, without a running daemon.
//!
//! - `stats [--json]`: counts, pass/defer shares, and the clients and senders that never retried
//!   (likely spam sources, or legitimate senders that need a whitelist entry).
//! - `dump`: every greylist row as one JSON object per line.
//! - `check QUERY`: which whitelist entry, if any, matches an address, hostname, `name[addr]`
//!   or email address.

use std::path::PathBuf;
use std::process::ExitCode;

use shared::daemon::Daemon;

use crate::config::Config;
use crate::service::Service;
use crate::store::{Store, StoreOptions};
use crate::whitelist::Whitelists;

/// The subcommands, or `None` when `args` does not start with one.
pub fn dispatch(args: &[String]) -> Option<ExitCode> {
    let (cmd, rest) = args.split_first()?;
    if !matches!(cmd.as_str(), "stats" | "dump" | "check") {
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
    query: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { config: None, json: false, query: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--config" => o.config = Some(PathBuf::from(it.next().ok_or("--config needs a file path")?)),
            "--json" => o.json = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s if o.query.is_none() => o.query = Some(s.to_owned()),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    Ok(o)
}

fn run(cmd: &str, args: &[String]) -> Result<ExitCode, String> {
    let o = parse(args)?;
    let (config, _) = shared::daemon::load_config_from::<Config>(o.config.as_deref(), Service::DEFAULT_CONFIG)
        .map_err(|e| format!("invalid configuration: {e}"))?;
    if cmd == "check" {
        let query = o.query.ok_or("usage: postward-greyd check ADDRESS|HOSTNAME|NAME[ADDR]|EMAIL")?;
        return check(&config, &query);
    }
    if o.query.is_some() {
        return Err(format!("{cmd} takes no argument"));
    }
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
        let result = if cmd == "stats" { stats(&store, o.json).await } else { dump(&store).await };
        store.close().await;
        result
    })
}

/// The reports never create the SQLite database, and never leave a file in its directory
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
    let address = query.rsplit_once('[').map_or(query, |(_, a)| a.trim_end_matches(']'));
    let Ok(ip) = address.parse::<std::net::IpAddr>() else { return Ok(None) };
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
        let passes = store.client_passes(&ip.to_canonical().to_string()).await.map_err(|e| e.to_string());
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
