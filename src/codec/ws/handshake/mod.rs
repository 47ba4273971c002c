//! The opening handshake (RFC 6455 §4.2): validate an upgrade request, answer 101 or refuse.

use crate::codec::http::Request;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use std::fmt;

/// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a request is not an acceptable WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade: websocket` header: a plain HTTP request, to be answered as such.
    NotUpgrade,
    /// The method of an upgrade request must be GET (§4.2.1).
    MethodNotGet,
    /// An upgrade needs HTTP/1.1 or later (§4.2.1).
    HttpVersion,
    /// `Connection` must include the `Upgrade` token (§4.2.1).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` must be 13 (§4.2.1); answered with 426 and the version we speak.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` must be present once and decode to 16 bytes of base64 (§4.2.1).
    BadKey,
}

impl HandshakeError {
    /// The HTTP status to refuse with: 426 for the version, 400 otherwise.
    pub fn status(self) -> u16 {
        match self {
            // "If this version does not match a version understood by the server, the server
            // MUST abort the WebSocket handshake [...] and instead send an appropriate HTTP
            // error code (such as 426 Upgrade Required)" (§4.2.2)
            Self::UnsupportedVersion => 426,
            // "If the server, while reading the handshake, finds that the client did not send
            // a handshake that matches the description below [...] the server MUST stop
            // processing the client's handshake and return an HTTP response with an
            // appropriate error code (such as 400 Bad Request)." (§4.2.1)
            _ => 400,
        }
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// Checks `req` is a valid version-13 upgrade; returns the `Sec-WebSocket-Accept` value.
///
/// # Errors
/// [`HandshakeError`] naming the first rule `req` breaks.
pub fn validate(req: &Request) -> Result<String, HandshakeError> {
    // "An |Upgrade| header field containing the value "websocket", treated as an ASCII
    // case-insensitive value." (§4.2.1, item 3)
    if !headers(req, "upgrade").any(|v| has_token(v, "websocket")) {
        return Err(HandshakeError::NotUpgrade);
    }
    // "An HTTP/1.1 or higher GET request" (§4.2.1, item 1)
    if req.method != "GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if req.version < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    // "A |Connection| header field that includes the token "Upgrade", treated as an ASCII
    // case-insensitive value." (§4.2.1, item 4)
    if !headers(req, "connection").any(|v| has_token(v, "upgrade")) {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // "A |Sec-WebSocket-Version| header field, with a value of 13." (§4.2.1, item 6)
    let mut versions = headers(req, "sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.trim_ascii() == b"13" => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    // "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when decoded,
    // is 16 bytes in length." (§4.2.1, item 5)
    let mut keys = headers(req, "sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k.trim_ascii(),
        _ => return Err(HandshakeError::BadKey),
    };
    // 16 bytes are always 24 base64 characters; checking first bounds the decode's work.
    if key.len() != 24 || !STANDARD.decode(key).is_ok_and(|k| k.len() == 16) {
        return Err(HandshakeError::BadKey);
    }
    Ok(accept_key(key))
}

/// The values of every header named `name` (lowercase), compared ASCII case-insensitively.
fn headers<'r>(req: &'r Request, name: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
    req.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Whether a comma-separated header value lists `token`, ASCII case-insensitively.
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Appends the `101 Switching Protocols` response to `out`, with `extra` headers
/// (e.g. a chosen `Sec-WebSocket-Protocol`).
pub fn write_accept(accept: &str, extra: &[(&str, &str)], out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    header_line(out, "Sec-WebSocket-Accept", accept);
    for (name, value) in extra {
        header_line(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a refusal with `status` and a one-line plain-text `reason` body, closing the
/// connection; a 426 carries `Sec-WebSocket-Version: 13`.
pub fn write_refusal(status: u16, reason: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    header_line(out, "Content-Type", "text/plain; charset=utf-8");
    header_line(out, "Content-Length", &(reason.len() + 1).to_string());
    header_line(out, "Connection", "close");
    // "The server [...] MUST abort the WebSocket handshake described in this section and
    // instead send an appropriate HTTP error code (such as 426 Upgrade Required) and a
    // |Sec-WebSocket-Version| header field indicating the version(s) the server is capable of
    // understanding." (§4.2.2)
    if status == 426 {
        header_line(out, "Sec-WebSocket-Version", "13");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
}

/// Appends `name: value` and CRLF.
fn header_line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for the statuses a handshake refuses with. RFC 9112 §4 lets it be
/// empty ("A client SHOULD ignore the reason-phrase content"), which the others get.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUpgrade => "not a websocket upgrade request",
            Self::MethodNotGet => "websocket upgrade must use GET",
            Self::HttpVersion => "websocket upgrade needs HTTP/1.1 or later",
            Self::MissingConnectionUpgrade => "Connection header lacks the upgrade token",
            Self::UnsupportedVersion => "unsupported Sec-WebSocket-Version, expected 13",
            Self::BadKey => "Sec-WebSocket-Key missing, repeated or not 16 bytes of base64",
        })
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod tests;
