//! Sans-IO codecs: bytes in, values and bytes out; no sockets, no clocks.
//!
//! Every decoder follows one contract, shaped like `httparse`'s but reporting how many bytes
//! it used:
//!
//! - `Ok(Decode::Done { item, consumed })`: `item` was decoded from the first `consumed`
//!   bytes; the caller drops them and calls again for the next item.
//! - `Ok(Decode::NeedMore)`: the input is a valid prefix; nothing was consumed; call again
//!   with the same bytes plus more. Decoders remember how far they have scanned, so a slow
//!   sender never causes an O(n²) rescan.
//! - `Err(e)`: the input can never become valid; the error is final for the connection.
//!
//! Every length chosen by the peer is checked against a limit before it is used or reserved.

pub mod frame;
pub mod http;
mod protocol;
pub mod resp;
pub mod text;
pub mod ws;

pub use protocol::{Limits, Protocol, WhenFull};

/// What a decoder made of the bytes it was offered. Incomplete input is not an error
/// (cf. `httparse::Status::Partial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode<T> {
    /// `item` was decoded from the first `consumed` bytes of the input.
    Done {
        /// The decoded value; it may borrow from the input.
        item: T,
        /// How many bytes of the input `item` used; always at least 1.
        consumed: usize,
    },
    /// The input is a valid prefix; call again with more bytes. Nothing was consumed.
    NeedMore,
}

impl<T> Decode<T> {
    /// Maps the decoded item, keeping `consumed`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decode<U> {
        match self {
            Self::Done { item, consumed } => Decode::Done {
                item: f(item),
                consumed,
            },
            Self::NeedMore => Decode::NeedMore,
        }
    }
}

/// Test support shared by the codecs' unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use super::Decode;

    /// Feeds `input` to `decode` `chunk` bytes at a time into a growing buffer, draining what
    /// each item consumed; returns the (owned) items and the error, if any.
    pub(crate) fn feed<O, E>(
        input: &[u8],
        chunk: usize,
        mut decode: impl FnMut(&[u8]) -> Result<Decode<O>, E>,
    ) -> (Vec<O>, Option<E>) {
        let (mut buf, mut items) = (Vec::new(), Vec::new());
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match decode(&buf) {
                    Ok(Decode::Done { item, consumed }) => {
                        assert!(consumed > 0 && consumed <= buf.len());
                        items.push(item);
                        buf.drain(..consumed);
                    }
                    Ok(Decode::NeedMore) => break,
                    Err(e) => return (items, Some(e)),
                }
            }
        }
        (items, None)
    }
}
