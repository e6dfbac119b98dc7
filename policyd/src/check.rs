//! `postward-policyd check`: what the daemon would answer for a client, and why.
//!
//! Runs the same pipeline as the daemon (same configuration, same resolver settings): checks
//! the DNS lists' test points, then prints each list query with its answer and the score,
//! each SPF identity's result with the mechanisms evaluated (viaspf's trace), and the action
//! line. Exit status: 0 when the answer accepts, 1 when it refuses, 64 for a
//! bad command line, 78 for a bad configuration.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use shared::policy::{PolicyRequest, RawRequest};

use crate::dnsbl::{DnsblCheck, DnsblReport};
use crate::message::Message;
use crate::spf::{Evaluation, SpfReport};
use crate::{Reports, Service};

const USAGE: &str = "usage: postward-policyd check --ip ADDR [--helo NAME] [--sender ADDR] [--client-name NAME]
                              [--reverse-client-name NAME] [--sasl-username USER] [--config PATH]

Prints each DNS list query with its answer, the score, the SPF result of each identity with
the mechanisms evaluated, and the action postward-policyd would answer. The sender may be empty (--sender '') for the null sender.";

/// Parsed options.
#[derive(Debug, Default)]
struct Options {
    ip: String,
    helo: String,
    sender: String,
    client_name: Option<String>,
    reverse_client_name: Option<String>,
    sasl_username: String,
    config: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{name} needs a value"));
        match name {
            "--ip" => o.ip = value()?,
            "--helo" => o.helo = value()?,
            "--sender" => o.sender = value()?,
            "--client-name" => o.client_name = Some(value()?),
            "--reverse-client-name" => o.reverse_client_name = Some(value()?),
            "--sasl-username" => o.sasl_username = value()?,
            "-c" | "--config" => o.config = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown option {arg:?}")),
        }
    }
    if o.ip.is_empty() {
        return Err("--ip is required".into());
    }
    Ok(o)
}

/// Runs the command; `args` follow the word `check`.
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("postward-policyd check: {e}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let config = match shared::daemon::load_config_from::<crate::Config>(
        options.config.as_deref(),
        <Service as shared::daemon::Daemon>::DEFAULT_CONFIG,
    ) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("postward-policyd check: invalid configuration: {e}");
            return ExitCode::from(78);
        }
    };
    let request = match request(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postward-policyd check: {e}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postward-policyd check: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let service = match Service::new(Arc::new(config)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("postward-policyd check: {e}");
                return ExitCode::from(1);
            }
        };
        let Some(ip) = request.client_address else {
            eprintln!("postward-policyd check: --ip is not an address");
            return ExitCode::from(64);
        };
        if let Some(dnsbl) = service.dnsbl() {
            dnsbl.probe_all().await;
        }
        let (verdict, reports) = service.evaluate(&request, ip, true).await;
        print!("{}", render(&request, service.dnsbl(), &reports));
        let refused = verdict.refuse.is_some();
        let headers = verdict.headers.clone();
        let first = Message::new(verdict).answer(&request.protocol_state);
        println!("action: {first}");
        for h in headers.iter().skip(1) {
            println!("next recipient or DATA: PREPEND {h}");
        }
        if refused { ExitCode::from(1) } else { ExitCode::SUCCESS }
    })
}

fn request(o: &Options) -> Result<PolicyRequest, String> {
    let mut attributes = vec![
        ("request", "smtpd_access_policy".to_owned()),
        ("protocol_state", "RCPT".to_owned()),
        ("protocol_name", "ESMTP".to_owned()),
        ("client_address", o.ip.clone()),
        ("helo_name", o.helo.clone()),
        ("sender", o.sender.clone()),
        ("recipient", "postmaster@localhost".to_owned()),
        ("sasl_username", o.sasl_username.clone()),
    ];
    if let Some(name) = &o.client_name {
        attributes.push(("client_name", name.clone()));
    }
    if let Some(name) = &o.reverse_client_name {
        attributes.push(("reverse_client_name", name.clone()));
    }
    let raw = RawRequest {
        attributes: attributes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        invalid_utf8: Vec::new(),
    };
    PolicyRequest::from_raw(raw).map_err(|e| e.to_string())
}

fn render(request: &PolicyRequest, dnsbl: Option<&DnsblCheck>, reports: &Reports) -> String {
    let mut out = String::new();
    let show = |s: &str| if s.is_empty() { "(none)".to_owned() } else { s.to_owned() };
    let _ = writeln!(
        out,
        "client {}, HELO {}, sender <{}>",
        request.client_address.map(|a| a.to_string()).unwrap_or_default(),
        show(&request.helo_name),
        request.sender
    );
    lists(&mut out, dnsbl, reports.dnsbl.as_ref());
    match &reports.spf {
        None => {
            let _ = writeln!(out, "spf: not evaluated (disabled, an exemption, or the DNS lists decided)");
        }
        Some(SpfReport::Exempt(why)) => {
            let _ = writeln!(out, "spf: exempt ({why})");
        }
        Some(SpfReport::Checked { helo, mail_from, decision, .. }) => {
            evaluation(&mut out, helo);
            match mail_from {
                Some(m) => evaluation(&mut out, m),
                None => {
                    let _ = writeln!(out, "mailfrom: not evaluated (the HELO result decided, RFC 7208 section 2.3)");
                }
            }
            let _ = writeln!(
                out,
                "decision: {} {} -> {}{}{}",
                decision.identity,
                decision.outcome,
                decision.configured,
                if decision.strict { " (strict domain)" } else { "" },
                decision.dry_run.as_ref().map(|a| format!(" (dry run, would answer {a})")).unwrap_or_default()
            );
        }
    }
    out
}

fn lists(out: &mut String, check: Option<&DnsblCheck>, report: Option<&DnsblReport>) {
    let Some(check) = check else {
        let _ = writeln!(out, "dnsbl: no lists configured");
        return;
    };
    for zone in check.zones() {
        if !zone.health.usable() {
            let _ = writeln!(out, "dnsbl: {} skipped: {}", zone.display, zone.health.broken_why());
        }
    }
    let Some(report) = report else {
        let _ = writeln!(out, "dnsbl: not evaluated (an exemption applies to every check)");
        return;
    };
    for line in &report.trace {
        let _ = writeln!(out, "dnsbl: {line}");
    }
    let outcome = report.outcome.map(|o| o.to_string()).unwrap_or_default();
    let _ = writeln!(out, "dnsbl score: {} -> {outcome}", report.score);
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "dnsbl reason: {reason}");
    }
}

fn evaluation(out: &mut String, e: &Evaluation) {
    let why = e.why();
    let _ = writeln!(
        out,
        "{}: {} for {}{}",
        e.identity,
        e.outcome,
        match (e.sender.is_empty(), e.domain.is_empty()) {
            (false, _) => e.sender.as_str(),
            (true, false) => e.domain.as_str(),
            (true, true) => "(nothing)",
        },
        if why.is_empty() { String::new() } else { format!(" ({why})") }
    );
    for line in &e.trace {
        let _ = writeln!(out, "    {line}");
    }
}
