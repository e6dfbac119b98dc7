//! `postward-authd pw [-s SCHEME] [-r ROUNDS] [-p PASSWORD] [-l]`: prints a stored password
//! for a passwd-file or an SQL column, in `doveadm pw`'s format.

use std::process::ExitCode;

use crate::scheme::{Scheme, hash};

/// The scheme `pw` uses without `-s`: what distributions use for /etc/shadow and what every
/// Dovecot since 2.0 verifies.
const DEFAULT: Scheme = Scheme::Sha512Crypt;

pub(super) fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut scheme = DEFAULT;
    let mut rounds = None;
    let mut password = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or_else(|| format!("{a} needs {what}"));
        match a.as_str() {
            "-s" => scheme = value("a scheme")?.parse().map_err(|e| format!("{e}"))?,
            "-r" => rounds = Some(value("a number")?.parse::<u32>().map_err(|_| "-r needs a number".to_owned())?),
            "-p" => password = Some(value("a password")?),
            "-l" => {
                let names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
                println!("{}", names.join(" "));
                return Ok(ExitCode::SUCCESS);
            }
            "-h" | "--help" => {
                println!(
                    "usage: {} pw [-s SCHEME] [-r ROUNDS] [-p PASSWORD] [-l]\n\
                     Prints {{SCHEME}}hash for a passwd-file or SQL column (default {DEFAULT}).\n\
                     Without -p the password is asked for twice (or read from a pipe).",
                    crate::NAME
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument {other:?} (see pw --help)")),
        }
    }
    let password = match password {
        Some(p) => p,
        None => super::read_password("Enter new password: ", true)?,
    };
    let stored = hash(scheme, password.as_bytes(), rounds).map_err(|e| e.to_string())?;
    println!("{stored}");
    Ok(ExitCode::SUCCESS)
}
