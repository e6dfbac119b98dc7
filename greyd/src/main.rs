//! postward-greyd(8): the daemon, and its admin commands (`greyd::commands`).

use std::process::ExitCode;

/// mimalloc: see the workspace Cargo.toml (glibc's arena locks under tokio's work stealing).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = shared::daemon::command_first(&args, &greyd::commands::COMMANDS);
    if let Some(code) = greyd::commands::dispatch(&args) {
        return code;
    }
    shared::daemon::main::<greyd::Service>(args)
}
