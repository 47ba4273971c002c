//! [`Io`]: the reactor as callbacks see it, reached as `ctx.io`.

use super::{
    connection::{ConnId, ConnInfo, SendError},
    ctx::Ctx,
    worker::{Handlers, Worker},
};
use crate::{
    codec::{http::Response, ws, Limits},
    error::Result,
    reactor::{conn::Phase, timer::TimerId, Reactor, Task, WorkerMeta},
    tls::TlsConfig,
};
use std::{
    any::Any,
    net::SocketAddr,
    time::{Duration, Instant},
};

/// A timer callback.
pub(crate) type TimerFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>)>;

/// Connections by id (send, close, per-connection data), timers, listening, stopping.
pub struct Io<S> {
    pub(crate) reactor: Reactor<TimerFn<S>>,
    /// Callbacks of workers listened since the runtime last looked; it installs them.
    pub(crate) new_handlers: Vec<Handlers<S>>,
}

impl<S> std::fmt::Debug for Io<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("reactor", &self.reactor)
            .finish_non_exhaustive()
    }
}

/// An outbound worker's callbacks, registered by [`Io::upstream`]; pass it to
/// [`Io::connect`] to open connections that use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream(usize);

/// Where [`Io::connections_page`] goes on from: opaque, so callers cannot depend on how
/// the reactor stores connections. Start with `Cursor::default()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor(usize);

type SendResult = std::result::Result<(), SendError>;

