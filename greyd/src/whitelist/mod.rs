//! greyd's whitelists: clients, recipients and (opt-in) senders that are never greylisted.
//!
//! Owns loading the whitelist files (and the built-in client list) into one immutable
//! [`Whitelists`] value, the lookups on the request path, and `check`, which answers
//! "which entry, if any, matches" for `postward-greyd check`. It does not decide what a match
//! means for the request (the greylist decider does) nor when to reload: the daemon loads a
//! new value on SIGHUP and swaps it in with the configuration, keeping the old one on error.
//!
//! The file format is postgrey's, so its `whitelist_clients` and `whitelist_recipients` files
//! can be used as they are; see `parse.rs` for the entry forms and where we differ.
//!
//! - `client.rs`: client address and name matching (verified `client_name` only);
//! - `address.rs`: recipient and sender address matching;
//! - `lookup.rs`: the hash, prefix-length and `RegexSet` structures behind both;
//! - `parse.rs`: lines and entries, with errors naming file and line.

mod address;
mod client;
mod lookup;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub use client::UNKNOWN;
pub use parse::EntryError;

use address::{AddressList, AddressListBuilder};
use client::{ClientList, ClientListBuilder};
use lookup::Visitor;

/// The built-in client list (`greyd/whitelist/clients.default`), loaded after the
/// administrator's files when `builtin_clients` is set.
pub const BUILTIN_CLIENTS: &str = include_str!("../../whitelist/clients.default");

/// The built-in recipient list: the role addresses RFC 2142 says must reach a person. Their
/// mail is often about delivery trouble, and its senders rarely retry well.
pub const BUILTIN_RECIPIENTS: &str = "# RFC 2142 role addresses\npostmaster@\nabuse@\n";

/// Which built-in lists to add after the administrator's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Builtins {
    pub clients: bool,
    pub recipients: bool,
}

impl Builtins {
    pub const NONE: Builtins = Builtins { clients: false, recipients: false };
    pub const CLIENTS: Builtins = Builtins { clients: true, recipients: false };
}

/// The `source` of entries from [`BUILTIN_CLIENTS`].
pub const BUILTIN: &str = "built-in";

/// Where an entry comes from: what `check` reports and the request log names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file path, or [`BUILTIN`] for the built-in client list.
    pub source: String,
    /// The 1-based line number in that file.
    pub line: usize,
    /// The entry as written, without comment or surrounding white space.
    pub text: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source == BUILTIN {
            write!(f, "built-in default list line {}: {}", self.line, self.text)
        } else {
            write!(f, "{}:{}: {}", self.source, self.line, self.text)
        }
    }
}

/// One matching entry, by the list it is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Match {
    /// A client address, network, name or regex entry.
    Client(Origin),
    /// A recipient entry.
    Recipient(Origin),
    /// A sender entry (opt-in, spoofable).
    Sender(Origin),
}

impl Match {
    /// The entry that matched, whatever its list.
    pub fn origin(&self) -> &Origin {
        match self {
            Match::Client(origin) | Match::Recipient(origin) | Match::Sender(origin) => origin,
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Client(origin) => write!(f, "client whitelist: {origin}"),
            Match::Recipient(origin) => write!(f, "recipient whitelist: {origin}"),
            Match::Sender(origin) => write!(f, "sender whitelist: {origin}"),
        }
    }
}

/// Why the whitelists could not be loaded; on reload, the daemon keeps the old ones and logs this.
#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    /// A configured file is missing or unreadable.
    #[error("cannot read whitelist {path:?}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    /// A line is not a valid entry; `file` is the path or [`BUILTIN`], `text` the entry.
    #[error("{file}:{line}: {error}")]
    Entry { file: String, line: usize, text: String, error: EntryError },
    /// The regexes of one list exceed the `RegexSet` size limit together.
    #[error("{list} whitelist regexes: {reason}")]
    RegexSet { list: &'static str, reason: String },
}

/// All whitelists, immutable once loaded; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Whitelists {
    clients: ClientList,
    recipients: AddressList,
    senders: AddressList,
}

