//! In-process authoritative DNS for tests, so that no test ever needs Internet DNS.
//!
//! What this module owns: a hickory-server on 127.0.0.1 (UDP and TCP on one random port, or a
//! fixed address for tools), the zone data it serves (built with [`DnsFixture::builder`] or read
//! from RFC 1035 master files), injected faults (never answer, SERVFAIL, answer late) and a count
//! of every query that arrives. The server runs inside the caller's Tokio runtime and stops when
//! the [`DnsFixture`] is dropped.
//!
//! What it does not own: resolver behaviour. [`DnsFixture::resolver`] builds the resolver through
//! `shared::dns::DnsConfig`, the path the daemons take, so tests exercise the production
//! configuration rather than a test-only one.
//!
//! Design note: faults and counting live in a [`RequestHandler`] wrapped around hickory's
//! [`Catalog`], not in hooks in production code (STYLE.md §2.4, "Test hooks in production paths").
//! Every zone gets an SOA (and an NS), because hickory refuses zones without one and because
//! NXDOMAIN and NODATA answers must carry it in the authority section for negative caching
//! (RFC 2308 §3).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, NS, PTR, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_proto::serialize::txt::Parser;
use hickory_resolver::TokioResolver;
use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use shared::dns::DnsConfig;
use shared::duration::ConfigDuration;
use tokio::net::{TcpListener, UdpSocket};

pub use hickory_proto::rr::RecordType;

/// TTL of records added before any [`DnsFixtureBuilder::ttl`] call.
pub const DEFAULT_TTL: u32 = 300;
/// SOA minimum (the negative-caching TTL) of zones added with [`DnsFixtureBuilder::zone`].
pub const DEFAULT_NEGATIVE_TTL: u32 = 300;
/// Per-query timeout of [`DnsFixture::dns_config`]: short enough that timeout tests stay fast,
/// long enough that a loaded 2-core CI machine still answers local queries in time.
pub const RESOLVER_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a fixture could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("invalid domain name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("invalid address {0:?}")]
    BadAddress(String),
    #[error("{name:?} is not inside any zone (add .zone(...) for it)")]
    OutsideZones { name: String },
    #[error("cannot load zone file {path}: {reason}")]
    ZoneFile { path: PathBuf, reason: String },
    #[error("invalid zone {origin:?}: {reason}")]
    Zone { origin: String, reason: String },
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("server stopped with an error: {0}")]
    Server(String),
}

/// What the server does instead of answering normally: per name (set on the builder) or for
/// every query while an outage set with [`DnsFixture::set_outage`] lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Timeout,
    ServFail,
    Delay(Duration),
}

/// Builds a [`DnsFixture`]. Methods never fail on their own: the first bad name or address is
/// kept and returned by [`start`](Self::start), so a table of records reads as one chain.
#[derive(Debug)]
pub struct DnsFixtureBuilder {
    /// Origin and negative TTL of each zone declared with `zone*`.
    zones: Vec<(Name, u32)>,
    /// Master files, with the origin given by the caller or `None` for "take `$ORIGIN`".
    zone_files: Vec<(Option<Name>, PathBuf)>,
    records: Vec<Record>,
    faults: Vec<(LowerName, Fault)>,
    exact_timeouts: Vec<(LowerName, Vec<RecordType>)>,
    ttl: u32,
    error: Option<FixtureError>,
}

impl DnsFixtureBuilder {
    /// An authoritative zone; its SOA and NS records are added automatically.
    pub fn zone(self, origin: &str) -> Self {
        self.zone_with_negative_ttl(origin, DEFAULT_NEGATIVE_TTL)
    }

    /// A zone whose NXDOMAIN and NODATA answers may be cached for `negative_ttl` seconds (the SOA
    /// minimum, which is also the SOA record's own TTL, so RFC 2308's `min` of the two is exact).
    pub fn zone_with_negative_ttl(mut self, origin: &str, negative_ttl: u32) -> Self {
        if let Some(origin) = self.name(origin) {
            self.zones.push((origin, negative_ttl));
        }
        self
    }

