//! Outbound connections (Workerman's `AsyncTcpConnection`): a non-blocking connect, its
//! completion or failure, and its deadline.
//!
//! A connecting socket is a [`Conn`] like any other, with `connecting` set and
//! `hold_output` on, so sends made before it is established queue up (as before a
//! WebSocket 101) and leave once it is. It is registered for READABLE and WRITABLE: Linux
//! reports a finished connect as writable and a failed one as an error; either way the
//! runtime calls [`Reactor::connect_ready`], which asks the socket (`SO_ERROR`, then
//! `getpeername`, as mio's `TcpStream::connect` docs prescribe).

//!
//! An outbound WebSocket (`ws://`) is established in two steps: once the TCP connect
//! completes, its upgrade request is written and the frames sent so far wait in its
//! [`Upgrade`]; once the runtime has checked the server's 101 ([`Reactor::upgraded`]), they
//! leave and `on_connect` runs. The connect deadline covers both steps.

use super::{
    conn::{Codec, Conn, Phase},
    token, ConnError, ConnId, Deferred, Reactor, SendError, Task,
};
use crate::codec::ws::client::{self, ClientHandshake, ClientHandshakeError};
use mio::{net::TcpStream, Interest};
use std::{fmt, io, net::SocketAddr};

/// An outbound WebSocket waiting for the server's 101.
#[derive(Debug)]
pub(crate) struct Upgrade {
    pub(crate) handshake: ClientHandshake,
    /// Frames sent before the 101, in order: "the client MUST wait for a response from the
    /// server before sending any further data" (RFC 6455 §4.1).
    held: Vec<u8>,
}

impl Upgrade {
    /// Holds one more frame, within the connection's send buffer limit.
    pub(crate) fn hold(&mut self, frame: &[u8], limit: usize) -> Result<(), SendError> {
        if self.held.len() + frame.len() > limit {
            return Err(SendError::BufferFull);
        }
        self.held.extend_from_slice(frame);
        Ok(())
    }
}

/// Why an outbound connection was not established; given to `on_error` (as
/// [`ConnError::Connect`]) before `on_close`.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing listens at the address (`ECONNREFUSED`).
    Refused,
    /// No answer within the worker's `connect_timeout`.
    TimedOut,
    /// Any other failure the OS reported (unreachable network, reset, …).
    Io(io::Error),
    /// `ws://`: the server did not accept the upgrade (a status other than 101, a wrong
    /// `Sec-WebSocket-Accept`, not HTTP at all).
    Upgrade(ClientHandshakeError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("connection refused"),
            Self::TimedOut => f.write_str("connect timed out"),
            Self::Io(e) => e.fmt(f),
            Self::Upgrade(e) => write!(f, "websocket upgrade refused: {e}"),
        }
    }
}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused,
            io::ErrorKind::TimedOut => Self::TimedOut,
            _ => Self::Io(e),
        }
    }
}

/// What [`Reactor::connect_ready`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connecting {
    /// Not a connecting socket (any more): handle the event as usual.
    No,
    /// Still in progress (a spurious wake-up): ignore the event.
    Pending,
    /// Just established: `on_connect` is deferred; handle the event as usual.
    Established,
    /// Failed: the connection is dead, `on_error` and `on_close` are deferred.
    Failed,
}

