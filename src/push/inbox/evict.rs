//! How messages enter and leave: appends, caps, expiry, the queue of messages by age that
//! makes the global oldest message an O(1) amortized lookup, and the index of tombstones.

use super::{stream::message_cost, Inbox, Offset, Record, StreamName};
use std::{collections::HashMap, sync::Arc};

/// A message in the inbox's age queue: stream `id`'s message `offset`, of `len` bytes of
/// text ([`Age::UNKNOWN_LEN`] past `u32::MAX`), so evicting it for memory reads nothing but
/// its stream. Stale once that message left (its offset is below the stream's first, or the
/// slot holds another stream, whose offsets start above every offset given out before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Age {
    pub(super) id: u32,
    pub(super) len: u32,
    pub(super) offset: Offset,
}

impl Age {
    /// `len` of a text too long for it: read from the stream instead.
    const UNKNOWN_LEN: u32 = u32::MAX;

    fn new(id: usize, offset: Offset, len: usize) -> Self {
        Self {
            // Every stream costs memory (`STREAM_COST`): 2^32 of them cannot exist.
            id: u32::try_from(id).expect("fewer than 2^32 streams"),
            len: u32::try_from(len).unwrap_or(Self::UNKNOWN_LEN),
            offset,
        }
    }

    fn stream(self) -> usize {
        self.id as usize
    }

    fn known_len(self) -> Option<usize> {
        (self.len != Self::UNKNOWN_LEN).then_some(self.len as usize)
    }
}

/// Bytes of one entry of the age queue.
pub(super) const AGE_SLOT: usize = std::mem::size_of::<Age>();

/// What the age queue costs per retained message, as the memory cap counts it: a fixed
/// amount, so the count depends on what is retained and not on the queue's history (a
/// recovered inbox counts what the live one counted, and evicts the same). An upper bound:
/// `compact_ages` keeps the queue's length within 1.5 × messages + 8 and its capacity
/// within twice its length + 8, so it never holds more than 3 entries a message
/// plus [`AGE_BASE`].
pub(super) const AGE_COST: usize = 3 * AGE_SLOT;

/// The age queue's allowance beyond [`AGE_COST`] per message, counted from the start.
pub(super) const AGE_BASE: usize = 24 * AGE_SLOT;

/// Why a message left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Ttl,
    UidCap,
    Memory,
    /// An `Evict` record replayed: counted when it first happened, not again.
    Replay,
}

impl Inbox {
    /// Appends to stream `id` and enforces the per-stream and memory caps.
    pub(super) fn push(&mut self, id: usize, payload: &str, now: u64) -> Offset {
        let offset = self.push_raw(id, payload, now);
        self.trim(id, now);
        let evicted = self.stats.evicted_memory;
        self.enforce_memory(now);
        self.compact_ages();
        if self.stats.evicted_memory != evicted {
            // At the memory cap each push evicts about one message: the next is likely the
            // one after the message evicted now (still the queue's front, stale), in a
            // stream that is cold by then. Its slot loads while other work runs.
            if let Some(next) = self.ages.get(1) {
                self.streams.prefetch(next.stream());
            }
        }
        offset
    }

    /// Appends to stream `id`, caps aside (a replayed log carries its own evictions).
    pub(super) fn push_raw(&mut self, id: usize, payload: &str, now: u64) -> Offset {
        let s = &mut self.streams[id];
        let offset = s.next();
        let tombstone = (s.messages.is_empty() && id != self.all).then_some(s.touched_ms);
        s.messages.push_back(now, payload);
        s.touched_ms = now;
        if let Some(touched) = tombstone {
            self.idle.remove(&(touched, id));
        }
        self.high_water = self.high_water.max(offset + 1);
        self.stats.messages += 1;
        self.stats.bytes += message_cost(payload.len());
        self.stats.appended += 1;
        if now < self.ages_last_ms {
            self.ages_sorted = false;
        }
        self.ages_last_ms = self.ages_last_ms.max(now);
        self.ages.push_back(Age::new(id, offset, payload.len()));
        if self.journal.is_some() {
            let payload: Arc<str> = payload.into();
            self.log(|me| Record::Append {
                stream: me.name(id),
                offset,
                at_ms: now,
                payload,
            });
        }
        offset
    }

    /// Evicts the oldest messages of stream `id` over `max_per_uid`.
    pub(super) fn trim(&mut self, id: usize, now: u64) {
        let over = self.streams[id]
            .messages
            .len()
            .saturating_sub(self.config.max_per_uid);
        self.evict_front(id, over, Reason::UidCap, now);
    }

    /// Brings every stream within the caps of the current config (after a recovery or a
    /// config change): O(streams), not for the hot path.
    pub(super) fn enforce_caps(&mut self) {
        let now = self.clock_ms;
        let ids: Vec<usize> = self.streams.iter().map(|(id, _)| id).collect();
        for id in ids {
            self.trim(id, now);
        }
        self.enforce_memory(now);
        self.compact_ages();
    }

