//! authd's readers: the Dovecot client lines, the SASL mechanism payloads, stored password
//! strings and the passwd-file format.

use authd::mech::{cram, plain, scram};
use authd::protocol::{ClientLine, parse_line};
use authd::scheme::{Scheme, Stored};
use authd::username::UsernamePolicy;

/// One client line, under each protocol minor version a client may announce.
pub fn auth_line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else { return };
    for minor in 0..=3 {
        match parse_line(line, minor) {
            Ok(ClientLine::Auth(auth)) => {
                assert!(line.starts_with("AUTH\t"));
                assert!(auth.id > 0, "request id 0 accepted");
                assert!(!auth.mech.is_empty() && !auth.service.is_empty());
                assert!(!auth.mech.contains('\t') && !auth.service.contains('\t'));
                if let Some(resp) = auth.resp {
                    assert!(line.contains(&format!("\tresp={resp}")), "resp {resp:?} is not the line's");
                    assert!(line.ends_with(resp), "resp= is not the last field of {line:?}");
                }
            }
            Ok(ClientLine::Cont { id, data }) => {
                // Everything after the id is the payload, tabs included (as Dovecot reads it).
                assert!(id > 0);
                assert_eq!(line.splitn(3, '\t').nth(2), Some(data), "CONT payload of {line:?}");
            }
            Ok(ClientLine::Cancel { id }) => assert!(id > 0),
            Ok(ClientLine::Version { .. } | ClientLine::Cpid(_)) => {}
            Err(e) => {
                // Error texts are logged: they must stay short and printable.
                let text = e.to_string();
                assert!(text.len() < 200, "error text of {} bytes", text.len());
                assert!(!text.chars().any(char::is_control), "control character in {text:?}");
            }
        }
    }
}

/// A mechanism payload (already base64-decoded, as authd hands it on). The first byte picks
/// the decoder; every decoder also sees the raw bytes as user names go through normalisation.
pub fn auth_mech(data: &[u8]) {
    let (sel, payload) = crate::selector(data);
    match sel % 5 {
        0 => {
            if let Ok(p) = plain::parse_plain(payload) {
                assert!(!p.authcid.is_empty() && !p.authcid.contains(&0));
                assert!(!p.password.contains(&0));
                assert!(p.authzid.as_ref().is_none_or(|z| !z.is_empty() && !z.contains(&0) && *z != p.authcid));
                username(&p.authcid);
            }
        }
        1 => {
            let nul = payload.contains(&0);
            assert_eq!(plain::login_answer(payload, "LOGIN user name").is_err(), nul);
        }
        2 => {
            if let Ok((user, digest)) = cram::parse_response(payload) {
                assert!(!user.is_empty() && payload.starts_with(user));
                assert_eq!(digest.len(), 16);
                username(user);
            }
        }
        3 => scram_exchange(payload),
        _ => username(payload),
    }
}

/// SCRAM: the client-first message, then (split at the first NUL) a client-final checked
/// against fixed keys. Random proofs must never verify.
fn scram_exchange(payload: &[u8]) {
    let (first_bytes, final_bytes) = match payload.iter().position(|&b| b == 0) {
        Some(i) => (&payload[..i], &payload[i + 1..]),
        None => (payload, &b""[..]),
    };
    let Ok(first) = scram::parse_client_first(first_bytes) else { return };
    assert!(!first.user.is_empty());
    assert!(!first.client_nonce.is_empty() && !first.client_nonce.contains(','));
    let server_first = scram::server_first(&first, "servernonce", b"salt", 4096);
    let stored_key = [7u8; 32];
    let server_key = [9u8; 32];
    if let Ok(Some(_)) = scram::verify_client_final(final_bytes, &first, &server_first, &stored_key, &server_key) {
        panic!("a fuzzed SCRAM proof verified");
    }
}

fn username(raw: &[u8]) {
    let policy = UsernamePolicy::default();
    if let Ok(name) = policy.normalize(raw) {
        assert!(!name.is_empty() && name.len() <= policy.max_length);
        assert!(policy.is_safe(&name), "normalised name {name:?} is not safe");
        assert_eq!(policy.normalize(name.as_bytes()).ok().as_deref(), Some(name.as_str()), "not idempotent");
    }
}

/// A passwd-file (`user:password:uid:gid:gecos:home:shell:extra`), and each of its password
/// fields as a stored-password string. Parsing only: verifying would run the hash schemes'
/// work factors, which a fuzzer would spend its time in.
pub fn passwd_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names = UsernamePolicy::default();
    if let Err(e) = authd::store::passwd_file::parse(text, "fuzz", Scheme::Plain, &names) {
        let message = e.to_string();
        // An error may quote the user name, never the password field.
        // Put a marker in the password field of the line the error names and parse again:
        // the new error must not quote it.
        let named =
            message.strip_prefix("fuzz:").and_then(|m| m.split(':').next()).and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = named.filter(|&n| n >= 1) {
            let marked: Vec<String> = text
                .lines()
                .enumerate()
                .map(|(i, line)| {
                    let mut fields: Vec<&str> = line.splitn(3, ':').collect();
                    if i + 1 == n && fields.len() >= 2 {
                        fields[1] = "Marker-7Hq2-Zx9";
                    }
                    fields.join(":")
                })
                .collect();
            if let Err(e) = authd::store::passwd_file::parse(&marked.join("\n"), "fuzz", Scheme::Plain, &names) {
                assert!(!e.to_string().contains("Marker-7Hq2-Zx9"), "error message quotes a password field: {e}");
            }
        }
    }
    for line in text.lines() {
        let _ = Stored::parse(line, Scheme::Plain);
    }
}
