//! Unit tests for the opening handshake.

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(headers: &[(&str, &str)]) -> Request {
    Request {
        method: "GET".into(),
        target: "/chat".into(),
        version: 1,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: Vec::new(),
    }
}

fn good() -> Request {
    request(&[
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ])
}

/// `good()` with header `name` replaced by `value`, or removed when `value` is `None`.
fn with(name: &str, value: Option<&str>) -> Request {
    let mut req = good();
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        req.headers.push((name.to_string(), v.as_bytes().to_vec()));
    }
    req
}

#[test]
fn rfc_accept_key() {
    // RFC 6455 §1.3.
    assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn valid_request() {
    assert_eq!(
        validate(&good()).as_deref(),
        Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
}

#[test]
fn case_and_token_lists_are_accepted() {
    let req = request(&[
        ("upgrade", "WebSocket"),
        ("CONNECTION", "keep-alive, UPGRADE"),
        ("sec-websocket-key", KEY),
        ("SEC-WEBSOCKET-VERSION", " 13 "),
    ]);
    assert!(validate(&req).is_ok());
}

#[test]
fn not_upgrade() {
    assert_eq!(
        validate(&with("Upgrade", None)),
        Err(HandshakeError::NotUpgrade)
    );
    assert_eq!(
        validate(&with("Upgrade", Some("h2c"))),
        Err(HandshakeError::NotUpgrade)
    );
    // Checked first: a plain POST is "not an upgrade", not "wrong method".
    let mut req = with("Upgrade", None);
    req.method = "POST".into();
    assert_eq!(validate(&req), Err(HandshakeError::NotUpgrade));
}

#[test]
fn method_not_get() {
    let mut req = good();
    req.method = "POST".into();
    assert_eq!(validate(&req), Err(HandshakeError::MethodNotGet));
}

#[test]
fn http_version() {
    let mut req = good();
    req.version = 0;
    assert_eq!(validate(&req), Err(HandshakeError::HttpVersion));
}

#[test]
fn missing_connection_upgrade() {
    let e = Err(HandshakeError::MissingConnectionUpgrade);
    assert_eq!(validate(&with("Connection", None)), e);
    assert_eq!(validate(&with("Connection", Some("keep-alive"))), e);
    assert_eq!(validate(&with("Connection", Some("upgrades"))), e);
}

#[test]
fn unsupported_version() {
    let e = Err(HandshakeError::UnsupportedVersion);
    assert_eq!(validate(&with("Sec-WebSocket-Version", None)), e);
    assert_eq!(validate(&with("Sec-WebSocket-Version", Some("8"))), e);
    assert_eq!(validate(&with("Sec-WebSocket-Version", Some("13, 8"))), e);
    assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
}

#[test]
fn bad_key() {
    let e = Err(HandshakeError::BadKey);
    assert_eq!(validate(&with("Sec-WebSocket-Key", None)), e);
    assert_eq!(validate(&with("Sec-WebSocket-Key", Some("not base64!"))), e);
    // 15 bytes, 17 bytes, and 16 bytes without padding.
    assert_eq!(
        validate(&with("Sec-WebSocket-Key", Some("AAAAAAAAAAAAAAAAAAAA"))),
        e
    );
    assert_eq!(
        validate(&with("Sec-WebSocket-Key", Some("AAAAAAAAAAAAAAAAAAAAAAA="))),
        e
    );
    assert_eq!(
        validate(&with("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZQ"))),
        e
    );
    let mut twice = good();
    twice.headers.push(("Sec-WebSocket-Key".into(), KEY.into()));
    assert_eq!(validate(&twice), e);
    assert_eq!(HandshakeError::BadKey.status(), 400);
}

#[test]
fn statuses_and_display() {
    use HandshakeError::*;
    for e in [
        NotUpgrade,
        MethodNotGet,
        HttpVersion,
        MissingConnectionUpgrade,
        BadKey,
    ] {
        assert_eq!(e.status(), 400);
        assert!(!e.to_string().is_empty());
    }
    assert!(!UnsupportedVersion.to_string().is_empty());
}

#[test]
fn accept_response_bytes() {
    let mut out = Vec::new();
    write_accept(
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        &[("Sec-WebSocket-Protocol", "chat")],
        &mut out,
    );
    assert_eq!(
        out,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
}

#[test]
fn refusal_bytes() {
    let mut out = Vec::new();
    write_refusal(400, "bad key", &mut out);
    assert_eq!(
        out,
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
          Content-Length: 8\r\nConnection: close\r\n\r\nbad key\n"
    );
    out.clear();
    write_refusal(426, "use 13", &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(text.ends_with("\r\n\r\nuse 13\n"));
}

#[test]
fn refusal_parses_as_http() {
    for status in [403, 404, 429, 500, 503, 599] {
        let mut out = Vec::new();
        write_refusal(status, "no", &mut out);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut res = httparse::Response::new(&mut headers);
        let body_at = match res.parse(&out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("{status}: {other:?}"),
        };
        assert_eq!(res.code, Some(status));
        assert_eq!(&out[body_at..], b"no\n");
    }
}