    /// Everything up to `through` of stream `id` has reached a connection.
    pub(super) fn deliver(&mut self, id: usize, through: Offset) {
        let s = &mut self.streams[id];
        let to = through.saturating_add(1).min(s.next());
        if to > s.pending_from {
            s.pending_from = to;
            self.log(|me| Record::Delivered {
                stream: me.name(id),
                through: to - 1,
            });
        }
    }

    /// Removes the `count` oldest messages of stream `id`.
    pub(super) fn evict_front(&mut self, id: usize, count: usize, reason: Reason, now: u64) {
        self.remove_front(id, count, None, reason, now);
    }

    /// Removes the `count` oldest messages of stream `id`; `first_len` is the first one's
    /// length if known.
    fn remove_front(
        &mut self,
        id: usize,
        count: usize,
        mut first_len: Option<usize>,
        reason: Reason,
        now: u64,
    ) {
        if count == 0 {
            return;
        }
        let s = &mut self.streams[id];
        let mut freed = 0;
        for _ in 0..count {
            let Some(len) = s.messages.pop_front(first_len.take()) else {
                break;
            };
            freed += message_cost(len);
        }
        s.first += count as u64;
        s.pending_from = s.pending_from.max(s.first);
        let through = s.first - 1;
        if s.messages.is_empty() {
            s.touched_ms = now;
            if id != self.all {
                self.idle.insert((now, id));
            }
        }
        self.stats.messages -= count;
        self.stats.bytes -= freed;
        let n = count as u64;
        match reason {
            Reason::Ttl => self.stats.evicted_ttl += n,
            Reason::UidCap => self.stats.evicted_uid_cap += n,
            Reason::Memory => self.stats.evicted_memory += n,
            Reason::Replay => {}
        }
        self.log(|me| Record::Evict {
            stream: me.name(id),
            through,
            at_ms: now,
        });
    }

    /// Forgets the empty uid stream `id` (a tombstone): its uid starts afresh, at the
    /// high-water mark, on its next append.
    pub(super) fn forget(&mut self, id: usize) {
        debug_assert!(id != self.all && self.streams[id].messages.is_empty());
        if let Some(key) = self.key(id) {
            self.unindex(id, key);
        }
        let s = self.streams.remove(id);
        self.stats.bytes -= s.base_cost();
        self.stats.uids -= 1;
        self.stats.forgotten += 1;
        if let Some(uid) = s.uid {
            self.by_uid.remove(&uid);
            self.log(|_| Record::Forget {
                stream: StreamName::Uid(uid),
            });
        }
    }

    /// Evicts, oldest first, until the inbox fits `max_bytes`: tombstones before messages
    /// (losing one costs a client a spurious gap at worst, not a message).
    pub(super) fn enforce_memory(&mut self, now: u64) {
        self.make_room(0, now);
    }

    /// Evicts as [`enforce_memory`](Self::enforce_memory) does until `extra` more bytes fit
    /// (or nothing is left to evict).
    pub(super) fn make_room(&mut self, extra: usize, now: u64) {
        while self.stats.bytes.saturating_add(extra) > self.config.max_bytes {
            if let Some(&(_, id)) = self.idle.first() {
                self.forget(id);
            } else if let Some(a) = self.oldest() {
                // The oldest message is its stream's first: its length is all it takes.
                let first = self.streams[a.stream()].first;
                let len = a.known_len().filter(|_| a.offset == first);
                self.remove_front(a.stream(), 1, len, Reason::Memory, now);
            } else {
                break; // only the empty broadcast stream is left
            }
        }
    }

