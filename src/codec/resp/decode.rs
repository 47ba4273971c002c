//! Replies from bytes: one [`Value`] per call, nested arrays walked with an explicit stack
//! bounded by [`RespLimits::max_depth`], never recursion on peer input.

use super::{RespError, RespLimits, Value};
use crate::codec::Decode;

/// Decodes RESP2 replies under [`RespLimits`].
///
/// # Partial input
/// A reply is decoded from its first byte on each call, but after a `NeedMore` the decoder
/// remembers how many bytes the reply needs at least (a bulk string's announced length,
/// say), and returns `NeedMore` at once until that many are there. So a large bulk string
/// trickling in costs one scan, not one per read.
#[derive(Debug, Clone)]
pub struct RespDecoder {
    limits: RespLimits,
    /// After a `NeedMore`: the input needs at least this many bytes before a retry can
    /// get further.
    pub(super) need: usize,
}

/// An array being filled: its elements so far and how many it announced.
struct Open {
    items: Vec<Value>,
    len: usize,
}

/// What one value header said.
enum Head {
    Value(Value),
    Array(usize),
}

impl RespDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: RespLimits) -> Self {
        Self { limits, need: 0 }
    }

    /// Decodes the first reply of `src`.
    ///
    /// # Errors
    /// [`RespError`] when the input can never become a valid reply (final).
    pub fn decode(&mut self, src: &[u8]) -> Result<Decode<Value>, RespError> {
        if src.len() < self.need {
            return Ok(Decode::NeedMore);
        }
        let mut pos = 0;
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let head = match self.head(src, &mut pos, stack.len())? {
                Some(head) => head,
                None => return Ok(Decode::NeedMore),
            };
            let mut value = match head {
                Head::Array(0) => Value::Array(Vec::new()),
                Head::Array(len) => {
                    // Reserve no more than what the bytes at hand could hold (each element
                    // is at least 3 bytes): a peer's announced length is not a promise.
                    let cap = len.min((src.len() - pos) / 3 + 1);
                    stack.push(Open {
                        items: Vec::with_capacity(cap),
                        len,
                    });
                    continue;
                }
                Head::Value(v) => v,
            };
            loop {
                let Some(top) = stack.last_mut() else {
                    self.need = 0;
                    return Ok(Decode::Done {
                        item: value,
                        consumed: pos,
                    });
                };
                top.items.push(value);
                if top.items.len() < top.len {
                    break;
                }
                let done = stack.pop().map(|o| o.items).unwrap_or_default();
                value = Value::Array(done);
            }
        }
    }

    /// Reads one value header at `pos` (and a whole non-array value); `None` if the input
    /// ends first, with `self.need` updated.
    fn head(
        &mut self,
        src: &[u8],
        pos: &mut usize,
        depth: usize,
    ) -> Result<Option<Head>, RespError> {
        let Some(line) = self.line(src, *pos)? else {
            return Ok(None);
        };
        let start = *pos;
        let after = start + line.len() + 2;
        let (kind, body) = (line[0], &line[1..]);
        let head = match kind {
            b'+' => Head::Value(Value::Simple(utf8(body)?)),
            b'-' => Head::Value(Value::Error(utf8(body)?)),
            b':' => Head::Value(Value::Integer(int(body)?)),
            b'$' => match length(body)? {
                None => Head::Value(Value::Nil),
                Some(n) if n > self.limits.max_bulk => return Err(RespError::BulkTooLarge),
                Some(n) => {
                    // `n + 2` cannot overflow: n is at most max_bulk, a usize limit well
                    // below usize::MAX in any sane configuration; checked all the same.
                    let end = after
                        .checked_add(n)
                        .and_then(|e| e.checked_add(2))
                        .ok_or(RespError::BulkTooLarge)?;
                    if src.len() < end {
                        self.need = end;
                        return Ok(None);
                    }
                    if &src[end - 2..end] != b"\r\n" {
                        return Err(RespError::BadLineEnd);
                    }
                    *pos = end;
                    return Ok(Some(Head::Value(Value::Bulk(src[after..end - 2].to_vec()))));
                }
            },
            b'*' => match length(body)? {
                None => Head::Value(Value::Nil),
                Some(n) if n > self.limits.max_elements => return Err(RespError::TooManyElements),
                Some(n) if n > 0 && depth >= self.limits.max_depth => {
                    return Err(RespError::TooDeep)
                }
                Some(n) => Head::Array(n),
            },
            other => return Err(RespError::BadType(other)),
        };
        *pos = after;
        Ok(Some(head))
    }

    /// The line starting at `pos`, without its CR LF; `None` if it is not complete yet.
    fn line<'a>(&mut self, src: &'a [u8], pos: usize) -> Result<Option<&'a [u8]>, RespError> {
        let rest = &src[pos..];
        let window = &rest[..rest.len().min(self.limits.max_line + 2)];
        match window.iter().position(|&b| b == b'\n') {
            Some(0) => Err(RespError::BadLineEnd),
            Some(lf) if window[lf - 1] != b'\r' => Err(RespError::BadLineEnd),
            // A CR inside the line: simple strings cannot hold one.
            Some(lf) if window[..lf - 1].contains(&b'\r') => Err(RespError::BadLineEnd),
            Some(lf) if lf - 1 == 0 => Err(RespError::BadType(b'\r')),
            Some(lf) => Ok(Some(&rest[..lf - 1])),
            // Checked before the length, so the error does not depend on how the input
            // was split.
            None if window
                .iter()
                .take(window.len().saturating_sub(1))
                .any(|&b| b == b'\r') =>
            {
                Err(RespError::BadLineEnd)
            }
            None if rest.len() > self.limits.max_line + 1 => Err(RespError::LineTooLong),
            None => {
                self.need = src.len() + 1;
                Ok(None)
            }
        }
    }
}

fn utf8(body: &[u8]) -> Result<String, RespError> {
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|_| RespError::BadUtf8)
}

/// `[-]digits` as an i64.
fn int(body: &[u8]) -> Result<i64, RespError> {
    let (neg, digits) = match body.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, body),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadInteger);
    }
    let mut n: i64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(d - b'0')))
            .ok_or(RespError::BadInteger)?;
    }
    Ok(if neg { -n } else { n })
}

/// A `$`/`*` length: `-1` is null (`None`), other negatives are invalid.
fn length(body: &[u8]) -> Result<Option<usize>, RespError> {
    match int(body)? {
        -1 => Ok(None),
        n if n < 0 => Err(RespError::BadLength),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| RespError::BulkTooLarge),
    }
}
