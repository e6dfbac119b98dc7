//! The example configuration files say "every key is shown with its built-in default,
//! except the two marked packaged": this holds them to it. Each file, its `packaged` keys
//! left out, must parse to exactly the daemon's built-in defaults.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use shared::daemon::Daemon;

/// The file's text without the key line that follows each `# packaged:` comment.
fn without_packaged(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut skip_next = false;
    let mut packaged = 0;
    for line in text.lines() {
        if skip_next && !line.starts_with('#') {
            skip_next = false;
            packaged += 1;
            continue;
        }
        if line.starts_with("# packaged:") {
            skip_next = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, packaged)
}

fn example(daemon: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join(format!("contrib/config/{daemon}.toml"))).unwrap();
    let (text, packaged) = without_packaged(&text);
    assert_eq!(packaged, 2, "{daemon}.toml: the packaged keys are socket_group and user");
    text
}

/// `listen` written out as the daemon's default socket is the built-in default (an empty
/// list, which means that socket).
fn default_listen<D: Daemon>(server: &mut shared::config::ServerConfig) {
    let default: shared::listen::ListenAddr = D::DEFAULT_LISTEN.parse().unwrap();
    if server.listen == [default] {
        server.listen.clear();
    }
}

#[test]
fn example_files_show_the_built_in_defaults() {
    let mut policyd: policyd::Config = toml::from_str(&example("policyd")).unwrap();
    default_listen::<policyd::Service>(&mut policyd.server);
    assert_eq!(format!("{policyd:#?}"), format!("{:#?}", policyd::Config::default()), "policyd.toml");
    let mut greyd: greyd::config::Config = toml::from_str(&example("greyd")).unwrap();
    default_listen::<greyd::Service>(&mut greyd.server);
    assert_eq!(format!("{greyd:#?}"), format!("{:#?}", greyd::config::Config::default()), "greyd.toml");
    let mut authd: authd::config::Config = toml::from_str(&example("authd")).unwrap();
    default_listen::<authd::Service>(&mut authd.server);
    assert_eq!(format!("{authd:#?}"), format!("{:#?}", authd::config::Config::default()), "authd.toml");
}