    /// Evicts messages older than `ttl_ms` and forgets tombstones idle longer than
    /// `idle_ttl_ms`, doing at most `budget` removals; returns how many it did. Call it each
    /// reactor turn (or at [`next_deadline`](Self::next_deadline)); a backlog is worked off
    /// over several calls, so a turn never stalls on it.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let now = self.tick(now_ms);
        let mut done = 0;
        while done < budget {
            let Some(a) = self.oldest() else {
                break;
            };
            let id = a.stream();
            let ttl = self.config.ttl_ms;
            let n = self.streams[id]
                .messages
                .iter()
                .take(budget - done)
                .take_while(|&(at, _)| at.saturating_add(ttl) <= now)
                .count();
            if n == 0 {
                break;
            }
            self.evict_front(id, n, Reason::Ttl, now);
            done += n;
        }
        while done < budget {
            let Some(&(touched, id)) = self.idle.first() else {
                break;
            };
            if touched.saturating_add(self.config.idle_ttl_ms) > now {
                break;
            }
            self.forget(id);
            done += 1;
        }
        self.compact_ages();
        done
    }

    /// When [`expire`](Self::expire) next has work (Unix ms), or `None` if never.
    pub fn next_deadline(&self) -> Option<u64> {
        // Not on the hot path: without `&mut`, stale entries are skipped, not dropped. The
        // oldest message is some stream's first.
        let oldest = if self.ages_sorted {
            let a = self.ages.iter().find(|&&a| self.is_live(a));
            a.and_then(|a| self.streams[a.stream()].messages.front_at())
        } else {
            self.streams
                .iter()
                .filter_map(|(_, s)| s.messages.front_at())
                .min()
        };
        let msg = oldest.map(|at| at.saturating_add(self.config.ttl_ms));
        let idle = self
            .idle
            .first()
            .map(|&(t, _)| t.saturating_add(self.config.idle_ttl_ms));
        match (msg, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The stream's entry in the age indexes: `(holds messages, age)`, or `None` for the
    /// empty broadcast stream (never forgotten, so never a tombstone).
    pub(super) fn key(&self, id: usize) -> Option<(bool, u64)> {
        let key = self.streams[id].age_key();
        (key.0 || id != self.all).then_some(key)
    }

    /// Moves stream `id` in or out of the tombstone index, from `before` to what it is now.
    /// A stream holding messages is in none (the age queue has its messages).
    pub(super) fn reindex(&mut self, id: usize, before: Option<(bool, u64)>) {
        let after = self.key(id);
        if before != after {
            if let Some(key) = before {
                self.unindex(id, key);
            }
            if let Some((false, touched)) = after {
                self.idle.insert((touched, id));
            }
        }
    }

    fn unindex(&mut self, id: usize, (busy, touched): (bool, u64)) {
        if !busy {
            self.idle.remove(&(touched, id));
        }
    }

    /// Whether the message `a` names is still retained.
    pub(super) fn is_live(&self, a: Age) -> bool {
        self.streams
            .get(a.stream())
            .is_some_and(|s| a.offset >= s.first && a.offset < s.next())
    }

    /// The oldest retained message, dropping stale entries on the way.
    pub(super) fn oldest(&mut self) -> Option<Age> {
        if !self.ages_sorted {
            self.sort_ages();
        }
        while let Some(&a) = self.ages.front() {
            if self.is_live(a) {
                return Some(a);
            }
            self.ages.pop_front();
        }
        None
    }

    /// The retained messages, oldest first, as `(at_ms, age, text)` (stale entries left
    /// out; sorted as `sort_ages` would if the queue is not in order yet). One pass: a
    /// stream's messages come in the queue in offset order, so a cursor per stream reads
    /// their times and texts.
    pub(super) fn ages_in_order(&self) -> Vec<(u64, Age, &str)> {
        let mut cursors = HashMap::new();
        let mut live = Vec::with_capacity(self.stats.messages);
        for &a in &self.ages {
            if !self.is_live(a) {
                continue;
            }
            let s = &self.streams[a.stream()];
            let (next, messages) = cursors
                .entry(a.id)
                .or_insert_with(|| (s.first, s.messages.iter()));
            let Some(skip) = a.offset.checked_sub(*next) else {
                continue; // not reached: the queue has each message once, in stream order
            };
            if let Some((at, text)) = messages.nth(skip as usize) {
                *next = a.offset + 1;
                live.push((at, a, text));
            }
        }
        if !self.ages_sorted {
            live.sort_unstable_by_key(|&(at, a, _)| (at, a.id, a.offset));
        }
        live
    }

    /// Puts the age queue in time order (after a recovery): oldest first, ties by stream
    /// and offset, as a scan of every stream's oldest message would find them.
    fn sort_ages(&mut self) {
        let live: Vec<Age> = self
            .ages_in_order()
            .into_iter()
            .map(|(_, a, _)| a)
            .collect();
        self.ages.clear();
        self.ages.extend(live);
        self.ages_sorted = true;
    }

    /// Keeps the age queue within what [`AGE_COST`] counts: drops its stale entries once
    /// they are more than half the live ones (O(len) then: amortized O(1) per message that
    /// left), and gives back a buffer more than twice as large as needed. Cheap to call
    /// when there is nothing to do; called after every push, expiry and cap change.
    pub(super) fn compact_ages(&mut self) {
        let live = self.stats.messages;
        if self.ages.len() > live + live / 2 + 8 {
            let mut ages = std::mem::take(&mut self.ages);
            ages.retain(|&a| self.is_live(a));
            self.ages = ages;
        }
        let len = self.ages.len();
        if self.ages.capacity() > 2 * len + 8 {
            self.ages.shrink_to(len + len / 2 + 4);
        }
    }

    /// The durable name of stream `id`.
    pub(super) fn name(&self, id: usize) -> StreamName {
        match &self.streams[id].uid {
            Some(uid) => StreamName::Uid(uid.clone()),
            None => StreamName::All,
        }
    }
}
