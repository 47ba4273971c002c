//! The inbox as a log: the records a durable store keeps, and how an inbox is rebuilt from
//! them.
//!
//! # Durable mode
//!
//! With [`Inbox::enable_journal`], every change is also written as a [`Record`]. The server
//! drains the journal once per reactor turn and commits it in one transaction (one sync per
//! burst, not per push), and only then sends the turn's frames and acknowledgements: a
//! frame sent before its commit could, after a crash, carry an offset the recovered inbox
//! gives to another message.
//!
//! To start, the server applies the store's records with [`Inbox::recover`]. To compact, it
//! replaces them with [`Inbox::snapshot`] (the same records a fresh log of the current state
//! would hold). Records are idempotent where a replay may repeat them (`Delivered`, `Evict`).

use super::{evict::Reason, Config, Epoch, Inbox, Offset};
use std::{fmt, sync::Arc};

/// Which stream a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamName {
    /// The stream of one uid.
    Uid(Arc<str>),
    /// The broadcast stream.
    All,
}

/// One change to an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The first record of a log or snapshot: which inbox this is.
    Epoch {
        /// Positions from other epochs are gaps.
        epoch: Epoch,
        /// Where a stream opened from now on starts (not below any offset given out).
        high_water: Offset,
    },
    /// A stream was opened, empty; its first message gets `next`.
    Open {
        /// The stream.
        stream: StreamName,
        /// The offset its next message gets.
        next: Offset,
        /// When (Unix ms).
        at_ms: u64,
    },
    /// A message was appended.
    Append {
        /// The stream.
        stream: StreamName,
        /// Its offset: the stream's next one.
        offset: Offset,
        /// When (Unix ms).
        at_ms: u64,
        /// The frame text.
        payload: Arc<str>,
    },
    /// Every message up to `through` reached a connection (left the offline queue).
    Delivered {
        /// The stream.
        stream: StreamName,
        /// The last delivered offset.
        through: Offset,
    },
    /// Every message up to `through` was evicted.
    Evict {
        /// The stream.
        stream: StreamName,
        /// The last evicted offset.
        through: Offset,
        /// When (Unix ms): an emptied stream's tombstone ages from then.
        at_ms: u64,
    },
    /// An empty uid stream was forgotten.
    Forget {
        /// The stream.
        stream: StreamName,
    },
}

/// A record that does not fit the inbox it is applied to: the log is damaged or not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// A log must start with `Record::Epoch`, and have only one.
    Epoch,
    /// A record names a uid stream that is not open.
    NotOpen(Arc<str>),
    /// `Open` for a stream that holds messages or would go backwards.
    Reopen(StreamName),
    /// An `Append` whose offset is not its stream's next one.
    Offset {
        /// The stream's next offset.
        expected: Offset,
        /// The record's.
        got: Offset,
    },
    /// `Evict` or `Delivered` past the stream's end, or `Forget` of a stream with messages.
    Beyond(StreamName),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Epoch => f.write_str("the inbox log must start with its one epoch record"),
            Self::NotOpen(uid) => {
                write!(f, "inbox record for uid {uid:?}, whose stream is not open")
            }
            Self::Reopen(s) => write!(f, "inbox stream {s:?} opened again while in use"),
            Self::Offset { expected, got } => {
                write!(f, "inbox append at offset {got}, expected {expected}")
            }
            Self::Beyond(s) => write!(f, "inbox record past the end of stream {s:?}"),
        }
    }
}

impl std::error::Error for ApplyError {}

