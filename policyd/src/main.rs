//! postward-policyd(8): see the crate documentation and the man page.

use std::process::ExitCode;

fn main() -> ExitCode {
    shared::daemon::main::<policyd::Service>(std::env::args().skip(1))
}
