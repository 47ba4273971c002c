//! The event loop: polls, accepts, reads and decodes, runs callbacks and timers, stops.

mod close;
pub mod connection;
pub mod ctx;
mod input;
pub mod io;
mod load;
mod spin;
pub mod worker;

use crate::{
    error::Result,
    reactor::{
        conn::{Phase, Progress},
        connect::Connecting,
        limits::FdBudget,
        read::Read,
        timer::TimerId,
        token::{self, Target},
        Deferred, SignalRequest, Signals, Task,
    },
};
use ctx::Ctx;
use io::Io;
use load::Load;
use mio::{Events, Waker};
use spin::Spin;
pub use spin::DEFAULT_SPIN;
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use worker::{Handlers, Worker};

/// Reads per readiness event before other connections get a turn.
const READ_BUDGET: usize = 16;
/// A write batch smaller than this, after a poll that found one event, is flushed at once:
/// light load pays no extra poll.
const DEFER_MIN: usize = 4 << 10;
/// A write batch is flushed at the latest once it holds this much (see `defer_flush`)...
const DEFER_LIMIT: usize = crate::reactor::BATCH_LIMIT;
/// ...or once its oldest message has waited this long, or as long as the last large flush
/// took if that was longer (see `defer_flush`)...
const DEFER_MAX_AGE: Duration = Duration::from_millis(50);
/// ...but never longer than this.
const DEFER_MAX_AGE_CAP: Duration = Duration::from_millis(200);
/// How long a saturated loop's deferred batch may wait for more input (see `defer_wait`).
const DEFER_WAIT: Duration = Duration::from_millis(1);
/// How long after a large flush the write batch gives back the memory a burst made it grow
/// to (see `batch_release_at`).
const BATCH_IDLE_RELEASE: Duration = Duration::from_millis(250);

/// At light load, a peer whose input comes within this long of the answer to its previous
/// input is taken to wait for each answer before it writes again (request-response, like
/// push.php's `fwrite` then `fread`), as Linux's TCP takes a peer that answers within its
/// ack timeout to be interactive. Its answer then leaves before the frames its input caused:
/// the frames' writes overlap its next request, where otherwise it waits for both (one
/// backend, one line at a time: ~1.7x the pushes per second on a loopback host). A
/// peer that writes less often (a paced stream, or any peer more than this far away) gets
/// the frames first, so a browser sees a push one write sooner.
const REQUEST_RESPONSE: Duration = Duration::from_micros(200);

/// Whether a peer answered at `answered` (at light load) and writing again at `now` is
/// waiting for answers (see [`REQUEST_RESPONSE`]).
fn waits_for_answers(answered: Option<Instant>, now: Instant) -> bool {
    answered.is_some_and(|at| now.saturating_duration_since(at) < REQUEST_RESPONSE)
}

/// The earlier of two optional limits (`None`: no limit).
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `events` hold more than the alarm's ring: readiness a peer caused, which the
/// spin and the write batch's deferral count as input.
fn has_input(events: &Events) -> bool {
    events.iter().any(|e| e.token() != token::ALARM)
}

