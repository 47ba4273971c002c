//! Adaptive spinning before the loop sleeps: a peer that answers within microseconds finds
//! the loop awake.
//!
//! A backend that writes one line and waits for its `ok` (push.php's `fwrite` then `fread`)
//! keeps the loop idle between its lines for only the round trip. Sleeping in `epoll_wait`
//! for that gap costs a context switch and a wake-up each way, which on a virtual machine
//! is most of the cost of a push (a one-line-at-a-time backend on loopback: about half the
//! pushes per second). So, once a few waits in a row have each ended within
//! [`Spin::window`], the next wait is first tried as non-blocking polls for up to that
//! long. A spin that finds nothing for the whole window resets the streak, which disarms
//! it until the streak builds again: an idle loop, or one paced slower than the window (10,000 evenly
//! spaced pushes per second against a 50 µs window), sleeps as before. And each miss in a
//! row doubles the streak the next spin needs: where spins keep missing (one CPU, so the
//! peer cannot run while the loop spins), they become rare.

use std::time::Duration;

/// The default window: a loopback round trip through a backend is ~10–40 µs.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Quick waits in a row before the loop spins, after a spin that found work.
const ARM_AFTER: u8 = 3;
/// The most quick waits in a row a spin may need, after many misses.
const ARM_AFTER_MAX: u8 = 128;

/// Whether to spin before the next blocking poll, and for how long.
#[derive(Debug)]
pub(super) struct Spin {
    window: Duration,
    /// Waits in a row that ended, with events, within `window` (saturating).
    quick: u8,
    /// How many of those the next spin needs: [`ARM_AFTER`], doubled by each miss.
    arm_after: u8,
}

impl Spin {
    /// Spinning up to `window`, unless the machine has one CPU: there the peer runs only
    /// once the loop yields, so a spin adds polls to the context switch it meant to save
    /// (one backend, one line at a time, both on one CPU: 0.86x the pushes per second).
    pub(super) fn new(window: Duration) -> Self {
        Self::with_window(if online_cpus() > 1 {
            window
        } else {
            Duration::ZERO
        })
    }

    fn with_window(window: Duration) -> Self {
        Self {
            window,
            quick: 0,
            arm_after: ARM_AFTER,
        }
    }

    /// How long to spin before a poll that would block for `timeout` (`None`: forever),
    /// if at all.
    pub(super) fn before(&self, timeout: Option<Duration>) -> Option<Duration> {
        let blocking = timeout != Some(Duration::ZERO);
        (self.quick >= self.arm_after && blocking && !self.window.is_zero())
            .then(|| timeout.map_or(self.window, |t| t.min(self.window)))
    }

    /// Records a spin of up to `window` (as [`Spin::before`] gave it) that found work or
    /// not. Only a whole window's miss counts: a spin cut short by a timer due missed no
    /// peer.
    pub(super) fn spun(&mut self, window: Duration, hit: bool) {
        if hit {
            self.arm_after = ARM_AFTER;
        } else if window >= self.window {
            self.arm_after = self.arm_after.saturating_mul(2).min(ARM_AFTER_MAX);
            self.quick = 0;
        }
    }

    /// Records a wait (a spin, a sleep, or a spin that missed and then a sleep) that took
    /// `took` and ended with events (`found`) or at its timeout. A timeout (a timer's) says
    /// nothing about peers: it neither builds nor breaks the streak.
    pub(super) fn waited(&mut self, took: Duration, found: bool) {
        if !found {
            return;
        }
        self.quick = if took < self.window {
            self.quick.saturating_add(1)
        } else {
            0
        };
    }
}

