//! The opening handshake (RFC 6455 §4.2): validate an upgrade request, answer 101 or refuse.

use crate::codec::http::Request;
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
        todo!()
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let _ = key;
    todo!()
}

/// Checks `req` is a valid version-13 upgrade; returns the `Sec-WebSocket-Accept` value.
///
/// # Errors
/// [`HandshakeError`] naming the first rule `req` breaks.
pub fn validate(req: &Request) -> Result<String, HandshakeError> {
    let _ = req;
    todo!()
}

/// Appends the `101 Switching Protocols` response to `out`, with `extra` headers
/// (e.g. a chosen `Sec-WebSocket-Protocol`).
pub fn write_accept(accept: &str, extra: &[(&str, &str)], out: &mut Vec<u8>) {
    let _ = (accept, extra, out);
    todo!()
}

/// Appends a refusal with `status` and a one-line plain-text `reason` body, closing the
/// connection; a 426 carries `Sec-WebSocket-Version: 13`.
pub fn write_refusal(status: u16, reason: &str, out: &mut Vec<u8>) {
    let _ = (status, reason, out);
    todo!()
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

impl std::error::Error for HandshakeError {}
