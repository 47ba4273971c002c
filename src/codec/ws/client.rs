//! The client side of RFC 6455, for outbound `ws://` connections: the opening handshake's
//! request and the check of the server's answer (§4.1), and the masking keys every
//! client frame carries (§5.3).

use super::handshake::accept_key;
use crate::codec::Decode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt;

/// Largest response head accepted before the 101 is complete.
const MAX_RESPONSE_HEAD: usize = 8 << 10;

/// Why the server's answer to our upgrade is not a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHandshakeError {
    /// Not an HTTP response, or 8 KiB without the end of its head.
    Malformed,
    /// A status other than 101, e.g. 403 or 404.
    Status(u16),
    /// 101 without `Upgrade: websocket` and `Connection: upgrade` (§4.1, items 2 and 3).
    NotUpgrade,
    /// `Sec-WebSocket-Accept` missing or not the one our key calls for (§4.1, item 4).
    BadAccept,
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("the server's answer is not an HTTP response"),
            Self::Status(status) => write!(f, "the server answered {status}, not 101"),
            Self::NotUpgrade => f.write_str("the server's 101 does not upgrade to websocket"),
            Self::BadAccept => f.write_str("the server's Sec-WebSocket-Accept does not match"),
        }
    }
}

impl std::error::Error for ClientHandshakeError {}

/// One client handshake: the key we sent and the answer it calls for.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    key: String,
}

impl ClientHandshake {
    /// A handshake with `nonce` as its key: "a nonce consisting of a randomly selected
    /// 16-byte value that has been base64-encoded" (§4.1); see [`nonce`].
    pub fn new(nonce: [u8; 16]) -> Self {
        Self {
            key: STANDARD.encode(nonce),
        }
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends the upgrade request for `path` on `host` (`host[:port]`, as the URL says).
    pub fn write_request(&self, host: &str, path: &str, out: &mut Vec<u8>) {
        let path = if path.is_empty() { "/" } else { path };
        out.extend_from_slice(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n",
                self.key
            )
            .as_bytes(),
        );
    }

    /// Reads the server's answer from the front of `src`: `Done` with the head's length
    /// once a valid 101 is complete (what follows is already WebSocket frames).
    ///
    /// # Errors
    /// [`ClientHandshakeError`] for anything but an acceptable 101.
    pub fn decode_response(&self, src: &[u8]) -> Result<Decode<()>, ClientHandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let consumed = match response.parse(src) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if src.len() <= MAX_RESPONSE_HEAD => {
                return Ok(Decode::NeedMore)
            }
            _ => return Err(ClientHandshakeError::Malformed),
        };
        // "If the status code received from the server is not 101, the client handles the
        // response per HTTP [RFC2616] procedures." (§4.1): for us, a failed connect.
        let status = response.code.unwrap_or(0);
        if status != 101 {
            return Err(ClientHandshakeError::Status(status));
        }
        let headers = &*response.headers;
        let has = |name: &str, token: &str| {
            values(headers, name).any(|v| {
                v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            })
        };
        // "If the response lacks an |Upgrade| header field or the |Upgrade| header field
        // contains a value that is not an ASCII case-insensitive match for the value
        // "websocket", the client MUST _Fail the WebSocket Connection_." (§4.1; likewise
        // for |Connection| and "Upgrade")
        if !has("upgrade", "websocket") || !has("connection", "upgrade") {
            return Err(ClientHandshakeError::NotUpgrade);
        }
        // "If the response lacks a |Sec-WebSocket-Accept| header field or the
        // |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
        // concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with
        // the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" [...] the client MUST _Fail the
        // WebSocket Connection_." (§4.1)
        let expected = accept_key(self.key.as_bytes());
        let mut accepts = values(headers, "sec-websocket-accept");
        match (accepts.next(), accepts.next()) {
            (Some(v), None) if v.trim_ascii() == expected.as_bytes() => {}
            _ => return Err(ClientHandshakeError::BadAccept),
        }
        Ok(Decode::Done { item: (), consumed })
    }
}

