//! Why a request can never become valid.

use std::fmt;

/// Why a request can never become valid. Each maps to a response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The head is not HTTP/1.x syntax (`httparse`'s reason), or has more than
    /// [`MAX_HEADERS`](super::MAX_HEADERS) headers.
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
        match self {
            Self::Parse(_) | Self::BadContentLength => 400,
            Self::HeadTooLarge { .. } => 431,
            Self::BodyTooLarge { .. } => 413,
            Self::TransferEncoding => 501,
        }
    }
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
