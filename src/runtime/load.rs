//! Whether the loop is saturated: how much of the last few milliseconds it spent waiting.
//!
//! A deferred write batch may wait a little for more input only when the loop has no idle
//! time to give (see `Runtime::defer_wait`): a backend at light load that happens to write
//! two lines at once must not hold its frames back.

use std::time::{Duration, Instant};

/// How long each measurement lasts.
const WINDOW: Duration = Duration::from_millis(10);

/// Saturated: waited less than this share of a window (1/10).
const IDLE_SHARE: u32 = 10;

/// Waiting time per [`WINDOW`].
#[derive(Debug)]
pub(super) struct Load {
    start: Instant,
    waited: Duration,
    saturated: bool,
}

impl Load {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            start: now,
            waited: Duration::ZERO,
            saturated: false,
        }
    }

    /// Records a wait (spin or sleep) of `waited` that ended at `now`.
    pub(super) fn waited(&mut self, waited: Duration, now: Instant) {
        self.waited += waited;
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= WINDOW {
            self.saturated = self.waited < elapsed / IDLE_SHARE;
            self.start = now;
            self.waited = Duration::ZERO;
        }
    }

    /// Whether the last whole window was (nearly) all work.
    pub(super) fn saturated(&self) -> bool {
        self.saturated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_window_of_work_is_saturated_and_one_with_idle_time_is_not() {
        let t0 = Instant::now();
        let mut load = Load::new(t0);
        assert!(!load.saturated(), "not before a whole window");
        // 10 ms of turns that each waited 5 µs: 0.5 % idle.
        for i in 1..=100 {
            load.waited(5 * US, t0 + 100 * US * i);
        }
        assert!(load.saturated());
        // The next window: a 3 ms sleep in it (30 % idle).
        let t1 = t0 + WINDOW;
        load.waited(3000 * US, t1 + 4000 * US);
        assert!(load.saturated(), "judged only once the window is whole");
        load.waited(5 * US, t1 + WINDOW);
        assert!(!load.saturated());
    }

    #[test]
    fn one_long_sleep_ends_saturation() {
        let t0 = Instant::now();
        let mut load = Load::new(t0);
        load.waited(Duration::ZERO, t0 + WINDOW);
        assert!(load.saturated());
        load.waited(
            Duration::from_millis(500),
            t0 + WINDOW + Duration::from_millis(500),
        );
        assert!(!load.saturated());
    }
}