impl Whitelists {
    /// Reads the client, recipient and sender files, in the order given, and then the built-in
    /// client list if `builtin_clients` is set. When an entry appears twice, the first one
    /// loaded is the one reported.
    ///
    /// This reads files with blocking I/O: after startup, call it from `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`WhitelistError::Read`] naming a file that cannot be read (a missing file included:
    /// unlike postgrey, which skips a missing `.local` file, every configured file must
    /// exist), [`WhitelistError::Entry`] naming file, line and entry for a line that is not a
    /// valid entry (bad regex, bad network, bad name), [`WhitelistError::RegexSet`] when the
    /// regexes of one list, each valid, are too large together.
    pub fn load(
        clients: &[PathBuf],
        recipients: &[PathBuf],
        senders: &[PathBuf],
        builtins: Builtins,
    ) -> Result<Whitelists, WhitelistError> {
        let mut client_list = ClientListBuilder::default();
        for path in clients {
            add_lines(&display(path), &read(path)?, parse::client_entry, |e, o| client_list.add(e, o))?;
        }
        if builtins.clients {
            add_lines(BUILTIN, BUILTIN_CLIENTS.as_bytes(), parse::client_entry, |e, o| client_list.add(e, o))?;
        }
        let mut recipient_list = AddressListBuilder::default();
        for path in recipients {
            add_lines(&display(path), &read(path)?, parse::address_entry, |e, o| recipient_list.add(e, o))?;
        }
        if builtins.recipients {
            add_lines(BUILTIN, BUILTIN_RECIPIENTS.as_bytes(), parse::address_entry, |e, o| recipient_list.add(e, o))?;
        }
        let mut sender_list = AddressListBuilder::default();
        for path in senders {
            add_lines(&display(path), &read(path)?, parse::address_entry, |e, o| sender_list.add(e, o))?;
        }
        let set_error = |list| move |err: regex::Error| WhitelistError::RegexSet { list, reason: err.to_string() };
        Ok(Whitelists {
            clients: client_list.build().map_err(set_error("client"))?,
            recipients: recipient_list.build().map_err(set_error("recipient"))?,
            senders: sender_list.build().map_err(set_error("sender"))?,
        })
    }

    /// Lists from memory: one client list and one address list, used for both recipients and
    /// senders, each named `source` in errors. [`Whitelists::load`] reads files into the same
    /// parser; this form is for the fuzz targets, which must not touch the file system.
    ///
    /// # Errors
    /// As [`Whitelists::load`], without the read errors.
    pub fn from_bytes(source: &str, clients: &[u8], addresses: &[u8]) -> Result<Whitelists, WhitelistError> {
        let mut client_list = ClientListBuilder::default();
        add_lines(source, clients, parse::client_entry, |e, o| client_list.add(e, o))?;
        let mut recipient_list = AddressListBuilder::default();
        let mut sender_list = AddressListBuilder::default();
        add_lines(source, addresses, parse::address_entry, |e, o| {
            recipient_list.add(e.clone(), o.clone());
            sender_list.add(e, o);
        })?;
        let set_error = |list| move |err: regex::Error| WhitelistError::RegexSet { list, reason: err.to_string() };
        Ok(Whitelists {
            clients: client_list.build().map_err(set_error("client"))?,
            recipients: recipient_list.build().map_err(set_error("recipient"))?,
            senders: sender_list.build().map_err(set_error("sender"))?,
        })
    }

    /// No entries at all: nothing is whitelisted.
    pub fn empty() -> Whitelists {
        Whitelists::default()
    }

    /// The first client entry matching `addr` or `client_name`, on the request path.
    ///
    /// `client_name` must be Postfix's `client_name` attribute, the forward-confirmed name,
    /// never `reverse_client_name`: a PTR name alone is chosen by whoever holds the address
    /// block, so matching it would let anyone name their host `x.outbound.protection.outlook.com`
    /// and skip greylisting. `unknown` (no verified name) matches no name or regex entry.
    ///
    /// Order: networks (longest prefix first), exact names, the name and its parent domains
    /// (longest first), regexes (file order).
    pub fn client(&self, addr: IpAddr, client_name: &str) -> Option<&Origin> {
        first(|f| self.clients.visit(Some(addr), client_name, f))
    }

    /// The first recipient entry matching `recipient` (as Postfix sends it, without `<>`).
    pub fn recipient(&self, recipient: &str) -> Option<&Origin> {
        first(|f| self.recipients.visit(recipient, f))
    }

