//! `postward-authd pw [-s SCHEME] [-r ROUNDS] [-p PASSWORD] [-t STORED] [-l]`: prints a
//! stored password for a passwd-file or an SQL column, in `doveadm pw`'s format, or (`-t`)
//! checks a password against one, as `doveadm pw -t` does.
//!
//! An empty password is refused: a `pw </dev/null` in a script would otherwise print a
//! valid hash of "" that logs anyone in.

use std::process::ExitCode;

use crate::scheme::{Scheme, Stored, hash, hash_yescrypt};

/// The scheme `pw` uses without `-s`: what distributions use for /etc/shadow and what every
/// Dovecot since 2.0 verifies.
const DEFAULT: Scheme = Scheme::Sha512Crypt;

/// `-s YESCRYPT`: `{CRYPT}$y$…`, the Debian 11+ and Fedora 35+ shadow default (Dovecot has
/// no scheme of that name; its CRYPT verifies it through libxcrypt, as authd's does).
const YESCRYPT: &str = "YESCRYPT";

/// What `-s` asked for.
enum Output {
    Scheme(Scheme),
    Yescrypt,
}

pub(super) fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut output = Output::Scheme(DEFAULT);
    let mut rounds = None;
    let mut password = None;
    let mut check = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or_else(|| format!("{a} needs {what}"));
        match a.as_str() {
            "-s" => {
                let name = value("a scheme")?;
                output = if name.eq_ignore_ascii_case(YESCRYPT) {
                    Output::Yescrypt
                } else {
                    Output::Scheme(name.parse().map_err(|e| format!("{e}"))?)
                };
            }
            "-r" => rounds = Some(value("a number")?.parse::<u32>().map_err(|_| "-r needs a number".to_owned())?),
            "-p" => password = Some(value("a password")?),
            "-t" => check = Some(value("a stored password ({SCHEME}hash)")?),
            // The global option, accepted before or after `pw`: pw needs no configuration.
            "-c" | "--config" => {
                value("a file path")?;
            }
            "-l" => {
                let mut names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
                names.push(YESCRYPT);
                println!("{}", names.join(" "));
                return Ok(ExitCode::SUCCESS);
            }
            "-h" | "--help" => {
                println!(
                    "usage: {name} pw [-s SCHEME] [-r ROUNDS] [-p PASSWORD] [-l]\n       {name} pw -t STORED [-p PASSWORD]\n\
                     Prints {{SCHEME}}hash for a passwd-file or SQL column (default {DEFAULT}; -l lists the\n\
                     schemes, YESCRYPT among them as {{CRYPT}}$y$...). -t checks a password against a stored\n\
                     one: exit status 0 when it matches, 1 when not. Without -p the password is asked for\n\
                     (twice when hashing) or read from a pipe. An empty password is refused.",
                    name = crate::NAME
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument {other:?} (see pw --help)")),
        }
    }
    if let Some(stored) = check {
        if !stored.starts_with('{') {
            return Err("-t needs the stored password with its scheme: {SCHEME}hash".to_owned());
        }
        let stored = Stored::parse(&stored, Scheme::Plain).map_err(|e| format!("-t: {e}"))?;
        let password = match password {
            Some(p) => p,
            None => super::read_password("Enter password to verify: ", false)?,
        };
        refuse_empty(&password)?;
        return Ok(if stored.verify(password.as_bytes()) {
            println!("{} matches", stored.scheme());
            ExitCode::SUCCESS
        } else {
            println!("{} does not match", stored.scheme());
            ExitCode::from(1)
        });
    }
    let password = match password {
        Some(p) => p,
        None => super::read_password("Enter new password: ", true)?,
    };
    refuse_empty(&password)?;
    let stored = match output {
        Output::Scheme(scheme) => hash(scheme, password.as_bytes(), rounds),
        Output::Yescrypt if rounds.is_some() => return Err("-r is not supported with YESCRYPT".to_owned()),
        Output::Yescrypt => hash_yescrypt(password.as_bytes()),
    }
    .map_err(|e| e.to_string())?;
    println!("{stored}");
    Ok(ExitCode::SUCCESS)
}

fn refuse_empty(password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the password is empty (nothing was typed, or the pipe held no line); refused".to_owned());
    }
    Ok(())
}
