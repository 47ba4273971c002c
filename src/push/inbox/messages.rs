//! One stream's retained messages, back to back in one ring buffer: an append copies the
//! text after the newest, evicting the oldest moves a cursor. A kept push costs no allocation
//! of its own (the buffer grows geometrically) and no copy of older ones (the buffer wraps
//! instead of moving its records to the front), and evicting one touches nothing but the
//! stream when its length is known (the age queue carries it): with a message per
//! allocation, the daemon's hot path paid a `malloc`, a `free` and a cold cache line per
//! push; moving the live records to the front whenever the end was reached cost another
//! 1.7 % of the daemon's CPU under a burst, four bytes copied per byte kept.

/// Bytes before each message's text: its time (Unix ms) and its length, 8 bytes each.
pub(super) const HEADER: usize = 16;

/// The most a non-empty buffer holds beyond 1.5 times its live bytes (see [`Messages`]).
pub(super) const SLACK: usize = 64;

/// What the memory cap counts for a message of `len` bytes of text: its record, and half
/// of it again for the buffer's room to grow and its evicted front (see [`Messages`]).
pub(super) const fn charge(len: usize) -> usize {
    let record = HEADER + len;
    record + record.div_ceil(2)
}

/// The most a buffer may hold for `live` bytes of records.
const fn bound(live: usize) -> usize {
    live + live / 2 + SLACK
}

/// What a buffer is grown or shrunk to for `live` bytes of records: a quarter of room.
const fn roomy(live: usize) -> usize {
    live + live / 4
}

/// Messages oldest first, each `at_ms`, `len`, then `len` bytes of UTF-8.
///
/// A ring of whole records (a record never straddles the end): the oldest are at
/// `head..end`; once an append found no room after `end` but enough before `head`, the
/// newest are at `0..wrapped` (`wrapped` is 0 while they are not). When `head` reaches `end`,
/// the second run becomes the first.
///
/// Memory bound: after every operation the buffer's size is at most 1.5 times its live
/// bytes (records not evicted) plus [`SLACK`], and no buffer at all when empty. So the sum
/// of [`charge`] over the retained messages, plus `SLACK` per stream, is an upper bound of
/// what the buffers hold, whatever the history, and a recovered stream counts what the live
/// one counted. The buffer grows to 1.25 times the live bytes when an append finds no room,
/// and is shrunk back to that once over the bound (a sixth of the live bytes evicted since):
/// appends and evictions in turn never reallocate in a loop, and every copy is paid for by
/// the bytes appended or evicted since the last (amortized O(1) per byte).
#[derive(Debug, Default, Clone)]
pub(super) struct Messages {
    buf: Box<[u8]>,
    /// Where the oldest message's record starts.
    head: usize,
    /// Where the first run of records ends.
    end: usize,
    /// Where the second run (from 0) ends; 0 when there is none.
    wrapped: usize,
    count: usize,
}

impl Messages {
    /// How many messages are retained.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the buffer (used or not): an upper bound of the heap it holds.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the records not evicted.
    fn live(&self) -> usize {
        self.end - self.head + self.wrapped
    }

    /// Appends `text` kept at `at_ms`.
    pub(super) fn push_back(&mut self, at_ms: u64, text: &str) {
        let need = HEADER + text.len();
        let at = if self.wrapped > 0 {
            // The newest run grows towards the oldest.
            (self.wrapped + need <= self.head).then_some(self.wrapped)
        } else if self.end + need <= self.buf.len() {
            Some(self.end)
        } else {
            // No room at the end: start the second run if the evicted front has it.
            (need <= self.head).then_some(0)
        };
        let at = match at {
            Some(at) => at,
            None => {
                self.rebuild(roomy(self.live() + need));
                self.end
            }
        };
        let record = &mut self.buf[at..at + need];
        record[..8].copy_from_slice(&at_ms.to_le_bytes());
        record[8..HEADER].copy_from_slice(&(text.len() as u64).to_le_bytes());
        record[HEADER..].copy_from_slice(text.as_bytes());
        if self.wrapped > 0 || at < self.end {
            self.wrapped = at + need;
        } else {
            self.end = at + need;
        }
        self.count += 1;
    }

    /// Evicts the oldest message; returns its text's length. `known` is that length if the
    /// caller has it (then the record is not read).
    pub(super) fn pop_front(&mut self, known: Option<usize>) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let len = known.unwrap_or_else(|| Record::at(&self.buf, self.head).len);
        debug_assert_eq!(len, Record::at(&self.buf, self.head).len);
        self.head += HEADER + len;
        self.count -= 1;
        if self.head == self.end {
            // The first run is gone: the second (if any) is the oldest now.
            (self.head, self.end, self.wrapped) = (0, self.wrapped, 0);
        }
        if self.count == 0 {
            *self = Self::default(); // an empty stream keeps no buffer
        } else if self.buf.len() > bound(self.live()) {
            self.rebuild(roomy(self.live()));
        }
        Some(len)
    }

    /// Moves the live records, oldest first, to the front of a new buffer of `size` bytes
    /// (at least the live bytes).
    fn rebuild(&mut self, size: usize) {
        let mut buf = vec![0; size].into_boxed_slice();
        let first = self.end - self.head;
        buf[..first].copy_from_slice(&self.buf[self.head..self.end]);
        buf[first..first + self.wrapped].copy_from_slice(&self.buf[..self.wrapped]);
        (self.head, self.end, self.wrapped) = (0, first + self.wrapped, 0);
        self.buf = buf;
    }

    /// The address where the next record goes if it fits where the last one ended: a hint
    /// for prefetching, never read through.
    pub(super) fn tail_addr(&self) -> usize {
        let at = if self.wrapped > 0 {
            self.wrapped
        } else {
            self.end
        };
        self.buf.as_ptr().wrapping_add(at) as usize
    }

    /// The oldest message's time.
    pub(super) fn front_at(&self) -> Option<u64> {
        (self.count > 0).then(|| Record::at(&self.buf, self.head).at_ms)
    }

    /// The messages oldest first, as `(at_ms, text)`.
    pub(super) fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            pos: self.head,
            end: self.end,
            wrapped: self.wrapped,
            left: self.count,
        }
    }
}

