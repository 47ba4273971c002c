//! One stream: the retained messages of one uid (or of broadcasts), their offsets and how
//! far they were delivered.

use super::Offset;
use std::{collections::VecDeque, mem::size_of, ops::Range, sync::Arc};

/// What a retained message costs beyond its payload, as the memory cap counts it: its
/// slot in the stream's `VecDeque` (24 bytes) and the `Arc<str>` header (two counts,
/// 16 bytes) and allocator rounding (16 on average with glibc's 16-byte chunks).
/// Measured: see the "Memory" section of `docs/PROTOCOL.md` §7.
pub(super) const ENTRY_COST: usize = size_of::<Entry>() + 2 * size_of::<usize>() + 16;

/// What a stream costs beyond its uid and messages: the `Stream` itself in its slab slot,
/// the uid map's entry (key, value, control byte), the `Arc<str>` header of the uid, and
/// its key in one of the two age indexes.
pub(super) const STREAM_COST: usize = size_of::<Stream>()
    + 8
    + size_of::<(Arc<str>, usize)>()
    + 1
    + 16
    + 2 * size_of::<(u64, usize)>();

/// A retained message. Its offset is implicit: `Stream::first` plus its index.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// When it was appended (Unix ms, never earlier than the message before it).
    pub(super) at_ms: u64,
    /// The frame text plain clients get. Shared: a group push keeps one copy for all members.
    pub(super) payload: Arc<str>,
}

/// The messages of one uid, oldest first.
///
/// Offsets are consecutive within a stream: `first..next()` are retained, everything before
/// `first` was evicted. A stream whose messages are all gone stays as a *tombstone* (no
/// messages, but `first` = its next offset) so a client that saw its last message resumes
/// with no gap; tombstones leave after `idle_ttl` or under memory pressure.
#[derive(Debug)]
pub(super) struct Stream {
    /// The uid; `None` for the broadcast stream.
    pub(super) uid: Option<Arc<str>>,
    /// Offset of `entries[0]` (or, when empty, the offset the next append gets).
    pub(super) first: Offset,
    /// Retained messages, oldest first.
    pub(super) entries: VecDeque<Entry>,
    /// First offset not yet delivered to any connection of the uid (the offline queue is
    /// `pending_from..next()`). Never below `first`: a message evicted before delivery is lost.
    pub(super) pending_from: Offset,
    /// Last append, resume or emptying (Unix ms): a tombstone's age.
    pub(super) touched_ms: u64,
}

impl Stream {
    /// An empty stream whose first message will get offset `next`.
    pub(super) fn new(uid: Option<Arc<str>>, next: Offset, now_ms: u64) -> Self {
        Self {
            uid,
            first: next,
            entries: VecDeque::new(),
            pending_from: next,
            touched_ms: now_ms,
        }
    }

    /// The offset the next append gets.
    pub(super) fn next(&self) -> Offset {
        self.first + self.entries.len() as u64
    }

    /// Where this stream sits in the inbox's age indexes: `(true, oldest at_ms)` while it holds
    /// messages, `(false, touched_ms)` as a tombstone.
    pub(super) fn age_key(&self) -> (bool, u64) {
        match self.entries.front() {
            Some(e) => (true, e.at_ms),
            None => (false, self.touched_ms),
        }
    }

    /// Bytes the memory cap counts for this stream without its messages.
    pub(super) fn base_cost(&self) -> usize {
        STREAM_COST + self.uid.as_ref().map_or(0, |u| u.len())
    }

    /// The retained messages with offsets in `range` (clamped to what is retained).
    pub(super) fn replay(&self, range: Range<Offset>) -> Replay<'_> {
        let start = range.start.max(self.first);
        let end = range.end.min(self.next()).max(start);
        let (from, to) = ((start - self.first) as usize, (end - self.first) as usize);
        Replay {
            after: start.saturating_sub(1),
            next: start,
            entries: self.entries.range(from..to),
        }
    }
}

/// Messages to send, in order, as `(offset, payload)`.
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    after: Offset,
    next: Offset,
    entries: std::collections::vec_deque::Iter<'a, Entry>,
}

impl<'a> Replay<'a> {
    /// Nothing to send; the client's position stays `after`.
    pub(super) fn empty(after: Offset) -> Self {
        Self {
            after,
            next: after.saturating_add(1),
            entries: Default::default(),
        }
    }

    /// The offset just before the first message: the position a resume-capable client holds
    /// before these messages (every message then has the offset after the previous one).
    pub fn after(&self) -> Offset {
        self.after
    }
}

impl<'a> Iterator for Replay<'a> {
    type Item = (Offset, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let e = self.entries.next()?;
        let offset = self.next;
        self.next += 1;
        Some((offset, &e.payload))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Replay<'_> {}
