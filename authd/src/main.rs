//! postward-authd(8): the daemon, and its `pw` and `test` commands.

use std::process::ExitCode;

/// mimalloc: see the workspace Cargo.toml (glibc's arena locks under tokio's work stealing).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = shared::daemon::command_first(&args, &["pw", "test"]);
    if let Some(code) = authd::commands::dispatch(&args) {
        return code;
    }
    shared::daemon::main::<authd::Service>(args)
}
