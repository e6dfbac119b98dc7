//! The command line, parsed in two steps (ripgrep's low/high args): [`lex`] turns argv into
//! `--name value` pairs, then each subcommand takes the options it knows, checks them, and
//! refuses whatever is left over.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use postward_tests::auth_client::Mech;
use shared::listen::ListenAddr;

use crate::drivers::Target;
use crate::prefill::PrefillArgs;
use crate::runner::Stop;
use crate::workloads::population::Population;
use crate::workloads::{AuthSpec, Clients, DnsblSpec, GreylistSpec, History, Mix, PolicySpec, SpfSpec};

pub const USAGE: &str = "\
usage: postward-bench serve-trivial --listen ADDR
       postward-bench serve-dns --listen IP:PORT --zone-file FILE... [--delay NAME=D...]
       postward-bench policy (--target ADDR | --spawn CMD) [--workload W] [options]
       postward-bench auth --target ADDR [options]
       postward-bench prefill-greylist --triplets N [--prefill-seed S] [--greyd URL]
                      [--sqlgrey FILE] [--postgrey-dir DIR]

Load for postward's daemons (and the anchors they replace), sent as Postfix does: N persistent
connections, one request in flight on each. Reports requests/s, latency percentiles, errors
and the answers, as text or JSON.

serve-trivial: an always-DUNNO policy server on postward's own runtime (the protocol floor)
  --listen ADDR            unix:/path or inet:127.0.0.1:PORT; stops on SIGTERM/SIGINT

serve-dns: the in-process DNS fixture serving RFC 1035 zone files (UDP and TCP), so daemons
  and the anchors can be pointed at the same data. On SIGUSR1 it prints `queries N` (total
  so far) on stdout; on SIGTERM/SIGINT it prints the total and exits.
  --listen IP:PORT         e.g. 127.0.0.2:53 for programs that only read /etc/resolv.conf
  --zone-file FILE         a zone with its $ORIGIN (repeatable)
  --delay NAME=D           answer NAME and every name below it after D, e.g.
                           bl1.bench.test=5ms, as a list across the Internet would (repeatable)

prefill-greylist: writes a busy site's greylisting history (N triplets over 35 days: 12%
  pending, the rest passed, one auto-whitelisted client per 500) into greyd's store and, for
  comparison, sqlgrey's and postgrey's; `--workload greylist --prefilled N` then sends
  requests against it. Times are relative to now: run the load within a few hours.
  --triplets N             triplets in the history
  --prefill-seed S         the history's seed (default 1); the load must use the same
  --greyd URL              greyd's store URL (sqlite://FILE, postgres://…, mysql://…); its
                           schema is made by greyd's migrations
  --sqlgrey FILE           sqlgrey's SQLite database, made beforehand by sqlgrey itself;
                           client networks as its `greymethod = classc`
  --postgrey-dir DIR       writes DIR/postgrey.tsv and DIR/postgrey_clients.tsv (key TAB
                           value) for loading into postgrey's BerkeleyDB

Run options (policy, auth):
  --target ADDR            unix:/path or inet:HOST:PORT on this host (loopback only)
  --connections N          persistent connections (default 1)
  --requests N             measured requests per connection, or
  --duration D             measure for D, e.g. 10s, 500ms, 1m (default 10s)
  --warmup D               send unmeasured requests for D first (default 0s)
  --timeout D              limit per connect or request; past it: a timeout error (default 10s)
  --seed S                 seed of the generated requests (default 1)
  --pid PID                after the run, report VmRSS and VmHWM of process PID
  --json                   print one JSON object instead of text
  --json-out FILE          also write the JSON object to FILE
  --baseline NAME=FILE     report ratios to an earlier --json-out result (repeatable)

