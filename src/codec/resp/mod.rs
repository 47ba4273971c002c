//! RESP2, the Redis serialization protocol: commands encoded as arrays of bulk strings,
//! replies decoded into [`Value`]s (nested arrays included), sans-IO and bounded.
//!
//! Why not the `redis-protocol` crate: this codec is ~300 lines under the crate's own
//! contract ([`Decode`](super::Decode), typed `Copy` errors, every peer-chosen length
//! checked against [`RespLimits`] before it is used, fuzzed with the others), it needs
//! no `bytes`/`nom` dependencies, and pub/sub messages are plain RESP2 arrays, so the
//! client needs nothing RESP3 adds.
//!
//! ```
//! use pushman::codec::{resp::{self, RespDecoder, RespLimits, Value}, Decode};
//!
//! let mut out = Vec::new();
//! resp::encode_command(&["GET", "k"], &mut out);
//! assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
//!
//! let mut dec = RespDecoder::new(RespLimits::default());
//! assert_eq!(dec.decode(b"$5\r\nhel"), Ok(Decode::NeedMore));
//! assert_eq!(
//!     dec.decode(b"$5\r\nhello\r\n"),
//!     Ok(Decode::Done { item: Value::Bulk(b"hello".to_vec()), consumed: 11 })
//! );
//! ```

mod decode;
mod encode;

pub use decode::RespDecoder;
pub use encode::{encode_command, CommandBuf};

use std::fmt;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`: a simple string (no CR or LF inside).
    Simple(String),
    /// `-ERR message`: an error reply; the command failed, the connection is fine.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` followed by `n` bytes.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`: RESP2's null.
    Nil,
    /// `*n` followed by `n` values.
    Array(Vec<Value>),
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bulk(b) => Some(b),
            Self::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Integer(n) => Some(*n),
            _ => None,
        }
    }
}

/// Bounds on what a peer may make the decoder hold; checked before anything is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Longest bulk string, in bytes.
    pub max_bulk: usize,
    /// Most elements in one array (each level counted alone).
    pub max_elements: usize,
    /// Deepest nesting of arrays.
    pub max_depth: usize,
    /// Longest header or simple line (type byte to CR), in bytes.
    pub max_line: usize,
}

impl Default for RespLimits {
    /// 16 MiB bulks, 1 M elements per array, 8 levels, 64 KiB lines.
    fn default() -> Self {
        Self {
            max_bulk: 16 << 20,
            max_elements: 1 << 20,
            max_depth: 8,
            max_line: 64 << 10,
        }
    }
}

/// Why the input can never become a valid reply; final for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// Every value starts with one of `+ - : $ *`.
    BadType(u8),
    /// A line must end in CR LF; a bare LF or a CR followed by another byte is invalid.
    BadLineEnd,
    /// A length or integer is not a decimal `i64` (RESP: `[-]digits`).
    BadInteger,
    /// A length below -1.
    BadLength,
    /// A bulk string longer than [`RespLimits::max_bulk`].
    BulkTooLarge,
    /// An array longer than [`RespLimits::max_elements`].
    TooManyElements,
    /// Arrays nested deeper than [`RespLimits::max_depth`].
    TooDeep,
    /// A line longer than [`RespLimits::max_line`].
    LineTooLong,
    /// A simple string or error that is not UTF-8.
    BadUtf8,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadType(b) => write!(f, "RESP: unknown type byte 0x{b:02x}"),
            Self::BadLineEnd => f.write_str("RESP: line not ended by CR LF"),
            Self::BadInteger => f.write_str("RESP: malformed integer"),
            Self::BadLength => f.write_str("RESP: negative length"),
            Self::BulkTooLarge => f.write_str("RESP: bulk string over the limit"),
            Self::TooManyElements => f.write_str("RESP: array over the limit"),
            Self::TooDeep => f.write_str("RESP: arrays nested too deep"),
            Self::LineTooLong => f.write_str("RESP: line over the limit"),
            Self::BadUtf8 => f.write_str("RESP: simple string not UTF-8"),
        }
    }
}

impl std::error::Error for RespError {}

#[cfg(test)]
mod tests;