impl Inbox {
    /// Rebuilds an inbox from a log (or snapshot) whose first record is `Record::Epoch`.
    /// The records are replayed as they are (they carry their own evictions); then the caps
    /// of `config` are enforced, in case they shrank. Call [`expire`](Self::expire) with the
    /// current time afterwards.
    ///
    /// # Errors
    /// The first record that does not fit (see [`ApplyError`]).
    pub fn recover(
        config: Config,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, ApplyError> {
        let mut records = records.into_iter();
        let Some(Record::Epoch { epoch, high_water }) = records.next() else {
            return Err(ApplyError::Epoch);
        };
        let mut inbox = Self::new(config, epoch);
        inbox.high_water = inbox.high_water.max(high_water);
        records.try_for_each(|r| inbox.apply(r))?;
        inbox.enforce_caps();
        Ok(inbox)
    }

    /// Applies one record after [`recover`](Self::recover)'s first.
    ///
    /// # Errors
    /// See [`ApplyError`]; the inbox is unchanged by the failing record.
    pub fn apply(&mut self, record: Record) -> Result<(), ApplyError> {
        match record {
            Record::Epoch { .. } => Err(ApplyError::Epoch),
            Record::Open {
                stream,
                next,
                at_ms,
            } => self.apply_open(stream, next, at_ms),
            Record::Append {
                stream,
                offset,
                at_ms,
                payload,
            } => {
                let id = self.find(&stream)?;
                let expected = self.streams[id].next();
                if offset != expected {
                    return Err(ApplyError::Offset {
                        expected,
                        got: offset,
                    });
                }
                self.tick(at_ms);
                // A snapshot lists streams in no particular time order: keep each message's
                // own time (only never before its predecessor's, the stream's last touch).
                let s = &self.streams[id];
                let at = if s.messages.is_empty() {
                    at_ms
                } else {
                    s.touched_ms.max(at_ms)
                };
                self.push_raw(id, &payload, at);
                Ok(())
            }
            Record::Delivered { stream, through } => {
                let id = self.find(&stream)?;
                if through >= self.streams[id].next() {
                    return Err(ApplyError::Beyond(stream));
                }
                self.deliver(id, through);
                Ok(())
            }
            Record::Evict {
                stream,
                through,
                at_ms,
            } => {
                let id = self.find(&stream)?;
                let s = &self.streams[id];
                if through >= s.next() {
                    return Err(ApplyError::Beyond(stream));
                }
                let n = (through + 1).saturating_sub(s.first) as usize;
                self.tick(at_ms);
                self.evict_front(id, n, Reason::Replay, at_ms);
                Ok(())
            }
            Record::Forget { stream } => {
                let id = self.find(&stream)?;
                if id == self.all || !self.streams[id].messages.is_empty() {
                    return Err(ApplyError::Beyond(stream));
                }
                self.forget(id);
                Ok(())
            }
        }
    }

    fn apply_open(
        &mut self,
        stream: StreamName,
        next: Offset,
        at_ms: u64,
    ) -> Result<(), ApplyError> {
        self.tick(at_ms);
        let now = at_ms;
        let id = match &stream {
            StreamName::All => self.all,
            StreamName::Uid(uid) => match self.by_uid.get(&**uid) {
                Some(&id) => id,
                None => {
                    self.high_water = self.high_water.max(next);
                    let id = self.open(uid, now);
                    let s = &mut self.streams[id];
                    (s.first, s.pending_from) = (next, next);
                    return Ok(());
                }
            },
        };
        let s = &self.streams[id];
        if !s.messages.is_empty() || next < s.next() {
            return Err(ApplyError::Reopen(stream));
        }
        self.high_water = self.high_water.max(next);
        let before = self.key(id);
        let s = &mut self.streams[id];
        (s.first, s.pending_from, s.touched_ms) = (next, next, now);
        self.reindex(id, before);
        Ok(())
    }

    fn find(&self, stream: &StreamName) -> Result<usize, ApplyError> {
        match stream {
            StreamName::All => Ok(self.all),
            StreamName::Uid(uid) => self
                .by_uid
                .get(&**uid)
                .copied()
                .ok_or_else(|| ApplyError::NotOpen(uid.clone())),
        }
    }

    /// Starts writing every change as a [`Record`] (durable mode).
    pub fn enable_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// How many records wait for [`drain_journal`](Self::drain_journal) (0 when off).
    pub fn journal_len(&self) -> usize {
        self.journal.as_ref().map_or(0, Vec::len)
    }

    /// The records written since the last call, oldest first: one reactor turn's batch.
    pub fn drain_journal(&mut self) -> impl Iterator<Item = Record> + '_ {
        self.journal.iter_mut().flat_map(|j| j.drain(..))
    }

    /// The current state as records: `Epoch`, an `Open` per stream, every retained message's
    /// `Append` oldest first (the order of the age queue, so messages of the same
    /// millisecond leave in the same order after a recovery), then the `Delivered` ones.
    /// [`recover`](Self::recover) of these equals this inbox (with the same caps).
    pub fn snapshot(&self) -> impl Iterator<Item = Record> + '_ {
        let head = Record::Epoch {
            epoch: self.epoch,
            high_water: self.high_water,
        };
        let opens = self.streams.iter().map(move |(id, s)| Record::Open {
            stream: self.name(id),
            next: s.first,
            at_ms: s.touched_ms,
        });
        let appends = self
            .ages_in_order()
            .into_iter()
            .map(move |(at_ms, a, text)| Record::Append {
                stream: self.name(a.id as usize),
                offset: a.offset,
                at_ms,
                payload: text.into(),
            });
        let delivered = self
            .streams
            .iter()
            .filter(|(_, s)| s.pending_from > s.first)
            .map(move |(id, s)| Record::Delivered {
                stream: self.name(id),
                through: s.pending_from - 1,
            });
        std::iter::once(head)
            .chain(opens)
            .chain(appends)
            .chain(delivered)
    }
}
