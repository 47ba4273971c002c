//! Per-worker connection caps (`max_connections`, `fd_reserve`) and per-connection
//! deadlines (`request_timeout`, `idle_timeout`).

use super::{conn::Phase, ConnId, Reactor, Task};
use crate::codec::{ws::CloseCode, Protocol};
use mio::net::TcpStream;
use std::{
    io::{Read, Write},
    net::SocketAddr,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

/// What the process may open, for `fd_reserve`: read once when the loop starts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FdBudget {
    /// The soft `RLIMIT_NOFILE`, if known.
    limit: Option<usize>,
    /// Descriptors open besides connections (stdio, poll, listeners, files).
    base: usize,
}

impl FdBudget {
    /// Reads the limit and counts the open descriptors (Linux `/proc/self`).
    pub(crate) fn measure(connections: usize) -> Self {
        let limit = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("Max open files"))?;
                line["Max open files".len()..]
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            });
        // The directory handle itself is one of the entries.
        let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1));
        Self {
            limit,
            base: open.saturating_sub(connections),
        }
    }

    /// Whether fewer than `reserve` descriptors (at most half the limit) would remain free
    /// with `fd` (just accepted) open beside `connections` others. The lowest free number is
    /// always allocated, so `fd + 1` is a lower bound of what is open.
    fn low(&self, reserve: usize, fd: usize, connections: usize) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let open = (fd + 1).max(self.base + connections + 1);
        limit.saturating_sub(open) < reserve.min(limit / 2)
    }
}

impl<T> Reactor<T> {
    /// Refuses `socket` if its worker is at `max_connections` or descriptors are within its
    /// `fd_reserve`: writes the worker's refusal and closes. Returns whether it refused.
    pub(crate) fn refuse_over_cap(
        &mut self,
        worker: usize,
        socket: &mut TcpStream,
        peer: SocketAddr,
    ) -> bool {
        let meta = &self.workers[worker];
        let limits = &meta.limits;
        let reason = if meta.open >= limits.max_connections {
            "max_connections reached"
        } else if limits.fd_reserve > 0
            && self.fds.low(
                limits.fd_reserve,
                socket.as_raw_fd().max(0) as usize,
                self.conns.len(),
            )
        {
            "file descriptors within the reserve kept for other listeners"
        } else {
            return false;
        };
        let meta = &mut self.workers[worker];
        meta.refused += 1;
        if meta.refused == 1 || meta.refused % 100 == 0 {
            log::warn!(
                "{}: refusing connection from {peer}: {reason} ({} refused since start)",
                meta.name,
                meta.refused
            );
        }
        // One write into an empty socket buffer; a peer that sent its request already
        // gets the refusal before our FIN (any unread bytes are drained, so no reset).
        // A TLS client gets just the FIN: plaintext would only be a protocol error to it.
        if meta.tls.is_none() {
            let _ = socket.write(&meta.refusal);
        }
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let _ = socket.read(&mut [0u8; 4096]);
        true
    }

    /// Schedules the check of `key`'s earliest deadline, unless one as early is pending.
    pub(crate) fn arm_deadline(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let limits = &self.workers[conn.worker].limits;
        let idle = limits.idle_timeout.map(|t| conn.last_active + t);
        let request = limits
            .request_timeout
            .zip(conn.partial_since)
            .map(|(t, since)| since + t);
        let Some(due) = [idle, request].into_iter().flatten().min() else {
            return;
        };
        match conn.deadline {
            Some((_, at)) if at <= due => return,
            Some((id, _)) => {
                self.timers.del(id);
            }
            None => {}
        }
        let after = due.saturating_duration_since(self.now);
        let id = self
            .timers
            .add(self.now, after, false, Task::ConnDeadline(conn.id));
        conn.deadline = Some((id, due));
    }

    /// A deadline check came due: close the connection if a message has been incomplete for
    /// `request_timeout` (HTTP: `408` first) or it has been idle for `idle_timeout`; else
    /// schedule the next check. Returns whether it began closing.
    pub(crate) fn deadline_due(&mut self, id: ConnId) -> bool {
        let key = id.slot();
        let now = self.now;
        let Some(conn) = self.conns.get_mut(key).filter(|c| c.id == id) else {
            return false;
        };
        conn.deadline = None;
        if conn.phase != Phase::Open {
            return false;
        }
        let meta = &self.workers[conn.worker];
        let expired = |t: Option<Duration>, since: Option<Instant>| {
            t.zip(since).is_some_and(|(t, since)| since + t <= now)
        };
        let slow = expired(meta.limits.request_timeout, conn.partial_since);
        let idle = expired(meta.limits.idle_timeout, Some(conn.last_active))
            && conn.queued() == 0
            && conn.input.pending() == 0;
        if !slow && !idle {
            self.arm_deadline(key);
            return false;
        }
        let what = if slow {
            "request not complete within request_timeout"
        } else {
            "idle past idle_timeout"
        };
        log::info!(
            "{}: connection {id} ({}): {what}; closing",
            meta.name,
            conn.peer
        );
        if slow && conn.protocol == Protocol::Http {
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            (meta.http_error)(408, "request not complete in time")
                .header("Connection", "close")
                .encode(&mut out);
            let _ = self.write_parts(key, &[&out]);
            self.scratch = out;
        }
        self.close(id, CloseCode::NORMAL.0, "");
        true
    }

    /// After a read batch: a message left incomplete starts (or keeps) its request clock;
    /// waiting because of a pause or backpressure does not count.
    pub(crate) fn track_partial(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // A TLS handshake under way is a request not complete yet.
        let partial = conn.input.pending() > 0 || conn.tls_handshaking();
        if !partial || conn.recv_paused || conn.backlogged {
            conn.partial_since = None;
        } else if conn.partial_since.is_none() {
            conn.partial_since = Some(self.now);
        }
        self.arm_deadline(key);
    }
}
