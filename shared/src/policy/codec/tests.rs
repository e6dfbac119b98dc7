//! Labelled table of request-reader cases (in the manner of Postfix's postscreen_dnsbl_test.c).
//! Every case runs twice: from one buffer, and through a 1-byte buffer so each line arrives
//! split across reads.

use super::*;
use tokio::io::BufReader;

#[derive(Debug)]
enum Expect {
    /// Exactly these attributes, in order.
    Attrs(&'static [(&'static str, &'static str)]),
    /// This many attributes.
    Count(usize),
    /// These attributes had invalid UTF-8 and were decoded lossily.
    Lossy(&'static [&'static str]),
    /// Clean end of stream before any byte.
    Eof,
    /// An error of this kind.
    Err(&'static str),
}

fn kind(err: &CodecError) -> &'static str {
    match err {
        CodecError::LineTooLong { .. } => "line-too-long",
        CodecError::TooLarge { .. } => "too-large",
        CodecError::TooManyAttributes { .. } => "too-many-attributes",
        CodecError::NulByte { .. } => "nul",
        CodecError::NoEquals { .. } => "no-equals",
        CodecError::EmptyName { .. } => "empty-name",
        CodecError::NameNotUtf8 { .. } => "name-not-utf8",
        CodecError::EmptyRequest => "empty-request",
        CodecError::Truncated { .. } => "truncated",
        CodecError::Io(_) => "io",
    }
}

const POSTFIX_37: &str = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
client_address=192.0.2.7\nclient_name=mx.example.org\nclient_port=41234\n\
reverse_client_name=mx.example.org\nserver_address=198.51.100.1\nserver_port=25\n\
helo_name=mx.example.org\nsender=alice@example.org\nrecipient=bob@example.net\n\
recipient_count=0\nqueue_id=\ninstance=1a2b.6553f0a1.c3d4e.0\nsize=1234\netrn_domain=\n\
stress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\n\
ccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n\
encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\npolicy_context=\n\n";

