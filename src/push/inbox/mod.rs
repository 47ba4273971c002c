//! The inbox: every push to a uid gets an offset and is kept a while, so a client that
//! reconnects gets exactly what it missed and a uid nobody is connected as gets its pushes
//! when it comes back (issue 12). Pure logic: no sockets, no clock (`now_ms` is a parameter,
//! Unix milliseconds so it means the same after a restart).
//!
//! # Streams and offsets
//!
//! Each uid has a stream; each push to it (compat line, `push` to a uid, uids or group) is
//! [`Inbox::append`]ed and gets the next offset. Broadcasts go to one stream of their own
//! ([`Inbox::append_all`]): kept once, not once per uid, and replayed to resume-capable
//! clients like the uid's own messages; they are not part of the offline queue (a push.php
//! broadcast is for whoever is online).
//!
//! Offsets are consecutive while a stream lives. A stream whose messages all expired stays as
//! a *tombstone* for [`Config::idle_ttl_ms`], so a client that saw its last message resumes
//! without a gap. A stream opened again after that starts at the inbox's high-water mark (no
//! lower than any offset ever given out in this epoch), never at an offset it used before:
//! a client's old position is then reported as a gap, never silently mis-resumed.
//!
//! # Epoch
//!
//! An [`Epoch`] is chosen when an inbox is created and kept when it is recovered from a
//! durable store ([`Record`]). Positions carry it, so a position from another inbox (a
//! restart without a store, a lost store) is a gap, not a wrong replay.
//!
//! # Bounds
//!
//! A message leaves after `ttl_ms`, when its stream holds more than `max_per_uid`, or, oldest
//! first across all streams, when the inbox holds more than `max_bytes` (tombstones go before
//! any message). [`Inbox::expire`] does the time-based part in bounded steps;
//! [`Inbox::next_deadline`] says when to call it next. [`Stats`] counts every eviction.
//!
//! # Call order (the server)
//!
//! - a push to uids: `append` each, send the frame to their connections, then
//!   `mark_delivered` for those that took it; `is_pending` afterwards means "queued";
//! - a plain connection that is its uid's first: `take_pending` and send those first;
//! - a resume-capable connection: [`Inbox::resume`] (and [`Inbox::resume_all`]), send what it
//!   says, then live pushes;
//! - each reactor turn: `expire(now, budget)`; with a durable store, `drain_journal` and
//!   commit it *before* sending that turn's frames (see [`Record`]).

mod codec;
mod evict;
mod messages;
mod record;
mod slots;
mod stream;
#[cfg(test)]
mod tests;
pub mod wire;

pub use codec::DecodeError;
pub use record::{ApplyError, Record, StreamName};
pub use stream::Replay;

use evict::Age;
use slots::Streams;
use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    fmt,
    hash::{BuildHasher as _, Hasher as _},
    num::NonZeroU64,
    str::FromStr,
    sync::Arc,
};
use stream::Stream;

/// A message's place in its stream: 1 for the first message ever appended to an inbox's
/// first stream, consecutive within a stream. 0 means "before anything".
pub type Offset = u64;

/// Names one inbox's offsets: positions from another epoch cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(pub u64);

impl Epoch {
    /// A random epoch (from the OS-seeded keys of `std`'s `RandomState`): two inboxes
    /// practically never share one.
    pub fn random() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        Self(h.finish())
    }
}

/// On the wire: 16 lowercase hex digits (a JSON number would lose bits in JavaScript).
impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Epoch {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Self)
    }
}

/// Where a client is in a stream: it has seen every message up to `offset` of `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The inbox the offset belongs to.
    pub epoch: Epoch,
    /// The last offset the client saw (0: none).
    pub offset: Offset,
}

/// The inbox's bounds. Every one is enforced; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a message is kept (ms). Default 300 s.
    pub ttl_ms: u64,
    /// Most messages kept per stream; the oldest goes first. Default 100.
    pub max_per_uid: usize,
    /// Most bytes kept overall, as counted by [`Stats::bytes`]. Default 64 MiB.
    pub max_bytes: usize,
    /// How long an empty stream's position is remembered (ms). Default 24 h.
    pub idle_ttl_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ttl_ms: 300_000,
            max_per_uid: 100,
            max_bytes: 64 << 20,
            idle_ttl_ms: 86_400_000,
        }
    }
}

