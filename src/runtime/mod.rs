//! The event loop: polls, accepts, reads and decodes, runs callbacks and timers, stops.

mod accept;
mod input;
mod limits;

use crate::{
    codec::ws::CloseCode,
    connection::ConnId,
    ctx::Ctx,
    error::Result,
    reactor::{
        conn::{Codec, InBuf, Phase, Progress},
        timer::TimerId,
        token::{self, Target},
        Deferred, Io, SignalRequest, Signals, Task,
    },
    worker::{Handlers, Worker},
};
use mio::{Events, Waker};
use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// How long a graceful stop waits for connections to close before dropping them.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of the read buffer shared by all connections.
const READ_BUF: usize = 64 << 10;
/// Reads per readiness event before other connections get a turn.
const READ_BUDGET: usize = 16;
/// Pending input kept in the connection's own buffer, instead of copied back and forth
/// through the shared one, above this size.
const KEEP_INPUT: usize = 4 << 10;

/// Stops a running [`Runtime`] from another thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the runtime to stop gracefully, as SIGTERM does.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

type ReloadFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>)>;

/// The reactor with its workers' callbacks and the application state; [`Worker::run_all`]
/// is the short way to build and run one.
pub struct Runtime<S> {
    io: Io<S>,
    state: S,
    /// Callbacks, indexed like `io.workers`.
    handlers: Vec<Handlers<S>>,
    /// Workers whose `on_worker_start` has not run yet.
    unstarted: usize,
    stop_flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
    handle_signals: bool,
    reload: Option<ReloadFn<S>>,
    /// Shared by all connections: only a partial message stays with its connection.
    read_buf: InBuf,
    /// When a graceful stop gives up waiting.
    stop_deadline: Option<Instant>,
    /// The first `on_worker_start` error; ends `run`.
    fatal: Option<crate::Error>,
    /// The open-files limit and the descriptors not used by connections (`fd_reserve`).
    fds: limits::FdBudget,
}

impl<S> std::fmt::Debug for Runtime<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Runtime<S> {
    /// A runtime owning `state`, with no workers yet.
    ///
    /// # Errors
    /// When the OS refuses a poll instance.
    pub fn new(state: S) -> Result<Self> {
        let io = Io::new()?;
        let waker = Arc::new(Waker::new(io.poll.registry(), token::WAKER)?);
        Ok(Self {
            io,
            state,
            handlers: Vec::new(),
            unstarted: 0,
            stop_flag: Arc::new(AtomicBool::new(false)),
            waker,
            handle_signals: true,
            reload: None,
            read_buf: InBuf::default(),
            stop_deadline: None,
            fatal: None,
            fds: limits::FdBudget::default(),
        })
    }

    /// Binds `worker` now (its `on_worker_start` runs when [`Runtime::run`] starts);
    /// returns the bound address.
    ///
    /// # Errors
    /// [`crate::Error::Bind`] when the address cannot be bound.
    pub fn listen(&mut self, worker: Worker<S>) -> Result<SocketAddr> {
        let addr = self.io.listen(worker)?;
        self.handlers.append(&mut self.io.new_handlers);
        Ok(addr)
    }

    /// A handle that stops the runtime from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: self.stop_flag.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Whether `run` handles SIGINT/SIGTERM (graceful stop) and SIGHUP/SIGUSR1 (reload).
    /// On by default; turn it off to run several runtimes in one process.
    pub fn handle_signals(&mut self, on: bool) {
        self.handle_signals = on;
    }

