//! Selective greylisting: greylist only clients that look like spam sources, as sqlgrey's
//! "discrimination" and Fastmail's policy do. A client looks suspicious when:
//! - it has no forward-confirmed reverse name (Postfix's `client_name=unknown`);
//! - its reverse name looks dynamic: it embeds the client's address (`192-0-2-7.pool.isp`,
//!   `7.2.0.192.dsl.isp`) or a consumer-line word (`dyn`, `dhcp`, `dsl`, `pool`, `ppp`, …);
//! - its HELO is not a fully qualified domain name (no dot, or an address literal).

use std::net::IpAddr;

/// Words that mark consumer or dynamically assigned addresses in reverse names.
const DYNAMIC_WORDS: &[&str] = &[
    "dyn",
    "dynamic",
    "dhcp",
    "dsl",
    "adsl",
    "vdsl",
    "xdsl",
    "pool",
    "dial",
    "dialup",
    "ppp",
    "pppoe",
    "cable",
    "broadband",
    "cust",
    "customer",
    "client",
    "clients",
    "home",
    "resnet",
    "wireless",
    "mobile",
    "ftth",
    "fiber",
    "unassigned",
    "unknown",
    "nat",
];

/// True when the client should be greylisted in selective mode.
pub fn suspicious(client: IpAddr, client_name: &str, helo: &str) -> bool {
    no_verified_name(client_name) || looks_dynamic(client, client_name) || !fqdn_helo(helo)
}

fn no_verified_name(client_name: &str) -> bool {
    client_name.is_empty() || client_name.eq_ignore_ascii_case("unknown")
}

/// The reverse name embeds the address's numbers or a consumer-line word.
pub fn looks_dynamic(client: IpAddr, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let labels: Vec<&str> = name.split(['.', '-']).collect();
    if let IpAddr::V4(v4) = client.to_canonical() {
        let o = v4.octets().map(|b| b.to_string());
        let forward = [o[0].as_str(), &o[1], &o[2], &o[3]];
        let backward = [o[3].as_str(), &o[2], &o[1], &o[0]];
        let has_run = |want: &[&str; 4]| labels.windows(4).any(|w| w == want);
        if has_run(&forward) || has_run(&backward) {
            return true;
        }
        // The whole address as one hex or decimal label (c0000207, 3221225991).
        let hex = format!("{:08x}", u32::from(v4));
        let dec = u32::from(v4).to_string();
        if name.split('.').any(|l| l.contains(&hex) || l.contains(&dec)) {
            return true;
        }
    }
    // A consumer-line word as a label or label prefix followed by digits (dyn123, pool-7).
    name.split(['.', '-', '_']).any(|label| {
        let word = label.trim_end_matches(|c: char| c.is_ascii_digit());
        !word.is_empty() && DYNAMIC_WORDS.contains(&word)
    })
}

/// RFC 5321 wants the HELO to be the client's FQDN; bots often send a bare word or a literal.
pub fn fqdn_helo(helo: &str) -> bool {
    let helo = helo.trim_end_matches('.');
    !helo.is_empty() && helo.contains('.') && !helo.starts_with('[') && helo.parse::<IpAddr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let cases = [
            ("verified static name, FQDN HELO", "mail.example.org", "mail.example.org", false),
            ("no verified name", "unknown", "mail.example.org", true),
            ("empty name", "", "mail.example.org", true),
            ("address in name, dashes", "192-0-2-7.example.net", "mail.example.org", true),
            ("address reversed in name", "7.2.0.192.in.example.net", "mail.example.org", true),
            ("hex address in name", "c0000207.example.net", "mail.example.org", true),
            ("dsl word", "host.dsl.example.net", "mail.example.org", true),
            ("pool word with digits", "pool123.example.net", "mail.example.org", true),
            ("dynamic word", "x.dynamic.example.net", "mail.example.org", true),
            ("unrelated digits are fine", "mx2.example.org", "mx2.example.org", false),
            ("bare HELO", "mail.example.org", "localhost", true),
            ("address literal HELO", "mail.example.org", "[192.0.2.7]", true),
            ("bare address HELO", "mail.example.org", "192.0.2.7", true),
            ("empty HELO", "mail.example.org", "", true),
        ];
        for (label, name, helo, want) in cases {
            assert_eq!(suspicious(ip, name, helo), want, "{label}");
        }
    }
}