Policy options:
  --spawn CMD              instead of --target: start CMD (split on whitespace) once per
                           connection and speak on its stdin/stdout, as Postfix spawn(8)
  --workload W             trivial (default): one fixed Postfix 3.7 RCPT request
                           greylist: new and repeated (client, sender, recipient) triplets
                           spf: senders over --sender-domains from --clients addresses
                           dnsbl: client addresses from --clients
  --clients CIDR,...       client_address ranges, each equally likely (greylist, spf, dnsbl;
                           default 198.18.0.0/15)
  --new-fraction F         greylist: share of never-seen triplets (default 0.2)
  --pool N                 greylist: repeats come from the last N new triplets (default 10000)
  --prefilled N            greylist: against a store prefilled with N triplets (see
                           prefill-greylist; same --prefill-seed): the requests follow --mix
  --mix CLASS=F,...        greylist --prefilled: shares of new (never seen), early (retry of a
                           recent new one, before the delay), pass (retry of a pending stored
                           triplet), old (repeat of a passed one), awl (new sender from an
                           auto-whitelisted client); default new=0.6,early=0.1,pass=0.1,
                           old=0.15,awl=0.05
  --sender-domains D,...   greylist (default sender0.test,...,sender15.test), spf (required)
  --recipient-domain D     greylist, spf: recipients are rcptN@D (default example.net)
  --helo NAME              spf: HELO name (default mail.<sender domain>)
  --recipients-per-message K  spf: K requests share one message instance (default 1)

Auth options (Dovecot auth protocol, as Postfix's smtpd speaks it):
  --users N                users are numbered 0..N-1 (default 1000)
  --user-format F          user name, {} is the number (default user{})
  --password-format F      right password, {} is the number (default pass{})
  --wrong-fraction F       share of attempts with a wrong password (default 0.1)
  --mech M                 plain (default) or login

Exit status: 0 after a run (errors are in the report), 64 for a bad command line, 1 if the
run could not start (e.g. the first connection failed).
";

/// A parsed command line.
#[derive(Debug)]
pub enum Command {
    Help,
    ServeTrivial {
        listen: ListenAddr,
    },
    /// The DNS fixture serving zone files, for daemons under load.
    ServeDns {
        listen: std::net::SocketAddr,
        zones: Vec<PathBuf>,
        delays: Vec<(String, Duration)>,
    },
    Policy(PolicyArgs),
    Auth(AuthArgs),
    PrefillGreylist(PrefillArgs),
}

/// Options every load run has.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Target as shown in the report (`spawn:CMD` in spawn mode).
    pub target: String,
    pub connections: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub timeout: Duration,
    pub seed: u64,
    pub pid: Option<u32>,
    pub json: bool,
    pub json_out: Option<PathBuf>,
    pub baselines: Vec<(String, PathBuf)>,
}

#[derive(Debug)]
pub struct PolicyArgs {
    pub run: RunArgs,
    pub target: Target,
    pub workload: PolicySpec,
}

#[derive(Debug)]
pub struct AuthArgs {
    pub run: RunArgs,
    pub spec: AuthSpec,
}

