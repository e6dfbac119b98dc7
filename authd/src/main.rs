//! postward-authd(8).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use shared::daemon::Cli;

fn main() -> ExitCode {
    let cli = match Cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", authd::NAME);
            return ExitCode::from(64);
        }
    };
    if cli.version {
        println!("{} {}", authd::NAME, env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let path = cli.config.clone().or_else(|| Some(PathBuf::from(authd::DEFAULT_CONFIG)).filter(|p| p.exists()));
    let checked = match &path {
        Some(p) => shared::config::load_checked::<authd::Config>(p).map(drop),
        None => shared::config::check(&authd::Config::default(), None, Path::new("(built-in defaults)")),
    };
    if let Err(e) = checked {
        eprintln!("{}: invalid configuration: {e}", authd::NAME);
        return ExitCode::from(78);
    }
    if cli.check_config {
        println!("{}: configuration is valid", authd::NAME);
        return ExitCode::SUCCESS;
    }
    eprintln!("{}: the Dovecot auth protocol server is not implemented in this release", authd::NAME);
    ExitCode::from(1)
}