/// Counters for `status` and `/metrics`. Gauges are exact; counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages retained now (all streams).
    pub messages: usize,
    /// Bytes retained now: each message's text and header with room for its stream's
    /// buffer to grow, plus a fixed cost per message and per stream: an upper bound on the
    /// heap used (docs/PROTOCOL.md §7).
    pub bytes: usize,
    /// uid streams now, tombstones included (the broadcast stream not).
    pub uids: usize,
    /// Messages appended.
    pub appended: u64,
    /// Messages that left because they were older than `ttl_ms`.
    pub evicted_ttl: u64,
    /// Messages that left because their stream held more than `max_per_uid`.
    pub evicted_uid_cap: u64,
    /// Messages that left because the inbox held more than `max_bytes`.
    pub evicted_memory: u64,
    /// Tombstones dropped (idle or for memory).
    pub forgotten: u64,
    /// Resumes that could not be served (the client was told).
    pub gaps: u64,
    /// Messages sent again by [`Inbox::resume`].
    pub replayed: u64,
    /// Messages delivered from the offline queue by [`Inbox::take_pending`] or a resume.
    pub pending_delivered: u64,
}

/// A push [`Inbox::append_uid`] kept: its offset, and where, for [`Inbox::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    stream: StreamRef,
    /// The push's offset in its uid's stream.
    pub offset: Offset,
}

impl Appended {
    /// Where the push was kept: given back to [`Inbox::append_uid_at`] for the same uid, it
    /// spares the next push the uid's lookup.
    pub fn stream(&self) -> StreamRef {
        self.stream
    }
}

/// A uid's stream as [`Inbox::append_uid`] found it, for a caller that keeps it beside the
/// uid (the daemon: in the registry's entry, which every push looks up anyway). Once the
/// stream is forgotten it no longer matches, even if its slot is reused: `serial` is
/// unique to each stream this inbox ever opened.
#[derive(Debug, Clone, Copy)]
pub struct StreamRef {
    id: u32,
    serial: NonZeroU64,
    /// Where the stream's next record will likely be written, as an address that is only
    /// ever prefetched (see [`Inbox::prefetch`]), never read: 0 if unknown.
    tail: usize,
}

/// Two references name the same stream; where they expect its tail does not matter.
impl PartialEq for StreamRef {
    fn eq(&self, other: &Self) -> bool {
        (self.id, self.serial) == (other.id, other.serial)
    }
}

impl Eq for StreamRef {}

/// Where a resume-capable connection starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From now on: nothing old (a first visit without the offline queue).
    Live,
    /// From the offline queue: what no connection of the uid has had yet, then live.
    Pending,
    /// After a position the client held (a reconnect).
    After(Position),
}

/// Why a position cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The position is from another epoch (the server restarted without its store).
    Epoch,
    /// Messages after the position are no longer retained (ttl, caps, or a stream forgotten
    /// while idle).
    Evicted,
    /// The position is past the stream's end (not an offset this inbox gave out).
    Ahead,
}

/// A position that cannot be resumed; the client must be told and reload its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Why.
    pub reason: GapReason,
    /// The oldest offset still retained (equal to `position + 1` if none is).
    pub first_available: Offset,
    /// The client's new position: the stream's last offset. Live messages follow it.
    pub position: Offset,
}

/// What a resuming client gets.
#[derive(Debug)]
pub enum Resume<'a> {
    /// Exactly the messages after its position, in order (possibly none); then live ones.
    Messages(Replay<'a>),
    /// Its position is lost; nothing is replayed.
    Gap(Gap),
}