/// The machine's online CPUs (not this process's affinity: a server pinned to one CPU
/// still has peers running on the others); as many as this process may use where the
/// kernel does not say.
fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| count_cpus(&list))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The number of CPUs in a kernel CPU list such as `0-3,6,8-9`.
fn count_cpus(list: &str) -> Option<usize> {
    list.trim().split(',').try_fold(0, |count, range| {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
        Some(count + last.checked_sub(first)? + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_micros(50);

    fn quick_waits(spin: &mut Spin, n: u8) {
        for _ in 0..n {
            spin.waited(Duration::from_micros(20), true);
        }
    }

    #[test]
    fn a_streak_of_quick_waits_arms_and_a_slow_one_disarms() {
        let mut spin = Spin::with_window(WINDOW);
        quick_waits(&mut spin, ARM_AFTER - 1);
        assert_eq!(spin.before(None), None, "not before the streak");
        quick_waits(&mut spin, 1);
        assert_eq!(spin.before(None), Some(WINDOW));
        quick_waits(&mut spin, 200);
        assert_eq!(spin.before(None), Some(WINDOW), "hits keep it spinning");
        spin.waited(WINDOW + Duration::from_micros(20), true);
        assert_eq!(spin.before(None), None, "a miss goes back to sleeping");
    }

    #[test]
    fn a_timer_neither_builds_nor_breaks_the_streak() {
        let mut spin = Spin::with_window(WINDOW);
        quick_waits(&mut spin, ARM_AFTER - 1);
        spin.waited(Duration::from_micros(10), false);
        assert_eq!(spin.before(None), None, "a timeout is not a peer");
        quick_waits(&mut spin, 1);
        assert_eq!(
            spin.before(None),
            Some(WINDOW),
            "nor does it break the streak"
        );
        // A spin cut short by a timer due, then the timer: armed as before.
        let soon = Duration::from_micros(7);
        spin.spun(soon, false);
        spin.waited(soon, false);
        assert_eq!(spin.before(None), Some(WINDOW));
        // A whole window's miss disarms, whatever wakes the loop after it.
        spin.spun(WINDOW, false);
        spin.waited(WINDOW * 3, false);
        assert_eq!(spin.before(None), None);
    }

    #[test]
    fn never_spins_past_a_timer_nor_before_a_non_blocking_poll() {
        let mut spin = Spin::with_window(WINDOW);
        quick_waits(&mut spin, ARM_AFTER);
        let soon = Duration::from_micros(7);
        assert_eq!(spin.before(Some(soon)), Some(soon));
        assert_eq!(spin.before(Some(Duration::ZERO)), None);
    }

    #[test]
    fn misses_in_a_row_make_spins_rarer_and_a_hit_makes_them_usual_again() {
        let mut spin = Spin::with_window(WINDOW);
        let mut needed = Vec::new();
        for _ in 0..8 {
            let mut streak = 0;
            while spin.before(None).is_none() {
                quick_waits(&mut spin, 1);
                streak += 1;
            }
            needed.push(streak);
            spin.spun(WINDOW, false);
            spin.waited(WINDOW * 2, true);
        }
        assert_eq!(needed, [3, 6, 12, 24, 48, 96, 128, 128]);
        quick_waits(&mut spin, 128);
        spin.spun(WINDOW, true);
        spin.waited(Duration::from_micros(20), true);
        assert_eq!(spin.before(None), Some(WINDOW), "a hit keeps the streak");
        spin.spun(WINDOW, false);
        spin.waited(WINDOW * 2, true);
        quick_waits(&mut spin, ARM_AFTER * 2);
        assert!(
            spin.before(None).is_some(),
            "back to {ARM_AFTER}, doubled once"
        );
    }

    #[test]
    fn cpu_lists_are_counted_as_the_kernel_writes_them() {
        assert_eq!(count_cpus("0\n"), Some(1));
        assert_eq!(count_cpus("0-1\n"), Some(2));
        assert_eq!(count_cpus("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpus(""), None);
        assert_eq!(count_cpus("3-1"), None);
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn a_zero_window_never_spins() {
        let mut spin = Spin::with_window(Duration::ZERO);
        quick_waits(&mut spin, ARM_AFTER);
        assert_eq!(spin.before(None), None);
    }
}
