//! One authentication request, from its AUTH line to its OK or FAIL, as a task of its own:
//! each mechanism's exchange reads top to bottom, awaiting the client's answers through a
//! [`Link`] to the connection.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::cache::Fingerprint;
use crate::mech::{self, Mech, MechError};
use crate::outcome::{Abandon, Failure, Outcome};
use crate::protocol::Reply;
use crate::service::{Attempt, Service};

/// What a request hands the connection to write. `seq` tells this request from a later one
/// that reuses its id after a CANCEL: a cancelled request still ends (and is logged), but
/// its lines are not written.
#[derive(Debug)]
pub enum Out {
    /// A `CONT` line: the request now waits for the client's answer.
    Challenge { id: u32, seq: u64, line: Vec<u8> },
    /// The final `OK` or `FAIL` line: the request is over.
    Done { id: u32, seq: u64, line: Vec<u8> },
}

/// What the connection hands a request waiting for a challenge's answer.
#[derive(Debug)]
pub enum Answer {
    /// A `CONT` payload, still base64.
    Data(String),
    /// The client sent CANCEL (or a CONT the request was not waiting for).
    Cancel,
}

/// A request's line to its connection.
pub struct Link {
    pub id: u32,
    pub seq: u64,
    /// The client's answers, routed here by the connection. Closed when the client is gone.
    pub answers: mpsc::Receiver<Answer>,
    pub out: mpsc::UnboundedSender<Out>,
    /// How long the client may take to answer a challenge (Dovecot: 150 s).
    pub answer_timeout: Duration,
}

impl Link {
    /// Sends a challenge and waits for the decoded answer. A client that leaves the exchange
    /// (no answer in time, CANCEL, disconnect) ends it as [`Failure::Abandoned`].
    async fn challenge(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let mut line = Vec::with_capacity(32 + data.len() * 2);
        Reply::Cont { id: self.id, data }.write_to(&mut line);
        let gone = Failure::Abandoned(Abandon::Disconnected);
        self.out.send(Out::Challenge { id: self.id, seq: self.seq, line }).map_err(|_| gone.clone())?;
        match tokio::time::timeout(self.answer_timeout, self.answers.recv()).await {
            Ok(Some(Answer::Data(text))) => decode(&text, false),
            Ok(Some(Answer::Cancel)) => Err(Failure::Abandoned(Abandon::Cancelled)),
            Ok(None) => Err(gone),
            Err(_) => Err(Failure::Abandoned(Abandon::NoAnswer)),
        }
    }
}

/// Runs one request to its end.
pub async fn run(service: Arc<Service>, mut at: Attempt, resp: Option<String>, mut link: Link) {
    let initial = match resp.as_deref().map(|r| decode(r, true)).transpose() {
        Ok(i) => i,
        Err(f) => return reply(&link, service.finish(&at, Outcome::failure(None, f), None).await),
    };
    let (outcome, fp) = match at.mech {
        Mech::Plain => plain(&service, &mut at, initial, &mut link).await,
        Mech::Login => login(&service, &mut at, initial, &mut link).await,
        Mech::CramMd5 => cram_md5(&service, &mut at, &mut link).await,
        Mech::ScramSha256 => scram_sha256(&service, &mut at, initial, &mut link).await,
    };
    reply(&link, service.finish(&at, outcome, fp).await);
}

/// A challenge through the link. Postfix's 10 s timeout runs from its last write, so the
/// reply budget restarts when the client's answer arrives.
async fn ask(link: &mut Link, at: &mut Attempt, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let answer = link.challenge(data).await;
    at.started = tokio::time::Instant::now();
    answer
}

async fn plain(
    service: &Service,
    at: &mut Attempt,
    initial: Option<Zeroizing<Vec<u8>>>,
    link: &mut Link,
) -> (Outcome, Option<Fingerprint>) {
    let data = match initial {
        Some(d) => d,
        None => match ask(link, at, b"").await {
            Ok(d) => d,
            Err(f) => return (Outcome::failure(None, f), None),
        },
    };
    match mech::plain::parse_plain(&data) {
        Ok(r) => service.check_password(at, r.authzid.as_deref(), &r.authcid, &r.password).await,
        Err(e) => (Outcome::failure(None, Failure::Malformed(e)), None),
    }
}

/// Challenges exactly `Username:` and `Password:`; an initial response is the user name.
async fn login(
    service: &Service,
    at: &mut Attempt,
    initial: Option<Zeroizing<Vec<u8>>>,
    link: &mut Link,
) -> (Outcome, Option<Fingerprint>) {
    let user = match initial.filter(|d| !d.is_empty()) {
        Some(d) => d,
        None => match ask(link, at, b"Username:").await {
            Ok(d) => d,
            Err(f) => return (Outcome::failure(None, f), None),
        },
    };
    if let Err(e) = mech::plain::login_answer(&user, "LOGIN user name") {
        return (Outcome::failure(None, Failure::Malformed(e)), None);
    }
    let password = match ask(link, at, b"Password:").await {
        Ok(p) => p,
        Err(f) => return (Outcome::failure(None, f), None),
    };
    if let Err(e) = mech::plain::login_answer(&password, "LOGIN password") {
        return (Outcome::failure(None, Failure::Malformed(e)), None);
    }
    service.check_password(at, None, &user, &password).await
}