/// The retained pushes of every uid; see the module docs.
#[derive(Debug)]
pub struct Inbox {
    config: Config,
    epoch: Epoch,
    /// Streams by id; the id is the key of the age indexes, so they compare integers.
    streams: Streams,
    /// uid → stream id.
    by_uid: HashMap<Arc<str>, usize>,
    /// The broadcast stream's id; it is never dropped.
    all: usize,
    /// Every retained message as `(stream id, offset)`, oldest first (appends come in time
    /// order): the global oldest message (memory cap) and the next to expire (ttl) are its
    /// first live entry. Messages that left by another way (uid cap, a replayed eviction)
    /// stay as stale entries, skipped at the front and dropped in bulk when they outnumber
    /// the live ones: O(1) amortized per push, where a B-tree of streams by age cost two
    /// O(log streams) updates for every eviction.
    ages: VecDeque<Age>,
    /// Whether `ages` is in time order. Only a recovery's snapshot (streams one after the
    /// other) appends out of time order; the first lookup then sorts it once.
    ages_sorted: bool,
    /// The latest time appended to `ages`.
    ages_last_ms: u64,
    /// `(touched_ms, id)` of every empty uid stream (tombstone), oldest first.
    idle: BTreeSet<(u64, usize)>,
    /// Not below any offset given out in this epoch: where a stream opened again starts.
    high_water: Offset,
    /// The latest `now_ms` seen; appends never go back in time, so ages are monotonic.
    clock_ms: u64,
    /// The serial of the last stream opened (see [`StreamRef`]).
    serials: u64,
    stats: Stats,
    /// Records for the durable store since the last `drain_journal`; `None` when off.
    journal: Option<Vec<Record>>,
}

impl Inbox {
    /// An empty inbox. Pick `epoch` with [`Epoch::random`] unless recovering.
    pub fn new(config: Config, epoch: Epoch) -> Self {
        let mut streams = Streams::default();
        let all = streams.insert(Stream::new(None, 1, 0, NonZeroU64::MIN));
        let mut inbox = Self {
            config,
            epoch,
            streams,
            by_uid: HashMap::new(),
            all,
            ages: VecDeque::new(),
            ages_sorted: true,
            ages_last_ms: 0,
            idle: BTreeSet::new(),
            high_water: 1,
            clock_ms: 0,
            serials: 1,
            stats: Stats::default(),
            journal: None,
        };
        inbox.stats.bytes = inbox.streams[all].base_cost() + evict::AGE_BASE;
        inbox
    }

    /// The epoch positions are checked against.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The bounds in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the bounds (a reload). Smaller caps evict at once (O(streams)); a shorter ttl
    /// takes effect at the next `expire`.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
        self.enforce_caps();
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Keeps `payload` for `uid` and returns its offset. It is pending (queued) until
    /// [`mark_delivered`](Self::mark_delivered) or a replay hands it to a connection.
    /// A payload larger than `max_bytes` gets an offset but is evicted at once.
    pub fn append(&mut self, uid: &str, payload: impl AsRef<str>, now_ms: u64) -> Offset {
        let now = self.tick(now_ms);
        let id = self.open(uid, now);
        self.push(id, payload.as_ref(), now)
    }

    /// [`append`](Self::append) for the hot path: the [`Appended`] it returns settles the
    /// push ([`settle`](Self::settle)) without looking `uid` up again.
    pub fn append_uid(&mut self, uid: &str, payload: &str, now_ms: u64) -> Appended {
        self.append_uid_at(None, uid, payload, now_ms)
    }

    /// [`append_uid`](Self::append_uid) without looking `uid` up when `known` is its stream:
    /// what [`Appended::stream`] returned for an earlier push to the same `uid` (a stale
    /// one falls back to the lookup). A reference obtained for another uid appends to that
    /// uid's stream: keep it beside the uid it came from.
    pub fn append_uid_at(
        &mut self,
        known: Option<StreamRef>,
        uid: &str,
        payload: &str,
        now_ms: u64,
    ) -> Appended {
        let now = self.tick(now_ms);
        let id = match known.and_then(|r| self.current(r, uid)) {
            Some(id) => id,
            None => self.open(uid, now),
        };
        // Taken before the push: a tiny memory cap may forget the stream during it, and then
        // the reference is simply stale.
        let mut stream = StreamRef {
            id: id as u32,
            serial: self.streams[id].serial,
            tail: 0,
        };
        let offset = self.push(id, payload, now);
        if let Some(id) = self.current(stream, uid) {
            stream.tail = self.streams[id].messages.tail_addr();
        }
        Appended { stream, offset }
    }

