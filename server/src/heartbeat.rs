//! Heartbeats for the browsers' connections: a ping to each connection once per
//! `ping_interval`, whatever their number, and the idle / no-uid timeouts.
//!
//! Pings follow per-connection deadlines in a min-heap: a connection is pinged
//! `ping_interval` after it connected, then every `ping_interval`, so one connection gets
//! exactly as many pings as ten thousand do each. A tick sends at most a budget of pings
//! (twice the average rate), so connections that arrived in one burst are pinged over a few
//! ticks instead of in one write storm that would stall pushes (docs/BENCHMARKS.md).
//!
//! Timeouts are checked by a cursor that walks the connection slots so that one pass takes
//! a quarter of the shorter timeout, in wall-clock time: a close comes at most 25 % late.

use super::{clients, state::Daemon};
use pushman::{ConnId, Ctx};
use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    time::{Duration, Instant},
};

/// How often [`tick`] runs. Each run handles a slice of the connections, so neither the
/// pings nor the timeout checks stall pushes: 10,000 pings in one go are 10,000 writes
/// (~15 µs each on a 2-vCPU VM, so ~150 ms without a push), and even 40 pings per 100 ms
/// raised the p99 push latency at 10k pushes/s from ~90 µs to ~750 µs; 4 per 10 ms do not
/// show (docs/BENCHMARKS.md).
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Fewest pings a tick may send, so small deployments catch up at once after a stall.
const MIN_PINGS_PER_TICK: usize = 16;

/// The heartbeat's schedule: when each connection is next pinged, and where the timeout
/// pass stands. Generic over the id only so unit tests can use plain numbers (the
/// library's `ConnId`s are minted by its reactor).
#[derive(Debug)]
pub(crate) struct Heartbeat<Id = ConnId> {
    /// Ping deadlines. Entries of closed connections leave when they come due (connection
    /// ids are never reused), so beyond the open connections the heap holds at most those
    /// closed within the last interval.
    pings: BinaryHeap<Reverse<(Instant, Id)>>,
    /// The timeout pass: next slot, and when the current pass began.
    check_at: usize,
    check_pass_began: Option<Instant>,
}

impl<Id> Default for Heartbeat<Id> {
    fn default() -> Self {
        Self {
            pings: BinaryHeap::new(),
            check_at: 0,
            check_pass_began: None,
        }
    }
}

impl<Id: Ord + Copy> Heartbeat<Id> {
    /// Starts pinging `conn` one `interval` from `now`.
    pub(crate) fn watch(&mut self, conn: Id, now: Instant, interval: Duration) {
        self.pings.push(Reverse((now + interval, conn)));
    }

    /// Takes the connections whose ping is due at `now`, at most `max`. The caller
    /// [`watch`](Self::watch)es again those still open: from `now`, so a late ping does not
    /// cause a burst of catch-ups, and closed ones leave the heap here.
    fn take_due(&mut self, now: Instant, max: usize) -> Vec<Id> {
        let mut due = Vec::new();
        while due.len() < max {
            match self.pings.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((_, conn))) = self.pings.pop() else {
                break;
            };
            due.push(conn);
        }
        due
    }

    /// The slots the timeout pass visits at `now`: from where it stands up to the share of
    /// `slots` that `period` says should have been visited by now. A pass wraps once its
    /// period is over, so each slot is checked once per period whatever the slot count.
    fn check_slice(&mut self, now: Instant, period: Duration, slots: usize) -> (usize, usize) {
        let began = *self.check_pass_began.get_or_insert(now);
        let elapsed = now.saturating_duration_since(began);
        if self.check_at >= slots || elapsed >= period {
            let from = self.check_at.min(slots);
            self.check_at = 0;
            self.check_pass_began = Some(now);
            return (from, slots); // finish the pass that just ended
        }
        let target = (slots as u128 * elapsed.as_nanos() / period.as_nanos().max(1)) as usize;
        let from = self.check_at;
        self.check_at = target.clamp(from, slots);
        (from, self.check_at)
    }
}

/// Whether `conn` is one of the browsers' WebSocket connections.
fn is_browser(ctx: &Ctx<'_, Daemon>, conn: ConnId) -> bool {
    ctx.io.worker_name(conn) == Some(clients::NAME)
}

