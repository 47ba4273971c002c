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
        Self {
            max_len,
            scanned: 0,
        }
    }

    /// Decodes the first line of `src`; the item excludes the `\n` (and a `\r` before it).
    ///
    /// After `NeedMore` the caller must offer the same bytes again, with more appended.
    ///
    /// # Errors
    /// [`LineTooLong`] once `src` holds more than `max_len` bytes with no `\n`, or a line
    /// longer than `max_len`.
    pub fn decode<'a>(&mut self, src: &'a [u8]) -> Result<Decode<&'a [u8]>, LineTooLong> {
        // Only the bytes that arrived since the last call can hold the `\n`: a slow sender
        // costs O(n) in total, not O(n²).
        let from = self.scanned.min(src.len());
        match memchr::memchr(b'\n', &src[from..]).map(|i| from + i) {
            Some(end) => {
                let line = strip_cr(&src[..end]);
                if line.len() > self.max_len {
                    return Err(LineTooLong { max: self.max_len });
                }
                self.scanned = 0;
                Ok(Decode::Done {
                    item: line,
                    consumed: end + 1,
                })
            }
            // A trailing `\r` may be the start of `\r\n`, so it does not count yet: a line of
            // exactly `max_len` bytes is never refused while its ending is in flight.
            None if strip_cr(src).len() > self.max_len => Err(LineTooLong { max: self.max_len }),
            None => {
                self.scanned = src.len();
                Ok(Decode::NeedMore)
            }
        }
    }
}

/// `line` without one trailing `\r`.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The bytes written after each outgoing line.
pub const LINE_END: &[u8] = b"\n";

/// Appends `line` and its `\n` to `out`.
///
/// `line` is written as is: a `\n` inside it would end the line early on the peer's side, so
/// the caller is the one who knows whether that can happen.
pub fn encode(line: &[u8], out: &mut Vec<u8>) {
    out.reserve(line.len() + LINE_END.len());
    out.extend_from_slice(line);
    out.extend_from_slice(LINE_END);
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line longer than {} bytes", self.max)
    }
}

impl std::error::Error for LineTooLong {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed `chunk` bytes at a time (growing buffer, consumed bytes drained)
    /// and returns the lines and the error, if any.
    fn feed(max: usize, input: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Option<LineTooLong>) {
        let mut codec = TextCodec::new(max);
        crate::codec::test_util::feed(input, chunk, |b| {
            codec.decode(b).map(|d| d.map(<[u8]>::to_vec))
        })
    }

    #[test]
    fn lf_and_crlf_lines() {
        let mut c = TextCodec::new(16);
        assert_eq!(
            c.decode(b"abc\n"),
            Ok(Decode::Done {
                item: &b"abc"[..],
                consumed: 4
            })
        );
        assert_eq!(
            c.decode(b"abc\r\n"),
            Ok(Decode::Done {
                item: &b"abc"[..],
                consumed: 5
            })
        );
        assert_eq!(
            c.decode(b"\n"),
            Ok(Decode::Done {
                item: &b""[..],
                consumed: 1
            })
        );
        assert_eq!(
            c.decode(b"\r\n"),
            Ok(Decode::Done {
                item: &b""[..],
                consumed: 2
            })
        );
        // Only one `\r` belongs to the line ending.
        assert_eq!(
            c.decode(b"a\r\r\n"),
            Ok(Decode::Done {
                item: &b"a\r"[..],
                consumed: 4
            })
        );
    }

    #[test]
    fn every_prefix_needs_more() {
        let line = b"hello world\r\n";
        for i in 0..line.len() {
            assert_eq!(
                TextCodec::new(11).decode(&line[..i]),
                Ok(Decode::NeedMore),
                "prefix {i}"
            );
        }
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let input = b"one\ntwo\r\n\nthree\r\nfour";
        let whole = feed(8, input, input.len());
        assert_eq!(whole.0, [&b"one"[..], b"two", b"", b"three"]);
        assert_eq!(whole.1, None);
        for chunk in 1..input.len() {
            assert_eq!(feed(8, input, chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn pipelined_lines() {
        let mut c = TextCodec::new(8);
        let buf = b"ab\ncd\r\nef";
        assert_eq!(
            c.decode(buf),
            Ok(Decode::Done {
                item: &b"ab"[..],
                consumed: 3
            })
        );
        assert_eq!(
            c.decode(&buf[3..]),
            Ok(Decode::Done {
                item: &b"cd"[..],
                consumed: 4
            })
        );
        assert_eq!(c.decode(&buf[7..]), Ok(Decode::NeedMore));
    }

    #[test]
    fn limit_at_and_past_boundary() {
        let err = Err(LineTooLong { max: 3 });
        assert_eq!(
            TextCodec::new(3).decode(b"abc\n"),
            Ok(Decode::Done {
                item: &b"abc"[..],
                consumed: 4
            })
        );
        assert_eq!(
            TextCodec::new(3).decode(b"abc\r\n"),
            Ok(Decode::Done {
                item: &b"abc"[..],
                consumed: 5
            })
        );
        assert_eq!(TextCodec::new(3).decode(b"abc"), Ok(Decode::NeedMore));
        assert_eq!(TextCodec::new(3).decode(b"abc\r"), Ok(Decode::NeedMore));
        assert_eq!(TextCodec::new(3).decode(b"abcd\n"), err);
        assert_eq!(TextCodec::new(3).decode(b"abc\r\r\n"), err);
        // Refused as soon as the 4th byte arrives, before any newline.
        assert_eq!(TextCodec::new(3).decode(b"abcd"), err);
        assert_eq!(
            TextCodec::new(0).decode(b"\r\n"),
            Ok(Decode::Done {
                item: &b""[..],
                consumed: 2
            })
        );
        assert_eq!(TextCodec::new(0).decode(b"x"), Err(LineTooLong { max: 0 }));
    }

    #[test]
    fn line_too_long_error() {
        assert_eq!(
            feed(4, b"ok\nfar too long\n", 1),
            (vec![b"ok".to_vec()], Some(LineTooLong { max: 4 }))
        );
        assert_eq!(
            LineTooLong { max: 4 }.to_string(),
            "line longer than 4 bytes"
        );
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        let mut c = TextCodec::new(100);
        assert_eq!(c.decode(b"abc"), Ok(Decode::NeedMore));
        assert_eq!(c.scanned, 3);
        assert_eq!(
            c.decode(b"abcd\nx"),
            Ok(Decode::Done {
                item: &b"abcd"[..],
                consumed: 5
            })
        );
        assert_eq!(c.scanned, 0);
    }

    #[test]
    fn encode_round_trips() {
        let mut out = Vec::new();
        encode(b"hi", &mut out);
        encode(b"", &mut out);
        assert_eq!(out, b"hi\n\n");
        assert_eq!(feed(8, &out, out.len()).0, [&b"hi"[..], b""]);
    }
}
