//! Records as bytes, for a durable store: a tag byte, then fixed little-endian `u64`s and
//! length-prefixed strings. Several records may be concatenated (one reactor turn's batch in
//! one value); [`Record::decode`] says how many bytes each took.
//!
//! ```text
//! record  = 1 epoch high_water                  ; Epoch
//!         / 2 stream next at_ms                 ; Open
//!         / 3 stream offset at_ms string        ; Append (string = payload)
//!         / 4 stream through                    ; Delivered
//!         / 5 stream through at_ms              ; Evict
//!         / 6 stream                            ; Forget
//! stream  = 0 / 1 string                        ; All / Uid
//! string  = u64 length, then that many bytes of UTF-8
//! ```

use super::{Epoch, Record, StreamName};
use std::{fmt, str, sync::Arc};

/// Why bytes are not a record. Decoding never panics and never allocates more than the
/// input's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a record.
    Truncated,
    /// A tag byte that names no record or stream kind.
    Tag(u8),
    /// A uid or payload that is not UTF-8.
    Utf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("inbox record truncated"),
            Self::Tag(t) => write!(f, "inbox record with unknown tag {t}"),
            Self::Utf8 => f.write_str("inbox record holds a string that is not UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Record {
    /// Appends the record's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let u64s =
            |out: &mut Vec<u8>, vs: &[u64]| vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
        match self {
            Self::Epoch { epoch, high_water } => {
                out.push(1);
                u64s(out, &[epoch.0, *high_water]);
            }
            Self::Open {
                stream,
                next,
                at_ms,
            } => {
                out.push(2);
                encode_stream(stream, out);
                u64s(out, &[*next, *at_ms]);
            }
            Self::Append {
                stream,
                offset,
                at_ms,
                payload,
            } => {
                out.push(3);
                encode_stream(stream, out);
                u64s(out, &[*offset, *at_ms]);
                encode_str(payload, out);
            }
            Self::Delivered { stream, through } => {
                out.push(4);
                encode_stream(stream, out);
                u64s(out, &[*through]);
            }
            Self::Evict {
                stream,
                through,
                at_ms,
            } => {
                out.push(5);
                encode_stream(stream, out);
                u64s(out, &[*through, *at_ms]);
            }
            Self::Forget { stream } => {
                out.push(6);
                encode_stream(stream, out);
            }
        }
    }

    /// The record at the start of `src` and how many bytes it took.
    ///
    /// # Errors
    /// See [`DecodeError`]; nothing is consumed.
    pub fn decode(src: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader(src);
        let record = match r.byte()? {
            1 => Self::Epoch {
                epoch: Epoch(r.u64()?),
                high_water: r.u64()?,
            },
            2 => Self::Open {
                stream: r.stream()?,
                next: r.u64()?,
                at_ms: r.u64()?,
            },
            3 => Self::Append {
                stream: r.stream()?,
                offset: r.u64()?,
                at_ms: r.u64()?,
                payload: r.string()?,
            },
            4 => Self::Delivered {
                stream: r.stream()?,
                through: r.u64()?,
            },
            5 => Self::Evict {
                stream: r.stream()?,
                through: r.u64()?,
                at_ms: r.u64()?,
            },
            6 => Self::Forget {
                stream: r.stream()?,
            },
            tag => return Err(DecodeError::Tag(tag)),
        };
        Ok((record, src.len() - r.0.len()))
    }

    /// Every record of a concatenation, in order; stops at the first error.
    pub fn decode_all(mut src: &[u8]) -> impl Iterator<Item = Result<Self, DecodeError>> + '_ {
        std::iter::from_fn(move || {
            if src.is_empty() {
                return None;
            }
            Some(Self::decode(src).map(|(record, used)| {
                src = &src[used..];
                record
            }))
        })
        .scan(false, |failed, r| {
            // One error ends the stream: what follows it cannot be framed.
            (!*failed).then(|| {
                *failed = r.is_err();
                r
            })
        })
    }
}

fn encode_stream(stream: &StreamName, out: &mut Vec<u8>) {
    match stream {
        StreamName::All => out.push(0),
        StreamName::Uid(uid) => {
            out.push(1);
            encode_str(uid, out);
        }
    }
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The unread rest of the input.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(
            bytes.try_into().map_err(|_| DecodeError::Truncated)?,
        ))
    }

    /// A length-prefixed string; the length is checked against the input before anything
    /// is allocated.
    fn string(&mut self) -> Result<Arc<str>, DecodeError> {
        let len = usize::try_from(self.u64()?).map_err(|_| DecodeError::Truncated)?;
        let bytes = self.take(len)?;
        str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|_| DecodeError::Utf8)
    }

    fn stream(&mut self) -> Result<StreamName, DecodeError> {
        match self.byte()? {
            0 => Ok(StreamName::All),
            1 => Ok(StreamName::Uid(self.string()?)),
            tag => Err(DecodeError::Tag(tag)),
        }
    }
}
