//! Heartbeats for the browsers' connections: a ping to each connection once per
//! `ping_interval`, whatever their number, and the idle / no-uid timeouts.
//!
//! Pings follow per-connection deadlines in a min-heap: a connection is pinged
//! `ping_interval` after it connected, then every `ping_interval`, so one connection gets
//! exactly as many pings as ten thousand do each. A tick sends at most a budget of pings
//! (twice the average rate), so connections that arrived in one burst are pinged over a few
//! ticks instead of in one write storm that would stall pushes (docs/BENCHMARKS.md).
//!
//! Timeouts are checked by a pass over the connections, a page per tick, paced so that one
//! pass takes a quarter of the shorter timeout in wall-clock time: a close comes at most
//! 25 % late.

use super::{clients, state::Daemon};
use pushman::{ConnId, Ctx, Cursor, SendError};
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
    /// Where the timeout pass stands.
    checks: TimeoutPass<Cursor>,
}

impl<Id> Default for Heartbeat<Id> {
    fn default() -> Self {
        Self {
            pings: BinaryHeap::new(),
            checks: TimeoutPass::default(),
        }
    }
}

impl<Id: Ord + Copy> Heartbeat<Id> {
    /// Starts pinging `conn` one `interval` from `now`.
    fn watch(&mut self, conn: Id, now: Instant, interval: Duration) {
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
}

/// A pass over every connection once per period, a share per tick: `C` is the paging
/// cursor (the library's [`Cursor`]; an index in tests).
#[derive(Debug, Default)]
struct TimeoutPass<C> {
    /// Where the pass goes on; `None` once it has reached the end, until the next period.
    cursor: Option<C>,
    /// When the current pass began.
    began: Option<Instant>,
    /// Connections handed out in the current pass.
    visited: usize,
    /// The pass overran its period: after this page, a new one begins.
    restart: bool,
}

impl<C: Copy + Default> TimeoutPass<C> {
    /// Where to go on from at `now` and how many connections to visit: the share of `total`
    /// that `period` says should have been visited by now. A pass that overran its period
    /// is finished at once, then the next begins, so each connection is checked once per
    /// period whatever their number.
    fn quota(&mut self, now: Instant, period: Duration, total: usize) -> Option<(C, usize)> {
        let Some(began) = self.began else {
            self.start(now);
            return None;
        };
        let elapsed = now.saturating_duration_since(began);
        if elapsed >= period {
            if let Some(cursor) = self.cursor {
                self.restart = true;
                return Some((cursor, usize::MAX));
            }
            self.start(now);
            return None;
        }
        let cursor = self.cursor?;
        let share = total as u128 * elapsed.as_nanos();
        let target = share.div_ceil(period.as_nanos().max(1)) as usize;
        let n = target.saturating_sub(self.visited);
        if n == 0 {
            return None;
        }
        self.visited += n;
        Some((cursor, n))
    }

    /// The page handed out by [`quota`](Self::quota) was visited; `next` is where it ended.
    fn advanced(&mut self, next: Option<C>, now: Instant) {
        if std::mem::take(&mut self.restart) {
            self.start(now);
        } else {
            self.cursor = next;
        }
    }

    fn start(&mut self, now: Instant) {
        self.cursor = Some(C::default());
        self.began = Some(now);
        self.visited = 0;
    }
}

impl Heartbeat {
    /// One tick: the connections accepted since the last one join the schedule, then the
    /// pings that are due, and a slice of the timeout checks.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_, Daemon>) {
        let now = ctx.io.now();
        let hb = &ctx.state.config.heartbeat;
        let interval = hb.ping_interval;
        let check_period = hb.idle_timeout.min(hb.handshake_timeout) / 4;
        for (conn, opened) in ctx.state.unwatched.drain(..) {
            self.watch(conn, opened, interval);
        }

        let open = ctx.state.ws_connections;
        let average = (open as u128 * TICK.as_nanos() / interval.as_nanos().max(1)) as usize;
        let budget = (2 * average + 1).max(MIN_PINGS_PER_TICK);
        for conn in self.take_due(now, budget) {
            // Ids are never reused: a closed connection's entry just leaves the heap.
            if !matches!(
                ctx.io.ping(conn),
                Err(SendError::NotFound | SendError::Closing)
            ) {
                self.watch(conn, now, interval);
            }
        }

        let total = ctx.io.connection_count_of(clients::NAME)
            + ctx.io.connection_count_of(clients::PLAIN_NAME);
        if let Some((cursor, n)) = self.checks.quota(now, check_period, total) {
            let (ids, next) = if ctx.state.config.tls.ws_plain.is_some() {
                // Browsers on two listeners (`tls.ws_plain`): every connection is paged,
                // `check_timeouts` skips the APIs'.
                ctx.io.connections_page(cursor, n)
            } else {
                ctx.io.connections_page_of(clients::NAME, cursor, n)
            };
            self.checks.advanced(next, now);
            check_timeouts(ctx, &ids);
        }
    }
}

/// Closes the connections in `ids` that stayed silent past `idle_timeout`, or have not
/// sent their uid or token within `handshake_timeout`.
fn check_timeouts(ctx: &mut Ctx<'_, Daemon>, ids: &[ConnId]) {
    let hb = &ctx.state.config.heartbeat;
    let (idle_limit, bind_limit) = (hb.idle_timeout, hb.handshake_timeout);
    for &id in ids {
        if !matches!(
            ctx.io.worker_name(id),
            Some(clients::NAME | clients::PLAIN_NAME)
        ) {
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
    fn the_timeout_pass_takes_one_period_whatever_the_count() {
        for total in [1, 4, 64, 100_000] {
            let mut pass = TimeoutPass::<usize>::default();
            let t0 = Instant::now();
            let period = Duration::from_millis(250);
            let mut visits = vec![0u32; total];
            for step in 0..=100u32 {
                let now = t0 + TICK * step;
                let Some((from, n)) = pass.quota(now, period, total) else {
                    continue;
                };
                let to = from.saturating_add(n).min(total);
                for v in &mut visits[from..to] {
                    *v += 1;
                }
                pass.advanced((to < total).then_some(to), now);
            }
            // 1,000 ms of ticks is four periods: every connection is visited 4 or 5 times
            // (the fifth pass is under way at the end), never on every tick.
            assert!(
                visits.iter().all(|&v| (4..=5).contains(&v)),
                "{total}: {visits:?}"
            );
        }
    }
}