    /// The first sender entry matching `sender`. The envelope sender is not authenticated:
    /// anyone can write any address in `MAIL FROM`, so a sender entry lets everyone who uses
    /// that address through. The list is opt-in (empty unless files are configured).
    pub fn sender(&self, sender: &str) -> Option<&Origin> {
        first(|f| self.senders.visit(sender, f))
    }

    /// Every entry matching `query`, for `postward-greyd check`, in the order the request path
    /// tries them (so the first `Client` match is the one [`Whitelists::client`] returns):
    ///
    /// - an IP address (`192.0.2.7`, `[2001:db8::7]`, `ipv6:2001:db8::7`): client networks;
    /// - an email address (`<…>` allowed): recipient, then sender entries;
    /// - `name[address]`, as in Postfix logs: client networks and names;
    /// - anything else, taken as a verified client hostname: client names and regexes.
    ///
    /// No DNS is done: to check an address's name entries, give `name[address]`.
    pub fn check(&self, query: &str) -> Vec<Match> {
        let query = query.trim();
        let mut out = Vec::new();
        if let Some(addr) = parse_addr(query) {
            let _ = self.clients.visit(Some(addr), UNKNOWN, &mut collect(&mut out, Match::Client));
        } else if query.contains('@') {
            let address = query.strip_prefix('<').and_then(|q| q.strip_suffix('>')).unwrap_or(query);
            let _ = self.recipients.visit(address, &mut collect(&mut out, Match::Recipient));
            let _ = self.senders.visit(address, &mut collect(&mut out, Match::Sender));
        } else if let Some((name, addr)) = parse_name_addr(query) {
            let _ = self.clients.visit(Some(addr), name, &mut collect(&mut out, Match::Client));
        } else {
            let _ = self.clients.visit(None, query, &mut collect(&mut out, Match::Client));
        }
        out
    }

    /// The number of entries loaded: (clients, recipients, senders), duplicates included.
    pub fn len(&self) -> (usize, usize, usize) {
        (self.clients.len(), self.recipients.len(), self.senders.len())
    }

    /// True when no list has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }
}

/// The first origin a visit yields.
fn first<'a>(visit: impl FnOnce(&mut Visitor<'_, 'a>) -> ControlFlow<()>) -> Option<&'a Origin> {
    let mut found = None;
    let _ = visit(&mut |origin| {
        found = Some(origin);
        ControlFlow::Break(())
    });
    found
}

/// A visitor that appends every origin to `out`, wrapped as a [`Match`].
fn collect<'o, 'a>(
    out: &'o mut Vec<Match>,
    wrap: fn(Origin) -> Match,
) -> impl FnMut(&'a Origin) -> ControlFlow<()> + 'o {
    move |origin| {
        out.push(wrap(origin.clone()));
        ControlFlow::Continue(())
    }
}

/// `192.0.2.7`, `2001:db8::7`, `[…]` and Postfix's `ipv6:` prefix.
fn parse_addr(text: &str) -> Option<IpAddr> {
    let text = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    let text = text.strip_prefix("ipv6:").or_else(|| text.strip_prefix("IPv6:")).unwrap_or(text);
    text.parse().ok()
}

/// `name[address]`, as Postfix logs a client.
fn parse_name_addr(text: &str) -> Option<(&str, IpAddr)> {
    let (name, rest) = text.split_once('[')?;
    let addr = parse_addr(rest.strip_suffix(']')?)?;
    (!name.is_empty()).then_some((name, addr))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> Result<Vec<u8>, WhitelistError> {
    std::fs::read(path).map_err(|error| WhitelistError::Read { path: path.to_owned(), error })
}

/// Parses every line of one file with `parse` and hands the entries to `add`.
fn add_lines<E>(
    source: &str,
    bytes: &[u8],
    parse: fn(&str) -> Result<E, EntryError>,
    mut add: impl FnMut(E, Origin),
) -> Result<(), WhitelistError> {
    let lines = parse::lines(bytes).map_err(|(line, error)| WhitelistError::Entry {
        file: source.to_owned(),
        line,
        text: String::new(),
        error,
    })?;
    for line in lines {
        let entry = parse(&line.text).map_err(|error| WhitelistError::Entry {
            file: source.to_owned(),
            line: line.number,
            text: line.text.clone(),
            error,
        })?;
        add(entry, Origin { source: source.to_owned(), line: line.number, text: line.text });
    }
    Ok(())
}
