//! Timers on a min-heap, woken by the reactor's alarm (`alarm.rs`); no threads.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::{Duration, Instant},
};

/// Names a timer, to delete it; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// A timer's schedule and its payload (a user callback or an internal deadline).
#[derive(Debug)]
struct Entry<T> {
    /// `Some` for a repeating timer.
    every: Option<Duration>,
    /// `None` while the payload is lent out to run.
    payload: Option<T>,
}

/// Timers carrying payloads of type `T`. Deleted timers leave a stale heap entry that is
/// skipped when it comes due, so deletion is O(1).
#[derive(Debug)]
pub(crate) struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    entries: HashMap<u64, Entry<T>>,
    next_id: u64,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            entries: HashMap::new(),
            next_id: 1,
        }
    }

    /// Schedules `payload` at `now + after`, then every `after` if `repeat`.
    pub(crate) fn add(
        &mut self,
        now: Instant,
        after: Duration,
        repeat: bool,
        payload: T,
    ) -> TimerId {
        let id = self.next_id;
        self.next_id += 1;
        let every = repeat.then_some(after.max(Duration::from_millis(1)));
        self.entries.insert(
            id,
            Entry {
                every,
                payload: Some(payload),
            },
        );
        self.heap.push(Reverse((now + after, id)));
        TimerId(id)
    }

    /// Deletes a timer; returns whether it existed. Safe to call from its own callback.
    pub(crate) fn del(&mut self, id: TimerId) -> bool {
        self.entries.remove(&id.0).is_some()
    }

    /// When the next timer is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the payload of the next timer due at `now`, if any. A repeating timer is
    /// rescheduled at once; hand its payload back with [`Timers::restore`] after running it.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerId, T)> {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let Some(payload) = entry.payload.take() else {
                continue;
            };
            match entry.every {
                // Schedule from the due time, not from now, so a repeating timer does not
                // drift; but never schedule into the past after a long stall.
                Some(every) => self.heap.push(Reverse(((at + every).max(now), id))),
                None => {
                    self.entries.remove(&id);
                }
            }
            return Some((TimerId(id), payload));
        }
        None
    }

    /// Returns a repeating timer's payload after it ran; dropped if the timer was deleted
    /// meanwhile or was one-shot.
    pub(crate) fn restore(&mut self, id: TimerId, payload: T) {
        if let Some(entry) = self.entries.get_mut(&id.0) {
            entry.payload = Some(payload);
        }
    }

    /// How many timers are scheduled.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_fires_once_at_its_time() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let id = timers.add(t0, Duration::from_millis(10), false, "a");
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(timers.pop_due(t0 + Duration::from_millis(9)).is_none());
        assert_eq!(
            timers.pop_due(t0 + Duration::from_millis(10)),
            Some((id, "a"))
        );
        assert!(timers.pop_due(t0 + Duration::from_secs(1)).is_none());
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn repeating_timer_reschedules_and_can_be_deleted_while_running() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let id = timers.add(t0, Duration::from_millis(5), true, 1);
        let (got, p) = timers.pop_due(t0 + Duration::from_millis(5)).unwrap();
        assert_eq!(got, id);
        timers.restore(id, p);
        assert!(timers.pop_due(t0 + Duration::from_millis(10)).is_some());
        assert!(timers.del(id));
        timers.restore(id, 1);
        assert!(timers.pop_due(t0 + Duration::from_secs(1)).is_none());
        assert!(!timers.del(id));
    }

    #[test]
    fn due_order_is_by_time_then_creation() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.add(t0, Duration::from_millis(20), false, "late");
        timers.add(t0, Duration::from_millis(10), false, "first");
        timers.add(t0, Duration::from_millis(10), false, "second");
        let now = t0 + Duration::from_millis(30);
        let order: Vec<_> = std::iter::from_fn(|| timers.pop_due(now).map(|(_, p)| p)).collect();
        assert_eq!(order, ["first", "second", "late"]);
    }
}
