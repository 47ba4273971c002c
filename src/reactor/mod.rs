//! The single-threaded mio reactor: one `Poll`, a slab of connections, listeners and timers.
//! [`Io`] is its surface for callbacks; the event loop itself is in [`crate::runtime`].
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

pub(crate) mod conn;
mod signal;
pub(crate) mod timer;
pub(crate) mod token;

pub(crate) use signal::{Request as SignalRequest, Signals};

use crate::{
    codec::{frame, http::Response, ws},
    connection::{ConnError, ConnId, ConnInfo, SendError},
    ctx::Ctx,
    error::{Error, Result},
    worker::{Handlers, Limits, Protocol, Worker},
};
use conn::{Conn, Phase, Progress};
use mio::{net::TcpListener, Interest, Poll};
use slab::Slab;
use std::{
    any::Any,
    collections::VecDeque,
    net::SocketAddr,
    time::{Duration, Instant},
};
use timer::{TimerId, Timers};

/// How long a closing connection may take to flush and be closed by its peer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A timer callback.
pub(crate) type TimerFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>)>;

/// A scheduled task: a user callback or an internal deadline.
pub(crate) enum Task<S> {
    User(TimerFn<S>),
    /// Force-close a connection that did not finish closing in time.
    CloseDeadline(ConnId),
    /// Retry accepting on a listener after the process ran out of file descriptors.
    AcceptRetry(usize),
    /// Check a connection's request and idle timeouts.
    ConnDeadline(ConnId),
}

impl<S> std::fmt::Debug for Task<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(_) => f.write_str("User"),
            Self::CloseDeadline(id) => write!(f, "CloseDeadline({id})"),
            Self::AcceptRetry(i) => write!(f, "AcceptRetry({i})"),
            Self::ConnDeadline(id) => write!(f, "ConnDeadline({id})"),
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

/// What the reactor keeps of each worker besides its callbacks.
#[derive(Debug)]
pub(crate) struct WorkerMeta {
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    pub(crate) limits: Limits,
    pub(crate) local_addr: SocketAddr,
    /// What a connection refused by a cap gets before it is closed.
    pub(crate) refusal: Vec<u8>,
    /// The worker's [`Worker::http_error`].
    pub(crate) http_error: fn(u16, &str) -> Response,
    /// Connections of this worker in the slab (any phase), for `max_connections`.
    pub(crate) open: usize,
    /// Connections refused by `max_connections` or `fd_reserve`.
    pub(crate) refused: u64,
}

/// The reactor as callbacks see it: connections by id (send, close, data), timers,
/// listening, stopping. Reached as `ctx.io`.
pub struct Io<S> {
    pub(crate) poll: Poll,
    pub(crate) conns: Slab<Conn>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) workers: Vec<WorkerMeta>,
    /// Callbacks of workers listened since the runtime last looked; it installs them.
    pub(crate) new_handlers: Vec<Handlers<S>>,
    pub(crate) timers: Timers<Task<S>>,
    pub(crate) deferred: VecDeque<Deferred>,
    /// Slots whose `close` awaits the runtime (which owns the WebSocket session then).
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
}

