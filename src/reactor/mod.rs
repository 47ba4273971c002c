//! The single-threaded mio reactor, mechanism only: one `Poll`, a slab of connections,
//! listeners and accepting, socket reads and writes, buffers, timers and signals. It knows
//! the codecs below it and nothing above: the event loop, the callbacks and the public
//! `Io` are in `runtime`, which drives it. `WouldBlock` never leaves this module.
//!
//! # Edge-triggered readiness
//!
//! Sockets are registered edge-triggered: on readiness the runtime reads (and accepts) until
//! `WouldBlock`, or until a per-event budget is spent, in which case the connection is put
//! on a ready list and the next poll does not sleep.
//!
//! # Backpressure
//!
//! `send` writes straight to the socket when nothing is queued and queues only what the
//! socket did not take. WRITABLE interest is registered only while output is queued. Once
//! the queue reaches `max_send_buffer_size`, `on_buffer_full` fires and, by the worker's
//! [`WhenFull`](crate::WhenFull), further sends are refused, or input stops being decoded
//! and read until the queue drains below half the limit (request/reply protocols: no
//! reply is ever dropped). Either way a slow reader costs bounded memory.
//!
//! # Slot reuse
//!
//! mio only promises a deregistered token won't come back in a *future* poll. A connection
//! that dies during an event batch stays in its slot, marked dead, until the batch ends, so
//! an `accept` in the same batch never reuses it. Users see [`ConnId`], never the slot.

mod accept;
mod alarm;
mod batch;
mod close;
pub(crate) mod conn;
pub(crate) mod connect;
mod id;
pub(crate) mod limits;
pub(crate) mod read;
mod send;
mod signal;
pub(crate) mod timer;
pub(crate) mod tls;
pub(crate) mod token;

pub(crate) use batch::BATCH_LIMIT;
pub use connect::ConnectError;
pub use id::{ConnError, ConnId, SendError};
pub(crate) use signal::{Request as SignalRequest, Signals};

use crate::{
    codec::{http::Response, Limits, Protocol},
    error::{Error, Result},
};
use conn::{Conn, Phase, Progress};
use mio::{net::TcpListener, Interest, Poll};
use slab::Slab;
use std::{
    collections::VecDeque,
    net::SocketAddr,
    time::{Duration, Instant},
};
use timer::Timers;

/// How long a closing connection may take to flush and be closed by its peer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A scheduled task: the driver's own (`T`, a callback) or one of the reactor's deadlines.
pub(crate) enum Task<T> {
    User(T),
    /// Force-close a connection that did not finish closing in time.
    CloseDeadline(ConnId),
    /// Retry accepting on a listener after the process ran out of file descriptors.
    AcceptRetry(usize),
    /// Check a connection's request and idle timeouts.
    ConnDeadline(ConnId),
    /// Fail an outbound connection still connecting.
    ConnectDeadline(ConnId),
    /// Connect again for outbound worker `.0` to `.1` (automatic reconnect).
    Reconnect(usize, SocketAddr),
}

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(_) => f.write_str("User"),
            Self::CloseDeadline(id) => write!(f, "CloseDeadline({id})"),
            Self::AcceptRetry(i) => write!(f, "AcceptRetry({i})"),
            Self::ConnDeadline(id) => write!(f, "ConnDeadline({id})"),
            Self::ConnectDeadline(id) => write!(f, "ConnectDeadline({id})"),
            Self::Reconnect(w, addr) => write!(f, "Reconnect({w}, {addr})"),
        }
    }
}

/// Events owed to callbacks, delivered after the running callback returns.
#[derive(Debug)]
pub(crate) enum Deferred {
    Error(ConnId, usize, ConnError),
    Close(ConnId, usize),
    BufferFull(ConnId, usize),
    BufferDrain(ConnId, usize),
    /// An outbound connection was established.
    Connect(ConnId, usize),
}

/// A worker's listening side.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) socket: Option<TcpListener>,
    pub(crate) worker: usize,
    /// Set while accepting is paused because `accept` failed (out of file descriptors):
    /// the socket is deregistered and one retry timer is pending.
    pub(crate) paused: Option<AcceptPause>,
}

/// One episode of failing accepts on a listener, logged at its start, at most every
/// [`AcceptPause::REMIND`] while it lasts, and at its end, instead of once per failure.
#[derive(Debug)]
pub(crate) struct AcceptPause {
    /// When the first accept failed.
    pub(crate) since: Instant,
    /// Failed accepts since `since` (each is one connection left waiting in the backlog).
    pub(crate) failures: u64,
    /// Failures already reported by a reminder.
    pub(crate) reported: u64,
    /// When the episode was last logged.
    pub(crate) logged: Instant,
    /// The wait before the next retry; doubles up to [`AcceptPause::MAX_BACKOFF`].
    pub(crate) backoff: Duration,
}

