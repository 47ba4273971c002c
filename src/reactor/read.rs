//! Reading: the shared read buffer and its pool, one read step, lingering reads.

use super::{
    conn::{InBuf, Phase, Progress},
    ConnError, Reactor,
};
use crate::codec::Protocol;

/// Size of the read buffer shared by all connections.
const READ_BUF: usize = 64 << 10;
/// Pending input kept in the connection's own buffer, instead of copied back and forth
/// through the shared one, above this size.
const KEEP_INPUT: usize = 4 << 10;

/// What one read achieved.
#[derive(Debug)]
pub(crate) enum Read {
    /// Bytes arrived; `filled` says whether they filled the room offered (more may wait).
    Data { filled: bool },
    /// Nothing more for now, the peer closed its side, or the socket failed: the batch ends.
    Done(Progress),
}

impl<T> Reactor<T> {
    /// The buffer to read `key` into: the connection's own if it holds a large partial
    /// message, else the shared one with the connection's few pending bytes copied in.
    pub(crate) fn take_input(&mut self, key: usize) -> InBuf {
        let conn = &mut self.conns[key];
        if conn.input.pending() > KEEP_INPUT {
            return std::mem::take(&mut conn.input);
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        if buf.data.len() < READ_BUF {
            buf.data.resize(READ_BUF, 0);
        }
        buf.start = 0;
        buf.end = 0;
        let pending = &conn.input.data[conn.input.start..conn.input.end];
        buf.extend(pending);
        conn.input = InBuf::default();
        buf
    }

    /// Reads once from `key` into `buf`, noting the activity.
    pub(crate) fn read_step(&mut self, key: usize, buf: &mut InBuf) -> Read {
        let conn = &mut self.conns[key];
        buf.reserve(4096);
        let room = buf.data.len() - buf.end;
        let end_before = buf.end;
        let progress = conn.read_into(buf);
        if conn.tls_pending() && !conn.writable {
            // The TLS handshake (or an alert) wrote more than the socket took.
            self.update_interest(key);
        }
        match progress {
            Progress::Moved => {
                self.conns[key].last_active = self.now;
                Read::Data {
                    filled: buf.end - end_before == room,
                }
            }
            other => Read::Done(other),
        }
    }

    /// Leaves the unconsumed bytes with the connection, returning shared memory.
    pub(crate) fn put_input(&mut self, key: usize, buf: InBuf) {
        let Some(conn) = self.conns.get_mut(key).filter(|c| c.phase != Phase::Dead) else {
            self.recycle(buf);
            return;
        };
        if buf.pending() > KEEP_INPUT {
            conn.input = buf;
            return;
        }
        if buf.pending() > 0 {
            let mut own = InBuf::default();
            own.data = buf.data[buf.start..buf.end].to_vec();
            own.end = own.data.len();
            conn.input = own;
        }
        self.recycle(buf);
    }

    fn recycle(&mut self, mut buf: InBuf) {
        if self.read_buf.data.is_empty() && buf.data.len() <= 4 * READ_BUF {
            buf.start = 0;
            buf.end = 0;
            self.read_buf = buf;
        }
    }

    /// A lingering connection (our side closed) is read and discarded until the peer
    /// closes. While `stopping`, a drained non-WebSocket connection has nothing unread that
    /// could turn our close into a reset; only WebSocket peers owe a close reply.
    pub(crate) fn linger(&mut self, key: usize, stopping: bool) {
        let conn = &mut self.conns[key];
        match conn.read_discard() {
            Progress::Eof => self.kill(key, None),
            Progress::Error(e) => self.kill(key, Some(ConnError::Io(e))),
            Progress::Drained if stopping && conn.protocol != Protocol::WebSocket => {
                self.kill(key, None)
            }
            _ => {}
        }
    }

    /// Frees the slots of connections that died during the batch.
    pub(crate) fn free_dead(&mut self) {
        for key in std::mem::take(&mut self.dead) {
            if let Some(conn) = self.conns.get(key).filter(|c| c.phase == Phase::Dead) {
                let worker = conn.worker;
                self.workers[worker].open -= 1;
                self.conns.remove(key);
            }
        }
    }
}