    /// Starts loading into the cache what the next append to the stream `r` names will
    /// touch (its slot, the end of its buffer), without reading it. The hot path calls this
    /// as soon as it has the reference and appends after other work (the daemon queues the
    /// push's frames in between), so the cache misses overlap that work: under a burst to
    /// 10,000 uids every stream is cold.
    pub fn prefetch(&self, r: StreamRef) {
        self.streams.prefetch(r.id as usize);
        slots::prefetch(r.tail as *const u8);
    }

    /// `r`'s stream id if it still names a live stream; `r` came from `uid`.
    fn current(&self, r: StreamRef, uid: &str) -> Option<usize> {
        let id = r.id as usize;
        let s = self.streams.get(id).filter(|s| s.serial == r.serial)?;
        debug_assert_eq!(s.uid.as_deref(), Some(uid));
        Some(id)
    }

    /// After a push's connections were tried: if one `taken` it, it leaves the offline queue
    /// ([`mark_delivered`](Self::mark_delivered)); returns whether it is still pending
    /// ([`is_pending`](Self::is_pending)). `appended` is what [`append_uid`](Self::append_uid)
    /// returned for `uid`; if its stream was forgotten since (its slot possibly reused), this
    /// looks `uid` up instead.
    pub fn settle(&mut self, uid: &str, appended: Appended, taken: bool) -> bool {
        let Appended { stream, offset } = appended;
        let Some(id) = self
            .current(stream, uid)
            .or_else(|| self.by_uid.get(uid).copied())
        else {
            return false;
        };
        if taken {
            self.deliver(id, offset);
            false
        } else {
            self.streams[id].is_pending(offset)
        }
    }

    /// Keeps a broadcast in the broadcast stream and returns its offset there.
    pub fn append_all(&mut self, payload: impl AsRef<str>, now_ms: u64) -> Offset {
        let now = self.tick(now_ms);
        self.push(self.all, payload.as_ref(), now)
    }

    /// Records that a connection of `uid` took every message up to `through`: they leave
    /// the offline queue. A no-op for an unknown uid.
    pub fn mark_delivered(&mut self, uid: &str, through: Offset) {
        if let Some(&id) = self.by_uid.get(uid) {
            self.deliver(id, through);
        }
    }

    /// Whether `offset` of `uid` is retained and not yet delivered to any connection.
    pub fn is_pending(&self, uid: &str, offset: Offset) -> bool {
        self.by_uid
            .get(uid)
            .is_some_and(|&id| self.streams[id].is_pending(offset))
    }

    /// How many messages of `uid` wait for a connection.
    pub fn pending(&self, uid: &str) -> u64 {
        self.by_uid.get(uid).map_or(0, |&id| {
            let s = &self.streams[id];
            s.next() - s.pending_from
        })
    }