impl AcceptPause {
    /// The first retry comes this soon: a closing connection frees a descriptor quickly.
    pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
    /// Retries never wait longer, so service resumes within a second of fds freeing up.
    pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);
    /// A lasting episode is logged again this often.
    pub(crate) const REMIND: Duration = Duration::from_secs(30);
}

/// What the reactor keeps of each worker (a listener's configuration and counts); the
/// callbacks stay with the runtime.
#[derive(Debug)]
pub(crate) struct WorkerMeta {
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    pub(crate) limits: Limits,
    pub(crate) local_addr: SocketAddr,
    /// What a connection refused by a cap gets before it is closed.
    pub(crate) refusal: Vec<u8>,
    /// The worker's `Worker::http_error`.
    pub(crate) http_error: fn(u16, &str) -> Response,
    /// Connections of this worker in the slab (any phase), for `max_connections`.
    pub(crate) open: usize,
    /// Connections refused by `max_connections` or `fd_reserve`.
    pub(crate) refused: u64,
    /// An outbound worker (no listener; its connections are made by `connect`).
    pub(crate) outbound: bool,
    /// How long an outbound connect may take.
    pub(crate) connect_timeout: Duration,
    /// Outbound: reconnect automatically, first after `.0`, doubling up to `.1`.
    pub(crate) reconnect: Option<(Duration, Duration)>,
    /// Outbound with `reconnect`: the wait before the next attempt.
    pub(crate) backoff: Duration,
    /// Outbound `ws://`: the upgrade's `Host` and path.
    pub(crate) ws_target: Option<Box<(String, String)>>,
    /// Listeners with TLS: each accepted connection gets a session of this configuration
    /// (replaced by a certificate reload; sessions already made keep theirs).
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// The reactor's state. The runtime drives it: it polls `poll`, hands readiness to the
/// methods here and to its own decoding, and runs `T`s when their timers are due.
pub(crate) struct Reactor<T> {
    pub(crate) poll: Poll,
    pub(crate) conns: Slab<Conn>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) workers: Vec<WorkerMeta>,
    pub(crate) timers: Timers<Task<T>>,
    /// Wakes the poll when the earliest timer is due.
    pub(crate) alarm: alarm::Alarm,
    /// Events owed to the driver's callbacks.
    pub(crate) deferred: VecDeque<Deferred>,
    /// Slots whose `close` awaits the runtime (which owns the WebSocket close frame).
    pub(crate) close_requests: Vec<usize>,
    /// Dead slots to free at the end of the batch.
    pub(crate) dead: Vec<usize>,
    /// Slots to read again without waiting for readiness (resumed, or out of budget).
    pub(crate) ready: Vec<usize>,
    pub(crate) next_seq: u64,
    pub(crate) now: Instant,
    pub(crate) stop_requested: bool,
    /// Scratch space for encoding control frames and responses.
    pub(crate) scratch: Vec<u8>,
    /// Shared by all connections: only a partial message stays with its connection.
    pub(crate) read_buf: conn::InBuf,
    /// Output gathered during the turn, written per connection in one `writev` when the
    /// runtime flushes it.
    pub(crate) batch: batch::Batch,
    /// No socket write happens while set (the runtime's held turn, see `runtime::Runtime::
    /// hold_output`): messages gather in the batch or in their connection's buffer.
    pub(crate) sealed: bool,
    /// Slots whose flush was skipped while sealed; flushed by [`Reactor::unseal`].
    pub(crate) held: Vec<usize>,
    /// The open-files limit and the descriptors not used by connections (`fd_reserve`).
    pub(crate) fds: limits::FdBudget,
}

