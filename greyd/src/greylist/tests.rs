//! Tables for both phases, with an injected clock.

use super::*;

const POLICY: Policy = Policy { delay: 300, retry_window: 2 * 86_400, max_age: 35 * 86_400, awl_client_passes: 5 };
const T0: i64 = 1_800_000_000;

/// An entry that has been retried once already.
fn entry(first_seen: i64, last_seen: i64, passed_at: Option<i64>) -> Entry {
    Entry { first_seen, last_seen, passed_at, attempts: 1, client_address: "192.0.2.1".into() }
}

/// A first attempt nobody has retried yet.
fn fresh(first_seen: i64) -> Entry {
    Entry { attempts: 0, ..entry(first_seen, first_seen, None) }
}

fn stored(entry: Option<Entry>) -> StoredFacts {
    StoredFacts { entry, ..StoredFacts::default() }
}

#[test]
fn phase_two_table() {
    let cases: Vec<(&str, i64, StoredFacts, Verdict, Update)> = vec![
        ("first attempt", T0, stored(None), Verdict::New, Update::InsertFirst),
        (
            "first early retry after 60 s is recorded",
            T0 + 60,
            stored(Some(fresh(T0))),
            Verdict::TooEarly { seconds_left: 240 },
            Update::RecordRetry,
        ),
        (
            "later early retries write nothing",
            T0 + 120,
            stored(Some(entry(T0, T0 + 60, None))),
            Verdict::TooEarly { seconds_left: 180 },
            Update::None,
        ),
        (
            "retry 1 s before the delay",
            T0 + 299,
            stored(Some(entry(T0, T0 + 60, None))),
            Verdict::TooEarly { seconds_left: 1 },
            Update::None,
        ),
        (
            "retry exactly at the delay passes",
            T0 + 300,
            stored(Some(entry(T0, T0 + 60, None))),
            Verdict::FirstPass { delayed: 300 },
            Update::RecordPass,
        ),
        (
            "retry after an hour passes",
            T0 + 3600,
            stored(Some(entry(T0, T0, None))),
            Verdict::FirstPass { delayed: 3600 },
            Update::RecordPass,
        ),
        (
            "retry at the end of the window passes",
            T0 + 2 * 86_400,
            stored(Some(entry(T0, T0, None))),
            Verdict::FirstPass { delayed: 172_800 },
            Update::RecordPass,
        ),
        (
            "retry-window expiry: starts over",
            T0 + 2 * 86_400 + 1,
            stored(Some(entry(T0, T0 + 10, None))),
            Verdict::New,
            Update::Restart,
        ),
        (
            "known triplet passes",
            T0 + 10 * 86_400,
            stored(Some(entry(T0, T0 + 9 * 86_400, Some(T0 + 400)))),
            Verdict::Known { delayed: 400 },
            Update::RecordPass,
        ),
        (
            "known triplet at max age still passes",
            T0 + 36 * 86_400,
            stored(Some(entry(T0, T0 + 86_400, Some(T0 + 400)))),
            Verdict::Known { delayed: 400 },
            Update::RecordPass,
        ),
        (
            "max-age expiry: starts over",
            T0 + 36 * 86_400 + 1,
            stored(Some(entry(T0, T0 + 86_400, Some(T0 + 400)))),
            Verdict::New,
            Update::Restart,
        ),
        (
            "client auto-whitelisted after 5 passes",
            T0,
            StoredFacts { client_passes: 5, ..stored(None) },
            Verdict::AwlClient,
            Update::None,
        ),
        (
            "4 passes are not enough",
            T0,
            StoredFacts { client_passes: 4, ..stored(None) },
            Verdict::New,
            Update::InsertFirst,
        ),
        (
            "domain auto-whitelist",
            T0,
            StoredFacts { domain_whitelisted: true, ..stored(None) },
            Verdict::AwlDomain,
            Update::None,
        ),
        (
            "sender pool: partner first seen 10 min ago passes a new address",
            T0 + 600,
            StoredFacts { pool_partner: Some(T0), ..stored(None) },
            Verdict::PoolPass { delayed: 600 },
            Update::InsertPassed,
        ),
        (
            "sender pool never skips the first deferral: partner too recent",
            T0 + 100,
            StoredFacts { pool_partner: Some(T0), ..stored(None) },
            Verdict::New,
            Update::InsertFirst,
        ),
        (
            "sender pool partner outside the retry window",
            T0 + 3 * 86_400,
            StoredFacts { pool_partner: Some(T0), ..stored(None) },
            Verdict::New,
            Update::InsertFirst,
        ),
        (
            "sender pool after this triplet's own entry expired",
            T0 + 3 * 86_400,
            StoredFacts { pool_partner: Some(T0 + 3 * 86_400 - 900), ..stored(Some(entry(T0, T0, None))) },
            Verdict::PoolPass { delayed: 900 },
            Update::InsertPassed,
        ),
        (
            "a live entry ignores the pool",
            T0 + 100,
            StoredFacts { pool_partner: Some(T0 - 5000), ..stored(Some(entry(T0, T0, None))) },
            Verdict::TooEarly { seconds_left: 200 },
            Update::None,
        ),
    ];
    for (label, now, facts, verdict, update) in cases {
        assert_eq!(decide(now, &facts, &POLICY), (verdict, update), "{label}");
    }
}