    /// A zone read from an RFC 1035 master file (`$ORIGIN`, `$TTL`, `@`, relative names and
    /// `$INCLUDE` work; the file must hold the zone's SOA). Relative names are taken relative to
    /// `origin`. Records added with the other methods may also fall inside this zone.
    pub fn zone_file(mut self, origin: &str, path: impl Into<PathBuf>) -> Self {
        if let Some(origin) = self.name(origin) {
            self.zone_files.push((Some(origin), path.into()));
        }
        self
    }

    /// TTL for the records added after this call.
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn a(self, name: &str, addr: &str) -> Self {
        match addr.parse() {
            Ok(ip) => self.record(name, RData::A(A(ip))),
            Err(_) => self.fail(FixtureError::BadAddress(addr.to_owned())),
        }
    }

    pub fn aaaa(self, name: &str, addr: &str) -> Self {
        match addr.parse() {
            Ok(ip) => self.record(name, RData::AAAA(AAAA(ip))),
            Err(_) => self.fail(FixtureError::BadAddress(addr.to_owned())),
        }
    }

    /// One TXT record holding `text`. Text longer than 255 bytes is split into 255-byte
    /// character-strings (RFC 1035 §3.3), as a zone file author would have to; SPF joins them
    /// back without spaces (RFC 7208 §3.3).
    pub fn txt(self, name: &str, text: &str) -> Self {
        let chunks = text.as_bytes().chunks(255).collect::<Vec<_>>();
        self.record(name, RData::TXT(TXT::from_bytes(chunks)))
    }

    /// One TXT record made of exactly these character-strings.
    pub fn txt_strings(self, name: &str, strings: &[&str]) -> Self {
        let strings = strings.iter().map(|s| (*s).to_owned()).collect();
        self.record(name, RData::TXT(TXT::new(strings)))
    }

    pub fn mx(mut self, name: &str, preference: u16, exchange: &str) -> Self {
        match self.name(exchange) {
            Some(exchange) => self.record(name, RData::MX(MX::new(preference, exchange))),
            None => self,
        }
    }

