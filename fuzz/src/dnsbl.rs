//! postscreen's DNS list syntax, `zone[=filter][*weight]` (policyd's `[dnsbl] sites`).

use std::net::Ipv4Addr;
use std::str::FromStr;

use policyd::dnsbl::site::{Filter, Site};

/// A site and a bare filter. What parses must print back to text that parses to the same
/// value, and the filter must answer the same for the reply addresses derived from the input.
pub fn dnsbl_site(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Site::from_str(text) {
        Ok(site) => {
            let printed = site.to_string();
            let again = Site::from_str(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}): {e}"));
            assert_eq!(site, again, "{text:?} printed as {printed:?}");
            assert!(policyd::dnsbl::site::valid_zone(&site.zone), "invalid zone {:?} accepted", site.zone);
        }
        Err(e) => assert!(!e.is_empty()),
    }
    if let Ok(filter) = Filter::from_str(text) {
        let printed = filter.to_string();
        let again = Filter::from_str(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}): {e}"));
        assert_eq!(filter, again, "{text:?} printed as {printed:?}");
        for reply in probes(data) {
            assert_eq!(filter.matches(reply), again.matches(reply));
        }
    }
}

/// Reply addresses taken from the input's bytes, plus the usual list codes.
fn probes(data: &[u8]) -> impl Iterator<Item = Ipv4Addr> + '_ {
    let fixed = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 255), Ipv4Addr::new(127, 255, 255, 254)];
    fixed.into_iter().chain(data.chunks_exact(4).take(8).map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3])))
}