fn big(n: usize, value_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        v.extend_from_slice(format!("a{i}={}\n", "x".repeat(value_len)).as_bytes());
    }
    v.push(b'\n');
    v
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let line_at_limit = format!("s={}\n\n", "x".repeat(Limits::default().max_line - 2));
    let line_over_limit = format!("s={}\n\n", "x".repeat(Limits::default().max_line - 1));
    let crlf_at_limit = format!("s={}\r\n\r\n", "x".repeat(Limits::default().max_line - 2));
    vec![
        (
            "minimal request",
            b"request=smtpd_access_policy\n\n".to_vec(),
            Expect::Attrs(&[("request", "smtpd_access_policy")]),
        ),
        ("full Postfix 3.7 request", POSTFIX_37.as_bytes().to_vec(), Expect::Count(29)),
        (
            "'=' inside a value",
            b"request=x\nsender=a=b@c\n\n".to_vec(),
            Expect::Attrs(&[("request", "x"), ("sender", "a=b@c")]),
        ),
        ("value starting with '='", b"x==y\n\n".to_vec(), Expect::Attrs(&[("x", "=y")])),
        (
            "unknown attribute kept",
            b"request=x\nfuture_thing=42\n\n".to_vec(),
            Expect::Attrs(&[("request", "x"), ("future_thing", "42")]),
        ),
        (
            "repeated attribute kept in order",
            b"sender=a\nsender=b\n\n".to_vec(),
            Expect::Attrs(&[("sender", "a"), ("sender", "b")]),
        ),
        (
            "empty value",
            b"request=x\nsender=\nrecipient=b@c\n\n".to_vec(),
            Expect::Attrs(&[("request", "x"), ("sender", ""), ("recipient", "b@c")]),
        ),
        ("empty value on last line", b"queue_id=\n\n".to_vec(), Expect::Attrs(&[("queue_id", "")])),
        ("spaces around '=' are part of name and value", b"a = b\n\n".to_vec(), Expect::Attrs(&[("a ", " b")])),
        (
            "UTF-8 value (SMTPUTF8 sender)",
            "sender=j\u{fc}rgen@b\u{fc}cher.example\n\n".as_bytes().to_vec(),
            Expect::Attrs(&[("sender", "j\u{fc}rgen@b\u{fc}cher.example")]),
        ),
        ("EOF before any byte", b"".to_vec(), Expect::Eof),
        ("EOF before the blank line", b"request=x\nsender=a\n".to_vec(), Expect::Err("truncated")),
        ("EOF in the middle of a line", b"request=x\nsend".to_vec(), Expect::Err("truncated")),
        ("EOF after a lone CR", b"request=x\n\r".to_vec(), Expect::Err("truncated")),
        ("line exactly at the limit", line_at_limit.into_bytes(), Expect::Count(1)),
        ("CRLF line exactly at the limit", crlf_at_limit.into_bytes(), Expect::Count(1)),
        ("overlong line", line_over_limit.into_bytes(), Expect::Err("line-too-long")),
        ("overlong line without newline", vec![b'x'; 100_000], Expect::Err("line-too-long")),
        ("request over the size limit", big(100, 1000), Expect::Err("too-large")),
        ("request just under the size limit", big(60, 1000), Expect::Count(60)),
        ("NUL byte in a value", b"sender=a\0b\n\n".to_vec(), Expect::Err("nul")),
        ("NUL byte in a name", b"sen\0der=a\n\n".to_vec(), Expect::Err("nul")),
        ("NUL byte alone on a line", b"request=x\n\0\n\n".to_vec(), Expect::Err("nul")),
        (
            "invalid UTF-8 in a value is decoded lossily",
            b"request=x\nsender=caf\xe9@example.org\n\n".to_vec(),
            Expect::Lossy(&["sender"]),
        ),
        ("invalid UTF-8 in a name", b"s\xffnder=a\n\n".to_vec(), Expect::Err("name-not-utf8")),
        (
            "CRLF endings",
            b"request=x\r\nsender=a@b\r\n\r\n".to_vec(),
            Expect::Attrs(&[("request", "x"), ("sender", "a@b")]),
        ),
        (
            "CRLF lines ended by a bare LF",
            b"request=x\r\nsender=a@b\r\n\n".to_vec(),
            Expect::Attrs(&[("request", "x"), ("sender", "a@b")]),
        ),
        ("CR inside a value is kept", b"sender=a\rb\n\n".to_vec(), Expect::Attrs(&[("sender", "a\rb")])),
        ("line without '='", b"request=x\ngarbage\n\n".to_vec(), Expect::Err("no-equals")),
        ("whitespace-only line", b"request=x\n   \n\n".to_vec(), Expect::Err("no-equals")),
        ("empty attribute name", b"=value\n\n".to_vec(), Expect::Err("empty-name")),
        ("empty request", b"\n".to_vec(), Expect::Err("empty-request")),
        ("empty request with CRLF", b"\r\n".to_vec(), Expect::Err("empty-request")),
        ("exactly the attribute limit", big(256, 1), Expect::Count(256)),
        ("10,000 attributes", big(10_000, 1), Expect::Err("too-many-attributes")),
        ("HTTP request sent by mistake", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Expect::Err("no-equals")),
    ]
}

async fn read_first(input: &[u8], chunked: bool) -> Result<Option<RawRequest>, CodecError> {
    if chunked {
        let mut reader = RequestReader::new(BufReader::with_capacity(1, input), Limits::default());
        reader.read_request().await
    } else {
        let mut reader = RequestReader::new(input, Limits::default());
        reader.read_request().await
    }
}