    /// The PTR record for `addr` (an IPv4 or IPv6 address, under its `in-addr.arpa.` or
    /// `ip6.arpa.` name). It goes into the deepest declared zone that contains that name, or else
    /// into an automatic `in-addr.arpa.` / `ip6.arpa.` zone, so reverse zones need no declaring.
    pub fn ptr_for(mut self, addr: &str, target: &str) -> Self {
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return self.fail(FixtureError::BadAddress(addr.to_owned()));
        };
        if let Some(target) = self.name(target) {
            let ttl = self.ttl;
            self.records.push(Record::from_rdata(Name::from(ip), ttl, RData::PTR(PTR(target))));
        }
        self
    }

    /// Any record, for types without a helper (CNAME, SRV, …).
    pub fn record(mut self, name: &str, data: RData) -> Self {
        if let Some(name) = self.name(name) {
            let ttl = self.ttl;
            self.records.push(Record::from_rdata(name, ttl, data));
        }
        self
    }

    /// Queries for `name` and every name below it, of any type, are counted and never answered.
    pub fn timeout(self, name: &str) -> Self {
        self.fault(name, Fault::Timeout)
    }

    /// Queries for exactly `name` (not the names below it) are counted and never answered,
    /// unless their type is one of `answered` (the RFC 7208 test suite's `TIMEOUT` entry,
    /// which follows the records that still answer).
    pub fn timeout_except(mut self, name: &str, answered: &[RecordType]) -> Self {
        if let Some(name) = self.name(name) {
            self.exact_timeouts.push((LowerName::new(&name), answered.to_vec()));
        }
        self
    }

    /// Queries for `name` and every name below it are answered with SERVFAIL.
    pub fn servfail(self, name: &str) -> Self {
        self.fault(name, Fault::ServFail)
    }

    /// Queries for `name` and every name below it are answered normally, after `delay`.
    pub fn delay(self, name: &str, delay: Duration) -> Self {
        self.fault(name, Fault::Delay(delay))
    }

    /// Starts serving on 127.0.0.1, UDP and TCP on the same random port.
    ///
    /// # Errors
    /// The first invalid name, address or zone given to the builder, or no free port.
    pub async fn start(self) -> Result<DnsFixture, FixtureError> {
        self.start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts serving on `addr` (UDP and TCP); port 0 picks a port free for both.
    ///
    /// # Errors
    /// As [`start`](Self::start), or `addr` cannot be bound.
    pub async fn start_on(self, addr: SocketAddr) -> Result<DnsFixture, FixtureError> {
        let faults = self.faults.clone();
        let exact_timeouts = self.exact_timeouts.clone();
        let catalog = self.into_catalog()?;
        let (udp, tcp) = bind_pair(addr).await?;
        let addr = udp.local_addr().map_err(|source| FixtureError::Bind { addr, source })?;
        let counters = Arc::new(Counters::default());
        let outage = Arc::new(Mutex::new(None));
        let handler = FixtureHandler {
            catalog,
            faults,
            exact_timeouts,
            counters: Arc::clone(&counters),
            outage: Arc::clone(&outage),
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(DnsFixture { addr, server, counters, outage })
    }

    fn name(&mut self, text: &str) -> Option<Name> {
        match parse_name(text) {
            Ok(name) => Some(name),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    fn fail(mut self, error: FixtureError) -> Self {
        self.error.get_or_insert(error);
        self
    }

    fn fault(mut self, name: &str, fault: Fault) -> Self {
        if let Some(name) = self.name(name) {
            self.faults.push((LowerName::new(&name), fault));
        }
        self
    }

    /// Groups every record under its zone and loads the zones into a catalog.
    fn into_catalog(self) -> Result<Catalog, FixtureError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut zones: BTreeMap<LowerName, (Name, Vec<Record>)> = BTreeMap::new();
        for (origin, negative_ttl) in &self.zones {
            zones.insert(LowerName::new(origin), (origin.clone(), apex_records(origin, *negative_ttl)));
        }
        for (origin, path) in &self.zone_files {
            let (origin, records) = read_zone_file(origin.clone(), path)?;
            zones.entry(LowerName::new(&origin)).or_insert_with(|| (origin, Vec::new())).1.extend(records);
        }
        for record in self.records {
            let owner = LowerName::new(&record.name);
            let zone = zones.keys().filter(|z| z.zone_of(&owner)).max_by_key(|z| z.num_labels()).cloned();
            let zone = match zone {
                Some(zone) => zone,
                None => {
                    let origin = reverse_zone_for(&record.name)
                        .ok_or_else(|| FixtureError::OutsideZones { name: record.name.to_string() })?;
                    let key = LowerName::new(&origin);
                    zones.entry(key.clone()).or_insert_with(|| {
                        let apex = apex_records(&origin, DEFAULT_NEGATIVE_TTL);
                        (origin, apex)
                    });
                    key
                }
            };
            if let Some((_, records)) = zones.get_mut(&zone) {
                records.push(record);
            }
        }

        let mut catalog = Catalog::new();
        for (key, (origin, records)) in zones {
            let zone_error = |reason: String| FixtureError::Zone { origin: origin.to_string(), reason };
            if !records.iter().any(|r| r.record_type() == RecordType::SOA && LowerName::new(&r.name) == key) {
                return Err(zone_error("no SOA record at the zone apex".to_owned()));
            }
            let mut handler =
                InMemoryZoneHandler::<TokioRuntimeProvider>::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
            for record in records {
                let what = format!("{} {}", record.name, record.record_type());
                if !handler.upsert_mut(record, 1) {
                    return Err(zone_error(format!("cannot add {what}")));
                }
            }
            catalog.upsert(key, vec![Arc::new(handler)]);
        }
        Ok(catalog)
    }
}

/// A running authoritative DNS server for tests. Dropping it stops the server.
pub struct DnsFixture {
    addr: SocketAddr,
    server: Server<FixtureHandler>,
    counters: Arc<Counters>,
    outage: Arc<Mutex<Option<Fault>>>,
}

impl std::fmt::Debug for DnsFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsFixture").field("addr", &self.addr).field("queries", &self.queries()).finish()
    }
}

