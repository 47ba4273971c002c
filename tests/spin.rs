//! The adaptive spin (`Runtime::spin`): a peer that answers at once finds the loop awake;
//! an idle or slower-paced loop sleeps, and timers keep their time while it spins.
//!
//! What the loop's thread did is read from `/proc`: its CPU time (`schedstat`), and its
//! voluntary context switches (one per sleep in `epoll_wait`).

mod common;

use common::*;
use pushman::{Runtime, Worker};
use std::{
    cell::Cell,
    io::{BufReader, Write},
    net::SocketAddr,
    rc::Rc,
    sync::{mpsc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// The tests measure a thread each; one at a time keeps them from slowing each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A text echo server in a thread of its own, whose loop spins up to `window` and runs a
/// repeating [`TICK`] timer; its thread yields the timer's ticks when stopped.
struct Echo {
    addr: SocketAddr,
    tid: String,
    stop: pushman::StopHandle,
    thread: JoinHandle<u32>,
}

const TICK: Duration = Duration::from_millis(10);

fn echo(window: Duration) -> Echo {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let ticks = Rc::new(Cell::new(0u32));
        let mut runtime = Runtime::new(()).unwrap();
        runtime.handle_signals(false);
        runtime.spin(window);
        let counter = ticks.clone();
        runtime.add_timer(TICK, true, move |_| counter.set(counter.get() + 1));
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.on_message(|ctx, conn, msg| {
            let _ = ctx.io.send(conn, msg.as_bytes());
        });
        let addr = runtime.listen(worker).unwrap();
        let tid = std::fs::read_link("/proc/thread-self")
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        tx.send((addr, tid, runtime.stop_handle())).unwrap();
        runtime.run().unwrap();
        ticks.get()
    });
    let (addr, tid, stop) = rx.recv_timeout(TIMEOUT).expect("runtime did not start");
    Echo {
        addr,
        tid,
        stop,
        thread,
    }
}

impl Echo {
    /// The loop thread's (CPU time, voluntary context switches) so far.
    fn usage(&self) -> (Duration, u64) {
        let task = format!("/proc/self/task/{}", self.tid);
        // schedstat: nanoseconds on a CPU, nanoseconds waiting for one, timeslices.
        let schedstat = std::fs::read_to_string(format!("{task}/schedstat")).unwrap();
        let on_cpu: u64 = schedstat
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let status = std::fs::read_to_string(format!("{task}/status")).unwrap();
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (Duration::from_nanos(on_cpu), switches)
    }

    /// Stops the loop; the timer's ticks.
    fn stop(self) -> u32 {
        self.stop.stop();
        self.thread.join().unwrap()
    }
}

/// Sends `n` lines one at a time, each after the answer to the last (and `pause()` after
/// it), checking every answer; returns how long it took.
fn request_response(addr: SocketAddr, n: usize, pause: impl Fn()) -> Duration {
    let mut stream = tcp_connect(addr);
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let start = Instant::now();
    for i in 0..n {
        stream.write_all(format!("line {i}\n").as_bytes()).unwrap();
        assert_eq!(read_line(&mut reader), format!("line {i}"));
        pause();
    }
    start.elapsed()
}

/// No pause.
fn at_once() {}

/// A pause of `d` that keeps the thread on its CPU: exact, where a sleep may overshoot by
/// a millisecond on a busy machine.
fn busy_for(d: Duration) -> impl Fn() {
    move || {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::hint::spin_loop();
        }
    }
}

const LINES: usize = 2000;

#[test]
fn a_peer_waiting_for_each_answer_finds_the_loop_awake() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        cpus >= 2,
        "this test cannot run: the spin needs 2 CPUs, this has {cpus}"
    );
    let sleeps_with = |window| {
        let server = echo(window);
        let (_, before) = server.usage();
        // A pause shorter than the window: the loop has time to fall asleep, a spin does
        // not run out.
        request_response(server.addr, LINES / 4, busy_for(Duration::from_micros(200)));
        let (_, after) = server.usage();
        server.stop();
        after - before
    };
    let off = sleeps_with(Duration::ZERO);
    // On a shared VM a peer is now and then woken or scheduled a millisecond or more late,
    // and each such miss costs the loop ~7 sleeps (the spin that found nothing, then a
    // streak to rebuild): one run of 500 lines read 105 with a 1 ms window. So a window
    // 15 times the pause, and the median of three runs.
    let mut on: Vec<u64> = (0..3)
        .map(|_| sleeps_with(Duration::from_micros(3000)))
        .collect();
    on.sort_unstable();
    let on = on[1];
    let lines = LINES / 4;
    // Off: the loop sleeps before every line, or nearly.
    assert!(
        off as usize >= lines * 9 / 10,
        "spin off: {off} sleeps for {lines} lines"
    );
    // On: it catches the next line awake: here 1-54 sleeps in 500 (8-96 with four busy
    // loops on the peer's CPU), the rest timer ticks and scheduler hiccups.
    assert!(
        on as usize <= lines / 5,
        "spin on: {on} sleeps for {lines} lines"
    );
}

#[test]
fn a_loop_paced_slower_than_the_window_sleeps_and_an_idle_one_stays_asleep() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = echo(Duration::from_millis(1));
    // Arm the spin, then pace lines 3 ms apart: spinning 1 ms per gap would cost a third of
    // the wall time.
    request_response(server.addr, 100, at_once);
    let (cpu0, _) = server.usage();
    let paced = request_response(server.addr, 150, || {
        std::thread::sleep(Duration::from_millis(3))
    });
    let (cpu1, _) = server.usage();
    std::thread::sleep(Duration::from_millis(500));
    let (cpu2, _) = server.usage();
    server.stop();
    let (paced_cpu, idle_cpu) = (cpu1 - cpu0, cpu2 - cpu1);
    assert!(
        paced_cpu < paced / 8,
        "paced: {paced_cpu:?} of CPU in {paced:?}"
    );
    assert!(
        idle_cpu < Duration::from_millis(60),
        "idle: {idle_cpu:?} of CPU in 500 ms"
    );
}

#[test]
fn timers_keep_their_time_while_the_loop_spins() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let start = Instant::now();
    let server = echo(Duration::from_millis(1));
    let mut busy = Duration::ZERO;
    while busy < Duration::from_millis(400) {
        busy += request_response(server.addr, LINES, at_once);
    }
    let ticks = server.stop();
    let elapsed = start.elapsed();
    let due = (elapsed.as_millis() / TICK.as_millis()) as u32;
    assert!(
        ticks <= due,
        "{ticks} ticks in {elapsed:?}: a timer fired early"
    );
    assert!(
        ticks >= due * 3 / 4,
        "{ticks} ticks in {elapsed:?}: the spin delayed timers"
    );
}
