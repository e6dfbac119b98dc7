//! `postward-authd pw` and `postward-authd test`: the administrator's tools, like
//! `doveadm pw` and `doveadm auth test` / `testsaslauthd`.

mod pw;
mod test;

use std::process::ExitCode;

/// Runs a subcommand, or returns `None` when `args` does not start with one.
pub fn dispatch(args: &[String]) -> Option<ExitCode> {
    let (cmd, rest) = args.split_first()?;
    let result = match cmd.as_str() {
        "pw" => pw::run(rest),
        "test" => test::run(rest),
        _ => return None,
    };
    Some(result.unwrap_or_else(|e| {
        eprintln!("{}: {cmd}: {e}", crate::NAME);
        ExitCode::from(2)
    }))
}

/// Reads a password: from the terminal without echo (asked twice when `confirm`), or one
/// line from a pipe.
fn read_password(prompt: &str, confirm: bool) -> Result<String, String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let saved = tcgetattr(&stdin).map_err(|e| format!("cannot read terminal settings: {e}"))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    let ask = |p: &str| -> Result<String, String> {
        eprint!("{p}");
        let _ = std::io::stderr().flush();
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| format!("cannot turn echo off: {e}"))?;
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        eprintln!();
        read.map_err(|e| format!("cannot read the password: {e}"))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    let first = ask(prompt)?;
    if confirm && ask("Retype new password: ")? != first {
        return Err("passwords don't match".to_owned());
    }
    Ok(first)
}
