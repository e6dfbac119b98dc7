//! `postward-authd test [-a ADDR] [-m MECH] [-s SERVICE] [-r RIP] USER [PASSWORD]`:
//! authenticates through the running daemon's socket, as Postfix would, and says what the
//! daemon answered (exit 0 for OK, 1 for FAIL, 2 for anything else).

use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Longer than the daemon's reply budget, so its answer always arrives.
const TIMEOUT: Duration = Duration::from_secs(15);

struct Options {
    config: Option<std::path::PathBuf>,
    addr: Option<String>,
    mech: String,
    service: String,
    rip: String,
    user: String,
    password: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        config: None,
        addr: None,
        mech: "PLAIN".to_owned(),
        service: "smtp".to_owned(),
        rip: "127.0.0.1".to_owned(),
        user: String::new(),
        password: None,
    };
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or_else(|| format!("{a} needs {what}"));
        match a.as_str() {
            "-c" | "--config" => o.config = Some(value("a file path")?.into()),
            "-a" => o.addr = Some(value("a socket address")?),
            "-m" => o.mech = value("a mechanism")?.to_ascii_uppercase(),
            "-s" => o.service = value("a service name")?,
            "-r" => o.rip = value("an address")?,
            "-h" | "--help" => {
                return Err(format!(
                    "usage: {} test [-c CONFIG] [-a unix:/path|inet:host:port] [-m PLAIN|LOGIN] [-s SERVICE] [-r RIP] USER [PASSWORD]",
                    crate::NAME
                ));
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s => positional.push(s.to_owned()),
        }
    }
    let mut positional = positional.into_iter();
    o.user = positional.next().ok_or("USER missing (see test --help)")?;
    o.password = positional.next();
    if !matches!(o.mech.as_str(), "PLAIN" | "LOGIN") {
        return Err("test speaks PLAIN and LOGIN".to_owned());
    }
    Ok(o)
}

pub(super) fn run(args: &[String]) -> Result<ExitCode, String> {
    let o = parse(args)?;
    let addr = match &o.addr {
        Some(a) => a.clone(),
        None => {
            let (config, _) =
                shared::daemon::load_config_from::<crate::Config>(o.config.as_deref(), crate::DEFAULT_CONFIG)
                    .map_err(|e| format!("invalid configuration: {e}"))?;
            config.server.listen.first().map_or_else(|| crate::DEFAULT_LISTEN.to_owned(), ToString::to_string)
        }
    };
    let password = match &o.password {
        Some(p) => p.clone(),
        None => super::read_password("Password: ", false)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let answer = runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, converse(&addr, &o, &password))
            .await
            .map_err(|_| format!("no answer from {addr} within {TIMEOUT:?}"))?
    })?;
    println!("{answer}");
    Ok(if answer.starts_with("OK") { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn converse(addr: &str, o: &Options, password: &str) -> Result<String, String> {
    if let Some(path) = addr.strip_prefix("unix:") {
        let s = tokio::net::UnixStream::connect(path).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        exchange(s, o, password).await
    } else if let Some(hostport) = addr.strip_prefix("inet:") {
        let s = tokio::net::TcpStream::connect(hostport).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        exchange(s, o, password).await
    } else {
        Err(format!("{addr}: expected unix:/path or inet:host:port"))
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: S, o: &Options, password: &str) -> Result<String, String> {
    let io = |e: std::io::Error| format!("connection: {e}");
    let mut s = BufReader::new(stream);
    s.get_mut().write_all(format!("VERSION\t1\t0\nCPID\t{}\n", std::process::id()).as_bytes()).await.map_err(io)?;
    let mut line = String::new();
    let mut mechs = Vec::new();
    loop {
        line.clear();
        if s.read_line(&mut line).await.map_err(io)? == 0 {
            return Err("connection closed during the handshake".to_owned());
        }
        let l = line.trim_end();
        if let Some(m) = l.strip_prefix("MECH\t") {
            mechs.push(m.split('\t').next().unwrap_or_default().to_owned());
        }
        if l == "DONE" {
            break;
        }
    }
    if !mechs.iter().any(|m| m.eq_ignore_ascii_case(&o.mech)) {
        return Err(format!("the daemon does not offer {} (offers: {})", o.mech, mechs.join(" ")));
    }
    let mut auth = format!("AUTH\t1\t{}\tservice={}\tnologin\tlip=127.0.0.1\trip={}", o.mech, o.service, o.rip);
    let mut answers = Vec::new();
    if o.mech == "PLAIN" {
        auth.push_str(&format!("\tresp={}", STANDARD.encode(format!("\0{}\0{password}", o.user))));
    } else {
        answers.push(STANDARD.encode(&o.user));
        answers.push(STANDARD.encode(password));
    }
    auth.push('\n');
    s.get_mut().write_all(auth.as_bytes()).await.map_err(io)?;
    let mut answers = answers.into_iter();
    loop {
        line.clear();
        if s.read_line(&mut line).await.map_err(io)? == 0 {
            return Err("connection closed before the answer".to_owned());
        }
        let l = line.trim_end();
        let mut f = l.split('\t');
        let (cmd, id) = (f.next().unwrap_or_default(), f.next().unwrap_or_default());
        if id != "1" {
            continue;
        }
        match cmd {
            "OK" | "FAIL" => return Ok(l.replace('\t', " ")),
            "CONT" => {
                let answer = answers.next().ok_or("more challenges than LOGIN has")?;
                s.get_mut().write_all(format!("CONT\t1\t{answer}\n").as_bytes()).await.map_err(io)?;
            }
            _ => {}
        }
    }
}
