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
        let Some(head) = src.first_chunk::<HEADER_LEN>() else {
            return Ok(Decode::NeedMore);
        };
        let total = u32::from_be_bytes(*head);
        // The length counts its own 4 bytes; anything shorter could never be framed.
        let Some(payload_len) = total.checked_sub(HEADER_LEN as u32) else {
            return Err(FrameError::Runt { total });
        };
        // Checked from the header alone, so an oversized frame is refused before its payload
        // is buffered. A length that does not fit in usize is over any limit.
        let len = usize::try_from(payload_len).unwrap_or(usize::MAX);
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        // Cannot overflow: len <= max_len came from a u32, and HEADER_LEN is 4; checked anyway.
        let Some(end) = len.checked_add(HEADER_LEN) else {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        };
        match src.get(HEADER_LEN..end) {
            Some(payload) => Ok(Decode::Done {
                item: payload,
                consumed: end,
            }),
            None => Ok(Decode::NeedMore),
        }
    }
}

/// The header announcing a payload of `payload_len` bytes.
///
/// # Errors
/// [`FrameError::TooLarge`] when the total does not fit in 32 bits.
pub fn header(payload_len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    payload_len
        .checked_add(HEADER_LEN)
        .and_then(|total| u32::try_from(total).ok())
        .map(u32::to_be_bytes)
        .ok_or(FrameError::TooLarge {
            len: payload_len,
            max: MAX_PAYLOAD,
        })
}

/// Largest payload a 32-bit total length can announce.
const MAX_PAYLOAD: usize = u32::MAX as usize - HEADER_LEN;

/// Appends the header and `payload` to `out`.
///
/// # Errors
/// As [`header`]; nothing is appended then.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let head = header(payload.len())?;
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(payload, &mut out).expect("small payload");
        out
    }

    /// Decodes `input` fed `chunk` bytes at a time (growing buffer, consumed bytes drained).
    fn feed(max: usize, input: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Option<FrameError>) {
        let codec = FrameCodec::new(max);
        crate::codec::test_util::feed(input, chunk, |b| {
            codec.decode(b).map(|d| d.map(<[u8]>::to_vec))
        })
    }

    #[test]
    fn header_is_big_endian_total() {
        assert_eq!(header(0), Ok([0, 0, 0, 4]));
        assert_eq!(header(0x0102_0304 - 4), Ok([1, 2, 3, 4]));
        assert_eq!(frame(b"hi"), [0, 0, 0, 6, b'h', b'i']);
    }

    #[test]
    fn header_total_must_fit_u32() {
        assert_eq!(header(MAX_PAYLOAD), Ok([0xff; 4]));
        let err = Err(FrameError::TooLarge {
            len: MAX_PAYLOAD + 1,
            max: MAX_PAYLOAD,
        });
        assert_eq!(header(MAX_PAYLOAD + 1), err);
        assert!(header(usize::MAX).is_err());
    }

    #[test]
    fn every_prefix_needs_more() {
        let bytes = frame(b"payload");
        for i in 0..bytes.len() {
            assert_eq!(
                FrameCodec::new(16).decode(&bytes[..i]),
                Ok(Decode::NeedMore),
                "prefix {i}"
            );
        }
        let done = Decode::Done {
            item: &b"payload"[..],
            consumed: bytes.len(),
        };
        assert_eq!(FrameCodec::new(16).decode(&bytes), Ok(done));
    }

    #[test]
    fn empty_payload() {
        let done = Decode::Done {
            item: &b""[..],
            consumed: 4,
        };
        assert_eq!(FrameCodec::new(0).decode(&[0, 0, 0, 4, 9]), Ok(done));
    }

    #[test]
    fn pipelined_and_byte_at_a_time() {
        let mut input = frame(b"first");
        input.extend(frame(b""));
        input.extend(frame(b"third"));
        input.extend(&[0, 0, 0, 9, b'x']); // an incomplete fourth
        let whole = feed(8, &input, input.len());
        assert_eq!(
            whole,
            (vec![b"first".to_vec(), vec![], b"third".to_vec()], None)
        );
        for chunk in 1..input.len() {
            assert_eq!(feed(8, &input, chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn limit_at_and_past_boundary() {
        assert_eq!(feed(3, &frame(b"abc"), 1), (vec![b"abc".to_vec()], None));
        let err = FrameError::TooLarge { len: 4, max: 3 };
        assert_eq!(FrameCodec::new(3).decode(&frame(b"abcd")), Err(err));
    }

    #[test]
    fn too_large_from_header_alone() {
        let err = Err(FrameError::TooLarge {
            len: 0xffff_fffb,
            max: 1024,
        });
        assert_eq!(FrameCodec::new(1024).decode(&[0xff, 0xff, 0xff, 0xff]), err);
    }

    #[test]
    fn runt() {
        for total in 0..4u8 {
            let err = Err(FrameError::Runt {
                total: total.into(),
            });
            assert_eq!(FrameCodec::new(16).decode(&[0, 0, 0, total]), err);
        }
        assert_eq!(
            FrameError::Runt { total: 3 }.to_string(),
            "frame length 3 is shorter than its header"
        );
    }
}
