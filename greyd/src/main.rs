//! postward-greyd(8): see the crate documentation and the man page.

use std::process::ExitCode;

fn main() -> ExitCode {
    shared::daemon::main::<greyd::Service>(std::env::args().skip(1))
}