/// One `epoll_wait`; an interrupted one counts as finding nothing.
fn poll_once(poll: &mut mio::Poll, events: &mut Events, timeout: Option<Duration>) -> Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() != std::io::ErrorKind::Interrupted => Err(e.into()),
        _ => Ok(()),
    }
}

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
type TurnEndFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>)>;

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
    /// Installed by the first `listen` (or by `run`): a stop asked for once a listener is
    /// bound, and perhaps announced, is never lost to the default action (exit).
    signals: Option<Signals>,
    reload: Option<ReloadFn<S>>,
    /// When a graceful stop gives up waiting.
    stop_deadline: Option<Instant>,
    /// The first `on_worker_start` error; ends `run`.
    fatal: Option<crate::Error>,
    /// Runs once per turn, before the turn's output may leave (see `on_turn_end`).
    turn_end: Option<TurnEndFn<S>>,
    /// Whether each turn's output is held until `turn_end` has run (see `hold_output`).
    hold_output: bool,
    /// Input events the last poll returned, readable or closed (see `busy`): sockets
    /// that only became writable again bring no work to gather. A poll woken only by the
    /// alarm leaves it as it was.
    found: usize,
    /// Whether to poll without sleeping for a while first (see [`Runtime::spin`]).
    spin: Spin,
    /// Whether the loop has been all work lately (see `defer_wait`).
    load: Load,
    /// How long the last flush of at least [`DEFER_MIN`] bytes took (see `defer_flush`).
    last_flush: Duration,
    /// When a large flush last moved the batch's release deadline (see `batch_release_at`).
    batch_large_at: Option<Instant>,
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
        let waker = Arc::new(Waker::new(io.reactor.poll.registry(), token::WAKER)?);
        Ok(Self {
            io,
            state,
            handlers: Vec::new(),
            unstarted: 0,
            stop_flag: Arc::new(AtomicBool::new(false)),
            waker,
            handle_signals: true,
            signals: None,
            reload: None,
            stop_deadline: None,
            fatal: None,
            turn_end: None,
            hold_output: false,
            found: 0,
            spin: Spin::new(spin::DEFAULT_SPIN),
            load: Load::new(Instant::now()),
            last_flush: Duration::ZERO,
            batch_large_at: None,
        })
    }

    /// Binds `worker` now (its `on_worker_start` runs when [`Runtime::run`] starts);
    /// returns the bound address.
    ///
    /// # Errors
    /// [`crate::Error::Bind`] when the address cannot be bound.
    pub fn listen(&mut self, worker: Worker<S>) -> Result<SocketAddr> {
        self.install_signals()?;
        let addr = self.io.listen(worker)?;
        self.handlers.append(&mut self.io.new_handlers);
        Ok(addr)
    }

    /// Registers an outbound worker before the loop starts (see [`Io::upstream`]).
    ///
    /// # Errors
    /// As [`Io::upstream`].
    pub fn upstream(&mut self, worker: Worker<S>) -> Result<io::Upstream> {
        let upstream = self.io.upstream(worker)?;
        self.handlers.append(&mut self.io.new_handlers);
        Ok(upstream)
    }

    /// A handle that stops the runtime from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: self.stop_flag.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Whether the runtime handles SIGINT/SIGTERM (graceful stop) and SIGHUP/SIGUSR1
    /// (reload), from the first [`Runtime::listen`] on: a signal that arrives before
    /// [`Runtime::run`] is acted on when it starts. On by default; turn it off to run
    /// several runtimes in one process.
    pub fn handle_signals(&mut self, on: bool) {
        self.handle_signals = on;
        if !on {
            self.signals = None;
        }
    }

    fn install_signals(&mut self) -> Result<()> {
        if self.handle_signals && self.signals.is_none() {
            self.signals = Some(Signals::install(self.io.reactor.poll.registry())?);
        }
        Ok(())
    }

    /// Called on SIGHUP or SIGUSR1 (Workerman's `reload`), when signals are handled.
    pub fn on_reload(&mut self, f: impl FnMut(&mut Ctx<'_, S>) + 'static) {
        self.reload = Some(Box::new(f));
    }

    /// Called once per turn of the loop: after the turn's readiness events, deferred
    /// callbacks and due timers, before the output they produced is flushed (and before a
    /// graceful stop returns). The place to make a turn's work durable in one step, e.g. one
    /// database commit for a burst of pushes. Output the hook itself sends leaves with the
    /// rest. What it costs is added to every turn: keep it O(work done in the turn).
    pub fn on_turn_end(&mut self, f: impl FnMut(&mut Ctx<'_, S>) + 'static) {
        self.turn_end = Some(Box::new(f));
    }

    /// With `on`, no socket write happens during a turn: every message sent (frames,
    /// replies, handshake answers, close frames, large messages that would be written at
    /// once) waits in the write batch or its connection's buffer until
    /// [`on_turn_end`](Self::on_turn_end) has run, then leaves as usual. So a reply or frame
    /// never reaches a peer before the hook that commits what it announces. Off by default;
    /// costs at most one turn of latency. A held turn's batch may outgrow the usual
    /// flush-at limit (4 MiB); past it messages wait in their connection's buffer, which
    /// its send buffer limit bounds.
    pub fn hold_output(&mut self, on: bool) {
        self.hold_output = on;
    }

    /// How long the loop keeps polling without sleeping after a quick wake-up, so a peer
    /// that answers within that long (a backend waiting for each `ok`) finds it awake
    /// instead of paying a sleep and a wake-up per message; [`Duration::ZERO`] turns it
    /// off. Default [`DEFAULT_SPIN`] (50 µs). Only after a streak of waits shorter than the window, and a spin
    /// that finds nothing sleeps again: an idle loop, or one paced slower, sleeps as before,
    /// and misses in a row make spins rarer. Off on a machine with one CPU, where the peer
    /// could not run meanwhile.
    pub fn spin(&mut self, window: Duration) {
        self.spin = Spin::new(window);
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
        self.install_signals()?;
        let mut signals = self.signals.take();
        let mut events = Events::with_capacity(1024);
        self.io.reactor.fds = FdBudget::measure(self.io.reactor.conns.len());
        self.io.reactor.now = Instant::now();
        self.after_callback();
        loop {
            if let Some(err) = self.fatal.take() {
                return Err(err);
            }
            if self.stop_flag.load(Ordering::SeqCst) {
                self.io.reactor.stop_requested = true;
            }
            if self.io.reactor.stop_requested && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            self.end_turn();
            if let Some(deadline) = self.stop_deadline {
                if self.io.reactor.conns.is_empty() || self.io.reactor.now >= deadline {
                    return Ok(());
                }
            }
            let wait = if self.defer_flush() {
                Some(self.defer_wait())
            } else {
                self.flush_batch();
                self.ready_wait()
            };
            self.io.reactor.sealed = self.hold_output;
            let found_input = self.poll(&mut events, wait, self.next_deadline())?;
            let input = events
                .iter()
                .filter(|e| e.token() != token::ALARM && (e.is_readable() || e.is_read_closed()))
                .count();
            // A timer's ring says nothing about the input: a burst's batch keeps gathering
            // through it (the daemon's 10 ms heartbeat would otherwise end each gathering
            // early, with fewer frames per `writev`).
            if found_input || events.is_empty() {
                self.found = input;
            }
            if self
                .batch_release_at()
                .is_some_and(|at| at <= self.io.reactor.now)
            {
                self.io.reactor.batch.release();
            }
            for event in events.iter() {
                match token::target(event.token()) {
                    Target::Waker => {}
                    Target::Alarm => self.io.reactor.alarm.rang(),
                    Target::Signals => match signals.as_mut().and_then(Signals::drain) {
                        Some(SignalRequest::Stop) => self.io.reactor.stop_requested = true,
                        Some(SignalRequest::Reload) => self.reload(),
                        None => {}
                    },
                    // A paused listener's own retry timer accepts; a stale event must not
                    // start a second retry chain.
                    Target::Listener(index)
                        if self.io.reactor.listeners[index].paused.is_some() => {}
                    Target::Listener(index) => self.accept(index),
                    Target::Conn(key) => {
                        match self.io.reactor.connect_ready(key) {
                            Connecting::No => {}
                            Connecting::Pending => continue,
                            Connecting::Failed => {
                                self.after_callback();
                                continue;
                            }
                            Connecting::Established => {
                                self.after_callback();
                                // Sends queued while connecting leave now.
                                self.writable(key);
                            }
                        }
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
            for key in std::mem::take(&mut self.io.reactor.ready) {
                self.readable(key, false);
            }
            self.run_timers();
            self.io.reactor.free_dead();
        }
    }

    /// Waits for readiness at most `wait` (`None`: no limit) and until `deadline` (a
    /// timer's or a stop's), spinning first while recent waits were short (see
    /// [`Runtime::spin`]); the loop's clock reads when the wait ended. The deadline is the
    /// reactor's alarm's to keep (`reactor/alarm.rs`), so the sleep itself usually has no
    /// timeout. Returns whether a peer's readiness came (not only the alarm's ring).
    fn poll(
        &mut self,
        events: &mut Events,
        wait: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        let reactor = &mut self.io.reactor;
        let start = Instant::now();
        let left = deadline.map(|d| d.saturating_duration_since(start));
        events.clear();
        let mut found = false;
        let spin = self.spin.before(earliest(wait, left));
        if let Some(window) = spin {
            loop {
                poll_once(&mut reactor.poll, events, Some(Duration::ZERO))?;
                let any = !events.is_empty();
                found = any && has_input(events);
                if any || start.elapsed() >= window {
                    break;
                }
                std::hint::spin_loop();
            }
            self.spin.spun(window, found);
        }
        if events.is_empty() {
            // What the spin used of the wait is not waited again; a deadline within the
            // window is due now (the alarm says so: zero). Without a spin, `start` is still
            // the time: one clock read per sleep fewer (light load sleeps once a push).
            let now = if spin.is_some() {
                Instant::now()
            } else {
                start
            };
            let wait = wait.map(|t| t.saturating_sub(now.saturating_duration_since(start)));
            let alarm = reactor.alarm.set(deadline, now);
            poll_once(&mut reactor.poll, events, earliest(wait, alarm))?;
            found = has_input(events);
        }
        let now = Instant::now();
        reactor.now = now;
        let took = now.saturating_duration_since(start);
        self.spin.waited(took, found);
        self.load.waited(took, now);
        Ok(found)
    }

    /// Runs the turn-end hook, then lets held output go (see [`Runtime::hold_output`]):
    /// connections' own buffers now, the batch by the usual flush that follows.
    fn end_turn(&mut self) {
        if let Some(f) = self.turn_end.as_mut() {
            let mut ctx = Ctx {
                state: &mut self.state,
                io: &mut self.io,
            };
            f(&mut ctx);
        }
        self.io.reactor.unseal();
        self.after_callback();
    }

    /// Whether the write batch may wait for one more turn: only under a burst, when the last
    /// poll found several sources of work (or the batch is large, [`DEFER_MIN`]) so the
    /// next poll, which then does not sleep, likely finds more input to add; while the batch
    /// is under [`DEFER_LIMIT`] and younger than `max_defer`; and not while stopping.
    /// Frames that would be written one by one then leave in fewer, fuller `writev`s
    /// (random uids over 10,000 clients: one turn's batch rarely holds two frames for a
    /// connection, a few turns' do), which raises what a saturated loop delivers. A lone
    /// message (one event, a small batch) is flushed at once, and nothing waits for a sleep.
    fn defer_flush(&self) -> bool {
        let pending = self.io.reactor.batch.len();
        let young = self
            .defer_deadline()
            .map_or(true, |deadline| deadline > self.io.reactor.now);
        self.busy() && pending > 0 && pending < DEFER_LIMIT && young && self.stop_deadline.is_none()
    }

    /// When the batch's oldest message has waited as long as it may (`None`: empty).
    fn defer_deadline(&self) -> Option<Instant> {
        self.io
            .reactor
            .batch
            .since()
            .map(|since| since + self.max_defer())
    }

    /// How long the batch may wait: [`DEFER_MAX_AGE`], or as long as the last large flush
    /// took (up to [`DEFER_MAX_AGE_CAP`]). A burst's flush writes to nearly every connection
    /// and costs about the same however full the batch is (at 10,000 clients on loopback
    /// ~100 ms, each `writev` also running the receiver's TCP input): gathering at least as
    /// long as that keeps writing to at most half the loop's time, and a server that does
    /// more per push (the inbox) does not also lose frames per `writev`.
    fn max_defer(&self) -> Duration {
        DEFER_MAX_AGE.max(self.last_flush.min(DEFER_MAX_AGE_CAP))
    }

    /// Whether the loop is under a burst: the last poll found several sources of input, or
    /// one and the write batch is already large.
    fn busy(&self) -> bool {
        let pending = self.io.reactor.batch.len();
        self.found >= 2 || (self.found == 1 && pending >= DEFER_MIN)
    }

    /// How long the poll of a turn whose batch is deferred may wait for more input: up to
    /// [`DEFER_WAIT`] (within the batch's age bound and the next timer) once the loop is
    /// saturated, else not at all. A saturated loop's next poll often comes before a
    /// backend has read its answers and written again, and an empty poll would flush the
    /// batch with about one frame per `writev` (16 lines in flight over 4 backends:
    /// ~90,000 pushes/s, waiting ~160,000-210,000). At light load nothing waits: a backend
    /// that wrote two lines at once gets its frames sent at once.
    fn defer_wait(&self) -> Duration {
        if !self.load.saturated() {
            return Duration::ZERO;
        }
        let age_left = self.defer_deadline().map_or(Duration::ZERO, |deadline| {
            deadline.saturating_duration_since(self.io.reactor.now)
        });
        let wait = DEFER_WAIT.min(age_left);
        self.ready_wait().map_or(wait, |t| t.min(wait))
    }

    /// How long the poll may wait for input: not at all while slots wait to be read again.
    /// Timers are not counted here (see `next_deadline`).
    fn ready_wait(&self) -> Option<Duration> {
        (!self.io.reactor.ready.is_empty()).then_some(Duration::ZERO)
    }

    /// When the loop must run even without input: the next timer, a graceful stop's
    /// deadline, or the write batch's memory release.
    fn next_deadline(&self) -> Option<Instant> {
        let timers = self.io.reactor.timers.next_deadline();
        earliest(
            earliest(timers, self.stop_deadline),
            self.batch_release_at(),
        )
    }

    /// When the empty write batch gives back the memory a burst made it grow to:
    /// [`BATCH_IDLE_RELEASE`] after `batch_large_at` (so 3/4 to all of it after the last
    /// large flush), whether the loop is idle or busy with light load since (`None`: it
    /// keeps no excess, or messages wait, so a burst's wait for input is never cut short
    /// by it). A point in time that moves only with large flushes, so the alarm is not
    /// re-armed per turn (nor disarmed while messages wait: see `Alarm::set`): a poll
    /// timeout per sleep instead cost a kernel timer per wake-up for as long as the memory
    /// was held (at 10k pushes/s after a burst, for ever).
    fn batch_release_at(&self) -> Option<Instant> {
        if !self.io.reactor.batch.holds_excess() {
            return None;
        }
        Some(
            self.batch_large_at
                .map_or(self.io.reactor.now, |at| at + BATCH_IDLE_RELEASE),
        )
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
    /// deferred callbacks until nothing is left. Inlined for the usual case, nothing
    /// (twice a push at light load).
    #[inline]
    fn after_callback(&mut self) {
        let reactor = &self.io.reactor;
        let caused = !self.io.new_handlers.is_empty()
            || self.unstarted < self.handlers.len()
            || !reactor.close_requests.is_empty()
            || !reactor.deferred.is_empty();
        if caused {
            self.deliver_caused();
        }
    }

    /// [`Runtime::after_callback`]'s work when there is some.
    fn deliver_caused(&mut self) {
        loop {
            if !self.io.new_handlers.is_empty() {
                self.handlers.append(&mut self.io.new_handlers);
            }
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
            if let Some(key) = self.io.reactor.close_requests.pop() {
                self.io.reactor.apply_close(key);
                continue;
            }
            let Some(event) = self.io.reactor.deferred.pop_front() else {
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
                    self.io.reactor.schedule_reconnect(id);
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
                Deferred::Connect(id, w) => {
                    if let Some(f) = self.handlers[w].connect.as_mut() {
                        f(&mut ctx, id);
                    }
                }
            }
        }
    }

    /// Writes what the turn gathered for each connection (one `writev` each), and what the
    /// callbacks this causes (`on_close` of a connection whose write failed) send in turn.
    fn flush_batch(&mut self) {
        let timed = (self.io.reactor.batch.len() >= DEFER_MIN).then(Instant::now);
        while !self.io.reactor.batch.is_empty() {
            self.io.reactor.flush_batch();
            self.after_callback();
        }
        if let Some(start) = timed {
            self.last_flush = start.elapsed();
            // Moved by at least a quarter of the delay, so that the release deadline (the
            // alarm's, when no timer comes sooner) changes a few times a second at most.
            let now = self.io.reactor.now;
            if self
                .batch_large_at
                .map_or(true, |at| now >= at + BATCH_IDLE_RELEASE / 4)
            {
                self.batch_large_at = Some(now);
            }
        }
    }

    fn writable(&mut self, key: usize) {
        if self.io.reactor.flush_output(key) {
            self.after_callback();
        }
    }

    /// Reads and processes what `key`'s peer sent. With `more_edges`, a read that leaves room
    /// in the buffer ends the batch without a last read to see `WouldBlock`: the socket was
    /// empty then, and anything that arrives later raises a new edge-triggered event (tokio
    /// relies on the same). That saves one syscall per wake-up, a fifth of a lone push's.
    fn readable(&mut self, key: usize, more_edges: bool) {
        let reactor = &mut self.io.reactor;
        let Some(conn) = reactor.conns.get(key) else {
            return;
        };
        match conn.phase {
            Phase::Dead => return,
            Phase::Linger => {
                reactor.linger(key, self.stop_deadline.is_some());
                self.after_callback();
                return;
            }
            Phase::Open | Phase::Closing if !conn.may_read() => return,
            Phase::Open | Phase::Closing => {}
        }
        let mut buf = reactor.take_input(key);
        // Input left pending by a pause comes first.
        self.process_input(key, &mut buf);
        // What ended the batch; still `Moved` if the budget ran out with data waiting.
        let mut outcome = Progress::Moved;
        for _ in 0..READ_BUDGET {
            if !self.io.reactor.conns[key].may_read() {
                outcome = Progress::Drained;
                break;
            }
            match self.io.reactor.read_step(key, &mut buf) {
                Read::Done(end) => {
                    outcome = end;
                    break;
                }
                Read::Data { filled } => {
                    self.process_input(key, &mut buf);
                    if !filled && more_edges {
                        outcome = Progress::Drained;
                        break;
                    }
                }
            }
        }
        let reactor = &mut self.io.reactor;
        reactor.put_input(key, buf);
        reactor.track_partial(key);
        if reactor.sealed || self.busy() {
            // The batch may wait for more input: this connection's replies leave now, so a
            // pipelining peer keeps sending.
            self.io.reactor.uncork(key);
        } else {
            // The batch would leave at the end of this turn anyway: all of it now, in the
            // order it was produced, so a push's frame goes out before the "ok" to the
            // backend that sent it (its latency is what a browser sees). Unless that
            // backend waits for each answer before it writes again: then its answer
            // leaves first, and it writes its next line while the frames are written.
            let reactor = &mut self.io.reactor;
            let now = reactor.now;
            let answered = reactor.conns.get_mut(key).and_then(|conn| {
                conn.batched.as_ref()?;
                Some(conn.answered.replace(now))
            });
            if let Some(before) = answered {
                if waits_for_answers(before, now) {
                    self.io.reactor.uncork(key);
                }
            }
            self.flush_batch();
        }
        let reactor = &mut self.io.reactor;
        match outcome {
            Progress::Moved => reactor.ready.push(key),
            Progress::Eof => reactor.peer_closed(key),
            Progress::Error(e) => reactor.kill(key, Some(crate::ConnError::Io(e))),
            Progress::Drained => {}
        }
        self.after_callback();
    }

    fn run_timers(&mut self) {
        while let Some((id, task)) = self.io.reactor.timers.pop_due(self.io.reactor.now) {
            match task {
                Task::User(mut f) => {
                    let mut ctx = Ctx {
                        state: &mut self.state,
                        io: &mut self.io,
                    };
                    f(&mut ctx);
                    self.io.reactor.timers.restore(id, Task::User(f));
                    self.after_callback();
                }
                Task::CloseDeadline(conn) => {
                    if self.io.reactor.conn(conn).is_some() {
                        self.io.reactor.kill(conn.slot(), None);
                        self.after_callback();
                    }
                }
                // A paused listener's retry: it stays deregistered until an accept
                // succeeds, so waiting connections cannot wake the loop meanwhile.
                Task::AcceptRetry(index) => self.accept(index),
                Task::ConnDeadline(conn) => {
                    if self.io.reactor.deadline_due(conn) {
                        self.after_callback();
                    }
                }
                Task::ConnectDeadline(conn) => {
                    if self.io.reactor.connect_deadline(conn) {
                        self.after_callback();
                    }
                }
                Task::Reconnect(worker, addr) => self.io.reactor.reconnect(worker, addr),
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

    /// Accepts what listener `index` has waiting, each new connection announced to its
    /// worker's `on_connect` before the next is accepted.
    fn accept(&mut self, index: usize) {
        while let Some((id, worker)) = self.io.reactor.accept(index) {
            self.call(worker, |h, ctx| {
                if let Some(f) = h.connect.as_mut() {
                    f(ctx, id);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_writing_again_within_the_window_waits_for_answers_and_no_other_does() {
        let now = Instant::now() + Duration::from_secs(1);
        let within = now - REQUEST_RESPONSE / 4;
        let beyond = now - REQUEST_RESPONSE * 2;
        assert!(waits_for_answers(Some(within), now));
        assert!(!waits_for_answers(Some(beyond), now), "a paced peer");
        assert!(!waits_for_answers(None, now), "never answered yet");
        // The turn's clock never goes back, but a later reading must not count as "now".
        assert!(waits_for_answers(Some(now + Duration::from_micros(1)), now));
    }
}