/// Parses the arguments after the program name.
///
/// # Errors
/// A message naming the bad argument.
pub fn parse(args: Vec<String>) -> Result<Command, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let Some((sub, rest)) = args.split_first() else {
        return Err("a subcommand is needed: serve-trivial, serve-dns, policy or auth (see --help)".into());
    };
    let mut opts = lex(rest)?;
    let command = match sub.as_str() {
        "help" => Command::Help,
        "serve-trivial" => {
            let listen = opts.take("--listen")?.ok_or("serve-trivial needs --listen ADDR")?;
            let listen = parse_local_addr(&listen, "--listen")?;
            Command::ServeTrivial { listen }
        }
        "serve-dns" => {
            let listen = opts.take("--listen")?.ok_or("serve-dns needs --listen IP:PORT")?;
            let listen = listen.parse().map_err(|_| format!("--listen {listen:?}: expected IP:PORT"))?;
            let zones: Vec<PathBuf> = opts.take_all("--zone-file").into_iter().map(PathBuf::from).collect();
            if zones.is_empty() {
                return Err("serve-dns needs at least one --zone-file FILE".into());
            }
            let delays = opts
                .take_all("--delay")
                .into_iter()
                .map(|d| {
                    let (name, after) = d.split_once('=').ok_or(format!("--delay {d:?}: expected NAME=DURATION"))?;
                    Ok((name.to_owned(), duration(after)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Command::ServeDns { listen, zones, delays }
        }
        "policy" => Command::Policy(policy(&mut opts)?),
        "auth" => Command::Auth(auth(&mut opts)?),
        "prefill-greylist" => {
            let args = PrefillArgs {
                triplets: opts.value("--triplets", positive::<u64>)?.ok_or("prefill-greylist needs --triplets N")?,
                seed: prefill_seed(&mut opts)?,
                greyd: opts.take("--greyd")?,
                sqlgrey: opts.take("--sqlgrey")?.map(PathBuf::from),
                postgrey_dir: opts.take("--postgrey-dir")?.map(PathBuf::from),
            };
            if args.greyd.is_none() && args.sqlgrey.is_none() && args.postgrey_dir.is_none() {
                return Err("prefill-greylist needs --greyd, --sqlgrey or --postgrey-dir".into());
            }
            Command::PrefillGreylist(args)
        }
        other => {
            return Err(format!(
                "unknown subcommand {other:?} (expected serve-trivial, serve-dns, policy, auth or prefill-greylist)"
            ));
        }
    };
    opts.finish(sub)?;
    Ok(command)
}

fn policy(opts: &mut Opts) -> Result<PolicyArgs, String> {
    let spawn = opts.take("--spawn")?;
    let (target, shown) = match (opts.take("--target")?, spawn) {
        (Some(_), Some(_)) => return Err("give --target or --spawn, not both".into()),
        (None, None) => return Err("policy needs --target ADDR or --spawn CMD".into()),
        (Some(t), None) => {
            let addr = parse_local_addr(&t, "--target")?.to_string();
            (Target::Socket(addr.clone()), addr)
        }
        (None, Some(cmd)) => {
            let argv: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
            if argv.is_empty() {
                return Err("--spawn needs a command".into());
            }
            (Target::Spawn(argv), format!("spawn:{cmd}"))
        }
    };
    let run = run_args(opts, shown)?;
    let workload = opts.take("--workload")?.unwrap_or_else(|| "trivial".into());
    let clients = |opts: &mut Opts| -> Result<Clients, String> {
        opts.take("--clients")?.map_or(Ok(Clients::default()), |c| Clients::parse(&c))
    };
    let recipient_domain = |opts: &mut Opts| -> Result<String, String> {
        Ok(opts.take("--recipient-domain")?.unwrap_or_else(|| "example.net".into()))
    };
    let workload = match workload.as_str() {
        "trivial" => PolicySpec::Trivial,
        "greylist" => {
            let d = GreylistSpec::default();
            let history = match opts.value("--prefilled", positive::<u64>)? {
                Some(size) => Some(History {
                    population: Population::new(size, prefill_seed(opts)?),
                    mix: opts.value("--mix", Mix::parse)?.unwrap_or_default(),
                }),
                None => None,
            };
            let new_fraction = opts.value("--new-fraction", fraction)?;
            if history.is_some() && new_fraction.is_some() {
                return Err("--new-fraction does not go with --prefilled (the --mix gives the share of new)".into());
            }
            PolicySpec::Greylist(GreylistSpec {
                new_fraction: new_fraction.unwrap_or(d.new_fraction),
                pool: opts.value("--pool", positive::<usize>)?.unwrap_or(d.pool),
                clients: clients(opts)?,
                sender_domains: opts.value("--sender-domains", domains)?.unwrap_or(d.sender_domains),
                recipient_domain: recipient_domain(opts)?,
                history,
            })
        }
        "spf" => PolicySpec::Spf(SpfSpec {
            sender_domains: opts
                .value("--sender-domains", domains)?
                .ok_or("--workload spf needs --sender-domains D,...")?,
            clients: clients(opts)?,
            helo: opts.take("--helo")?,
            recipients_per_message: opts.value("--recipients-per-message", positive::<u32>)?.unwrap_or(1),
            recipient_domain: recipient_domain(opts)?,
        }),
        "dnsbl" => PolicySpec::Dnsbl(DnsblSpec { clients: clients(opts)? }),
        other => {
            return Err(format!("unknown workload {other:?} (expected trivial, greylist, spf or dnsbl)"));
        }
    };
    Ok(PolicyArgs { run, target, workload })
}

fn prefill_seed(opts: &mut Opts) -> Result<u64, String> {
    Ok(opts.value("--prefill-seed", |s| s.parse::<u64>().map_err(|_| "a number".to_owned()))?.unwrap_or(1))
}

fn auth(opts: &mut Opts) -> Result<AuthArgs, String> {
    let target = opts.take("--target")?.ok_or("auth needs --target ADDR")?;
    let target = parse_local_addr(&target, "--target")?.to_string();
    let run = run_args(opts, target)?;
    let defaults = AuthSpec::default();
    let format = |opts: &mut Opts, name: &str| -> Result<Option<String>, String> {
        let Some(f) = opts.take(name)? else { return Ok(None) };
        if f.is_empty() || f.chars().any(char::is_control) {
            return Err(format!("{name} {f:?} must be non-empty printable text"));
        }
        Ok(Some(f))
    };
    let spec = AuthSpec {
        users: opts.value("--users", positive::<u64>)?.unwrap_or(defaults.users),
        user_format: format(opts, "--user-format")?.unwrap_or(defaults.user_format),
        password_format: format(opts, "--password-format")?.unwrap_or(defaults.password_format),
        wrong_fraction: opts.value("--wrong-fraction", fraction)?.unwrap_or(defaults.wrong_fraction),
        mech: match opts.take("--mech")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("plain") => Mech::Plain,
            Some("login") => Mech::Login,
            Some(other) => return Err(format!("unknown --mech {other:?} (expected plain or login)")),
        },
    };
    Ok(AuthArgs { run, spec })
}

fn run_args(opts: &mut Opts, target: String) -> Result<RunArgs, String> {
    let stop = match (opts.value("--requests", positive::<u64>)?, opts.value("--duration", duration)?) {
        (Some(_), Some(_)) => return Err("give --requests or --duration, not both".into()),
        (Some(n), None) => Stop::Requests(n),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    let connections = opts.value("--connections", positive::<usize>)?.unwrap_or(1);
    if connections > 10_000 {
        return Err(format!("--connections {connections} is more than 10000"));
    }
    let mut baselines = Vec::new();
    for b in opts.take_all("--baseline") {
        let (label, file) = b
            .split_once('=')
            .filter(|(l, f)| !l.is_empty() && !f.is_empty())
            .ok_or_else(|| format!("--baseline {b:?} must be NAME=FILE"))?;
        baselines.push((label.to_owned(), PathBuf::from(file)));
    }
    Ok(RunArgs {
        target,
        connections,
        stop,
        warmup: opts.value("--warmup", shared::duration::parse)?.unwrap_or(Duration::ZERO),
        timeout: opts.value("--timeout", duration)?.unwrap_or(Duration::from_secs(10)),
        seed: opts.value("--seed", |s| s.parse::<u64>().map_err(|_| "a number".to_owned()))?.unwrap_or(1),
        pid: opts.value("--pid", positive::<u32>)?,
        json: opts.flag("--json"),
        json_out: opts.take("--json-out")?.map(PathBuf::from),
        baselines,
    })
}

/// A `unix:` or loopback `inet:` address: the tool only ever talks to this host.
fn parse_local_addr(text: &str, option: &str) -> Result<ListenAddr, String> {
    let addr: ListenAddr = text.parse().map_err(|e| format!("{option}: {e}"))?;
    match &addr {
        ListenAddr::Unix(_) => Ok(addr),
        ListenAddr::Inet { host, .. }
            if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) =>
        {
            Ok(addr)
        }
        ListenAddr::Inet { .. } => {
            Err(format!("{option} {text:?}: only unix: and loopback inet: addresses (127.0.0.0/8, ::1, localhost)"))
        }
        ListenAddr::Systemd => Err(format!("{option}: systemd is not an address to connect to")),
    }
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("a whole number above 0".into()),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err("a number from 0 to 1".into()),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    match shared::duration::parse(s)? {
        Duration::ZERO => Err("a duration above 0".into()),
        d => Ok(d),
    }
}

fn domains(s: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = s.split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned).collect();
    if list.is_empty() || list.iter().any(|d| d.contains(['@', ' ', '\t']) || d.chars().any(char::is_control)) {
        return Err("a comma-separated list of domain names".into());
    }
    Ok(list)
}

/// Options as given: `--name value`, `--name=value`, or a bare flag.
#[derive(Debug, Default)]
struct Opts(Vec<(String, Option<String>)>);

const FLAGS: &[&str] = &["--json"];

fn lex(args: &[String]) -> Result<Opts, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            return Err(format!("unexpected argument {arg:?} (options start with --)"));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if FLAGS.contains(&name.as_str()) {
            if inline.is_some() {
                return Err(format!("{name} takes no value"));
            }
            out.push((name, None));
        } else {
            let value = inline.or_else(|| it.next().cloned()).ok_or_else(|| format!("{name} needs a value"))?;
            out.push((name, Some(value)));
        }
    }
    Ok(Opts(out))
}