impl<T> Reactor<T> {
    /// Starts connecting to `addr` for outbound worker `worker`; the connection exists at
    /// once (sends are queued), `on_connect` follows when it is established, `on_error`
    /// and `on_close` if it fails or takes longer than the worker's `connect_timeout`.
    ///
    /// # Errors
    /// What the OS refused synchronously (no route, no free port, out of descriptors).
    pub(crate) fn connect(&mut self, worker: usize, addr: SocketAddr) -> io::Result<ConnId> {
        if self.conns.len() >= ConnId::MAX_SLOTS {
            return Err(io::Error::other("connection table full"));
        }
        let mut socket = TcpStream::connect(addr)?;
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll.registry().register(
            &mut socket,
            token::conn(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.next_seq += 1;
        let id = ConnId::new(self.next_seq, key);
        let meta = &self.workers[worker];
        let mut conn = Conn::new(
            id,
            socket,
            addr,
            worker,
            meta.protocol,
            &meta.limits,
            self.now,
        );
        conn.connecting = true;
        conn.hold_output = true;
        if meta.ws_target.is_some() {
            conn.ws_client = true;
            conn.codec = Codec::Upgrading(Box::new(Upgrade {
                handshake: ClientHandshake::new(client::nonce()),
                held: Vec::new(),
            }));
        }
        // Registered for both; `update_interest` must not see a reason to change that while
        // `hold_output` keeps `want` false, so it is recorded as not writable.
        conn.writable = false;
        entry.insert(conn);
        self.workers[worker].open += 1;
        let timeout = self.workers[worker].connect_timeout;
        self.timers
            .add(self.now, timeout, false, Task::ConnectDeadline(id));
        Ok(id)
    }

    /// A readiness event arrived for slot `key`: finishes its connect if it was connecting.
    pub(crate) fn connect_ready(&mut self, key: usize) -> Connecting {
        let Some(conn) = self.conns.get_mut(key) else {
            return Connecting::No;
        };
        if !conn.connecting || conn.phase == super::conn::Phase::Dead {
            return Connecting::No;
        }
        let failure = match conn.socket.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match conn.socket.peer_addr() {
                Ok(_) => None,
                // `getpeername` on a socket still connecting: `ENOTCONN`.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Connecting::Pending,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = failure {
            self.kill(key, Some(ConnError::Connect(e.into())));
            return Connecting::Failed;
        }
        conn.connecting = false;
        conn.hold_output = false;
        conn.last_active = self.now;
        let upgrading = if let Codec::Upgrading(upgrade) = &mut conn.codec {
            // What was sent while connecting waits for the 101 (`send` put the frames in
            // `held`; anything else queued joins them in order); the request goes first.
            let queued = std::mem::take(&mut conn.output).into_vec();
            upgrade.held.splice(0..0, queued);
            let meta = &self.workers[conn.worker];
            let (host, path) = meta.ws_target.as_deref().cloned().unwrap_or_default();
            let host = if conn.peer == meta.local_addr {
                host
            } else {
                conn.peer.to_string()
            };
            let mut request = Vec::new();
            upgrade.handshake.write_request(&host, &path, &mut request);
            conn.output.extend(&request);
            true
        } else {
            false
        };
        // Interest goes back to READABLE (plus WRITABLE while output is queued): forced,
        // since the registration still has WRITABLE from the connect.
        conn.writable = true;
        let (id, worker) = (conn.id, conn.worker);
        if !upgrading {
            self.established(id, worker);
        }
        self.update_interest(key);
        Connecting::Established
    }

    /// The connection is ready for the application: `on_connect`, backoff reset, timeouts.
    fn established(&mut self, id: ConnId, worker: usize) {
        let meta = &mut self.workers[worker];
        if let Some((min, _)) = meta.reconnect {
            meta.backoff = min;
        }
        self.deferred.push_back(Deferred::Connect(id, worker));
        self.arm_deadline(id.slot());
    }

    /// The runtime checked the server's 101 on slot `key`, whose codec it has replaced:
    /// the frames held since the connect leave, `on_connect` follows.
    pub(crate) fn upgraded(&mut self, key: usize, upgrade: Upgrade) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.output.extend(&upgrade.held);
        let (id, worker) = (conn.id, conn.worker);
        self.established(id, worker);
        self.update_interest(key);
    }

    /// An outbound connection is gone: with automatic reconnect (and unless its owner
    /// closed it, or the reactor stops), schedules the next attempt after the worker's
    /// backoff, which doubles up to its maximum.
    pub(crate) fn schedule_reconnect(&mut self, id: ConnId) {
        let Some(conn) = self.conn(id) else {
            return;
        };
        let (worker, addr, by_owner) = (conn.worker, conn.peer, conn.closed_by_owner);
        let meta = &mut self.workers[worker];
        let Some((_, max)) = meta.reconnect else {
            return;
        };
        if by_owner || self.stop_requested {
            return;
        }
        let wait = meta.backoff;
        meta.backoff = (wait * 2).min(max);
        self.timers
            .add(self.now, wait, false, Task::Reconnect(worker, addr));
    }

    /// A reconnect is due: connect again; an attempt the OS refuses at once is retried
    /// after the backoff too.
    pub(crate) fn reconnect(&mut self, worker: usize, addr: SocketAddr) {
        if self.stop_requested {
            return;
        }
        if let Err(e) = self.connect(worker, addr) {
            let meta = &mut self.workers[worker];
            log::debug!("{}: reconnect to {addr}: {e}", meta.name);
            let wait = meta.backoff;
            if let Some((_, max)) = meta.reconnect {
                meta.backoff = (wait * 2).min(max);
            }
            self.timers
                .add(self.now, wait, false, Task::Reconnect(worker, addr));
        }
    }

    /// The connect deadline of `id` passed: fail it if it is still connecting (or, for
    /// `ws://`, still waiting for the 101).
    pub(crate) fn connect_deadline(&mut self, id: ConnId) -> bool {
        match self.conn(id) {
            Some(conn)
                if conn.connecting
                    || (conn.phase == Phase::Open && matches!(conn.codec, Codec::Upgrading(_))) =>
            {
                self.kill(id.slot(), Some(ConnError::Connect(ConnectError::TimedOut)));
                true
            }
            _ => false,
        }
    }
}
