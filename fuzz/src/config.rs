//! The daemons' TOML configuration files, through the same parse-and-check path as
//! `--check-config`, start-up and SIGHUP reload (`shared::config`).

use std::path::Path;

use shared::config::{CommonConfig, ConfigError, check, parse};

/// The first byte picks the daemon; the rest is the file.
pub fn config(data: &[u8]) {
    let (sel, bytes) = crate::selector(data);
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    match sel % 3 {
        0 => load::<policyd::Config>(text),
        1 => load::<greyd::Config>(text),
        _ => load::<authd::Config>(text),
    }
}

fn load<C: CommonConfig>(text: &str) {
    let path = Path::new("fuzz.toml");
    let result = parse::<C>(text, path).and_then(|config| check(&config, Some(text), path).map(|()| config));
    if let Err(e) = result {
        located(&e, text);
    }
}

/// Every error names the file, and a line number within it.
fn located(e: &ConfigError, text: &str) {
    let message = e.to_string();
    assert!(message.starts_with("fuzz.toml"), "error without the file name: {message}");
    if let Some(line) = e.line {
        assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} outside the file: {message}");
    }
}