async fn cram_md5(service: &Service, at: &mut Attempt, link: &mut Link) -> (Outcome, Option<Fingerprint>) {
    let challenge = mech::cram::challenge(service.hostname());
    let answer = match ask(link, at, &challenge).await {
        Ok(a) => a,
        Err(f) => return (Outcome::failure(None, f), None),
    };
    let (user, digest) = match mech::cram::parse_response(&answer) {
        Ok(r) => r,
        Err(e) => return (Outcome::failure(None, Failure::Malformed(e)), None),
    };
    let login = match service.account_for(at, None, user).await {
        Ok(l) => l,
        Err(o) => return (o, None),
    };
    let fp = Some(service.fingerprint(&login.name, &answer));
    let key = login.account.as_ref().and_then(|a| a.password.as_ref()).and_then(|p| p.cram_md5());
    // Unknown users and accounts without CRAM-MD5 credentials are compared against zeros:
    // same work, same answer as a wrong digest.
    let expected = key.as_ref().map_or([0u8; 16], |k| k.hmac(&challenge));
    let matches = bool::from(expected.ct_eq(&digest)) && key.is_some();
    if login.account.is_none() {
        return (Outcome::failure(Some(login.name), Failure::UnknownUser), fp);
    }
    if !matches {
        return (Outcome::failure(Some(login.name), Failure::WrongPassword), fp);
    }
    let outcome = match service.admit(at, &login).await {
        Ok(user) => Outcome::success(user),
        Err(o) => o,
    };
    (outcome, fp)
}

/// RFC 5802 with the server-final message as one more challenge (Postfix sends no
/// `final-resp-ok`): client-first → server-first → client-final → `v=` → empty → OK.
async fn scram_sha256(
    service: &Service,
    at: &mut Attempt,
    initial: Option<Zeroizing<Vec<u8>>>,
    link: &mut Link,
) -> (Outcome, Option<Fingerprint>) {
    let first = match initial.filter(|d| !d.is_empty()) {
        Some(d) => d,
        None => match ask(link, at, b"").await {
            Ok(d) => d,
            Err(f) => return (Outcome::failure(None, f), None),
        },
    };
    let first = match mech::scram::parse_client_first(&first) {
        Ok(f) => f,
        Err(e) => return (Outcome::failure(None, Failure::Malformed(e)), None),
    };
    let login = match service.account_for(at, first.authzid.as_deref().map(str::as_bytes), first.user.as_bytes()).await
    {
        Ok(l) => l,
        Err(o) => return (o, None),
    };
    // Dropping the exchange after the server-first message is a guess too: repeated with
    // other names, it would list them if their salts differed (they do not; see scram_keys).
    let abandoned = Some(service.fingerprint(&login.name, b"\0abandoned"));
    let keys = match service.scram_keys(at, &login).await {
        Ok(k) => k,
        Err(f) => return (Outcome::failure(Some(login.name), f), None),
    };
    let server_first = mech::scram::server_first(&first, &mech::scram::server_nonce(), &keys.salt, keys.iterations);
    let client_final = match ask(link, at, server_first.as_bytes()).await {
        Ok(c) => c,
        Err(f) => return (Outcome::failure(Some(login.name), f), abandoned),
    };
    let fp = Some(service.fingerprint(&login.name, &client_final));
    let verified =
        mech::scram::verify_client_final(&client_final, &first, &server_first, &keys.stored_key, &keys.server_key);
    let server_final = match verified {
        Ok(Some(v)) if login.account.is_some() => v,
        Ok(_) if login.account.is_none() => return (Outcome::failure(Some(login.name), Failure::UnknownUser), fp),
        Ok(_) => return (Outcome::failure(Some(login.name), Failure::WrongPassword), fp),
        Err(e) => return (Outcome::failure(Some(login.name), Failure::Malformed(e)), fp),
    };
    let user = match service.admit(at, &login).await {
        Ok(u) => u,
        Err(o) => return (o, fp),
    };
    let outcome = match ask(link, at, &server_final).await {
        Ok(empty) if empty.is_empty() => Outcome::success(user),
        Ok(_) => Outcome::failure(
            Some(login.name),
            Failure::Malformed(MechError::Malformed("SCRAM: data after the server-final message")),
        ),
        Err(f) => Outcome::failure(Some(login.name), f),
    };
    (outcome, fp)
}

/// Strict base64: padding required, no whitespace. The initial response `=` is an empty one
/// (RFC 4954).
fn decode(text: &str, initial: bool) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if initial && text == "=" {
        return Ok(Zeroizing::new(Vec::new()));
    }
    STANDARD.decode(text).map(Zeroizing::new).map_err(|_| Failure::InvalidBase64 { initial })
}

fn reply(link: &Link, outcome: Outcome) {
    let mut line = Vec::with_capacity(96);
    match &outcome.result {
        Ok(()) => Reply::Ok { id: link.id, user: outcome.user.as_deref().unwrap_or_default() }.write_to(&mut line),
        Err(f) => Reply::Fail { id: link.id, code: f.code(), user: outcome.user.as_deref(), reason: f.reply_reason() }
            .write_to(&mut line),
    }
    // A closed connection no longer wants the answer.
    let _ = link.out.send(Out::Done { id: link.id, seq: link.seq, line });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_base64() {
        assert_eq!(decode("AGFsaWNlAHNlY3JldA==", true).map(|d| d.to_vec()), Ok(b"\0alice\0secret".to_vec()));
        assert_eq!(decode("=", true).map(|d| d.len()), Ok(0));
        assert_eq!(decode("", false).map(|d| d.len()), Ok(0));
        assert_eq!(decode("AGFsaWNlAHNlY3JldA", true), Err(Failure::InvalidBase64 { initial: true }));
        assert_eq!(decode("=", false), Err(Failure::InvalidBase64 { initial: false }));
        assert_eq!(decode("AGFs aWNl", false), Err(Failure::InvalidBase64 { initial: false }));
        assert_eq!(decode("!!!!", true), Err(Failure::InvalidBase64 { initial: true }));
    }
}