impl Opts {
    /// Removes and returns the value of `name`; giving it twice is an error.
    fn take(&mut self, name: &str) -> Result<Option<String>, String> {
        let mut values = self.take_all(name);
        if values.len() > 1 {
            return Err(format!("{name} given {} times", values.len()));
        }
        Ok(values.pop())
    }

    fn take_all(&mut self, name: &str) -> Vec<String> {
        let (hits, rest) = std::mem::take(&mut self.0).into_iter().partition::<Vec<_>, _>(|(n, _)| n == name);
        self.0 = rest;
        hits.into_iter().filter_map(|(_, v)| v).collect()
    }

    /// Takes and parses `name`; the error names the option and what it needs.
    fn value<T>(&mut self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
        self.take(name)?.map(|v| parse(&v).map_err(|need| format!("{name} {v:?}: expected {need}"))).transpose()
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(n, _)| n != name);
        self.0.len() != before
    }

    /// Refuses options nobody took: unknown, or not for this subcommand or workload.
    fn finish(self, sub: &str) -> Result<(), String> {
        match self.0.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!("{name} is not an option of {sub:?} here (see --help)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(str::to_owned).collect())
    }

    #[test]
    fn policy_runs() {
        let Command::Policy(p) =
            parse_line("policy --target unix:/tmp/s --connections 10 --requests 200 --json").unwrap()
        else {
            panic!()
        };
        assert_eq!(p.target, Target::Socket("unix:/tmp/s".into()));
        assert_eq!((p.run.connections, p.run.stop, p.run.json), (10, Stop::Requests(200), true));
        assert!(matches!(p.workload, PolicySpec::Trivial));

        let line = "policy --target=inet:127.0.0.1:10023 --workload greylist --new-fraction 0.3 --pool 50 --clients 127.16.0.0/16 --duration 5s --warmup 2s --seed 7";
        let Command::Policy(p) = parse_line(line).unwrap() else { panic!() };
        let PolicySpec::Greylist(g) = p.workload else { panic!() };
        assert_eq!((g.new_fraction, g.pool, g.sender_domains.len()), (0.3, 50, 16));
        assert_eq!(
            (p.run.stop, p.run.warmup, p.run.seed),
            (Stop::Duration(Duration::from_secs(5)), Duration::from_secs(2), 7)
        );

        let spawn = [
            "policy",
            "--spawn",
            "/usr/bin/policyd-spf  /etc/x.conf",
            "--workload",
            "spf",
            "--sender-domains",
            "a.test,b.test",
            "--recipients-per-message",
            "3",
        ];
        let Command::Policy(p) = parse(spawn.iter().map(|s| s.to_string()).collect()).unwrap() else { panic!() };
        assert_eq!(p.target, Target::Spawn(vec!["/usr/bin/policyd-spf".into(), "/etc/x.conf".into()]));
        let PolicySpec::Spf(s) = p.workload else { panic!() };
        assert_eq!((s.sender_domains.len(), s.recipients_per_message), (2, 3));

        let line =
            "policy --target unix:/s --workload greylist --prefilled 1000 --prefill-seed 3 --mix new=0.5,old=0.5";
        let Command::Policy(p) = parse_line(line).unwrap() else { panic!() };
        let PolicySpec::Greylist(g) = p.workload else { panic!() };
        let h = g.history.unwrap();
        assert_eq!((h.population.size, h.population.seed), (1000, 3));
        assert_eq!((h.mix.new, h.mix.old, h.mix.pass), (0.5, 0.5, 0.0));
        let Command::PrefillGreylist(a) =
            parse_line("prefill-greylist --triplets 5 --greyd sqlite:///tmp/g --postgrey-dir /tmp/p").unwrap()
        else {
            panic!()
        };
        assert_eq!((a.triplets, a.seed, a.sqlgrey), (5, 1, None));
    }

    #[test]
    fn auth_runs() {
        let Command::Auth(a) =
            parse_line("auth --target unix:/run/auth --users 50 --wrong-fraction 0 --mech LOGIN --requests 5").unwrap()
        else {
            panic!()
        };
        assert_eq!((a.spec.users, a.spec.wrong_fraction, a.spec.mech), (50, 0.0, Mech::Login));
        assert_eq!(a.spec.user_format, "user{}");
    }

    #[test]
    fn refused() {
        let cases = [
            ("", "a subcommand is needed"),
            ("bench", "unknown subcommand"),
            ("policy", "needs --target ADDR or --spawn"),
            ("policy --target inet:192.0.2.1:25", "only unix: and loopback"),
            ("policy --target unix:/s --spawn cat", "not both"),
            ("policy --target unix:/s --requests 5 --duration 5s", "not both"),
            ("policy --target unix:/s --requests 0", "--requests \"0\": expected a whole number above 0"),
            ("policy --target unix:/s --workload spf", "needs --sender-domains"),
            ("policy --target unix:/s --pool 5", "--pool is not an option of \"policy\""),
            ("policy --target unix:/s --workload dnsbl --helo x", "--helo is not an option"),
            ("policy --target unix:/s --workload greylist --new-fraction 1.5", "expected a number from 0 to 1"),
            ("policy --target unix:/s --clients 10.0.0.0/33 --workload dnsbl", "invalid client range"),
            ("policy --target unix:/s --bogus 1", "--bogus is not an option"),
            ("policy --target unix:/s --seed 1 --seed 2", "--seed given 2 times"),
            ("policy --target unix:/s --json=yes", "--json takes no value"),
            ("policy --target unix:/s --baseline floor", "must be NAME=FILE"),
            ("auth --target unix:/s --mech cram-md5", "unknown --mech"),
            ("auth --target unix:/s --connections", "--connections needs a value"),
            ("serve-trivial", "needs --listen"),
            ("prefill-greylist --greyd sqlite:///tmp/x", "needs --triplets"),
            ("prefill-greylist --triplets 10", "needs --greyd, --sqlgrey or --postgrey-dir"),
            ("policy --target unix:/s --workload greylist --prefilled 10 --new-fraction 0.5", "does not go with"),
            ("policy --target unix:/s --workload greylist --prefilled 10 --mix new=0.5", "add up to 0.5"),
            ("policy --target unix:/s --workload greylist --prefilled 10 --mix new=0.5,bogus=0.5", "unknown class"),
            ("policy --target unix:/s --workload greylist --mix new=1", "--mix is not an option"),
            ("serve-trivial --listen systemd", "not an address"),
        ];
        for (line, want) in cases {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(want), "{line:?}: {err:?} lacks {want:?}");
        }
        assert!(matches!(parse_line("policy --help"), Ok(Command::Help)));
    }
}
