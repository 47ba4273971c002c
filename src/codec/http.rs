//! HTTP/1.x requests: the head parsed by `httparse`, a `Content-Length` body, and a response
//! encoder.

use super::Decode;
use std::fmt;

/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// A parsed request. Owned: HTTP is not pushman's hot path, and an owned request can be
/// handed to callbacks while the reader's buffer is reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent: path and query, e.g. `/push?token=abc`.
    pub target: String,
    /// The minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub version: u8,
    /// Headers in the order received; names as sent (compare them case-insensitively).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (`Content-Length` bytes); empty for a head decoded alone.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let _ = name;
        todo!()
    }

    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        todo!()
    }

    /// The target's query string without the `?`, if any.
    pub fn query(&self) -> Option<&str> {
        todo!()
    }

    /// The first query parameter named `name`, percent-decoded (`+` as space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let _ = name;
        todo!()
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        todo!()
    }

    /// Whether a `Connection` header lists `token` (comma-separated, case-insensitive).
    pub fn connection_has(&self, token: &str) -> bool {
        let _ = token;
        todo!()
    }
}

/// Why a request can never become valid. Each maps to a response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The head is not HTTP/1.x syntax (`httparse`'s reason), or has more than
    /// [`MAX_HEADERS`] headers.
    Parse(httparse::Error),
    /// The head grew past the limit before its blank line arrived.
    HeadTooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// `Content-Length` is larger than the body limit.
    BodyTooLarge {
        /// The announced length.
        len: u64,
        /// The limit, in bytes.
        max: usize,
    },
    /// `Content-Length` is not a decimal number, or appears twice with different values.
    BadContentLength,
    /// `Transfer-Encoding` bodies are not accepted (RFC 9112 §6.1 allows answering 501).
    TransferEncoding,
}

impl HttpError {
    /// The status code to answer with: 400, 431, 413 or 501.
    pub fn status(self) -> u16 {
        todo!()
    }
}

/// Decodes requests, remembering how far it has scanned for the end of the head.
#[derive(Debug, Clone)]
pub struct HttpCodec {
    /// Largest head accepted (request line and headers), in bytes.
    max_head: usize,
    /// Largest body accepted, in bytes.
    max_body: usize,
    /// Bytes of the pending input already known not to end the head.
    scanned: usize,
}

impl HttpCodec {
    /// A decoder with the given head and body limits.
    pub fn new(max_head: usize, max_body: usize) -> Self {
        let _ = (max_head, max_body);
        todo!()
    }

    /// Decodes a request head and its `Content-Length` body.
    ///
    /// # Errors
    /// [`HttpError`] when the head is malformed or a limit is exceeded.
    pub fn decode(&mut self, src: &[u8]) -> Result<Decode<Request>, HttpError> {
        let _ = src;
        todo!()
    }

    /// Decodes a request head only (`consumed` is the head's length and `body` is empty);
    /// used for the WebSocket handshake, where bytes after the head are frames.
    ///
    /// # Errors
    /// As [`HttpCodec::decode`], without the body checks.
    pub fn decode_head(&mut self, src: &[u8]) -> Result<Decode<Request>, HttpError> {
        let _ = src;
        todo!()
    }
}

/// A response under construction; [`Response::encode`] writes it with a `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers; `Content-Length` is added by `encode`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        let _ = status;
        todo!()
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let _ = (&mut self, name, value);
        todo!()
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        let _ = (&mut self, body.into());
        todo!()
    }

    /// Appends `HTTP/1.1 status reason`, the headers, `Content-Length` and the body to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!()
    }
}

/// The standard reason phrase for `status` (`"Unknown"` when it has none).
pub fn reason_phrase(status: u16) -> &'static str {
    let _ = status;
    todo!()
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "malformed request head: {e}"),
            Self::HeadTooLarge { max } => write!(f, "request head larger than {max} bytes"),
            Self::BodyTooLarge { len, max } => {
                write!(f, "request body of {len} bytes exceeds {max}")
            }
            Self::BadContentLength => f.write_str("invalid Content-Length"),
            Self::TransferEncoding => f.write_str("Transfer-Encoding is not supported"),
        }
    }
}

impl std::error::Error for HttpError {}