    /// The offline queue of `uid`, in order, for its first plain connection; they count as
    /// delivered from now on, so a second connection never gets them again.
    pub fn take_pending(&mut self, uid: &str) -> Replay<'_> {
        let Some(&id) = self.by_uid.get(uid) else {
            return Replay::empty(self.high_water - 1);
        };
        let (from, next) = (self.streams[id].pending_from, self.streams[id].next());
        self.deliver(id, next - 1);
        self.stats.pending_delivered += next - from;
        self.streams[id].replay(from..next)
    }

    /// Where a resume-capable connection of `uid` starts: see [`Resume`]. Opens the stream if
    /// needed, so the position it reports stays valid. After `Pending`, `After` or a gap,
    /// everything up to the stream's end counts as delivered (the client has it, or reloads
    /// its state); `Live` leaves the offline queue alone.
    pub fn resume(&mut self, uid: &str, start: Start, now_ms: u64) -> Resume<'_> {
        let now = self.tick(now_ms);
        let id = self.open(uid, now);
        self.resume_stream(id, start)
    }

    /// [`resume`](Self::resume) with a position: the brief's `since(uid, epoch, offset)`.
    pub fn since(&mut self, uid: &str, epoch: Epoch, offset: Offset, now_ms: u64) -> Resume<'_> {
        self.resume(uid, Start::After(Position { epoch, offset }), now_ms)
    }

    /// Where a resume-capable connection starts in the broadcast stream (`Pending` is `Live`:
    /// broadcasts are not queued for anyone).
    pub fn resume_all(&mut self, start: Start) -> Resume<'_> {
        let start = if start == Start::Pending {
            Start::Live
        } else {
            start
        };
        self.resume_stream(self.all, start)
    }

    /// The stream's last offset (one below its first if it has none yet), or `None` if the
    /// uid has no stream.
    pub fn last_offset(&self, uid: &str) -> Option<Offset> {
        self.by_uid.get(uid).map(|&id| self.streams[id].next() - 1)
    }

    /// Reading does not count as use: a tombstone's age is unchanged (so the journal needs
    /// no record for it, and recovery rebuilds the same ages). The broadcast stream has no
    /// offline queue, so nothing is marked there.
    fn resume_stream(&mut self, id: usize, start: Start) -> Resume<'_> {
        let queue = id != self.all;
        let s = &self.streams[id];
        let (first, next, pending_from) = (s.first, s.next(), s.pending_from);
        let from = match start {
            Start::Live => next,
            Start::Pending => pending_from,
            Start::After(p) => match self.check(p, first, next) {
                Ok(from) => from,
                Err(reason) => {
                    self.stats.gaps += 1;
                    if queue {
                        self.deliver(id, next - 1);
                    }
                    let gap = Gap {
                        reason,
                        first_available: first,
                        position: next - 1,
                    };
                    return Resume::Gap(gap);
                }
            },
        };
        self.stats.replayed += next - from;
        if queue && start != Start::Live {
            self.stats.pending_delivered += next - pending_from.max(from);
            self.deliver(id, next - 1);
        }
        Resume::Messages(self.streams[id].replay(from..next))
    }

    /// The first offset to replay after `p`, or why there is none.
    fn check(&self, p: Position, first: Offset, next: Offset) -> Result<Offset, GapReason> {
        if p.epoch != self.epoch {
            Err(GapReason::Epoch)
        } else if p.offset >= next {
            Err(GapReason::Ahead)
        } else if p.offset + 1 < first {
            Err(GapReason::Evicted)
        } else {
            Ok(p.offset + 1)
        }
    }

    /// The stream of `uid`, opened (empty, at the high-water mark) if it has none.
    fn open(&mut self, uid: &str, now: u64) -> usize {
        if let Some(&id) = self.by_uid.get(uid) {
            return id;
        }
        let uid: Arc<str> = uid.into();
        self.serials += 1;
        let serial = NonZeroU64::new(self.serials).expect("counts up from 1");
        let stream = Stream::new(Some(uid.clone()), self.high_water, now, serial);
        // Room first: the new stream must not be the tombstone that pays for itself.
        self.make_room(stream.base_cost(), now);
        let next = stream.first;
        self.log(|_| Record::Open {
            stream: StreamName::Uid(uid.clone()),
            next,
            at_ms: now,
        });
        self.stats.bytes += stream.base_cost();
        self.stats.uids += 1;
        let id = self.streams.insert(stream);
        self.by_uid.insert(uid, id);
        self.idle.insert((now, id));
        id
    }

    /// Moves the clock forward to `now_ms` (never back) and returns it.
    fn tick(&mut self, now_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(now_ms);
        self.clock_ms
    }

    /// Adds the record `make` builds to the journal, if there is one (built only then).
    fn log(&mut self, make: impl FnOnce(&Self) -> Record) {
        if self.journal.is_some() {
            let record = make(self);
            if let Some(journal) = &mut self.journal {
                journal.push(record);
            }
        }
    }
}
