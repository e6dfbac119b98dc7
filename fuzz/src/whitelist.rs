//! greyd's whitelist files (postgrey's format): client entries, then address entries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use greyd::whitelist::Whitelists;

/// The input up to the first NUL is a client list, the rest an address list. Whatever loads
/// must answer lookups derived from the input without failing.
pub fn greyd_whitelist(data: &[u8]) {
    let (clients, addresses) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let lists = match Whitelists::from_bytes("fuzz", clients, addresses) {
        Ok(lists) => lists,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz:") || e.to_string().contains("whitelist regexes"));
            return;
        }
    };
    let text = String::from_utf8_lossy(data);
    let addrs = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    for word in text.split_whitespace().take(16) {
        for addr in addrs {
            let _ = lists.client(word.parse().unwrap_or(addr), word);
        }
        let _ = lists.recipient(word);
        let _ = lists.sender(word);
        let found = lists.check(word);
        if let Ok(addr) = word.parse::<IpAddr>()
            && lists.client(addr, "unknown").is_some()
        {
            assert!(!found.is_empty(), "check({word:?}) misses the client entry the request path matches");
        }
    }
}
