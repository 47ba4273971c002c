//! Length-prefixed frames (Workerman's `Frame` protocol): a 4-byte big-endian total length,
//! header included, then the payload.

use super::Decode;
use std::fmt;

/// Size of the length header.
pub const HEADER_LEN: usize = 4;

/// Decodes frames whose payload is at most `max_len` bytes.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Largest payload accepted, in bytes.
    max_len: usize,
}

/// Why a frame header can never become valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The total length must count the 4 header bytes, so it is at least 4.
    Runt {
        /// The total length the peer announced.
        total: u32,
    },
    /// The announced payload is larger than the limit.
    TooLarge {
        /// The payload length the peer announced.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl FrameCodec {
    /// A decoder accepting payloads of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self { max_len }
    }

    /// Decodes the first frame of `src`; the item is its payload.
    ///
    /// # Errors
    /// [`FrameError`] as soon as the 4-byte header is invalid or over the limit, before the
    /// payload arrives.
    pub fn decode<'a>(&self, src: &'a [u8]) -> Result<Decode<&'a [u8]>, FrameError> {
        let _ = (src, self.max_len);
        todo!()
    }
}

/// The header announcing a payload of `payload_len` bytes.
///
/// # Errors
/// [`FrameError::TooLarge`] when the total does not fit in 32 bits.
pub fn header(payload_len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    let _ = payload_len;
    todo!()
}

/// Appends the header and `payload` to `out`.
///
/// # Errors
/// As [`header`]; nothing is appended then.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let _ = (payload, out);
    todo!()
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Runt { total } => write!(f, "frame length {total} is shorter than its header"),
            Self::TooLarge { len, max } => write!(f, "frame payload of {len} bytes exceeds {max}"),
        }
    }
}

impl std::error::Error for FrameError {}