    /// Called on SIGHUP or SIGUSR1 (Workerman's `reload`), when signals are handled.
    pub fn on_reload(&mut self, f: impl FnMut(&mut Ctx<'_, S>) + 'static) {
        self.reload = Some(Box::new(f));
    }

    /// Schedules a timer before the loop starts (see [`Io::add_timer`]).
    pub fn add_timer(
        &mut self,
        interval: Duration,
        repeat: bool,
        f: impl FnMut(&mut Ctx<'_, S>) + 'static,
    ) -> TimerId {
        self.io.add_timer(interval, repeat, f)
    }

    /// The state, e.g. to inspect it after `run` in tests.
    pub fn state(&mut self) -> &mut S {
        &mut self.state
    }

    /// Runs the loop until a graceful stop completes.
    ///
    /// # Errors
    /// An `on_worker_start` error, or a failing poll.
    pub fn run(mut self) -> Result<()> {
        let mut signals = if self.handle_signals {
            Some(Signals::install(self.io.poll.registry())?)
        } else {
            None
        };
        let mut events = Events::with_capacity(1024);
        self.fds = limits::FdBudget::measure(self.io.conns.len());
        self.io.now = Instant::now();
        self.after_callback();
        loop {
            if let Some(err) = self.fatal.take() {
                return Err(err);
            }
            if self.stop_flag.load(Ordering::SeqCst) {
                self.io.stop_requested = true;
            }
            if self.io.stop_requested && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            if let Some(deadline) = self.stop_deadline {
                if self.io.conns.is_empty() || self.io.now >= deadline {
                    return Ok(());
                }
            }
            let timeout = self.poll_timeout();
            if let Err(e) = self.io.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
            self.io.now = Instant::now();
            for event in events.iter() {
                match token::target(event.token()) {
                    Target::Waker => {}
                    Target::Signals => match signals.as_mut().and_then(Signals::drain) {
                        Some(SignalRequest::Stop) => self.io.stop_requested = true,
                        Some(SignalRequest::Reload) => self.reload(),
                        None => {}
                    },
                    // A paused listener's own retry timer accepts; a stale event must not
                    // start a second retry chain.
                    Target::Listener(index) if self.io.listeners[index].paused.is_some() => {}
                    Target::Listener(index) => self.accept(index),
                    Target::Conn(key) => {
                        if event.is_writable() {
                            self.writable(key);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // A FIN or error already seen must be read to its end: no new
                            // edge will announce it.
                            let more_edges = !event.is_read_closed() && !event.is_error();
                            self.readable(key, more_edges);
                        }
                    }
                }
            }
            for key in std::mem::take(&mut self.io.ready) {
                self.readable(key, false);
            }
            self.run_timers();
            self.free_dead();
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.io.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let timers = self.io.timers.next_timeout(self.io.now);
        let stop = self
            .stop_deadline
            .map(|d| d.saturating_duration_since(self.io.now));
        match (timers, stop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs `f` with a context and the handlers of `worker`, then delivers what it caused.
    fn call<R>(
        &mut self,
        worker: usize,
        f: impl FnOnce(&mut Handlers<S>, &mut Ctx<'_, S>) -> R,
    ) -> R {
        let mut ctx = Ctx {
            state: &mut self.state,
            io: &mut self.io,
        };
        let result = f(&mut self.handlers[worker], &mut ctx);
        self.after_callback();
        result
    }

    /// Delivers everything callbacks caused: starts new workers, applies closes, and runs
    /// deferred callbacks until nothing is left.
    fn after_callback(&mut self) {
        loop {
            self.handlers.append(&mut self.io.new_handlers);
            if self.unstarted < self.handlers.len() {
                let worker = self.unstarted;
                self.unstarted += 1;
                let mut ctx = Ctx {
                    state: &mut self.state,
                    io: &mut self.io,
                };
                if let Some(start) = self.handlers[worker].worker_start.as_mut() {
                    if let Err(e) = start(&mut ctx) {
                        self.fatal.get_or_insert(e);
                    }
                }
                continue;
            }
            if let Some(key) = self.io.close_requests.pop() {
                self.apply_close(key);
                continue;
            }
            let Some(event) = self.io.deferred.pop_front() else {
                break;
            };
            let mut ctx = Ctx {
                state: &mut self.state,
                io: &mut self.io,
            };
            match event {
                Deferred::Error(id, w, err) => {
                    if let Some(f) = self.handlers[w].error.as_mut() {
                        f(&mut ctx, id, &err);
                    }
                }
                Deferred::Close(id, w) => {
                    if let Some(f) = self.handlers[w].close.as_mut() {
                        f(&mut ctx, id);
                    }
                }
                Deferred::BufferFull(id, w) => {
                    if let Some(f) = self.handlers[w].buffer_full.as_mut() {
                        f(&mut ctx, id);
                    }
                }
                Deferred::BufferDrain(id, w) => {
                    if let Some(f) = self.handlers[w].buffer_drain.as_mut() {
                        f(&mut ctx, id);
                    }
                }
            }
        }
    }

    /// Carries out `close` on slot `key`: the WebSocket close frame, then the flush.
    fn apply_close(&mut self, key: usize) {
        let Some(conn) = self.io.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Closing {
            return;
        }
        if let (Some((code, reason)), Codec::Ws(session)) =
            (conn.close_request.take(), &mut conn.codec)
        {
            let mut out = std::mem::take(&mut self.io.scratch);
            out.clear();
            session.close(code, &reason, &mut out);
            let _ = conn.write_parts(&[&out]);
            self.io.scratch = out;
        }
        self.finish_close_if_flushed(key);
    }

    /// A closing connection whose output is flushed shuts down its write side and lingers
    /// (or, if the peer already closed, is done).
    fn finish_close_if_flushed(&mut self, key: usize) {
        let conn = &mut self.io.conns[key];
        if conn.phase != Phase::Closing || !conn.output.is_empty() {
            self.io.update_interest(key);
            return;
        }
        if conn.peer_eof {
            self.io.kill(key, None);
            return;
        }
        let _ = conn.socket.shutdown(std::net::Shutdown::Write);
        conn.phase = Phase::Linger;
        // Input may already be waiting; linger reads it on the next turn.
        self.io.ready.push(key);
        self.io.update_interest(key);
    }

    fn writable(&mut self, key: usize) {
        if self.flush_output(key) {
            self.after_callback();
        }
    }

    /// Writes what `key` has queued, if it may write: on an error the connection dies; once
    /// drained, `on_buffer_drain` is owed if the buffer had been full, and a close asked for
    /// can finish. Returns whether it was drained.
    fn flush_output(&mut self, key: usize) -> bool {
        let Some(conn) = self.io.conns.get_mut(key) else {
            return false;
        };
        if matches!(conn.phase, Phase::Dead | Phase::Linger) || conn.hold_output {
            return false;
        }
        let flushed = conn.flush();
        if conn.backlogged && conn.output.len() < conn.max_send_buffer / 2 {
            // Backpressure lifts: decode what waits, then read again.
            conn.backlogged = false;
            self.io.ready.push(key);
        }
        match flushed {
            Progress::Error(e) => {
                self.io.kill(key, Some(crate::ConnError::Io(e)));
                false
            }
            Progress::Drained => {
                if std::mem::take(&mut conn.buffer_full) {
                    let (id, worker) = (conn.id, conn.worker);
                    self.io
                        .deferred
                        .push_back(Deferred::BufferDrain(id, worker));
                }
                self.finish_close_if_flushed(key);
                true
            }
            Progress::Moved | Progress::Eof => {
                // Output remains: WRITABLE interest (withheld while corked) carries it on.
                self.io.update_interest(key);
                false
            }
        }
    }

    /// Reads and processes what `key`'s peer sent. With `more_edges`, a read that leaves room
    /// in the buffer ends the batch without a last read to see `WouldBlock`: the socket was
    /// empty then, and anything that arrives later raises a new edge-triggered event (tokio
    /// relies on the same). That saves one syscall per wake-up, a fifth of a lone push's.
    fn readable(&mut self, key: usize, more_edges: bool) {
        let Some(conn) = self.io.conns.get_mut(key) else {
            return;
        };
        match conn.phase {
            Phase::Dead => return,
            Phase::Linger => {
                // Stopping, a drained non-WebSocket connection has nothing unread that
                // could turn our close into a reset; only WebSocket peers owe a close reply.
                let stopping = self.stop_deadline.is_some();
                match conn.read_discard() {
                    Progress::Eof => self.io.kill(key, None),
                    Progress::Error(e) => self.io.kill(key, Some(crate::ConnError::Io(e))),
                    Progress::Drained
                        if stopping && conn.protocol != crate::Protocol::WebSocket =>
                    {
                        self.io.kill(key, None)
                    }
                    _ => {}
                }
                self.after_callback();
                return;
            }
            Phase::Open | Phase::Closing if conn.recv_paused || conn.backlogged => return,
            Phase::Open | Phase::Closing => {}
        }
        let mut buf = self.take_input(key);
        self.io.conns[key].corked = true;
        // Input left pending by a pause comes first.
        self.process_input(key, &mut buf);
        let mut outcome = Progress::Drained;
        for _ in 0..READ_BUDGET {
            let conn = &mut self.io.conns[key];
            if !matches!(conn.phase, Phase::Open | Phase::Closing)
                || conn.recv_paused
                || conn.backlogged
            {
                break;
            }
            buf.reserve(4096);
            let room = buf.data.len() - buf.end;
            let end_before = buf.end;
            outcome = conn.read_into(&mut buf);
            if !matches!(outcome, Progress::Moved) {
                break;
            }
            conn.last_active = self.io.now;
            let short = buf.end - end_before < room;
            self.process_input(key, &mut buf);
            if short && more_edges {
                outcome = Progress::Drained;
                break;
            }
        }
        self.put_input(key, buf);
        self.track_partial(key);
        self.uncork(key);
        match outcome {
            Progress::Moved => self.io.ready.push(key),
            Progress::Eof => self.peer_closed(key),
            Progress::Error(e) => self.io.kill(key, Some(crate::ConnError::Io(e))),
            Progress::Drained => {}
        }
        self.after_callback();
    }

    /// Ends a read batch: writes the replies it gathered in one go.
    fn uncork(&mut self, key: usize) {
        if let Some(conn) = self.io.conns.get_mut(key) {
            conn.corked = false;
            self.flush_output(key);
        }
    }

    /// The peer will send nothing more: answer what it sent, then close.
    fn peer_closed(&mut self, key: usize) {
        let conn = &mut self.io.conns[key];
        conn.peer_eof = true;
        match conn.phase {
            Phase::Open => {
                let id = conn.id;
                // A WebSocket peer that vanishes without a close frame gets none either.
                if let Codec::Ws(_) = conn.codec {
                    self.io.kill(key, None);
                } else {
                    self.io.close(id);
                }
            }
            Phase::Closing => self.finish_close_if_flushed(key),
            Phase::Linger | Phase::Dead => {}
        }
    }

    /// The buffer to read into: the connection's own if it holds a large partial message,
    /// else the shared one with the connection's few pending bytes copied in.
    fn take_input(&mut self, key: usize) -> InBuf {
        let conn = &mut self.io.conns[key];
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

    /// Leaves the unconsumed bytes with the connection, returning shared memory.
    fn put_input(&mut self, key: usize, buf: InBuf) {
        let Some(conn) = self
            .io
            .conns
            .get_mut(key)
            .filter(|c| c.phase != Phase::Dead)
        else {
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

    fn run_timers(&mut self) {
        while let Some((id, task)) = self.io.timers.pop_due(self.io.now) {
            match task {
                Task::User(mut f) => {
                    let mut ctx = Ctx {
                        state: &mut self.state,
                        io: &mut self.io,
                    };
                    f(&mut ctx);
                    self.io.timers.restore(id, Task::User(f));
                    self.after_callback();
                }
                Task::CloseDeadline(conn) => {
                    if self.io.conns.get(conn.slot()).is_some_and(|c| c.id == conn) {
                        self.io.kill(conn.slot(), None);
                        self.after_callback();
                    }
                }
                Task::AcceptRetry(index) => self.retry_accept(index),
                Task::ConnDeadline(conn) => self.deadline_due(conn),
            }
        }
    }

    fn free_dead(&mut self) {
        for key in std::mem::take(&mut self.io.dead) {
            if let Some(conn) = self.io.conns.get(key).filter(|c| c.phase == Phase::Dead) {
                let worker = conn.worker;
                self.io.workers[worker].open -= 1;
                self.io.conns.remove(key);
            }
        }
    }

    fn reload(&mut self) {
        if let Some(f) = self.reload.as_mut() {
            let mut ctx = Ctx {
                state: &mut self.state,
                io: &mut self.io,
            };
            f(&mut ctx);
            self.after_callback();
        }
    }

    /// Stops accepting, runs `on_worker_stop`, and closes every connection (WebSockets with
    /// 1001). `run` returns once all are closed or [`STOP_TIMEOUT`] has passed.
    fn begin_stop(&mut self) {
        let n = self.io.conns.len();
        log::info!(
            "stopping: closing {n} connection{}",
            if n == 1 { "" } else { "s" }
        );
        self.stop_deadline = Some(self.io.now + STOP_TIMEOUT);
        for listener in &mut self.io.listeners {
            if let Some(mut socket) = listener.socket.take() {
                let _ = self.io.poll.registry().deregister(&mut socket);
            }
        }
        for worker in 0..self.handlers.len() {
            self.call(worker, |h, ctx| {
                if let Some(f) = h.worker_stop.as_mut() {
                    f(ctx);
                }
            });
        }
        let ids: Vec<ConnId> = self.io.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.io
                .close_with(id, CloseCode::GOING_AWAY.0, "server shutting down");
        }
        self.after_callback();
    }
}
