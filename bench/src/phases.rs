//! The measured phases. Each returns its figures as a JSON object; the server's and the
//! generator's CPU shares are measured over the phase's wall time.

use crate::{
    book::percentile_us,
    gen::Gen,
    sys::{rss_bytes, CpuMeter},
};
use serde_json::{json, Value};
use std::{
    io,
    net::IpAddr,
    time::{Duration, Instant},
};

/// Most WebSocket handshakes in flight at once.
const MAX_IN_FLIGHT: usize = 100;
/// How long a phase may take to drain (answers and deliveries) after it stops sending.
const DRAIN: Duration = Duration::from_secs(10);

/// Both CPU meters of a phase.
struct Cpu(CpuMeter, CpuMeter);

impl Cpu {
    fn start(pid: &str) -> Self {
        Self(CpuMeter::start(pid), CpuMeter::start("self"))
    }
    fn report(&self, v: &mut Value) {
        v["server_cpu"] = json!(self.0.share());
        v["gen_cpu"] = json!(self.1.share());
    }
}

/// Connects every client (≤ 100 handshakes in flight, sources round-robin), then checks with
/// one push per uid that the server has bound them all. Reports connects/s and the server's
/// memory per idle connection.
pub fn connect(g: &mut Gen, pid: &str, sources: &[IpAddr]) -> io::Result<Value> {
    let n = g.clients.len();
    let rss_before = rss_bytes(pid);
    let cpu = Cpu::start(pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60) + Duration::from_millis(n as u64 * 5);
    let mut next = 0;
    while g.open + g.dead < n && Instant::now() < deadline {
        while next < n && g.in_flight < MAX_IN_FLIGHT {
            g.start_client(next, sources[next % sources.len()]);
            next += 1;
        }
        g.turn(Some(Duration::from_millis(10)))?;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut v = json!({
        "clients": g.open,
        "failed": n - g.open,
        "secs": secs,
        "per_sec": g.open as f64 / secs,
    });
    cpu.report(&mut v);
    let unbound = bind_check(g)?;
    // Let allocator and kernel settle before reading the idle figure.
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_bytes(pid);
    v["unbound"] = json!(unbound);
    v["rss_before"] = json!(rss_before);
    v["rss_after"] = json!(rss_after);
    if let (Some(a), Some(b)) = (rss_after, rss_before) {
        v["bytes_per_conn"] = json!((a as f64 - b as f64) / g.open.max(1) as f64);
    }
    Ok(v)
}

/// Pushes one line to every uid (retrying `fail`s a few times); returns the uids never bound.
fn bind_check(g: &mut Gen) -> io::Result<usize> {
    let n = g.clients.len();
    let mut todo: Vec<usize> = (0..n).collect();
    // Frames the check caused so far; it waits for all of them, so none arrives later.
    let mut delivered = 0;
    let ok0 = g.answers().0;
    for _attempt in 0..5 {
        delivered += g.book.delivered;
        g.book.reset();
        for b in &mut g.backends {
            b.failed.clear();
        }
        // Seqs map to uids through a table here: a bind check targets exactly `todo`.
        let base = g.book.next;
        let k = g.backends.len();
        let now = g.now_ns();
        for (idx, &uid) in todo.iter().enumerate() {
            let seq = g.book.take_seq(now);
            debug_assert_eq!(seq, base + idx as u64);
            let b = &mut g.backends[idx % k];
            b.out.extend_from_slice(
                format!("{{\"uid\":\"u{uid}\",\"seq\":{seq},\"bind\":1}}\n").as_bytes(),
            );
            b.outstanding.push_back(seq);
        }
        for b in &mut g.backends {
            b.flush()?;
        }
        let deadline = Instant::now() + DRAIN;
        while g.outstanding() > 0 && Instant::now() < deadline {
            g.turn(Some(Duration::from_millis(10)))?;
            for b in &mut g.backends {
                b.flush()?;
            }
        }
        let failed: Vec<u64> = g
            .backends
            .iter()
            .flat_map(|b| b.failed.iter().copied())
            .collect();
        todo = failed.iter().map(|&s| todo[(s - base) as usize]).collect();
        if todo.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Some servers answer `ok` before the frame is written: wait for every frame. The check
    // lines are not in the book's format, so their counts are then discarded.
    let deadline = Instant::now() + DRAIN;
    while delivered + g.book.delivered < g.answers().0 - ok0 && Instant::now() < deadline {
        g.turn(Some(Duration::from_millis(10)))?;
    }
    g.book.reset();
    Ok(todo.len())
}

/// Pipelined unicast: each of the first `backends` backends keeps `window` pushes
/// outstanding for `secs`; then everything is drained.
pub fn unicast(
    g: &mut Gen,
    pid: &str,
    secs: f64,
    backends: usize,
    window: usize,
) -> io::Result<Value> {
    let backends = backends.min(g.backends.len());
    g.book.reset();
    let (ok0, fail0) = g.answers();
    let cpu = Cpu::start(pid);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut delivered_in_window = 0;
    let mut acked_in_window = 0;
    loop {
        let now = Instant::now();
        if now < end {
            let now_ns = g.now_ns();
            for j in 0..backends {
                while g.backends[j].outstanding.len() < window {
                    g.queue_unicast(j, now_ns);
                }
                g.backends[j].flush()?;
            }
            delivered_in_window = g.book.delivered;
            acked_in_window = g.answers().0 - ok0;
        } else if g.outstanding() == 0 && g.book.all_received() || now > end + DRAIN {
            break;
        }
        g.turn(Some(Duration::from_millis(5)))?;
    }
    let mut v = json!({
        "secs": secs,
        "window": window,
        "sent": g.book.counts.len(),
        "acked_per_sec": acked_in_window as f64 / secs,
        "delivered_per_sec": delivered_in_window as f64 / secs,
    });
    cpu.report(&mut v);
    verdict(g, ok0, fail0, &mut v);
    Ok(v)
}

/// Pushes at a fixed `rate` per second, round-robin over the backends, one write per line;
/// reports the write → receipt latency percentiles. The loop spins between sends (poll
/// timeouts have millisecond granularity), so the generator's CPU is ~100 % here.
pub fn latency(g: &mut Gen, pid: &str, secs: f64, rate: f64) -> io::Result<Value> {
    g.book.reset();
    let (ok0, fail0) = g.answers();
    let cpu = Cpu::start(pid);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    let k = g.backends.len();
    loop {
        let now = Instant::now();
        if now < end {
            let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
            while sent < due {
                let j = (sent % k as u64) as usize;
                let now_ns = g.now_ns();
                g.queue_unicast(j, now_ns);
                g.backends[j].flush()?;
                sent += 1;
            }
            g.turn(Some(Duration::ZERO))?;
        } else if g.outstanding() == 0 && g.book.all_received() || now > end + DRAIN {
            break;
        } else {
            g.turn(Some(Duration::from_millis(5)))?;
        }
    }
    let mut cpu_v = json!({});
    cpu.report(&mut cpu_v);
    let mut lat = std::mem::take(&mut g.book.latencies);
    lat.sort_unstable();
    let mut v = json!({
        "rate": rate,
        "secs": secs,
        "sent": sent,
        "p50_us": percentile_us(&lat, 50.0),
        "p99_us": percentile_us(&lat, 99.0),
        "p999_us": percentile_us(&lat, 99.9),
        "max_us": percentile_us(&lat, 100.0),
        "server_cpu": cpu_v["server_cpu"],
        "gen_cpu": cpu_v["gen_cpu"],
    });
    verdict(g, ok0, fail0, &mut v);
    Ok(v)
}

/// Lost, duplicated and corrupted frames, and `fail` answers, since the phase began.
fn verdict(g: &Gen, ok0: u64, fail0: u64, v: &mut Value) {
    let (ok, fail) = g.answers();
    v["ok"] = json!(ok - ok0);
    v["fail"] = json!(fail - fail0);
    v["lost"] = json!(g.book.lost());
    v["duplicated"] = json!(g.book.duplicated());
    v["corrupted"] = json!(g.book.corrupted);
    v["strays"] = json!(g.book.strays);
}

/// `repeat` broadcasts, one at a time: time until the last open client has each one.
pub fn broadcast(g: &mut Gen, pid: &str, repeat: usize) -> io::Result<Value> {
    g.book.reset();
    let (ok0, fail0) = g.answers();
    let cpu = Cpu::start(pid);
    let mut times = Vec::new();
    let (mut delivered, mut dups, mut missed) = (0u64, 0u64, 0u64);
    for _ in 0..repeat {
        let t0 = g.now_ns();
        g.send_broadcast()?;
        let deadline = Instant::now() + DRAIN;
        while (g.book.bcast_got < g.open || g.outstanding() > 0) && Instant::now() < deadline {
            g.turn(Some(Duration::from_millis(5)))?;
        }
        // Give duplicates a moment to show up before the next broadcast replaces this one.
        let settle = Instant::now() + Duration::from_millis(50);
        while Instant::now() < settle {
            g.turn(Some(Duration::from_millis(5)))?;
        }
        times.push(g.book.bcast_last_ns.saturating_sub(t0));
        delivered += g.book.bcast_got as u64;
        missed += (g.open - g.book.bcast_got.min(g.open)) as u64;
        dups += g.book.broadcast_duplicates();
    }
    let total_ns: u64 = times.iter().sum();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let mut v = json!({
        "repeat": repeat,
        "to_last_ms": times.iter().map(|&t| t as f64 / 1e6).collect::<Vec<_>>(),
        "median_to_last_ms": sorted[sorted.len() / 2] as f64 / 1e6,
        "deliveries_per_sec": delivered as f64 / (total_ns as f64 / 1e9),
    });
    cpu.report(&mut v);
    let (ok, fail) = g.answers();
    v["ok"] = json!(ok - ok0);
    v["fail"] = json!(fail - fail0);
    v["lost"] = json!(missed);
    v["duplicated"] = json!(dups);
    v["corrupted"] = json!(g.book.corrupted);
    Ok(v)
}