#[test]
fn awl_off_when_zero() {
    let policy = Policy { awl_client_passes: 0, ..POLICY };
    let facts = StoredFacts { client_passes: 100, ..stored(None) };
    assert_eq!(decide(T0, &facts, &policy).0, Verdict::New);
}

#[test]
fn pool_lookup_only_when_needed() {
    assert!(needs_pool(T0, None, &POLICY));
    assert!(!needs_pool(T0 + 10, Some(&entry(T0, T0, None)), &POLICY));
    assert!(needs_pool(T0 + 3 * 86_400, Some(&entry(T0, T0, None)), &POLICY));
    assert!(!needs_pool(T0 + 3 * 86_400, Some(&entry(T0, T0 + 3 * 86_400 - 5, Some(T0 + 400))), &POLICY));
}

fn facts() -> RequestFacts {
    RequestFacts { protocol_state: Some(ProtocolState::Rcpt), has_client_address: true, ..RequestFacts::default() }
}

#[test]
fn phase_one_table() {
    let wl = |list: &'static str| Some((list, "entry".to_string()));
    let cases: Vec<(&str, RequestFacts, Option<Skip>)> = vec![
        ("plain RCPT is greylisted", facts(), None),
        (
            "MAIL stage skipped",
            RequestFacts { protocol_state: Some(ProtocolState::Mail), ..facts() },
            Some(Skip::NotRcpt),
        ),
        (
            "DATA stage skipped",
            RequestFacts { protocol_state: Some(ProtocolState::Data), ..facts() },
            Some(Skip::NotRcpt),
        ),
        ("SASL-authenticated skipped", RequestFacts { authenticated: true, ..facts() }, Some(Skip::Authenticated)),
        ("trusted network skipped", RequestFacts { trusted_network: true, ..facts() }, Some(Skip::TrustedNetwork)),
        (
            "missing client address skipped",
            RequestFacts { has_client_address: false, ..facts() },
            Some(Skip::NoClientAddress),
        ),
        (
            "client whitelist",
            RequestFacts { whitelisted: wl("whitelist-client"), ..facts() },
            Some(Skip::Whitelisted { list: "whitelist-client", entry: "entry".into() }),
        ),
        (
            "recipient whitelist",
            RequestFacts { whitelisted: wl("whitelist-recipient"), ..facts() },
            Some(Skip::Whitelisted { list: "whitelist-recipient", entry: "entry".into() }),
        ),
        (
            "sender whitelist",
            RequestFacts { whitelisted: wl("whitelist-sender"), ..facts() },
            Some(Skip::Whitelisted { list: "whitelist-sender", entry: "entry".into() }),
        ),
        (
            "selective mode: not suspicious skipped",
            RequestFacts { suspicious: Some(false), ..facts() },
            Some(Skip::NotSuspicious),
        ),
        ("selective mode: suspicious greylisted", RequestFacts { suspicious: Some(true), ..facts() }, None),
        (
            "authentication wins over the stage check order",
            RequestFacts { authenticated: true, trusted_network: true, ..facts() },
            Some(Skip::Authenticated),
        ),
    ];
    for (label, f, want) in cases {
        assert_eq!(precheck(&f), want, "{label}");
    }
}

/// The rule SQLite's writer applies in SQL for a triplet that is not stored (`store::FirstRule`,
/// checked against the database in the store conformance tests): an insert exactly when neither
/// auto-whitelist applies and no sender-pool partner exists. If `decide` changes here, the
/// writer's guard in `store/group.rs` has to change with it.
#[test]
fn an_absent_triplet_is_inserted_unless_auto_whitelisted_or_pooled() {
    for client_passes in [0, 4, 5, 9] {
        for domain_whitelisted in [false, true] {
            for pool_partner in [None, Some(T0 - 600)] {
                let facts = StoredFacts { entry: None, client_passes, domain_whitelisted, pool_partner };
                let inserts = client_passes < POLICY.awl_client_passes && !domain_whitelisted && pool_partner.is_none();
                let (_, update) = decide(T0, &facts, &POLICY);
                assert_eq!(update == Update::InsertFirst, inserts, "{facts:?}");
            }
        }
    }
    // With the client auto-whitelist off, passes do not matter.
    let off = Policy { awl_client_passes: 0, ..POLICY };
    let facts = StoredFacts { client_passes: 100, ..StoredFacts::default() };
    assert_eq!(decide(T0, &facts, &off).1, Update::InsertFirst);
}
