//! Fuzz harnesses: one function per parser that reads what a client or an admin wrote.
//!
//! Each function takes arbitrary bytes, runs the parser, and checks properties that must hold
//! whatever the input (a request read in one piece equals the same request read byte by byte;
//! what a parser accepts, printed again, parses to the same thing). A panic is the finding.
//!
//! The cargo-fuzz targets in `fuzz/targets` call these functions, and `tests/replay.rs` runs
//! every file of `fuzz/corpus/<target>/` through them in the normal test suite, so an input
//! that once crashed stays fixed. The functions live in a normal workspace crate so the replay
//! builds with the rest of the suite and without a nightly compiler.

pub mod auth;
pub mod config;
pub mod dnsbl;
pub mod policy;
pub mod whitelist;

/// A harness: takes any bytes, panics on a finding.
pub type Harness = fn(&[u8]);

/// Every harness by its target name (the cargo-fuzz target and corpus directory names), for
/// the replay test.
pub const TARGETS: &[(&str, Harness)] = &[
    ("policy_request", policy::policy_request),
    ("auth_line", auth::auth_line),
    ("auth_mech", auth::auth_mech),
    ("dnsbl_site", dnsbl::dnsbl_site),
    ("config", config::config),
    ("passwd_file", auth::passwd_file),
    ("greyd_whitelist", whitelist::greyd_whitelist),
];

/// Splits the first byte off as a selector, so one target can drive several variants.
fn selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}