impl DnsFixture {
    pub fn builder() -> DnsFixtureBuilder {
        DnsFixtureBuilder {
            zones: Vec::new(),
            zone_files: Vec::new(),
            records: Vec::new(),
            faults: Vec::new(),
            exact_timeouts: Vec::new(),
            ttl: DEFAULT_TTL,
            error: None,
        }
    }

    /// The `e2e.test` zone the daemon-level SPF tests share: `pass.e2e.test` allows
    /// 192.0.2.0/24, `fail.e2e.test` only 198.51.100.1, and `mail.e2e.test` (a HELO name)
    /// its own address 192.0.2.10.
    pub fn spf_e2e() -> DnsFixtureBuilder {
        DnsFixture::builder()
            .zone("e2e.test")
            .txt("pass.e2e.test", "v=spf1 ip4:192.0.2.0/24 -all")
            .txt("fail.e2e.test", "v=spf1 ip4:198.51.100.1 -all")
            .txt("mail.e2e.test", "v=spf1 a -all")
            .a("mail.e2e.test", "192.0.2.10")
    }

    /// The address served, for UDP and TCP alike.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"`, as `shared::dns::DnsConfig::nameservers` expects it.
    pub fn nameserver(&self) -> String {
        self.addr.to_string()
    }

    /// The `[dns]` section a daemon under test should use: only this server, a short timeout and
    /// no resolver cache, so every lookup reaches the server and is counted.
    ///
    /// When counting, note that a UDP try may be retransmitted (up to 3 datagrams) before its
    /// timeout, so an unanswered name is counted at least once, not exactly once; an answered
    /// lookup is one query. (`attempts` here is tries; `DnsConfig::build` gives hickory the
    /// retry count it expects.)
    pub fn dns_config(&self) -> DnsConfig {
        DnsConfig {
            nameservers: vec![self.nameserver()],
            timeout: ConfigDuration(RESOLVER_TIMEOUT),
            attempts: 1,
            cache_size: 0,
        }
    }

    /// A resolver built from [`dns_config`](Self::dns_config) by the project's own code.
    ///
    /// # Panics
    /// If `DnsConfig::build` rejects the fixture's own configuration, which is a bug there.
    pub fn resolver(&self) -> TokioResolver {
        self.dns_config().build_hickory().expect("the fixture's DnsConfig is valid")
    }

    /// The daemons' resolver (hickory plus in-flight sharing) over this server.
    ///
    /// # Panics
    /// As [`resolver`](Self::resolver).
    pub fn shared_resolver(&self) -> shared::dns::Resolver {
        self.dns_config().build().expect("the fixture's DnsConfig is valid")
    }

    /// Queries received so far, including unanswered and SERVFAIL ones.
    pub fn queries(&self) -> u64 {
        self.counters.total.load(Ordering::Relaxed)
    }

    /// Queries received over TCP so far.
    pub fn tcp_queries(&self) -> u64 {
        self.counters.tcp.load(Ordering::Relaxed)
    }

    /// Queries received for `name` (any case, trailing dot optional) and type `rtype`.
    ///
    /// # Panics
    /// If `name` is not a valid domain name.
    pub fn queries_for(&self, name: &str, rtype: RecordType) -> u64 {
        let name = lower_name(name);
        self.counters.by_query().get(&(name, rtype)).copied().unwrap_or(0)
    }

