//! The client side of RFC 6455: the opening handshake a client sends and the `101` it must
//! check (§4.1), and masked frames (§5.3). Sans-IO like the rest of `codec`: bytes in,
//! bytes out; the randomness of keys and masks comes from a seed the caller passes.

use super::{
    handshake::accept_key,
    header::{OpCode, MAX_SERVER_HEADER},
    mask::apply_mask,
};
use crate::codec::Decode;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use std::fmt;

/// Longest client frame header: 2 bytes, a 64-bit length and the 4-byte masking key.
pub const MAX_CLIENT_HEADER: usize = MAX_SERVER_HEADER + 4;
/// Most response headers read in a `101`.
const MAX_HEADERS: usize = 32;

/// Masking keys and handshake nonces: xorshift64* over a caller-given seed. RFC 6455 §5.3
/// asks for keys a proxy cannot predict from earlier ones; the seed carries the entropy
/// (the runtime seeds each connection from the OS-seeded `RandomState`).
#[derive(Debug, Clone)]
pub struct Masker(u64);

impl Masker {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A fresh masking key.
    pub fn key(&mut self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.next_u64().to_le_bytes();
        [a, b, c, d]
    }
}

/// Appends a complete masked, unfragmented client frame to `out`: "A client MUST mask all
/// frames that it sends to the server" (§5.1).
pub fn encode_masked(opcode: OpCode, payload: &[u8], masker: &mut Masker, out: &mut Vec<u8>) {
    let mut head = [0u8; MAX_SERVER_HEADER];
    let n = super::header::encode_header(true, opcode, payload.len(), &mut head);
    head[1] |= 0x80;
    let key = masker.key();
    out.reserve(n + 4 + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
}

/// Why a server's answer to our opening handshake is refused (the connection is failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeError {
    /// Not an HTTP response head, or longer than the head limit.
    Malformed,
    /// "If the status code received from the server is not 101, the client handles the
    /// response per HTTP procedures" (§4.1): here, a failed connect with the status.
    Status(u16),
    /// The `Upgrade` header must be `websocket` and `Connection` must list `Upgrade` (§4.1).
    NotUpgrade,
    /// `Sec-WebSocket-Accept` must be the hash of our key (§4.1).
    BadAccept,
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("the server's handshake response is not valid HTTP"),
            Self::Status(s) => write!(f, "the server answered the upgrade with HTTP {s}"),
            Self::NotUpgrade => f.write_str("the server's response is not a websocket upgrade"),
            Self::BadAccept => f.write_str("Sec-WebSocket-Accept does not match our key"),
        }
    }
}

impl std::error::Error for UpgradeError {}

/// One opening handshake, client side: the request to send and the response to check.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    /// `Sec-WebSocket-Key`: 16 random bytes, base64 (§4.1, item 7).
    key: String,
    /// Longest response head accepted.
    max_head: usize,
}