#[tokio::test]
async fn codec_table() {
    let cases = cases();
    assert!(cases.len() >= 30, "the table must keep at least 30 cases");
    for (label, input, expect) in &cases {
        for chunked in [false, true] {
            let got = read_first(input, chunked).await;
            let ctx = format!("case {label:?} (chunked: {chunked}): got {got:?}");
            match (expect, &got) {
                (Expect::Attrs(want), Ok(Some(req))) => {
                    let have: Vec<(&str, &str)> =
                        req.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    assert_eq!(&have, want, "{ctx}");
                    assert!(req.invalid_utf8.is_empty(), "{ctx}");
                }
                (Expect::Count(n), Ok(Some(req))) => assert_eq!(req.attributes.len(), *n, "{ctx}"),
                (Expect::Lossy(names), Ok(Some(req))) => {
                    assert_eq!(&req.invalid_utf8, names, "{ctx}");
                    assert!(req.attributes.iter().any(|(_, v)| v.contains('\u{fffd}')), "{ctx}");
                }
                (Expect::Eof, Ok(None)) => {}
                (Expect::Err(k), Err(e)) => assert_eq!(kind(e), *k, "{ctx}"),
                _ => panic!("{ctx}, want {expect:?}"),
            }
        }
    }
}

#[tokio::test]
async fn pipelined_requests_are_read_one_at_a_time() {
    let input = b"request=a\n\nrequest=b\nsender=s\n\n";
    let mut reader = RequestReader::new(&input[..], Limits::default());
    let first = reader.read_request().await.unwrap().unwrap();
    assert_eq!(first.attributes, vec![("request".into(), "a".into())]);
    assert!(reader.wait_for_data().await.unwrap());
    let second = reader.read_request().await.unwrap().unwrap();
    assert_eq!(second.attributes.len(), 2);
    assert!(!reader.wait_for_data().await.unwrap());
    assert!(reader.read_request().await.unwrap().is_none());
}

#[tokio::test]
async fn raised_limits_accept_10000_attributes() {
    let input = big(10_000, 1);
    let limits = Limits { max_line: 64, max_attributes: 10_000, max_request: 1 << 20 };
    let mut reader = RequestReader::new(&input[..], limits);
    let req = reader.read_request().await.unwrap().unwrap();
    assert_eq!(req.attributes.len(), 10_000);
    assert_eq!(req.attributes[9_999], ("a9999".to_string(), "x".to_string()));
}

#[tokio::test]
async fn error_messages_name_the_problem() {
    let err = read_first(b"request=x\ngarbage here\n\n", false).await.unwrap_err();
    assert_eq!(err.to_string(), "line 2 is not name=value: \"garbage here\"");
    let err = read_first(b"sender=a\0b\n\n", false).await.unwrap_err();
    assert_eq!(err.to_string(), "NUL byte in line 1");
    let err = read_first(&big(10_000, 1), false).await.unwrap_err();
    assert_eq!(err.to_string(), "request has more than 256 attributes");
}

/// Found by the fuzz target: the reason given for a request that breaks two limits (or holds
/// a NUL past a limit) must not depend on how the client's writes were split.
#[tokio::test]
async fn the_first_limit_broken_is_reported_however_the_bytes_arrive() {
    let limits = Limits { max_line: 40, max_attributes: 4, max_request: 120 };
    let cases: [(&[u8], &str); 3] = [
        // Line 5 is too long and the request too large; the request limit is reached first.
        (b"a=0123456789012345678901234567890\nb=0123456789012345678901234567890\nc=0123456789012345678901234567890\nd=0123456789012345678901234567890\ne=01234567890123456789012345678901234567890123456789\n\n", "too-large"),
        // A line too long, with a NUL after the point where it became too long.
        (b"a=01234567890123456789012345678901234567890123\x00\n\n", "line-too-long"),
        // A NUL before the point where the line becomes too long.
        (b"a=\x00123456789012345678901234567890123456789012345\n\n", "nul"),
    ];
    for (input, expected) in cases {
        for chunk in [1usize, 3, 8, 4096] {
            let mut reader = RequestReader::new(BufReader::with_capacity(chunk, input), limits);
            match reader.read_request().await {
                Err(e) => assert_eq!(kind(&e), expected, "read {chunk} bytes at a time"),
                Ok(r) => panic!("accepted {r:?}"),
            }
        }
    }
}