    /// Queries received for `name`, of any type.
    ///
    /// # Panics
    /// If `name` is not a valid domain name.
    pub fn queries_for_name(&self, name: &str) -> u64 {
        let name = lower_name(name);
        self.counters.by_query().iter().filter(|((n, _), _)| *n == name).map(|(_, count)| count).sum()
    }

    /// Starts (`Some`) or ends (`None`) an outage: every query gets `fault` instead of its
    /// answer, as when the resolver the daemons use stops answering, answers late, or fails.
    pub fn set_outage(&self, fault: Option<Fault>) {
        *self.outage.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Sets every counter back to zero.
    pub fn reset_counts(&self) {
        let mut by_query = self.counters.by_query();
        self.counters.total.store(0, Ordering::Relaxed);
        self.counters.tcp.store(0, Ordering::Relaxed);
        by_query.clear();
    }

    /// Stops accepting queries and waits for the server tasks to end.
    ///
    /// # Errors
    /// A server task ended with an error before the shutdown.
    pub async fn shutdown(mut self) -> Result<(), FixtureError> {
        self.server.shutdown_gracefully().await.map_err(|e| FixtureError::Server(e.to_string()))
    }
}

/// Serves the zones in `paths` (RFC 1035 master files, each naming its zone with `$ORIGIN`) on
/// `addr`, for tools that point a daemon at fixture data; names in `delays` (and the names
/// below them) are answered after their delay. The server runs until the returned fixture is
/// dropped.
///
/// # Errors
/// A file that cannot be read or parsed, or `addr` cannot be bound.
pub async fn serve_files(
    paths: &[PathBuf],
    delays: &[(String, Duration)],
    addr: SocketAddr,
) -> Result<DnsFixture, FixtureError> {
    let mut builder = DnsFixture::builder();
    for (name, delay) in delays {
        builder = builder.delay(name, *delay);
    }
    builder.zone_files.extend(paths.iter().map(|p| (None, p.clone())));
    builder.start_on(addr).await
}

/// Counts every query that reaches the handler, before any fault applies.
#[derive(Default)]
struct Counters {
    total: AtomicU64,
    tcp: AtomicU64,
    by_query: Mutex<HashMap<(LowerName, RecordType), u64>>,
}

impl Counters {
    fn by_query(&self) -> std::sync::MutexGuard<'_, HashMap<(LowerName, RecordType), u64>> {
        // A panic elsewhere in a test must not hide the counts.
        self.by_query.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: &Request) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if request.protocol() == Protocol::Tcp {
            self.tcp.fetch_add(1, Ordering::Relaxed);
        }
        let mut by_query = self.by_query();
        for query in request.queries.queries() {
            *by_query.entry((query.name().clone(), query.query_type())).or_default() += 1;
        }
    }
}

/// hickory's catalog plus the fixture's counting and faults.
struct FixtureHandler {
    catalog: Catalog,
    faults: Vec<(LowerName, Fault)>,
    exact_timeouts: Vec<(LowerName, Vec<RecordType>)>,
    counters: Arc<Counters>,
    outage: Arc<Mutex<Option<Fault>>>,
}

impl FixtureHandler {
    /// The fault of the most specific listed name that contains a queried name.
    fn fault_for(&self, request: &Request) -> Option<Fault> {
        if let Some(fault) = *self.outage.lock().unwrap_or_else(PoisonError::into_inner) {
            return Some(fault);
        }
        let queries = request.queries.queries();
        let exact = self
            .exact_timeouts
            .iter()
            .any(|(name, answered)| queries.iter().any(|q| q.name() == name && !answered.contains(&q.query_type())));
        if exact {
            return Some(Fault::Timeout);
        }
        self.faults
            .iter()
            .filter(|(name, _)| queries.iter().any(|q| name.zone_of(q.name())))
            .max_by_key(|(name, _)| name.num_labels())
            .map(|(_, fault)| *fault)
    }
}