/// One tick: the pings that are due, and a slice of the timeout checks.
pub(crate) fn tick(ctx: &mut Ctx<'_, Daemon>) {
    let now = ctx.io.now();
    let hb = &ctx.state.config.heartbeat;
    let interval = Duration::from_secs_f64(hb.ping_interval);
    let check_period = Duration::from_secs_f64(hb.idle_timeout.min(hb.handshake_timeout) / 4.0);

    let open = ctx.state.ws_connections;
    let average = (open as u128 * TICK.as_nanos() / interval.as_nanos().max(1)) as usize;
    let budget = (2 * average + 1).max(MIN_PINGS_PER_TICK);
    for conn in ctx.state.heartbeat.take_due(now, budget) {
        if is_browser(ctx, conn) {
            let _ = ctx.io.ping(conn);
            ctx.state.heartbeat.watch(conn, now, interval);
        }
    }

    let slots = ctx.io.slot_count();
    let (from, to) = ctx.state.heartbeat.check_slice(now, check_period, slots);
    if to > from {
        let (ids, _) = ctx.io.connections_page(from, to - from);
        check_timeouts(ctx, &ids);
    }
}

/// Closes the connections in `ids` that stayed silent past `idle_timeout`, or have not
/// sent their uid or token within `handshake_timeout`.
fn check_timeouts(ctx: &mut Ctx<'_, Daemon>, ids: &[ConnId]) {
    let hb = &ctx.state.config.heartbeat;
    let (idle_limit, bind_limit) = (
        Duration::from_secs_f64(hb.idle_timeout),
        Duration::from_secs_f64(hb.handshake_timeout),
    );
    for &id in ids {
        if !is_browser(ctx, id) {
            continue;
        }
        let Some((age, idle)) = ctx.io.age_and_idle(id) else {
            continue;
        };
        if ctx.state.registry.uid_of(id).is_none() && age > bind_limit {
            ctx.state.stats.timeouts += 1;
            log::info!("connection {id} closed: no uid within {bind_limit:?}");
            if ctx.io.is_upgraded(id) {
                ctx.io.close_with(id, clients::POLICY, "no uid in time");
            } else {
                ctx.io.destroy(id);
            }
        } else if idle > idle_limit {
            ctx.state.stats.timeouts += 1;
            log::info!("connection {id} closed: silent for {idle:?}");
            ctx.io.close_with(id, 1001, "idle timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<u64> {
        (1..=n).collect()
    }

    #[test]
    fn each_connection_is_pinged_once_per_interval_whatever_the_count() {
        for count in [1, 20, 5000] {
            let mut hb = Heartbeat::<u64>::default();
            let t0 = Instant::now();
            let interval = Duration::from_millis(500);
            for id in ids(count) {
                hb.watch(id, t0, interval);
            }
            let mut pings = std::collections::HashMap::<u64, usize>::new();
            // 4 intervals of 10 ms ticks with an ample budget.
            for step in 1..=200u32 {
                let now = t0 + TICK * step;
                for id in hb.take_due(now, usize::MAX) {
                    *pings.entry(id).or_default() += 1;
                    hb.watch(id, now, interval);
                }
            }
            assert_eq!(pings.len() as u64, count);
            assert!(pings.values().all(|&n| n == 4), "{count}: {pings:?}");
        }
    }

    #[test]
    fn a_budget_spreads_a_burst_over_ticks_without_losing_anyone() {
        let mut hb = Heartbeat::<u64>::default();
        let t0 = Instant::now();
        let interval = Duration::from_secs(1);
        for id in ids(100) {
            hb.watch(id, t0, interval);
        }
        let first = hb.take_due(t0 + interval, 30);
        assert_eq!(first.len(), 30);
        let mut rest = 0;
        for step in 1..=3 {
            rest += hb.take_due(t0 + interval + TICK * step, 30).len();
        }
        assert_eq!(rest, 70);
        assert!(hb.take_due(t0 + interval * 2 - TICK, usize::MAX).is_empty());
    }

    #[test]
    fn the_timeout_pass_takes_one_period_whatever_the_slot_count() {
        for slots in [1, 4, 64, 100_000] {
            let mut hb = Heartbeat::<u64>::default();
            let t0 = Instant::now();
            let period = Duration::from_millis(250);
            let mut visits = vec![0u32; slots];
            for step in 0..=100u32 {
                let (from, to) = hb.check_slice(t0 + TICK * step, period, slots);
                for v in &mut visits[from..to] {
                    *v += 1;
                }
            }
            // 1,000 ms of ticks is four periods: every slot is visited 4 or 5 times
            // (the fifth pass is under way at the end), never on every tick.
            assert!(
                visits.iter().all(|&v| (4..=5).contains(&v)),
                "{slots}: {visits:?}"
            );
        }
    }
}
