//! Saying that a test did not run. A skipped test passes in `cargo test`'s count, so each
//! skip is said on stderr and, when `POSTWARD_SKIP_LOG` names a file, appended to it with
//! the test's name: `.ci/run` prints how many were skipped and why, and fails if any was.

use std::io::Write as _;

/// Records that the current test is skipped, and why. Use through [`skipped!`](crate::skipped).
pub fn record(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("POSTWARD_SKIP_LOG") {
        let line = format!("{test}: {why}\n");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// `skipped!("why {x}")`: the current test did not run (see [`record`]).
#[macro_export]
macro_rules! skipped {
    ($($arg:tt)*) => {
        $crate::skip::record(&format!($($arg)*))
    };
}