#[async_trait::async_trait]
impl RequestHandler for FixtureHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.counters.record(request);
        match self.fault_for(request) {
            None => {}
            Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
            // Send nothing: the server only wants a summary of what was sent.
            Some(Fault::Timeout) => return unsent(request, ResponseCode::NoError),
            Some(Fault::ServFail) => {
                let response = MessageResponseBuilder::from_message_request(request)
                    .error_msg(&request.metadata, ResponseCode::ServFail);
                return match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => unsent(request, ResponseCode::ServFail),
                };
            }
        }
        self.catalog.handle_request::<R, T>(request, response_handle).await
    }
}

/// The summary of a response that was never sent.
fn unsent(request: &Request, response_code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = response_code;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

/// SOA and NS at `origin`. The SOA record's TTL equals its minimum, so the negative TTL a
/// resolver derives (RFC 2308 §5: the smaller of the two) is exactly `negative_ttl`.
fn apex_records(origin: &Name, negative_ttl: u32) -> Vec<Record> {
    let label = |l: &str| Name::from_ascii(l).and_then(|n| n.append_domain(origin));
    let ns = label("ns").expect("ns.<valid origin> is a valid name");
    let hostmaster = label("hostmaster").expect("hostmaster.<valid origin> is a valid name");
    let soa = SOA::new(ns.clone(), hostmaster, 1, 3600, 600, 86400, negative_ttl);
    vec![
        Record::from_rdata(origin.clone(), negative_ttl, RData::SOA(soa)),
        Record::from_rdata(origin.clone(), DEFAULT_TTL, RData::NS(NS(ns))),
    ]
}

/// `in-addr.arpa.` or `ip6.arpa.` when `name` lies under it.
fn reverse_zone_for(name: &Name) -> Option<Name> {
    ["in-addr.arpa.", "ip6.arpa."]
        .into_iter()
        .filter_map(|zone| Name::from_ascii(zone).ok())
        .find(|zone| zone.zone_of(name))
}

/// Parses a master file; `origin` `None` means the file's own `$ORIGIN`.
fn read_zone_file(origin: Option<Name>, path: &Path) -> Result<(Name, Vec<Record>), FixtureError> {
    let error = |reason: String| FixtureError::ZoneFile { path: path.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let (origin, rrsets) =
        Parser::new(text, Some(path.to_owned()), origin).parse().map_err(|e| error(e.to_string()))?;
    let records = rrsets.into_values().flat_map(|rrset| rrset.records_without_rrsigs().cloned().collect::<Vec<_>>());
    Ok((origin, records.collect()))
}

/// Binds UDP and TCP on the same address; with port 0, retries until one port is free for both.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), FixtureError> {
    let bind_error = |source| FixtureError::Bind { addr, source };
    let mut attempts = 0;
    loop {
        let udp = UdpSocket::bind(addr).await.map_err(bind_error)?;
        let bound = udp.local_addr().map_err(bind_error)?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse && attempts < 20 => attempts += 1,
            Err(e) => return Err(bind_error(e)),
        }
    }
}

/// `text` as an absolute name: a trailing dot is optional, case is kept for the answer.
/// A host name, or else a name of raw labels (DNS labels may hold any octet, RFC 2181 §11:
/// the SPF test suite serves names with `:`, `/` and spaces).
fn parse_name(text: &str) -> Result<Name, FixtureError> {
    let bad = |reason: String| FixtureError::BadName { name: text.to_owned(), reason };
    let mut name = match Name::from_ascii(text) {
        Ok(name) => name,
        Err(e) => {
            let bare = text.strip_suffix('.').unwrap_or(text);
            Name::from_labels(bare.split('.').map(str::as_bytes)).map_err(|_| bad(e.to_string()))?
        }
    };
    name.set_fqdn(true);
    Ok(name)
}

fn lower_name(text: &str) -> LowerName {
    match parse_name(text) {
        Ok(name) => LowerName::new(&name),
        Err(e) => panic!("{e}"),
    }
}