/// A record's header, read from the buffer.
struct Record {
    at_ms: u64,
    len: usize,
}

impl Record {
    fn at(buf: &[u8], pos: usize) -> Self {
        let word = |i: usize| {
            let bytes: [u8; 8] = buf[pos + i..pos + i + 8].try_into().expect("eight bytes");
            u64::from_le_bytes(bytes)
        };
        Self {
            at_ms: word(0),
            len: word(8) as usize,
        }
    }
}

/// The messages of a [`Messages`], oldest first, as `(at_ms, text)`.
#[derive(Debug, Clone, Default)]
pub(super) struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the run `pos` is in ends.
    end: usize,
    /// Where the second run ends, while `pos` is in the first; else 0.
    wrapped: usize,
    left: usize,
}

impl<'a> Iter<'a> {
    /// The next record's header and where its text starts, moving past it.
    fn step(&mut self) -> Option<(Record, usize)> {
        if self.left == 0 {
            return None;
        }
        if self.pos == self.end {
            (self.pos, self.end, self.wrapped) = (0, self.wrapped, 0);
        }
        let r = Record::at(self.buf, self.pos);
        let start = self.pos + HEADER;
        self.pos = start + r.len;
        self.left -= 1;
        Some((r, start))
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (u64, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (r, start) = self.step()?;
        let bytes = &self.buf[start..start + r.len];
        // Only `push_back` writes records, and it writes a `&str`'s bytes.
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        Some((r.at_ms, text))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }

    /// Skips records by their headers alone.
    fn nth(&mut self, n: usize) -> Option<Self::Item> {
        for _ in 0..n {
            self.step()?;
        }
        self.next()
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_bounds_its_buffer() {
        let mut m = Messages::default();
        let mut model = std::collections::VecDeque::new();
        let mut rng = 7u64;
        for i in 0..20_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Bursts of appends and of evictions, texts of 0-199 bytes.
            if (i / 500) % 2 == 0 || rng % 3 == 0 {
                let text = "x".repeat((rng % 200) as usize) + &i.to_string();
                m.push_back(i, &text);
                model.push_back((i, text));
            } else {
                let known = model.front().map(|(_, t): &(u64, String)| t.len());
                let hint = if rng % 2 == 0 { known } else { None };
                assert_eq!(m.pop_front(hint), known);
                model.pop_front();
            }
            let live: usize = model.iter().map(|(_, t)| HEADER + t.len()).sum();
            assert!(
                m.capacity() <= bound(live),
                "capacity {} live {live}",
                m.capacity()
            );
            assert_eq!(m.len(), model.len());
            assert_eq!(m.front_at(), model.front().map(|(at, _)| *at));
        }
        let got: Vec<(u64, &str)> = m.iter().collect();
        let want: Vec<(u64, &str)> = model.iter().map(|(at, t)| (*at, t.as_str())).collect();
        assert_eq!(got, want);
        assert_eq!(m.iter().nth(3), want.get(3).copied());
        while m.pop_front(None).is_some() {}
        assert_eq!(m.capacity(), 0, "an empty stream keeps no buffer");
    }

    #[test]
    fn a_stream_of_steady_size_wraps_without_moving_its_records() {
        let mut m = Messages::default();
        for i in 0..40u64 {
            m.push_back(i, &format!("message {i:04}"));
        }
        let size = m.capacity();
        let mut wraps = 0;
        for i in 40..10_000u64 {
            let wrapped_before = m.wrapped > 0;
            m.push_back(i, &format!("message {i:04}"));
            wraps += usize::from(!wrapped_before && m.wrapped > 0);
            assert_eq!(m.pop_front(None), Some(12));
            assert_eq!(m.capacity(), size, "no copy at steady size (push {i})");
        }
        assert!(wraps > 100, "the ring wrapped {wraps} times");
        let texts: Vec<String> = m.iter().map(|(_, t)| t.to_string()).collect();
        let want: Vec<String> = (9_960..10_000).map(|i| format!("message {i:04}")).collect();
        assert_eq!(texts, want);
        assert_eq!(m.iter().nth(39).map(|(at, _)| at), Some(9_999));
        assert_eq!(m.iter().nth(40), None);
    }
}