impl<S: 'static> Io<S> {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            reactor: Reactor::new()?,
            new_handlers: Vec::new(),
        })
    }

    /// Binds `worker`'s address and starts accepting; returns the bound address (useful with
    /// port 0). Called from a callback, the worker's `on_worker_start` runs right after it.
    ///
    /// # Errors
    /// [`Error::Bind`](crate::Error::Bind) when the address cannot be bound.
    pub fn listen(&mut self, worker: Worker<S>) -> Result<SocketAddr> {
        let meta = WorkerMeta {
            name: worker.name,
            protocol: worker.protocol,
            limits: worker.limits,
            local_addr: worker.addr,
            refusal: worker.refusal,
            http_error: worker.http_error,
            open: 0,
            refused: 0,
            outbound: false,
            connect_timeout: worker.connect_timeout,
            reconnect: None,
            backoff: Duration::ZERO,
            ws_target: None,
            tls: worker.tls.map(|t| t.server),
        };
        let (_, addr) = self.reactor.bind(worker.addr, meta)?;
        self.new_handlers.push(worker.handlers);
        Ok(addr)
    }

    /// Registers `worker`'s callbacks for outbound connections (Workerman's
    /// `AsyncTcpConnection`) without listening; [`Io::connect`] then opens connections that
    /// use them. `worker.addr` is not used (pass the peer to `connect`); its protocol
    /// (`tcp`, `text`, `frame` or `ws`) frames what is sent and received, its limits apply,
    /// and `connect_timeout` bounds each connect (for `ws://`, the upgrade too).
    /// `on_worker_start` runs right after, as for [`Io::listen`].
    ///
    /// A `ws://host:port/path` worker is a WebSocket client: each connection sends the
    /// upgrade for `path` with `Host: host:port` (the peer's address when `connect` is
    /// given another one), and `on_connect` runs once the server's 101 is checked; a
    /// refused or invalid upgrade is a [`ConnectError::Upgrade`](crate::ConnectError).
    /// Frames it sends are masked, as RFC 6455 asks of clients.
    ///
    /// # Errors
    /// [`Error::Address`](crate::Error::Address) for `http`: this end speaks only the
    /// server side of it.
    pub fn upstream(&mut self, worker: Worker<S>) -> Result<Upstream> {
        use crate::codec::Protocol;
        if worker.protocol == Protocol::Http {
            return Err(crate::Error::Address {
                given: worker.name,
                reason: "outbound connections speak tcp, text, frame or ws",
            });
        }
        let ws_target =
            (worker.protocol == Protocol::WebSocket).then(|| Box::new(worker.ws_target));
        let index = self.reactor.workers.len();
        self.reactor.workers.push(WorkerMeta {
            name: worker.name,
            protocol: worker.protocol,
            limits: worker.limits,
            local_addr: worker.addr,
            refusal: Vec::new(),
            http_error: worker.http_error,
            open: 0,
            refused: 0,
            outbound: true,
            connect_timeout: worker.connect_timeout,
            reconnect: worker.reconnect.map(|r| (r.min, r.max.max(r.min))),
            backoff: worker.reconnect.map_or(Duration::ZERO, |r| r.min),
            ws_target,
            tls: None,
        });
        self.new_handlers.push(worker.handlers);
        Ok(Upstream(index))
    }

    /// Opens an outbound connection to `addr` with `upstream`'s protocol and callbacks,
    /// without blocking. The id is valid at once: sends are queued until the connection is
    /// established, then written in order. Then `on_connect`; if the peer refuses, is
    /// unreachable, or does not answer within `connect_timeout`, `on_error` with
    /// [`ConnError::Connect`](crate::ConnError) and `on_close` instead. Usable
    /// from any callback and timer. With the worker's [`Worker::reconnect`] set, a
    /// connection that fails or closes (not by [`Io::close`] or [`Io::destroy`], nor in a
    /// stop) is made again after a backoff, as a new connection: `on_connect` tells its id.
    /// Without it, reconnecting is the caller's choice (from `on_close`, with a timer).
    ///
    /// # Errors
    /// What the OS refused synchronously (no route, out of descriptors); no callback
    /// follows then.
    pub fn connect(&mut self, upstream: Upstream, addr: SocketAddr) -> Result<ConnId> {
        Ok(self.reactor.connect(upstream.0, addr)?)
    }

    /// Whether `id` is an outbound connection still connecting.
    pub fn is_connecting(&self, id: ConnId) -> bool {
        self.reactor.conn(id).is_some_and(|c| c.connecting)
    }

    /// Sends `data` as one message in the connection's protocol: a WebSocket text frame, a
    /// `text` line (a `\n` is appended), a `frame` frame, raw `tcp` bytes, or an `http`
    /// `200 OK` with `data` as a plain-text body. A text frame must be UTF-8 (RFC 6455
    /// §5.6; a browser closes with 1007 otherwise): bytes from a peer are checked once by
    /// the caller (as `push::command` does), or sent with [`Io::send_binary`].
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn send(&mut self, id: ConnId, data: impl AsRef<[u8]>) -> SendResult {
        self.reactor
            .send_message(id, data.as_ref(), ws::OpCode::Text)
    }

    /// As [`Io::send`], but a WebSocket connection gets a binary frame.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn send_binary(&mut self, id: ConnId, data: impl AsRef<[u8]>) -> SendResult {
        self.reactor
            .send_message(id, data.as_ref(), ws::OpCode::Binary)
    }

    /// Sends an HTTP response on an `http` connection (or raw on any other); closes the
    /// connection afterwards unless the request asked to keep it alive.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn respond(&mut self, id: ConnId, response: &Response) -> SendResult {
        self.reactor.respond(id, response)
    }

    /// Sends a WebSocket ping (the peer answers with a pong, which counts as activity).
    /// Does nothing for other protocols or before the handshake completes.
    ///
    /// # Errors
    /// [`SendError`]; nothing was queued then.
    pub fn ping(&mut self, id: ConnId) -> SendResult {
        self.reactor.ping(id)
    }

    /// How long ago the connection was accepted, and how long since input last arrived.
    pub fn age_and_idle(&self, id: ConnId) -> Option<(Duration, Duration)> {
        let conn = self.reactor.conn(id)?;
        let now = self.reactor.now;
        Some((
            now.saturating_duration_since(conn.since),
            now.saturating_duration_since(conn.last_active),
        ))
    }

    /// Whether a WebSocket connection has completed its handshake (always true for other
    /// protocols).
    pub fn is_upgraded(&self, id: ConnId) -> bool {
        self.reactor.conn(id).is_some_and(|c| !c.hold_output)
    }

    /// The name of the worker that accepted the connection.
    pub fn worker_name(&self, id: ConnId) -> Option<&str> {
        let conn = self.reactor.conn(id)?;
        Some(self.reactor.workers[conn.worker].name.as_str())
    }

    /// Closes gracefully: queued output is flushed first; a WebSocket gets a close frame with
    /// code 1000. Then `on_close`.
    pub fn close(&mut self, id: ConnId) {
        self.close_with(id, ws::CloseCode::NORMAL.0, "");
    }

    /// As [`Io::close`], with a WebSocket close code and reason (ignored by other protocols).
    /// Also the way to refuse a connection after its upgrade (a token found invalid in
    /// `on_message`, say): the close frame leaves after what was already sent.
    pub fn close_with(&mut self, id: ConnId, code: u16, reason: &str) {
        if let Some(conn) = self.reactor.conn_mut(id) {
            conn.closed_by_owner = true;
        }
        if self.reactor.conn(id).is_some_and(|c| c.connecting) {
            // Nothing was sent yet: there is nothing to flush.
            self.reactor.kill(id.slot(), None);
            return;
        }
        self.reactor.close(id, code, reason);
    }

    /// Closes at once, dropping queued output. `on_close` follows.
    pub fn destroy(&mut self, id: ConnId) {
        if let Some(conn) = self.reactor.conn_mut(id) {
            conn.closed_by_owner = true;
        }
        if self.reactor.conn(id).is_some() {
            self.reactor.kill(id.slot(), None);
        }
    }

    /// Stops reading from the connection (the peer's writes then back up in TCP).
    pub fn pause_recv(&mut self, id: ConnId) {
        if let Some(conn) = self.reactor.conn_mut(id) {
            conn.recv_paused = true;
        }
    }

    /// Resumes reading; input that arrived meanwhile is processed on the next turn.
    pub fn resume_recv(&mut self, id: ConnId) {
        if let Some(conn) = self.reactor.conn_mut(id) {
            if std::mem::take(&mut conn.recv_paused) {
                self.reactor.ready.push(id.slot());
            }
        }
    }

    /// The peer's address, while the connection exists (also inside `on_close`).
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.reactor.conn(id).map(|c| c.peer)
    }

    /// A snapshot of the connection's counters.
    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        let conn = self.reactor.conn(id)?;
        let worker = &self.reactor.workers[conn.worker];
        let now = self.reactor.now;
        Some(ConnInfo {
            id,
            peer: conn.peer,
            worker: worker.name.clone(),
            protocol: conn.protocol.scheme(),
            bytes_in: conn.bytes_in,
            bytes_out: conn.bytes_out,
            send_buffered: conn.queued(),
            age: now.saturating_duration_since(conn.since),
            idle: now.saturating_duration_since(conn.last_active),
        })
    }

    /// Ids of the connections that take messages.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.reactor
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Open)
            .map(|(_, c)| c.id)
    }

    /// Ids of the connections of the worker named `worker` that take messages.
    pub fn connections_of<'a>(&'a self, worker: &'a str) -> impl Iterator<Item = ConnId> + 'a {
        let index = self.reactor.workers.iter().position(|w| w.name == worker);
        self.reactor
            .conns
            .iter()
            .filter(move |(_, c)| c.phase == Phase::Open && Some(c.worker) == index)
            .map(|(_, c)| c.id)
    }

    /// Connections of the worker named `worker`, closing ones included, as counted by the
    /// reactor when it accepts and frees them: O(1).
    pub fn connection_count_of(&self, worker: &str) -> usize {
        self.reactor
            .workers
            .iter()
            .filter(|w| w.name == worker)
            .map(|w| w.open)
            .sum()
    }

    /// Up to `max` open connections from `cursor` on, and the cursor to go on from (`None`
    /// once past the last). Periodic work over every connection can so go a page per tick
    /// instead of stalling the loop for all at once. A connection opened meanwhile may or
    /// may not be visited in the pass; none is visited twice.
    pub fn connections_page(&self, cursor: Cursor, max: usize) -> (Vec<ConnId>, Option<Cursor>) {
        self.page(None, cursor, max)
    }

    /// As [`Io::connections_page`], for the connections of the worker named `worker`.
    pub fn connections_page_of(
        &self,
        worker: &str,
        cursor: Cursor,
        max: usize,
    ) -> (Vec<ConnId>, Option<Cursor>) {
        match self.reactor.workers.iter().position(|w| w.name == worker) {
            Some(index) => self.page(Some(index), cursor, max),
            None => (Vec::new(), None),
        }
    }

    fn page(
        &self,
        worker: Option<usize>,
        cursor: Cursor,
        max: usize,
    ) -> (Vec<ConnId>, Option<Cursor>) {
        let mut ids = Vec::new();
        let mut slot = cursor.0;
        let slots = self.reactor.conns.capacity();
        while slot < slots && ids.len() < max {
            if let Some(conn) = self.reactor.conns.get(slot) {
                if conn.phase == Phase::Open && worker.map_or(true, |w| w == conn.worker) {
                    ids.push(conn.id);
                }
            }
            slot += 1;
        }
        (ids, (slot < slots).then_some(Cursor(slot)))
    }

    /// How many connections are open (not closing).
    pub fn connection_count(&self) -> usize {
        self.connections().count()
    }

    /// The per-connection value stored with [`Io::set_data`], if it has type `T`
    /// (Workerman's dynamic `$connection->uid`). Available inside `on_close` too.
    pub fn data<T: 'static>(&mut self, id: ConnId) -> Option<&mut T> {
        self.reactor.conn_mut(id)?.data.as_mut()?.downcast_mut()
    }

    /// Stores a per-connection value, replacing any previous one.
    pub fn set_data<T: 'static>(&mut self, id: ConnId, value: T) {
        if let Some(conn) = self.reactor.conn_mut(id) {
            conn.data = Some(Box::new(value) as Box<dyn Any>);
        }
    }

    /// Removes and returns the per-connection value, if it has type `T`.
    pub fn take_data<T: 'static>(&mut self, id: ConnId) -> Option<T> {
        let conn = self.reactor.conn_mut(id)?;
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
        let now = self.reactor.now;
        self.reactor
            .timers
            .add(now, interval, repeat, Task::User(Box::new(f)))
    }

    /// Deletes a timer; returns whether it was scheduled. Safe from the timer's own callback.
    pub fn del_timer(&mut self, id: TimerId) -> bool {
        self.reactor.timers.del(id)
    }

    /// Asks the reactor to stop gracefully: stop accepting, run `on_worker_stop`, close
    /// WebSockets with 1001 and everything else after flushing, then return.
    pub fn stop(&mut self) {
        self.reactor.stop_requested = true;
    }

    /// Whether a graceful stop has been asked for (by a signal, [`Io::stop`] or a
    /// [`StopHandle`](crate::StopHandle)).
    pub fn stopping(&self) -> bool {
        self.reactor.stop_requested
    }

    /// The time the current batch of events started (cached; cheap).
    pub fn now(&self) -> Instant {
        self.reactor.now
    }

    /// Each worker's name and bound address, in the order they were listened.
    pub fn listeners(&self) -> impl Iterator<Item = (&str, SocketAddr)> + '_ {
        self.reactor
            .workers
            .iter()
            .filter(|w| !w.outbound)
            .map(|w| (w.name.as_str(), w.local_addr))
    }

    /// Replaces the limits of the worker named `name` for connections accepted from now on
    /// (a reload); returns whether such a worker exists.
    pub fn set_limits(&mut self, name: &str, limits: Limits) -> bool {
        let mut found = false;
        for worker in self.reactor.workers.iter_mut().filter(|w| w.name == name) {
            worker.limits = limits;
            found = true;
        }
        found
    }

    /// Replaces the TLS configuration (a renewed certificate, say) of the worker named
    /// `name` for connections accepted from now on; connections already open keep their
    /// session. Returns whether such a worker exists and has TLS (a plain listener cannot
    /// be turned into a TLS one, nor the reverse).
    pub fn set_tls(&mut self, name: &str, tls: TlsConfig) -> bool {
        let mut found = false;
        for worker in self.reactor.workers.iter_mut().filter(|w| w.name == name) {
            if let Some(config) = worker.tls.as_mut() {
                *config = tls.server.clone();
                found = true;
            }
        }
        found
    }

    /// Whether the connection `id` speaks TLS.
    pub fn is_tls(&self, id: ConnId) -> bool {
        self.reactor.conn(id).is_some_and(|c| c.tls.is_some())
    }

    /// How many connections the worker named `name` has refused for its `max_connections`
    /// or `fd_reserve` since start.
    pub fn refused_connections(&self, name: &str) -> u64 {
        self.reactor
            .workers
            .iter()
            .filter(|w| w.name == name)
            .map(|w| w.refused)
            .sum()
    }

    /// The addresses the listeners are bound to, in the order they were listened.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.reactor
            .workers
            .iter()
            .filter(|w| !w.outbound)
            .map(|w| w.local_addr)
            .collect()
    }
}