impl<T> std::fmt::Debug for Reactor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.conns.len())
            .field("listeners", &self.listeners.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl<T> Reactor<T> {
    pub(crate) fn new() -> Result<Self> {
        let poll = Poll::new()?;
        let alarm = alarm::Alarm::new(poll.registry());
        Ok(Self {
            poll,
            conns: Slab::new(),
            listeners: Vec::new(),
            workers: Vec::new(),
            timers: Timers::new(),
            alarm,
            deferred: VecDeque::new(),
            close_requests: Vec::new(),
            dead: Vec::new(),
            ready: Vec::new(),
            next_seq: 0,
            now: Instant::now(),
            stop_requested: false,
            scratch: Vec::new(),
            read_buf: conn::InBuf::default(),
            batch: batch::Batch::default(),
            sealed: false,
            held: Vec::new(),
            fds: limits::FdBudget::default(),
        })
    }

    /// Binds `addr` and starts accepting for a new worker described by `meta` (its
    /// `local_addr` is filled in); returns the worker's index and the bound address.
    pub(crate) fn bind(
        &mut self,
        addr: SocketAddr,
        mut meta: WorkerMeta,
    ) -> Result<(usize, SocketAddr)> {
        let mut socket = TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        let local_addr = socket.local_addr()?;
        let index = self.workers.len();
        let listener = self.listeners.len();
        self.poll.registry().register(
            &mut socket,
            token::listener(listener),
            Interest::READABLE,
        )?;
        self.listeners.push(Listener {
            socket: Some(socket),
            worker: index,
            paused: None,
        });
        meta.local_addr = local_addr;
        log::info!("{} listening on {local_addr}", meta.name);
        self.workers.push(meta);
        Ok((index, local_addr))
    }

    /// Stops accepting on every listener (a graceful stop).
    pub(crate) fn close_listeners(&mut self) {
        for listener in &mut self.listeners {
            if let Some(mut socket) = listener.socket.take() {
                let _ = self.poll.registry().deregister(&mut socket);
            }
        }
    }

    /// The connection `id`, if it is still in its slot.
    pub(crate) fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.slot()).filter(|c| c.id == id)
    }

    /// The connection `id`, if it is still in its slot.
    pub(crate) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id.slot()).filter(|c| c.id == id)
    }

    /// The connection `id` if it takes new messages.
    pub(crate) fn open_conn(&mut self, id: ConnId) -> std::result::Result<&mut Conn, SendError> {
        let conn = self.conn_mut(id).ok_or(SendError::NotFound)?;
        match conn.phase {
            Phase::Open => {}
            Phase::Closing | Phase::Linger => return Err(SendError::Closing),
            Phase::Dead => return Err(SendError::NotFound),
        }
        if conn.queued() >= conn.max_send_buffer && !conn.pause_when_full {
            return Err(SendError::BufferFull);
        }
        Ok(conn)
    }

    /// Writes or queues one message's parts on slot `key`, with the buffer-full check after.
    pub(crate) fn queue(
        &mut self,
        key: usize,
        parts: &[&[u8]],
    ) -> std::result::Result<(), SendError> {
        if let Progress::Error(e) = self.write_parts(key, parts) {
            self.kill(key, Some(ConnError::Io(e)));
            return Err(SendError::Closing);
        }
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Dead {
            return Err(SendError::Closing);
        }
        let queued = conn.queued();
        if conn.pause_when_full && queued >= conn.max_send_buffer {
            conn.backlogged = true;
        }
        if queued > 0 && !conn.buffer_full && queued >= conn.max_send_buffer {
            conn.buffer_full = true;
            self.deferred
                .push_back(Deferred::BufferFull(conn.id, conn.worker));
        }
        self.update_interest(key);
        Ok(())
    }

    /// Registers WRITABLE interest exactly while output waits for the socket (not while it
    /// waits in the write batch, which the runtime flushes within the turn).
    pub(crate) fn update_interest(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        // TLS ciphertext (the TLS handshake's, say) leaves even while plaintext is held.
        let want = (!conn.output.is_empty() && !conn.hold_output) || conn.tls_pending();
        if want == conn.writable || conn.phase == Phase::Dead {
            return;
        }
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self
            .poll
            .registry()
            .reregister(&mut conn.socket, token::conn(key), interest)
        {
            Ok(()) => conn.writable = want,
            Err(e) => self.kill(key, Some(ConnError::Io(e))),
        }
    }

    /// Moves an open connection to [`Phase::Closing`]; the runtime then sends the WebSocket
    /// close frame for `request` (if any) and flushes. A deadline bounds the whole close.
    pub(crate) fn begin_closing(&mut self, key: usize, request: Option<(u16, Box<str>)>) {
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Open {
            return;
        }
        conn.phase = Phase::Closing;
        conn.close_request = request;
        self.close_requests.push(key);
        self.timers
            .add(self.now, CLOSE_TIMEOUT, false, Task::CloseDeadline(conn.id));
    }

    /// Marks slot `key` dead: deregistered now, `on_close` (after `on_error`) deferred, the
    /// slot freed at the end of the batch.
    pub(crate) fn kill(&mut self, key: usize, error: Option<ConnError>) {
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Dead {
            return;
        }
        conn.phase = Phase::Dead;
        let _ = self.poll.registry().deregister(&mut conn.socket);
        if let Some(error) = error {
            log::debug!("connection {} ({}) failed: {error}", conn.id, conn.peer);
            self.deferred
                .push_back(Deferred::Error(conn.id, conn.worker, error));
        }
        self.deferred
            .push_back(Deferred::Close(conn.id, conn.worker));
        self.dead.push(key);
    }
}
