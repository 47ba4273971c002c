//! Newline-delimited lines (Workerman's `text` protocol): `\n` ends a line, a `\r` before it
//! is dropped.

use super::Decode;
use std::fmt;

/// Decodes lines one at a time, remembering how far it has scanned for `\n`.
#[derive(Debug, Clone)]
pub struct TextCodec {
    /// Longest line accepted, in bytes, not counting the line ending.
    max_len: usize,
    /// Bytes of the pending input already known to contain no `\n`.
    scanned: usize,
}

/// A line grew past the limit before its `\n` arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    /// The limit that was exceeded.
    pub max: usize,
}

impl TextCodec {
    /// A decoder accepting lines of at most `max_len` bytes (line ending excluded).
    pub fn new(max_len: usize) -> Self {
        let _ = max_len;
        todo!()
    }

    /// Decodes the first line of `src`; the item excludes the `\n` (and a `\r` before it).
    ///
    /// After `NeedMore` the caller must offer the same bytes again, with more appended.
    ///
    /// # Errors
    /// [`LineTooLong`] once `src` holds more than `max_len` bytes with no `\n`, or a line
    /// longer than `max_len`.
    pub fn decode<'a>(&mut self, src: &'a [u8]) -> Result<Decode<&'a [u8]>, LineTooLong> {
        let _ = src;
        todo!()
    }
}

/// The bytes written after each outgoing line.
pub const LINE_END: &[u8] = b"\n";

/// Appends `line` and its `\n` to `out`.
pub fn encode(line: &[u8], out: &mut Vec<u8>) {
    let _ = (line, out);
    todo!()
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line longer than {} bytes", self.max)
    }
}

impl std::error::Error for LineTooLong {}
