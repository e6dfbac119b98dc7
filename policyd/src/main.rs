//! postward-policyd(8): see the crate documentation and the man page.

use std::process::ExitCode;

/// mimalloc: see the workspace Cargo.toml (glibc's arena locks under tokio's work stealing).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = shared::daemon::command_first(&args, &["check"]);
    if args.first().is_some_and(|a| a == "check") {
        return policyd::check::main(&args[1..]);
    }
    shared::daemon::main::<policyd::Service>(args)
}