impl<S> std::fmt::Debug for Io<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("connections", &self.conns.len())
            .field("listeners", &self.listeners.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Io<S> {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            conns: Slab::new(),
            listeners: Vec::new(),
            workers: Vec::new(),
            new_handlers: Vec::new(),
            timers: Timers::new(),
            deferred: VecDeque::new(),
            close_requests: Vec::new(),
            dead: Vec::new(),
            ready: Vec::new(),
            next_seq: 0,
            now: Instant::now(),
            stop_requested: false,
            scratch: Vec::new(),
        })
    }

    /// Binds `worker`'s address and starts accepting; returns the bound address (useful with
    /// port 0). Called from a callback, the worker's `on_worker_start` runs right after it.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address cannot be bound.
    pub fn listen(&mut self, worker: Worker<S>) -> Result<SocketAddr> {
        let addr = worker.addr;
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
        self.workers.push(WorkerMeta {
            name: worker.name,
            protocol: worker.protocol,
            limits: worker.limits,
            local_addr,
            refusal: worker.refusal,
            http_error: worker.http_error,
            open: 0,
            refused: 0,
        });
        self.new_handlers.push(worker.handlers);
        log::info!("{} listening on {local_addr}", self.workers[index].name);
        Ok(local_addr)
    }

    /// Sends `data` as one message in the connection's protocol: a WebSocket text frame, a
    /// `text` line (a `\n` is appended), a `frame` frame, raw `tcp` bytes, or an `http`
    /// `200 OK` with `data` as a plain-text body.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn send(
        &mut self,
        id: ConnId,
        data: impl AsRef<[u8]>,
    ) -> std::result::Result<(), SendError> {
        self.send_as(id, data.as_ref(), ws::OpCode::Text)
    }

    /// As [`Io::send`], but a WebSocket connection gets a binary frame.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn send_binary(
        &mut self,
        id: ConnId,
        data: impl AsRef<[u8]>,
    ) -> std::result::Result<(), SendError> {
        self.send_as(id, data.as_ref(), ws::OpCode::Binary)
    }

    /// Sends an HTTP response on an `http` connection (or raw on any other); closes the
    /// connection afterwards unless the request asked to keep it alive.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn respond(
        &mut self,
        id: ConnId,
        response: &Response,
    ) -> std::result::Result<(), SendError> {
        let conn = self.open_conn(id)?;
        let close = conn.close_after_response;
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        if close
            && !response
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
        {
            response
                .clone()
                .header("Connection", "close")
                .encode(&mut bytes);
        } else {
            response.encode(&mut bytes);
        }
        let result = self.queue(id.slot(), &[&bytes]);
        self.scratch = bytes;
        if result.is_ok() && close {
            self.close(id);
        }
        result
    }

    fn send_as(
        &mut self,
        id: ConnId,
        data: &[u8],
        opcode: ws::OpCode,
    ) -> std::result::Result<(), SendError> {
        let conn = self.open_conn(id)?;
        match conn.protocol {
            Protocol::Tcp => self.queue(id.slot(), &[data]),
            Protocol::Text => self.queue(id.slot(), &[data, crate::codec::text::LINE_END]),
            Protocol::Frame => {
                let head = frame::header(data.len()).map_err(|_| SendError::TooLarge)?;
                self.queue(id.slot(), &[&head, data])
            }
            Protocol::WebSocket => {
                let mut head = [0u8; ws::header::MAX_SERVER_HEADER];
                let n = ws::header::encode_header(true, opcode, data.len(), &mut head);
                self.queue(id.slot(), &[&head[..n], data])
            }
            Protocol::Http => {
                let response = Response::new(200)
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .body(data);
                self.respond(id, &response)
            }
        }
    }

    /// The connection `id` if it takes new messages.
    fn open_conn(&mut self, id: ConnId) -> std::result::Result<&mut Conn, SendError> {
        let conn = self
            .conns
            .get_mut(id.slot())
            .filter(|c| c.id == id)
            .ok_or(SendError::NotFound)?;
        match conn.phase {
            Phase::Open => {}
            Phase::Closing | Phase::Linger => return Err(SendError::Closing),
            Phase::Dead => return Err(SendError::NotFound),
        }
        if conn.output.len() >= conn.max_send_buffer && !conn.pause_when_full {
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
        let conn = &mut self.conns[key];
        if let Progress::Error(e) = conn.write_parts(parts) {
            self.kill(key, Some(ConnError::Io(e)));
            return Err(SendError::Closing);
        }
        let conn = &mut self.conns[key];
        if conn.pause_when_full && conn.output.len() >= conn.max_send_buffer {
            conn.backlogged = true;
        }
        if !conn.output.is_empty() && !conn.buffer_full && conn.output.len() >= conn.max_send_buffer
        {
            conn.buffer_full = true;
            self.deferred
                .push_back(Deferred::BufferFull(conn.id, conn.worker));
        }
        self.update_interest(key);
        Ok(())
    }

    /// Registers WRITABLE interest exactly while output is queued.
    pub(crate) fn update_interest(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let want = !conn.output.is_empty() && !conn.hold_output && !conn.corked;
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

    /// Sends a WebSocket ping (the peer answers with a pong, which counts as activity).
    /// Does nothing for other protocols or before the handshake completes.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn ping(&mut self, id: ConnId) -> std::result::Result<(), SendError> {
        let conn = self.open_conn(id)?;
        if conn.protocol != Protocol::WebSocket || conn.hold_output {
            return Ok(());
        }
        let mut head = [0u8; ws::header::MAX_SERVER_HEADER];
        let n = ws::header::encode_header(true, ws::OpCode::Ping, 0, &mut head);
        self.queue(id.slot(), &[&head[..n]])
    }

    /// How long ago the connection was accepted, and how long since input last arrived.
    pub fn age_and_idle(&self, id: ConnId) -> Option<(Duration, Duration)> {
        let conn = self.conn(id)?;
        Some((
            self.now.saturating_duration_since(conn.since),
            self.now.saturating_duration_since(conn.last_active),
        ))
    }

    /// Whether a WebSocket connection has completed its handshake (always true for other
    /// protocols).
    pub fn is_upgraded(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| !c.hold_output)
    }

    /// The name of the worker that accepted the connection.
    pub fn worker_name(&self, id: ConnId) -> Option<&str> {
        self.conn(id).map(|c| self.workers[c.worker].name.as_str())
    }

    /// Closes gracefully: queued output is flushed first; a WebSocket gets a close frame with
    /// code 1000. Then `on_close`.
    pub fn close(&mut self, id: ConnId) {
        self.close_with(id, ws::CloseCode::NORMAL.0, "");
    }

    /// As [`Io::close`], with a WebSocket close code and reason (ignored by other protocols).
    pub fn close_with(&mut self, id: ConnId, code: u16, reason: &str) {
        if self.conns.get(id.slot()).is_some_and(|c| c.id == id) {
            self.begin_closing(id.slot(), Some((code, reason.into())));
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

    /// Closes at once, dropping queued output. `on_close` follows.
    pub fn destroy(&mut self, id: ConnId) {
        if self.conns.get(id.slot()).is_some_and(|c| c.id == id) {
            self.kill(id.slot(), None);
        }
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

    /// Stops reading from the connection (the peer's writes then back up in TCP).
    pub fn pause_recv(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id.slot()).filter(|c| c.id == id) {
            conn.recv_paused = true;
        }
    }

    /// Resumes reading; input that arrived meanwhile is processed on the next turn.
    pub fn resume_recv(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id.slot()).filter(|c| c.id == id) {
            if conn.recv_paused {
                conn.recv_paused = false;
                self.ready.push(id.slot());
            }
        }
    }

    /// The peer's address, while the connection exists (also inside `on_close`).
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.conn(id).map(|c| c.peer)
    }

    /// A snapshot of the connection's counters.
    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        let conn = self.conn(id)?;
        let worker = &self.workers[conn.worker];
        Some(ConnInfo {
            id,
            peer: conn.peer,
            worker: worker.name.clone(),
            protocol: conn.protocol.scheme(),
            bytes_in: conn.bytes_in,
            bytes_out: conn.bytes_out,
            send_buffered: conn.output.len(),
            age: self.now.saturating_duration_since(conn.since),
            idle: self.now.saturating_duration_since(conn.last_active),
        })
    }

    /// Ids of the connections that take messages, in slot order.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Open)
            .map(|(_, c)| c.id)
    }

    /// The open connections in slots `from..`, visiting at most `max` slots, and the slot to
    /// continue from (0 once past the last). Periodic work over every connection (pings,
    /// idle checks) can so go a slice per tick instead of stalling the loop for all at once.
    pub fn connections_page(&self, from: usize, max: usize) -> (Vec<ConnId>, usize) {
        let slots = self.slot_count();
        let end = from.saturating_add(max.max(1)).min(slots);
        let ids = (from..end)
            .filter_map(|slot| self.conns.get(slot))
            .filter(|c| c.phase == Phase::Open)
            .map(|c| c.id)
            .collect();
        (ids, if end >= slots { 0 } else { end })
    }

    /// Slots in the connection slab, occupied or not: the range `connections_page` walks.
    pub fn slot_count(&self) -> usize {
        self.conns.capacity()
    }

    /// How many connections are open (not closing).
    pub fn connection_count(&self) -> usize {
        self.connections().count()
    }

    /// The per-connection value stored with [`Io::set_data`], if it has type `T`
    /// (Workerman's dynamic `$connection->uid`). Available inside `on_close` too.
    pub fn data<T: 'static>(&mut self, id: ConnId) -> Option<&mut T> {
        self.conns
            .get_mut(id.slot())
            .filter(|c| c.id == id)?
            .data
            .as_mut()?
            .downcast_mut()
    }

    /// Stores a per-connection value, replacing any previous one.
    pub fn set_data<T: 'static>(&mut self, id: ConnId, value: T) {
        if let Some(conn) = self.conns.get_mut(id.slot()).filter(|c| c.id == id) {
            conn.data = Some(Box::new(value) as Box<dyn Any>);
        }
    }

    /// Removes and returns the per-connection value, if it has type `T`.
    pub fn take_data<T: 'static>(&mut self, id: ConnId) -> Option<T> {
        let conn = self.conns.get_mut(id.slot()).filter(|c| c.id == id)?;
        match conn.data.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                conn.data = Some(other);
                None
            }
        }
    }

    /// Runs `f` after `interval`, and then every `interval` if `repeat`.
    pub fn add_timer(
        &mut self,
        interval: Duration,
        repeat: bool,
        f: impl FnMut(&mut Ctx<'_, S>) + 'static,
    ) -> TimerId {
        self.timers
            .add(self.now, interval, repeat, Task::User(Box::new(f)))
    }

    /// Deletes a timer; returns whether it was scheduled. Safe from the timer's own callback.
    pub fn del_timer(&mut self, id: TimerId) -> bool {
        self.timers.del(id)
    }

    /// Asks the reactor to stop gracefully: stop accepting, run `on_worker_stop`, close
    /// WebSockets with 1001 and everything else after flushing, then return.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Whether a graceful stop has been asked for (by a signal, [`Io::stop`] or a
    /// [`StopHandle`](crate::StopHandle)).
    pub fn stopping(&self) -> bool {
        self.stop_requested
    }

    /// The time the current batch of events started (cached; cheap).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Each worker's name and bound address, in the order they were listened.
    pub fn listeners(&self) -> impl Iterator<Item = (&str, SocketAddr)> + '_ {
        self.workers.iter().map(|w| (w.name.as_str(), w.local_addr))
    }

    /// Replaces the limits of the worker named `name` for connections accepted from now on
    /// (a reload); returns whether such a worker exists.
    pub fn set_limits(&mut self, name: &str, limits: Limits) -> bool {
        let mut found = false;
        for worker in self.workers.iter_mut().filter(|w| w.name == name) {
            worker.limits = limits;
            found = true;
        }
        found
    }

    /// How many connections the worker named `name` has refused for its `max_connections`
    /// or `fd_reserve` since start.
    pub fn refused_connections(&self, name: &str) -> u64 {
        self.workers
            .iter()
            .filter(|w| w.name == name)
            .map(|w| w.refused)
            .sum()
    }

    /// The addresses the listeners are bound to, in the order they were listened.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.workers.iter().map(|w| w.local_addr).collect()
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.slot()).filter(|c| c.id == id)
    }
}
