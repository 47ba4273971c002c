//! Write coalescing: output produced during one turn of the loop leaves in one `writev` per
//! connection, after the turn's input has been processed.
//!
//! A message for a connection with nothing queued is copied into one buffer shared by all
//! connections (no allocation per message once it has grown) and linked into that
//! connection's chain. A flush walks each chain in the order its messages were sent and
//! hands them to the socket in one `writev` (at most [`MAX_IOV`] at a time); whatever the
//! socket does not take moves to the connection's own output buffer and WRITABLE interest
//! carries it on. No `epoll_ctl` happens unless a socket is full. With TLS the chain's
//! messages are sealed together into full records and the ciphertext leaves the same way
//! (see `tls.rs`).
//!
//! When flushes happen is the runtime's choice (`runtime::Runtime::run`): at light load the
//! whole batch at the end of a read batch, in the order it was produced (the connection that
//! was read first if it waits for each answer: `REQUEST_RESPONSE`); under a burst a
//! connection's own replies then, everything else at the end of the turn or a few turns
//! later, connection by connection in slot order once they are many (`flush_batch`). The
//! shared buffer is bounded: past [`BATCH_LIMIT`] bytes everything is flushed at once.

use super::{
    conn::{Conn, OutBuf, Phase, Progress},
    tls::Wire,
    Reactor,
};
use std::{
    io::{self, IoSlice, Write},
    time::Instant,
};

/// Past this many gathered bytes the batch is flushed before more is added.
pub(crate) const BATCH_LIMIT: usize = 4 << 20;
/// A message at least this large is written directly (after the connection's chain), not
/// copied into the batch.
const BIG_MESSAGE: usize = 16 << 10;
/// Memory kept between turns after a burst (see `Batch::clear`).
const KEEP: usize = 256 << 10;
/// Memory an empty batch may keep while the loop is quiet (see `Batch::release`).
const IDLE_KEEP: usize = 16 << 10;
/// Messages handed to one `writev` (Linux allows 1,024).
const MAX_IOV: usize = 64;
/// A chain this short is written from an array of this size instead.
const FEW_IOV: usize = 4;
/// End of a chain.
const NIL: u32 = u32::MAX;
/// A flush to at least this many connections writes them in slot order (see `flush_batch`).
const SORT_FROM: usize = 64;

/// One message in the shared buffer: `bytes[start..end]`, then `next` of the same connection.
#[derive(Debug, Clone, Copy)]
struct Msg {
    start: u32,
    end: u32,
    next: u32,
}

/// A connection's messages in the batch, oldest first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chain {
    head: u32,
    tail: u32,
    /// Messages in the chain.
    len: u32,
    /// Bytes in the chain, counted against the connection's send buffer limit.
    pub(crate) bytes: u32,
}

/// Output gathered during a turn, for every connection.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    msgs: Vec<Msg>,
    /// Slots with a chain, in the order of their first message (a slot whose chain was
    /// flushed early may appear again; a stale entry has no chain and is skipped).
    dirty: Vec<usize>,
    /// When the oldest message still in the batch was added: how long the runtime has let
    /// it wait. A flush at [`BATCH_LIMIT`] in the middle of a turn starts a new age, or the
    /// next turn would find the new batch already too old to wait and flush it with a few
    /// frames per `writev`.
    since: Option<Instant>,
}