/// The values of every header named `name`, ASCII case-insensitively.
fn values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// A fresh masking key: "The masking key needs to be unpredictable; thus, the masking key
/// MUST be derived from a strong source of entropy" (§5.3).
pub fn masking_key() -> [u8; 4] {
    let mut key = [0; 4];
    MASKER.with_borrow_mut(|m| m.fill(&mut key));
    key
}

/// A fresh handshake nonce for [`ClientHandshake::new`].
pub fn nonce() -> [u8; 16] {
    let mut nonce = [0; 16];
    MASKER.with_borrow_mut(|m| m.fill(&mut nonce));
    nonce
}

thread_local! {
    /// One pool per thread (the reactor's): no memory per connection, no lock.
    static MASKER: std::cell::RefCell<Masker> = const {
        std::cell::RefCell::new(Masker { pool: [0; 256], used: 256 })
    };
}

/// Random bytes from the operating system, drawn in blocks so a frame costs no system call.
struct Masker {
    pool: [u8; 256],
    used: usize,
}

impl Masker {
    fn fill(&mut self, out: &mut [u8]) {
        if self.used + out.len() > self.pool.len() {
            // The OS source does not fail on Linux once booted; if it ever did, keys would
            // still change per frame, which is what keeps proxies' caches from being poisoned.
            if getrandom::fill(&mut self.pool).is_err() {
                for (i, b) in self.pool.iter_mut().enumerate() {
                    *b = b.wrapping_add(i as u8).wrapping_add(1);
                }
            }
            self.used = 0;
        }
        out.copy_from_slice(&self.pool[self.used..self.used + out.len()]);
        self.used += out.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's own example: key "dGhlIHNhbXBsZSBub25jZQ==" (§1.3).
    fn rfc_handshake() -> ClientHandshake {
        let handshake = ClientHandshake::new(*b"the sample nonce");
        assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        handshake
    }

    const GOOD: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    #[test]
    fn the_request_carries_the_key_host_and_path() {
        let mut out = Vec::new();
        rfc_handshake().write_request("example.com:8080", "/chat?x=1", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
        assert!(text.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        let mut out = Vec::new();
        rfc_handshake().write_request("h", "", &mut out);
        assert!(out.starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn a_valid_101_is_done_at_the_end_of_its_head() {
        let handshake = rfc_handshake();
        let mut src = GOOD.as_bytes().to_vec();
        src.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(
            handshake.decode_response(&src),
            Ok(Decode::Done {
                item: (),
                consumed: GOOD.len()
            })
        );
        for cut in 0..GOOD.len() {
            assert_eq!(
                handshake.decode_response(&GOOD.as_bytes()[..cut]),
                Ok(Decode::NeedMore),
                "{cut}"
            );
        }
    }

    #[test]
    fn anything_else_fails_with_its_reason() {
        let handshake = rfc_handshake();
        let bad = |text: &str| handshake.decode_response(text.as_bytes()).unwrap_err();
        assert_eq!(
            bad("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
            ClientHandshakeError::Status(403)
        );
        assert_eq!(
            bad(&GOOD.replace("Upgrade: websocket", "Upgrade: h2c")),
            ClientHandshakeError::NotUpgrade
        );
        assert_eq!(
            bad(&GOOD.replace("Connection: Upgrade", "Connection: close")),
            ClientHandshakeError::NotUpgrade
        );
        assert_eq!(
            bad(&GOOD.replace(
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
            )),
            ClientHandshakeError::BadAccept
        );
        assert_eq!(
            bad(&GOOD.replace("Sec-WebSocket-Accept", "X-Other")),
            ClientHandshakeError::BadAccept
        );
        assert_eq!(
            bad("SSH-2.0-OpenSSH\r\n\r\n"),
            ClientHandshakeError::Malformed
        );
        let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "a".repeat(MAX_RESPONSE_HEAD));
        assert_eq!(bad(&endless), ClientHandshakeError::Malformed);
    }

    #[test]
    fn keys_and_nonces_differ() {
        let keys: std::collections::HashSet<[u8; 4]> = (0..1000).map(|_| masking_key()).collect();
        assert!(keys.len() > 990, "{} distinct of 1000", keys.len());
        assert_ne!(nonce(), nonce());
    }
}
