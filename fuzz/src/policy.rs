//! The policy request reader (`shared::policy::codec`) and the typed request built from it.

use futures_util::FutureExt;
use shared::policy::{Limits, PolicyRequest, RawRequest, RequestReader};
use tokio::io::{AsyncBufRead, BufReader};

/// How a stream of requests read: every request, then how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    requests: Vec<RawRequest>,
    /// `None` at a clean end, else the error's text.
    end: Option<String>,
}

/// The first byte picks the read size (1..=32 bytes per read, so requests are split at every
/// possible place) and whether small limits apply; the rest is the stream.
pub fn policy_request(data: &[u8]) {
    let (sel, stream) = crate::selector(data);
    let chunk = usize::from(sel & 0x1f) + 1;
    let limits =
        if sel & 0x80 != 0 { Limits { max_line: 40, max_attributes: 4, max_request: 120 } } else { Limits::default() };
    let whole = read_all(stream, limits);
    let split = read_all(BufReader::with_capacity(chunk, stream), limits);
    assert_eq!(whole, split, "the result depends on how the stream was split (read size {chunk})");
    for request in &whole.requests {
        check_request(request, limits);
    }
}

/// Reads requests until the stream ends or one is malformed. Reading from memory never waits,
/// so each future completes on its first poll.
fn read_all<R: AsyncBufRead + Unpin>(stream: R, limits: Limits) -> Outcome {
    let mut reader = RequestReader::new(stream, limits);
    let mut requests = Vec::new();
    loop {
        let Some(result) = reader.read_request().now_or_never() else {
            panic!("reading from memory waited");
        };
        match result {
            Ok(Some(request)) => requests.push(request),
            Ok(None) => return Outcome { requests, end: None },
            Err(e) => return Outcome { requests, end: Some(e.to_string()) },
        }
    }
}

/// What an accepted request must satisfy, and that writing it out again reads back the same.
fn check_request(request: &RawRequest, limits: Limits) {
    assert!(!request.attributes.is_empty(), "an accepted request has attributes");
    assert!(request.attributes.len() <= limits.max_attributes);
    for (name, value) in &request.attributes {
        assert!(!name.is_empty(), "empty attribute name accepted");
        assert!(!name.contains('='), "attribute name {name:?} contains '='");
        assert!(!name.contains(['\n', '\0']) && !value.contains(['\n', '\0']), "LF or NUL in {name:?}");
        // Names are never decoded lossily, so their length is the wire length.
        assert!(name.len() < limits.max_line, "a name longer than a line was accepted");
    }
    // CRLF endings: the reader drops one CR before each LF, so a value ending in CR survives.
    let mut encoded = Vec::new();
    for (name, value) in &request.attributes {
        encoded.extend_from_slice(format!("{name}={value}\r\n").as_bytes());
    }
    encoded.extend_from_slice(b"\r\n");
    let relaxed = Limits { max_line: usize::MAX / 4, max_attributes: usize::MAX, max_request: usize::MAX / 4 };
    let again = read_all(encoded.as_slice(), relaxed);
    assert_eq!(again.end, None, "a re-encoded request failed to read");
    assert_eq!(again.requests.len(), 1);
    assert_eq!(again.requests[0].attributes, request.attributes, "re-encoded request differs");

    // The typed view takes the last of repeated attributes, and never fails on content it
    // does not interpret.
    if let Ok(typed) = PolicyRequest::from_raw(request.clone()) {
        for (name, _) in &request.attributes {
            let last = request.attributes.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            assert_eq!(typed.attribute(name), last);
        }
        greyd_triplet(&typed);
        policyd_names(&typed);
    }
}

/// greyd's triplet normalisation runs on every request's sender and recipient.
fn greyd_triplet(request: &PolicyRequest) {
    let Some(ip) = request.client_address else { return };
    let normalizer = greyd::triplet::Normalizer::new(24, 64, Some(b"key".to_vec()));
    let triplet = normalizer.triplet(ip, &request.sender, &request.recipient);
    let again = normalizer.triplet(ip, &request.sender, &request.recipient);
    assert_eq!(format!("{triplet:?}"), format!("{again:?}"), "triplet is not deterministic");
    let _ = greyd::triplet::sender_domain(&request.sender);
}

/// The names policyd derives from a request: SPF identities and DNS list query names.
fn policyd_names(request: &PolicyRequest) {
    let _ = policyd::spf::identity::Identities::from_request(&request.helo_name, &request.sender);
    let _ = policyd::dnsbl::target::rhs_name(&request.helo_name);
    let _ = policyd::dnsbl::target::rhs_name(&request.sender);
    if let Some(ip) = request.client_address {
        let reversed = policyd::dnsbl::target::reversed(ip);
        assert!(reversed.split('.').all(|label| !label.is_empty()), "empty label in {reversed:?}");
    }
}