impl ClientHandshake {
    /// A handshake with a key from `masker`; responses longer than `max_head` bytes fail.
    pub fn new(masker: &mut Masker, max_head: usize) -> Self {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&masker.next_u64().to_le_bytes());
        nonce[8..].copy_from_slice(&masker.next_u64().to_le_bytes());
        Self {
            key: STANDARD.encode(nonce),
            max_head,
        }
    }

    /// The key sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends the `GET` upgrade request for `path` on `host` (`host:port`) to `out`.
    pub fn write_request(&self, host: &str, path: &str, out: &mut Vec<u8>) {
        let path = if path.starts_with('/') { path } else { "/" };
        out.extend_from_slice(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                self.key
            )
            .as_bytes(),
        );
    }

    /// Checks the server's response head at the front of `src`; `consumed` is its length
    /// (frames may follow it in the same read).
    ///
    /// # Errors
    /// [`UpgradeError`]: the connection is to be failed.
    pub fn decode_response(&self, src: &[u8]) -> Result<Decode<()>, UpgradeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let consumed = match response.parse(src) {
            Ok(httparse::Status::Complete(n)) if n <= self.max_head => n,
            Ok(httparse::Status::Partial) if src.len() <= self.max_head => {
                return Ok(Decode::NeedMore)
            }
            _ => return Err(UpgradeError::Malformed),
        };
        // "If the status code received from the server is not 101, [...]" (§4.1)
        match response.code {
            Some(101) => {}
            Some(code) => return Err(UpgradeError::Status(code)),
            None => return Err(UpgradeError::Malformed),
        }
        let has = |name: &str, token: &str| {
            response.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case(name)
                    && h.value
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            })
        };
        // "If the response lacks an |Upgrade| header field or [it] contains a value that is
        // not an ASCII case-insensitive match for the value "websocket", the client MUST
        // _Fail the WebSocket Connection_." (§4.1; the same for |Connection| and "Upgrade")
        if !has("upgrade", "websocket") || !has("connection", "upgrade") {
            return Err(UpgradeError::NotUpgrade);
        }
        // "If the response lacks a |Sec-WebSocket-Accept| header field or the
        // |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
        // concatenation of the |Sec-WebSocket-Key| [...] with the string
        // "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" [...] the client MUST _Fail_" (§4.1)
        let expected = accept_key(self.key.as_bytes());
        let mut accepts = response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"));
        match (accepts.next(), accepts.next()) {
            (Some(h), None) if h.value.trim_ascii() == expected.as_bytes() => {}
            _ => return Err(UpgradeError::BadAccept),
        }
        Ok(Decode::Done { item: (), consumed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ws::handshake::write_accept;

    fn handshake() -> ClientHandshake {
        ClientHandshake::new(&mut Masker::new(7), 16 << 10)
    }

    #[test]
    fn the_request_carries_a_16_byte_key_and_version_13() {
        let hs = handshake();
        assert_eq!(STANDARD.decode(hs.key()).unwrap().len(), 16);
        let mut out = Vec::new();
        hs.write_request("127.0.0.1:9", "/chat?x=1", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains(&format!("Sec-WebSocket-Key: {}\r\n", hs.key())));
        assert!(text.ends_with("Sec-WebSocket-Version: 13\r\n\r\n"));
        // Two handshakes from one generator use different keys.
        let mut m = Masker::new(7);
        assert_ne!(
            ClientHandshake::new(&mut m, 100).key(),
            ClientHandshake::new(&mut m, 100).key()
        );
    }

    #[test]
    fn the_servers_101_is_accepted_whole_and_every_prefix_needs_more() {
        let hs = handshake();
        let mut response = Vec::new();
        write_accept(&accept_key(hs.key().as_bytes()), &[], &mut response);
        let len = response.len();
        response.extend_from_slice(&[0x81, 0x00]); // a frame right behind it
        assert_eq!(
            hs.decode_response(&response),
            Ok(Decode::Done {
                item: (),
                consumed: len
            })
        );
        for i in 0..len {
            assert_eq!(hs.decode_response(&response[..i]), Ok(Decode::NeedMore));
        }
    }

    #[test]
    fn a_wrong_status_accept_or_upgrade_fails_the_connection() {
        let hs = handshake();
        let mut wrong = Vec::new();
        write_accept(&accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), &[], &mut wrong);
        assert_eq!(hs.decode_response(&wrong), Err(UpgradeError::BadAccept));
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(hs.decode_response(refused), Err(UpgradeError::Status(403)));
        let accept = accept_key(hs.key().as_bytes());
        let plain = format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        assert_eq!(
            hs.decode_response(plain.as_bytes()),
            Err(UpgradeError::NotUpgrade)
        );
        assert_eq!(
            hs.decode_response(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(UpgradeError::Malformed)
        );
        let long = vec![b'a'; 17 << 10];
        assert_eq!(hs.decode_response(&long), Err(UpgradeError::Malformed));
    }

    #[test]
    fn masked_frames_unmask_to_the_payload_with_the_key_they_carry() {
        let mut masker = Masker::new(42);
        for len in [0usize, 5, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_masked(OpCode::Binary, &payload, &mut masker, &mut out);
            let header = match super::super::FrameHeader::parse(&out).unwrap() {
                Decode::Done { item, consumed } => (item, consumed),
                Decode::NeedMore => panic!("incomplete"),
            };
            let (h, n) = header;
            assert_eq!(
                (h.fin, h.opcode, h.payload_len),
                (true, OpCode::Binary, len as u64)
            );
            let mut body = out[n..].to_vec();
            apply_mask(&mut body, h.mask.expect("masked"));
            assert_eq!(body, payload);
        }
    }
}
