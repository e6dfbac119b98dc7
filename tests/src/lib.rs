//! postward's test support: protocol clients, the in-process DNS fixture, and helpers to run
//! the real daemon binaries. Used by the integration tests in `tests/tests/` and by the load
//! tool `postward-bench`.

pub mod auth_client;
pub mod catalogue;
pub mod client;
pub mod dns;
pub mod manpage;
pub mod postfix;
pub mod private_pg;
pub mod process;
pub mod proxy;
pub mod request;
pub mod skip;
pub mod smtp;
