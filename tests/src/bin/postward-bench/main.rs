//! postward-bench: the load tool. `serve-trivial` runs the always-DUNNO floor server;
//! `serve-dns` serves fixture zone files;
//! `policy` and `auth` run load against a policy or auth service and report the figures;
//! `prefill-greylist` writes a greylisting history into the stores a run starts from.
//!
//! This file only wires the pieces: `cli` (argv), `workloads` (what to send), `drivers`
//! (how to send it), `runner` (connections, timing), `report` (figures), `trivial` (the floor),
//! `prefill` (stores written before a run).

mod cli;
mod drivers;
mod prefill;
mod report;
mod rng;
mod runner;
mod trivial;
mod workloads;

#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use shared::listen::{ListenAddr, SocketPermissions};

use crate::cli::{AuthArgs, Command, PolicyArgs, RunArgs};
use crate::drivers::{AuthDriver, PolicyDriver};
use crate::report::{Meta, PidMemory, ProcMemory, Report};
use crate::runner::{Driver, Plan};
use crate::workloads::{AuthWorkload, PolicyWorkload};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("postward-bench: {e}");
            return ExitCode::from(64);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::ServeTrivial { listen } => serve_trivial(&listen),
        Command::ServeDns { listen, zones, delays } => {
            runtime().and_then(|rt| rt.block_on(serve_dns(listen, zones, delays)))
        }
        Command::Policy(args) => runtime().and_then(|rt| rt.block_on(policy(args))),
        Command::Auth(args) => runtime().and_then(|rt| rt.block_on(auth(args))),
        Command::PrefillGreylist(args) => runtime().and_then(|rt| rt.block_on(prefill::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postward-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")
}

/// Binds, then serves the floor until SIGTERM/SIGINT. Warnings go to stderr.
fn serve_trivial(listen: &ListenAddr) -> anyhow::Result<()> {
    let log = shared::logging::LogConfig { level: shared::logging::LogLevel::Warn, ..Default::default() };
    shared::logging::init("postward-bench", &log).map_err(anyhow::Error::msg)?;
    let perms = SocketPermissions { mode: 0o660, ..Default::default() };
    let listeners = shared::listen::bind_all(std::slice::from_ref(listen), &perms)?;
    runtime()?.block_on(trivial::serve_until_signal(listeners)).context("serve-trivial failed")
}

/// Serves zone files until SIGTERM/SIGINT, printing the query count on SIGUSR1 and at exit.
async fn serve_dns(
    listen: std::net::SocketAddr,
    zones: Vec<std::path::PathBuf>,
    delays: Vec<(String, std::time::Duration)>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let dns = postward_tests::dns::serve_files(&zones, &delays, listen).await.context("serve-dns")?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    println!("serving {} zone file(s) on {}", zones.len(), dns.addr());
    loop {
        tokio::select! {
            _ = usr1.recv() => println!("queries {}", dns.queries()),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    println!("queries {}", dns.queries());
    Ok(())
}

async fn policy(args: PolicyArgs) -> anyhow::Result<()> {
    let PolicyArgs { run, target, workload } = args;
    let target = Arc::new(target);
    let drivers = (0..run.connections)
        .map(|i| PolicyDriver::new(target.clone(), PolicyWorkload::new(&workload, run.seed, i, run.connections)))
        .collect();
    bench("policy", workload.name(), &run, drivers).await
}

async fn auth(args: AuthArgs) -> anyhow::Result<()> {
    let AuthArgs { run, spec } = args;
    let target: Arc<str> = run.target.as_str().into();
    let drivers = (0..run.connections)
        .map(|i| AuthDriver::new(target.clone(), AuthWorkload::new(&spec, run.seed, i), spec.mech, i))
        .collect();
    let workload = format!("auth-{}", spec.mech.name().to_ascii_lowercase());
    bench("auth", &workload, &run, drivers).await
}

/// Runs the drivers, then prints (and writes) the report.
async fn bench<D: Driver>(command: &'static str, workload: &str, run: &RunArgs, drivers: Vec<D>) -> anyhow::Result<()> {
    // Read the baselines first: a typo should not cost a whole run.
    let baselines = run
        .baselines
        .iter()
        .map(|(label, file)| Report::load(file).map(|r| (label, file, r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let plan = Plan { stop: run.stop, warmup: run.warmup, timeout: run.timeout };
    let outcome = runner::run(drivers, plan).await.map_err(|f| anyhow::anyhow!("cannot start the run: {f}"))?;
    let meta = Meta {
        command,
        workload: workload.to_owned(),
        target: run.target.clone(),
        connections: run.connections,
        seed: run.seed,
        warmup: run.warmup,
    };
    let mut report = Report::new(meta, outcome);
    if let Some(pid) = run.pid {
        match ProcMemory::read(pid) {
            Ok(memory) => report.memory = Some(PidMemory { pid, memory }),
            Err(e) => eprintln!("postward-bench: warning: cannot read memory of pid {pid}: {e}"),
        }
    }
    for (label, file, base) in &baselines {
        report.compare(label, file, base);
    }
    if let Some(path) = &run.json_out {
        let json = serde_json::to_string_pretty(&report)? + "\n";
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if run.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