impl Batch {
    /// Bytes gathered since the last full flush.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// When the oldest message in the batch was added, if it holds any.
    pub(crate) fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Whether any connection has output waiting in the batch.
    pub(crate) fn is_empty(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Whether the batch, empty, keeps more memory than light load needs (see `release`).
    pub(crate) fn holds_excess(&self) -> bool {
        let held = self.bytes.capacity()
            + self.msgs.capacity() * std::mem::size_of::<Msg>()
            + self.dirty.capacity() * std::mem::size_of::<usize>();
        self.is_empty() && held > IDLE_KEEP
    }

    /// Gives back the memory of an empty batch (nothing while messages wait): called by the
    /// runtime a while after the last burst, so a past burst does not cost memory for ever
    /// (at 10,000 clients, a burst's batch is a tenth of a kilobyte per connection).
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            *self = Self::default();
        }
    }

    /// Forgets every message, keeping the memory for the next turn; once bursts are over (a
    /// small flush), the memory a large one needed is returned.
    fn clear(&mut self) {
        if self.bytes.len() < KEEP && self.bytes.capacity() > 4 * KEEP {
            *self = Self::default();
        }
        self.bytes.clear();
        self.msgs.clear();
        self.dirty.clear();
        self.since = None;
    }

    /// Appends one message (the concatenation of `parts`) to slot `key`'s `chain`; `now`
    /// dates it if the batch was empty.
    fn push(&mut self, key: usize, chain: &mut Option<Chain>, parts: &[&[u8]], now: Instant) {
        self.since.get_or_insert(now);
        let start = self.bytes.len();
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        let end = self.bytes.len();
        let index = self.msgs.len() as u32;
        self.msgs.push(Msg {
            start: start as u32,
            end: end as u32,
            next: NIL,
        });
        match chain {
            Some(c) => {
                self.msgs[c.tail as usize].next = index;
                c.tail = index;
                c.len += 1;
                c.bytes += (end - start) as u32;
            }
            None => {
                *chain = Some(Chain {
                    head: index,
                    tail: index,
                    len: 1,
                    bytes: (end - start) as u32,
                });
                self.dirty.push(key);
            }
        }
    }

    /// Writes `chain` to `socket` in as few `writev`s as the socket allows; what it does not
    /// take is appended to `rest`. `Drained` if everything went out, `Moved` if some waits.
    fn write(
        &self,
        chain: Chain,
        socket: &mut impl Write,
        rest: &mut OutBuf,
        bytes_out: &mut u64,
    ) -> Progress {
        let (mut next, mut left) = (chain.head, chain.len as usize);
        while next != NIL {
            let first = next;
            // A short chain (light load: one frame, one reply) fills a small array: the
            // full one costs 1 KiB of stores per `writev` (~170 instructions a flush).
            let sent = if left <= FEW_IOV {
                self.writev::<FEW_IOV>(&mut next, socket)
            } else {
                self.writev::<MAX_IOV>(&mut next, socket)
            };
            let (written, offered, messages) = match sent {
                Ok(sent) => sent,
                Err(e) => return Progress::Error(e),
            };
            left -= messages;
            *bytes_out += written as u64;
            if written < offered {
                self.keep_rest(first, written, rest);
                return Progress::Moved;
            }
        }
        Progress::Drained
    }

    /// One `writev` of up to `N` messages from `*next` on, advancing `*next` past them:
    /// the bytes the socket took (0 if it is full), the bytes offered, and how many
    /// messages were offered.
    fn writev<const N: usize>(
        &self,
        next: &mut u32,
        socket: &mut impl Write,
    ) -> io::Result<(usize, usize, usize)> {
        let mut slices = [IoSlice::new(&[]); N];
        let (mut n, mut offered) = (0, 0);
        while *next != NIL && n < N {
            let msg = self.msgs[*next as usize];
            slices[n] = IoSlice::new(&self.bytes[msg.start as usize..msg.end as usize]);
            offered += slices[n].len();
            n += 1;
            *next = msg.next;
        }
        loop {
            match socket.write_vectored(&slices[..n]) {
                Ok(written) => return Ok((written, offered, n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((0, offered, n)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends the chain from message `first` on, less its first `skip` bytes, to `rest`.
    fn keep_rest(&self, first: u32, mut skip: usize, rest: &mut OutBuf) {
        let mut next = first;
        while next != NIL {
            let msg = self.msgs[next as usize];
            let bytes = &self.bytes[msg.start as usize..msg.end as usize];
            if skip >= bytes.len() {
                skip -= bytes.len();
            } else {
                rest.extend(&bytes[skip..]);
                skip = 0;
            }
            next = msg.next;
        }
    }
}

impl<T> Reactor<T> {
    /// Sends `parts` as one message on slot `key`: behind what it has queued, into the
    /// batch if its buffer is empty (a large message straight to the socket instead, after
    /// the batch's messages for it). The caller updates interest and checks limits.
    pub(crate) fn write_parts(&mut self, key: usize, parts: &[&[u8]]) -> Progress {
        let conn = &mut self.conns[key];
        if !conn.output.is_empty() || conn.hold_output {
            for part in parts {
                conn.output.extend(part);
            }
            return Progress::Moved;
        }
        if self.sealed {
            self.write_sealed(key, parts);
            return Progress::Moved;
        }
        if parts.iter().map(|p| p.len()).sum::<usize>() >= BIG_MESSAGE {
            if conn.batched.is_some() {
                self.flush_batched(key);
            }
            return match self.conns.get_mut(key) {
                Some(conn) if conn.phase != Phase::Dead => conn.write_parts(parts),
                _ => Progress::Moved,
            };
        }
        if self.batch.len() >= BATCH_LIMIT {
            self.flush_batch();
            // Writing 4 MiB takes a while: the batch that starts now is dated now, not at
            // the turn's start.
            self.now = Instant::now();
            if let Some(conn) = self.conns.get_mut(key).filter(|c| !c.output.is_empty()) {
                for part in parts {
                    conn.output.extend(part);
                }
                return Progress::Moved;
            }
        }
        let conn = &mut self.conns[key];
        self.batch.push(key, &mut conn.batched, parts, self.now);
        Progress::Moved
    }

    /// `write_parts` while sealed: nothing is written; a message goes into the batch (large
    /// ones too) until it holds [`BATCH_LIMIT`], then into the connection's own buffer
    /// (bounded by its send buffer limit, as ever), behind its chain so the order holds.
    fn write_sealed(&mut self, key: usize, parts: &[&[u8]]) {
        let conn = &mut self.conns[key];
        if self.batch.len() < BATCH_LIMIT {
            self.batch.push(key, &mut conn.batched, parts, self.now);
            return;
        }
        if let Some(chain) = conn.batched.take() {
            self.batch.keep_rest(chain.head, 0, &mut conn.output);
        }
        for part in parts {
            conn.output.extend(part);
        }
        self.held.push(key);
    }

    /// Writes slot `key`'s chain now, then settles the connection as [`Self::flush_output`]
    /// does. Returns whether its output is now empty. While sealed, nothing is written.
    pub(crate) fn flush_batched(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if self.sealed {
            return false;
        }
        let Some(chain) = conn.batched.take() else {
            return conn.output.is_empty();
        };
        if conn.hold_output {
            // Not reached (a held connection queues in its own buffer); keep the order anyway.
            self.batch.keep_rest(chain.head, 0, &mut conn.output);
            return false;
        }
        if !matches!(conn.phase, Phase::Open | Phase::Closing) {
            // Dead or lingering: nothing more may be written.
            return false;
        }
        let Conn {
            socket,
            tls,
            output,
            bytes_out,
            ..
        } = conn;
        let mut wire = Wire {
            socket,
            tls: tls.as_deref_mut(),
        };
        let mut progress = self.batch.write(chain, &mut wire, output, bytes_out);
        if matches!(progress, Progress::Drained) && wire.tls.is_some_and(|t| t.pending()) {
            // Sealed, but some ciphertext waits for the socket.
            progress = Progress::Moved;
        }
        self.after_write(key, progress)
    }

    /// Writes every chain in the batch, then empties it. Nothing while sealed.
    ///
    /// A small batch goes in the order connections first got output. One for many
    /// connections (a broadcast, a burst's deferred batch) goes in slot order: connections
    /// accepted one after another have their kernel socket state (sender's and, on
    /// loopback, receiver's) allocated side by side, and walking it in that order instead
    /// of at random raised what a burst delivers by 6-46 % (4 alternating runs at 256 and
    /// 1,024 lines in flight, docs/BENCHMARKS.md). Each connection's own messages keep
    /// their order either way.
    pub(crate) fn flush_batch(&mut self) {
        if self.sealed {
            return;
        }
        // Flushing adds no messages (it runs no callbacks), so the batch is empty after.
        let mut dirty = std::mem::take(&mut self.batch.dirty);
        if dirty.len() >= SORT_FROM {
            dirty.sort_unstable();
        }
        for &key in &dirty {
            self.flush_batched(key);
        }
        debug_assert!(self.batch.dirty.is_empty());
        dirty.clear();
        self.batch.dirty = dirty;
        self.batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bursts_memory_stays_until_released_and_only_when_empty() {
        let mut batch = Batch::default();
        let mut chains = vec![None; 1000];
        for (key, chain) in chains.iter_mut().enumerate() {
            batch.push(key, chain, &[&[7u8; 100]], Instant::now());
        }
        // Messages waiting: nothing to give back.
        assert!(!batch.holds_excess());
        batch.release();
        assert_eq!(batch.len(), 100_000);
        // Flushed (cleared): the memory is kept for the next burst...
        batch.clear();
        assert!(batch.is_empty() && batch.holds_excess());
        // ...until the runtime releases it.
        batch.release();
        assert!(!batch.holds_excess());
        assert_eq!(batch.bytes.capacity(), 0);
        // A light turn's batch is not excess.
        let mut chain = None;
        batch.push(0, &mut chain, &[b"small"], Instant::now());
        batch.clear();
        assert!(!batch.holds_excess());
    }

    /// A socket that takes `cap` more bytes, then is full; records how many slices each
    /// `writev` offered.
    struct Socket {
        taken: Vec<u8>,
        cap: usize,
        calls: Vec<usize>,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls.push(slices.len());
            if self.cap == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let all: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let n = all.len().min(self.cap);
            self.taken.extend_from_slice(&all[..n]);
            self.cap -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_chain_of_any_length_leaves_whole_in_order_in_few_writevs_or_waits_in_rest() {
        for len in [
            1,
            2,
            FEW_IOV,
            FEW_IOV + 1,
            MAX_IOV,
            MAX_IOV + 1,
            MAX_IOV + FEW_IOV,
            200,
        ] {
            let mut batch = Batch::default();
            let mut chain = None;
            let mut expected = Vec::new();
            for i in 0..len {
                let msg = format!("<{i}>");
                batch.push(0, &mut chain, &[msg.as_bytes()], Instant::now());
                expected.extend_from_slice(msg.as_bytes());
            }
            let chain = chain.unwrap();
            // A socket that takes everything: one writev per MAX_IOV messages.
            let mut socket = Socket {
                taken: Vec::new(),
                cap: usize::MAX,
                calls: Vec::new(),
            };
            let (mut rest, mut out) = (OutBuf::default(), 0);
            let progress = batch.write(chain, &mut socket, &mut rest, &mut out);
            assert!(matches!(progress, Progress::Drained), "{len}");
            assert_eq!(socket.taken, expected, "{len}");
            assert_eq!(out, expected.len() as u64);
            assert_eq!(socket.calls.len(), len.div_ceil(MAX_IOV), "{len}");
            assert_eq!(socket.calls.iter().sum::<usize>(), len);
            // A socket that takes half: the rest waits in order.
            let half = expected.len() / 2;
            let mut socket = Socket {
                taken: Vec::new(),
                cap: half,
                calls: Vec::new(),
            };
            let (mut rest, mut out) = (OutBuf::default(), 0);
            let progress = batch.write(chain, &mut socket, &mut rest, &mut out);
            assert!(matches!(progress, Progress::Moved), "{len}");
            let mut joined = socket.taken.clone();
            joined.extend(rest.into_vec());
            assert_eq!(joined, expected, "{len}");
            assert_eq!(out, half as u64);
            // A full socket: everything waits.
            let mut socket = Socket {
                taken: Vec::new(),
                cap: 0,
                calls: Vec::new(),
            };
            let (mut rest, mut out) = (OutBuf::default(), 0);
            batch.write(chain, &mut socket, &mut rest, &mut out);
            assert_eq!(rest.into_vec(), expected, "{len}");
            assert_eq!(out, 0);
        }
    }

    #[test]
    fn the_batch_is_as_old_as_its_first_message_until_flushed() {
        let mut batch = Batch::default();
        assert_eq!(batch.since(), None);
        let (first, later) = (
            Instant::now(),
            Instant::now() + std::time::Duration::from_secs(1),
        );
        let mut chain = None;
        batch.push(0, &mut chain, &[b"a"], first);
        batch.push(1, &mut None, &[b"b"], later);
        assert_eq!(batch.since(), Some(first));
        batch.clear();
        assert_eq!(batch.since(), None);
        batch.push(0, &mut None, &[b"c"], later);
        assert_eq!(batch.since(), Some(later));
    }
}
