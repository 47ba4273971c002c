//! Adaptive spinning before the loop sleeps: a peer that answers within microseconds finds
//! the loop awake.
//!
//! A backend that writes one line and waits for its `ok` (push.php's `fwrite` then `fread`)
//! keeps the loop idle between its lines for only the round trip. Sleeping in `epoll_wait`
//! for that gap costs a context switch and a wake-up each way, which on a virtual machine
//! is most of the cost of a push (a one-line-at-a-time backend on loopback: about half the
//! pushes per second). So, once [`ARM_AFTER`] waits in a row have each ended within
//! [`Spin::window`], the next wait is first tried as non-blocking polls for up to that
//! long. A spin that finds nothing makes its wait a long one, which disarms until the
//! streak builds again: an idle loop, or one paced slower than the window (10,000 evenly
//! spaced pushes per second against a 50 µs window), sleeps as before, and a peer's
//! occasional quick pair costs no spin.

use std::time::{Duration, Instant};

/// The default window: a loopback round trip through a backend is ~10–40 µs.
pub(super) const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Quick waits in a row before the loop spins.
const ARM_AFTER: u8 = 3;

/// Whether to spin before the next blocking poll, and for how long.
#[derive(Debug)]
pub(super) struct Spin {
    window: Duration,
    /// Waits in a row that ended, with events, within `window` (saturating).
    quick: u8,
}

impl Spin {
    pub(super) fn new(window: Duration) -> Self {
        Self { window, quick: 0 }
    }

    /// How long to spin before a poll that would block for `timeout` (`None`: forever),
    /// if at all.
    pub(super) fn before(&self, timeout: Option<Duration>) -> Option<Duration> {
        let blocking = timeout != Some(Duration::ZERO);
        (self.quick >= ARM_AFTER && blocking && !self.window.is_zero())
            .then(|| timeout.map_or(self.window, |t| t.min(self.window)))
    }

    /// Records a wait (a spin, a sleep, or a spin that missed and then a sleep) that began
    /// at `start` and ended at `now`, with or without events.
    pub(super) fn waited(&mut self, start: Instant, now: Instant, found: bool) {
        let quick = found && now.saturating_duration_since(start) < self.window;
        self.quick = if quick {
            self.quick.saturating_add(1)
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_micros(50);

    fn quick_waits(spin: &mut Spin, n: u8) {
        let t0 = Instant::now();
        for _ in 0..n {
            spin.waited(t0, t0 + Duration::from_micros(20), true);
        }
    }

    #[test]
    fn a_streak_of_quick_waits_arms_and_a_slow_one_disarms() {
        let mut spin = Spin::new(WINDOW);
        quick_waits(&mut spin, ARM_AFTER - 1);
        assert_eq!(spin.before(None), None, "not before the streak");
        quick_waits(&mut spin, 1);
        assert_eq!(spin.before(None), Some(WINDOW));
        quick_waits(&mut spin, 200);
        assert_eq!(spin.before(None), Some(WINDOW), "hits keep it spinning");
        let t0 = Instant::now();
        spin.waited(t0, t0 + WINDOW + Duration::from_micros(20), true);
        assert_eq!(spin.before(None), None, "a miss goes back to sleeping");
    }

    #[test]
    fn an_empty_wait_breaks_the_streak() {
        let mut spin = Spin::new(WINDOW);
        quick_waits(&mut spin, ARM_AFTER - 1);
        let t0 = Instant::now();
        spin.waited(t0, t0 + Duration::from_micros(10), false);
        quick_waits(&mut spin, ARM_AFTER - 1);
        assert_eq!(spin.before(None), None, "a timeout is not a peer");
    }

    #[test]
    fn never_spins_past_a_timer_nor_before_a_non_blocking_poll() {
        let mut spin = Spin::new(WINDOW);
        quick_waits(&mut spin, ARM_AFTER);
        let soon = Duration::from_micros(7);
        assert_eq!(spin.before(Some(soon)), Some(soon));
        assert_eq!(spin.before(Some(Duration::ZERO)), None);
    }

    #[test]
    fn a_zero_window_never_spins() {
        let mut spin = Spin::new(Duration::ZERO);
        quick_waits(&mut spin, ARM_AFTER);
        assert_eq!(spin.before(None), None);
    }
}
