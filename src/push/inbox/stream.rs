//! One stream: the retained messages of one uid (or of broadcasts), their offsets and how
//! far they were delivered.

use super::{
    messages::{self, Messages},
    Offset,
};
use std::{mem::size_of, num::NonZeroU64, ops::Range, sync::Arc};

/// What a retained message costs beyond its text, as the memory cap counts it: its share of
/// the stream's buffer beyond the text ([`messages::charge`]) and of the inbox's age queue
/// ([`AGE_COST`](super::evict::AGE_COST)).
pub(super) const fn message_cost(len: usize) -> usize {
    messages::charge(len) + super::evict::AGE_COST
}

/// What a stream costs beyond its uid and messages, amortized over the containers'
/// growth (each at most doubles): its slot and an entry in the free list (×2), the uid map's
/// entry and control byte (×2), the uid's `Arc` header and allocator overhead (40), its key
/// in the tombstone index (a B-tree entry, ×2), and its message buffer's allocator header
/// (16) and slack ([`messages::SLACK`]). Measured against RSS by `tests/memory.rs`; see
/// `docs/PROTOCOL.md` §7.
pub(super) const STREAM_COST: usize = 2 * (super::slots::SLOT + 8)
    + 2 * (size_of::<(Arc<str>, usize)>() + 1)
    + 40
    + 2 * size_of::<(u64, usize)>()
    + 16
    + messages::SLACK;

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
    pub(super) messages: Messages,
    /// First offset not yet delivered to any connection of the uid (the offline queue is
    /// `pending_from..next()`). Never below `first`: a message evicted before delivery is lost.
    pub(super) pending_from: Offset,
    /// Last append, resume or emptying (Unix ms): a tombstone's age.
    pub(super) touched_ms: u64,
    /// Unique to this stream among all the inbox ever opened (see `StreamRef`).
    pub(super) serial: NonZeroU64,
}

impl Stream {
    /// An empty stream whose first message will get offset `next`.
    pub(super) fn new(
        uid: Option<Arc<str>>,
        next: Offset,
        now_ms: u64,
        serial: NonZeroU64,
    ) -> Self {
        Self {
            uid,
            first: next,
            messages: Messages::default(),
            pending_from: next,
            touched_ms: now_ms,
            serial,
        }
    }

    /// The offset the next append gets.
    pub(super) fn next(&self) -> Offset {
        self.first + self.messages.len() as u64
    }

    /// Whether `offset` is retained and not yet delivered to any connection of the uid.
    pub(super) fn is_pending(&self, offset: Offset) -> bool {
        offset >= self.pending_from && offset < self.next()
    }

    /// Where this stream sits in the inbox's age indexes: `(true, oldest at_ms)` while it holds
    /// messages, `(false, touched_ms)` as a tombstone.
    pub(super) fn age_key(&self) -> (bool, u64) {
        match self.messages.front_at() {
            Some(at) => (true, at),
            None => (false, self.touched_ms),
        }
    }

    /// Bytes the memory cap counts for this stream without its messages and slots.
    pub(super) fn base_cost(&self) -> usize {
        STREAM_COST + self.uid.as_ref().map_or(0, |u| u.len())
    }

    /// Everything the memory cap counts for this stream.
    #[cfg(test)]
    pub(super) fn cost(&self) -> usize {
        let messages: usize = self
            .messages
            .iter()
            .map(|(_, text)| message_cost(text.len()))
            .sum();
        self.base_cost() + messages
    }

    /// The retained messages with offsets in `range` (clamped to what is retained).
    pub(super) fn replay(&self, range: Range<Offset>) -> Replay<'_> {
        let start = range.start.max(self.first);
        let end = range.end.min(self.next()).max(start);
        let mut messages = self.messages.iter();
        if start > self.first {
            messages.nth((start - self.first - 1) as usize);
        }
        Replay {
            after: start.saturating_sub(1),
            next: start,
            left: (end - start) as usize,
            messages,
        }
    }
}

/// Messages to send, in order, as `(offset, payload)`.
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    after: Offset,
    next: Offset,
    left: usize,
    messages: messages::Iter<'a>,
}

impl<'a> Replay<'a> {
    /// Nothing to send; the client's position stays `after`.
    pub(super) fn empty(after: Offset) -> Self {
        Self {
            after,
            next: after.saturating_add(1),
            left: 0,
            messages: Default::default(),
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
        if self.left == 0 {
            return None;
        }
        let (_, text) = self.messages.next()?;
        self.left -= 1;
        let offset = self.next;
        self.next += 1;
        Some((offset, text))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Replay<'_> {}
