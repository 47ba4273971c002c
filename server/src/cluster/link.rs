//! One Redis connection as the cluster sees it: its state, the replies it waits for
//! (first in, first out: Redis answers a connection's commands in order), its decoder and
//! its reconnect backoff. No I/O here: the reactor's outbound connection does that.

use super::Then;
use pushman::{
    codec::{
        resp::{RespDecoder, RespError, RespLimits, Value},
        Decode,
    },
    ConnId,
};
use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// First wait before reconnecting; doubles per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No connection; the next attempt is due at `retry_at`.
    Down,
    /// Connecting (TCP), or logged in but not yet ready (`SUBSCRIBE` not confirmed).
    Connecting,
    /// Commands may be sent.
    Up,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Connecting => "connecting",
            Self::Up => "up",
        }
    }
}

/// A reply owed by Redis, in send order.
pub(crate) struct Waiting {
    pub(crate) sent: Instant,
    pub(crate) then: Option<Then>,
}

/// One connection to Redis.
pub(crate) struct Link {
    pub(crate) conn: Option<ConnId>,
    pub(crate) state: State,
    /// Replies owed, oldest first.
    pub(crate) waiting: VecDeque<Waiting>,
    decoder: RespDecoder,
    /// Bytes received and not yet decoded (a partial reply).
    input: Vec<u8>,
    backoff: Duration,
    pub(crate) retry_at: Instant,
    /// The last command's round trip.
    pub(crate) rtt: Option<Duration>,
    /// Times this link was (re)established.
    pub(crate) connects: u64,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("conn", &self.conn)
            .field("state", &self.state)
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            conn: None,
            state: State::Down,
            waiting: VecDeque::new(),
            decoder: RespDecoder::new(RespLimits::default()),
            input: Vec::new(),
            backoff: MIN_BACKOFF,
            retry_at: now,
            rtt: None,
            connects: 0,
        }
    }

    /// A connect was started as `conn`.
    pub(crate) fn connecting(&mut self, conn: ConnId) {
        self.conn = Some(conn);
        self.state = State::Connecting;
        self.input.clear();
        self.decoder = RespDecoder::new(RespLimits::default());
    }

    /// The connection is usable: the backoff starts over.
    pub(crate) fn established(&mut self) {
        self.backoff = MIN_BACKOFF;
        self.connects += 1;
    }

    /// The connection is gone: returns the replies that will never come, and sets when to
    /// try again.
    pub(crate) fn lost(&mut self, now: Instant) -> VecDeque<Waiting> {
        self.conn = None;
        self.state = State::Down;
        self.input.clear();
        self.retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        std::mem::take(&mut self.waiting)
    }

    /// Whether the oldest reply is overdue.
    pub(crate) fn overdue(&self, now: Instant, timeout: Duration) -> bool {
        self.waiting
            .front()
            .is_some_and(|w| now.saturating_duration_since(w.sent) > timeout)
    }

    /// Appends received bytes and decodes every complete reply.
    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Result<Vec<Value>, RespError> {
        self.input.extend_from_slice(bytes);
        let mut values = Vec::new();
        let mut used = 0;
        while let Decode::Done { item, consumed } = self.decoder.decode(&self.input[used..])? {
            used += consumed;
            values.push(item);
        }
        self.input.drain(..used);
        Ok(values)
    }
}
