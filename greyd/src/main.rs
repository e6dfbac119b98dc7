//! postward-greyd(8): the daemon, and its `stats`, `dump` and `check` commands.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = greyd::commands::dispatch(&args) {
        return code;
    }
    shared::daemon::main::<greyd::Service>(args)
}
