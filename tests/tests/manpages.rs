//! The man pages in `contrib/man/` stay in step with the code: each section-5 page is exactly
//! what `manpage::config_page` makes of the commented default configuration (which the config
//! tests check against the code's defaults), and each section-8 page names every option the
//! binary's `--help` lists and every subcommand it has.
//!
//! After changing a default configuration file, regenerate the pages with
//! `POSTWARD_BLESS_MANPAGES=1 cargo test -p postward-tests --test manpages`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use postward_tests::manpage::config_page;
use postward_tests::process::bin_path;

const DAEMONS: [&str; 3] = ["policyd", "greyd", "authd"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn config_pages_match_the_default_configuration_files() {
    let bless = std::env::var_os("POSTWARD_BLESS_MANPAGES").is_some();
    let version = env!("CARGO_PKG_VERSION");
    let mut stale = Vec::new();
    for daemon in DAEMONS {
        let toml = std::fs::read_to_string(repo().join(format!("contrib/config/{daemon}.toml"))).unwrap();
        let want = config_page(daemon, version, &toml);
        let path = repo().join(format!("contrib/man/postward-{daemon}.toml.5"));
        if bless {
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push(path.display().to_string());
        }
        // Every key of the file is an entry of the page.
        for line in toml.lines().filter(|l| !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ")) {
            let key = line.split(" = ").next().unwrap().replace('-', "\\-");
            assert!(want.contains(&format!("\\fB{key} = ")), "{daemon}: {key} missing from the page");
        }
        // A commented-out array of tables is a section of its own, not entries of the last.
        for table in toml.lines().filter_map(|l| l.strip_prefix("# [[")) {
            assert!(want.contains(&format!(".SH [[{table}")), "{daemon}: [[{table} is not a section of its own");
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; regenerate with POSTWARD_BLESS_MANPAGES=1 cargo test -p postward-tests --test manpages"
    );
}

/// Long options in `--help` output (`--config`, ...).
fn options(help: &str) -> Vec<String> {
    help.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn daemon_pages_name_every_option_and_command() {
    for daemon in DAEMONS {
        let bin = format!("postward-{daemon}");
        let out = std::process::Command::new(bin_path(&bin)).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        let page = std::fs::read_to_string(repo().join(format!("contrib/man/{bin}.8"))).unwrap();
        let found = options(&help);
        assert!(found.len() >= 4, "{bin} --help lists too few options: {help}");
        for option in found {
            let roff = format!("\\-\\-{}", option.replace('-', "\\-"));
            assert!(page.contains(&roff), "{bin}.8 does not document --{option}");
        }
        let commands: &[&str] = match daemon {
            "greyd" => &["stats", "dump", "check", "delete", "whitelist"],
            "authd" => &["pw", "test"],
            "policyd" => &["check"],
            _ => &[],
        };
        for command in commands {
            assert!(page.contains(&format!(".B {bin} {command}")), "{bin}.8 does not show the {command} command");
            assert!(help.contains(&format!("\n  {command} ")), "{bin} --help does not list {command}");
        }
        // Every page shows the lines the daemon logs, with an example.
        let logging = page.split(".SH LOGGING").nth(1).unwrap_or_else(|| panic!("{bin}.8 has no LOGGING section"));
        let example = if daemon == "authd" { "authentication failed: user=" } else { "NOQUEUE: " };
        assert!(logging.contains(".nf") && logging.contains(example), "{bin}.8's LOGGING has no example line");
        // Every page says what its exit statuses mean, the commands' included.
        let exit = page.split(".SH \"EXIT STATUS\"").nth(1).unwrap_or_else(|| panic!("{bin}.8 has no EXIT STATUS"));
        let exit = exit.split("\n.SH ").next().unwrap_or_default();
        for word in ["64", "78"].iter().chain(commands) {
            assert!(exit.contains(word), "{bin}.8's EXIT STATUS does not mention {word}");
        }
    }
}
