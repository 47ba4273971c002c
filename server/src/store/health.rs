//! The schedule under faults: a [`Schedule`] that closes itself when its file fails and
//! reopens with backoff, so a full disk or a damaged page costs scheduling for a while,
//! never a restart, and never a redelivery loop.
//!
//! # Why close and reopen
//!
//! After one I/O error redb refuses every later call ("Previous I/O error occurred. Please
//! close and re-open the database"), even once the disk has room again. So the first
//! [`ScheduleError::is_store_fault`] drops the handle, and [`Store::tick`] reopens the file
//! (with the integrity check of [`Schedule::open`]) after 1 s, 2 s, 4 s, … at most
//! [`MAX_BACKOFF`] apart until it works.
//!
//! # Delivered, removal pending
//!
//! A due push is sent, then removed. If the removal fails, its id is kept in memory and
//! removed first thing after the reopen; meanwhile nothing is read from the file, so the
//! push is not sent again. Only a restart before the removal succeeds sends it again
//! (at-least-once, as documented), never the scheduler's tick.
//!
//! # Logging
//!
//! One error line when the store fails, one line when it recovers, and a summary every
//! [`LOG_EVERY`] while it stays down; single reopen failures are `debug`.

use super::schedule::{Result, Schedule, ScheduleError, ScheduledPush};
use std::{
    fmt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The first reopen waits this long after a fault; each failure doubles the wait.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two reopen attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often a store that stays down is reported in the log.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// How the store is opened, and reopened after a fault.
type Opener = Box<dyn FnMut() -> Result<Schedule>>;

/// The scheduled pushes, with their file's health.
pub(crate) struct Store {
    /// The file, named in logs and status.
    path: PathBuf,
    /// Reopens the file (tests inject a faulty backend here).
    open: Opener,
    /// `None` while the file is closed after a fault.
    schedule: Option<Schedule>,
    /// Why and since when it is down; `None` while healthy.
    fault: Option<Fault>,
    /// Ids sent whose removal failed; removed right after the next reopen.
    unremoved: Vec<u64>,
    /// Entries pending when the file was closed, reported while it is down.
    last_len: usize,
}

/// A store that is down.
#[derive(Debug, Clone)]
struct Fault {
    /// When it failed.
    since: Instant,
    /// The error that closed it, or that the last reopen failed with.
    last_error: String,
    /// Reopens tried so far.
    attempts: u32,
    /// When the next reopen may be tried.
    next_attempt: Instant,
    /// When the last summary line was logged.
    last_log: Instant,
}

/// What `status` reports about the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    /// Whether the file is open and working.
    pub(crate) healthy: bool,
    /// How long it has been down (0 while healthy).
    pub(crate) failing_for: Duration,
    /// The error that closed it or that the last reopen failed with.
    pub(crate) last_error: Option<String>,
    /// Reopens tried since it failed.
    pub(crate) reopen_attempts: u32,
    /// Sent pushes whose removal waits for the reopen.
    pub(crate) unremoved: usize,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("schedule", &self.schedule)
            .field("fault", &self.fault)
            .field("unremoved", &self.unremoved)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path` (see [`Schedule::open`]).
    ///
    /// # Errors
    /// As [`Schedule::open`]: a store that cannot be opened at start is the operator's to fix.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let owned = path.to_path_buf();
        Self::with_opener(path, Box::new(move || Schedule::open(&owned)))
    }

    /// Opens the store with `open`, which is also used for every reopen.
    ///
    /// # Errors
    /// Whatever `open` returns.
    pub(crate) fn with_opener(path: &Path, mut open: Opener) -> Result<Self> {
        let schedule = open()?;
        Ok(Self {
            path: path.to_path_buf(),
            open,
            last_len: schedule.len(),
            schedule: Some(schedule),
            fault: None,
            unremoved: Vec::new(),
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `push` for `at_ms`; see [`Schedule::add`].
    ///
    /// # Errors
    /// [`ScheduleError::Unavailable`] while the store is down or if this write brings it
    /// down; [`ScheduleError::Encode`] as [`Schedule::add`].
    pub(crate) fn add(&mut self, at_ms: u64, push: &ScheduledPush) -> Result<u64> {
        let result = self.up()?.add(at_ms, push);
        self.check(result)
    }

    /// Drops the entry `id`; `true` if there was one (a sent push awaiting removal is
    /// gone already: `false`).
    ///
    /// # Errors
    /// As [`Store::add`].
    pub(crate) fn cancel(&mut self, id: u64) -> Result<bool> {
        if self.unremoved.contains(&id) {
            return Ok(false);
        }
        let result = self.up()?.cancel(id);
        self.check(result)
    }

    /// Up to `limit` entries, soonest first; see [`Schedule::list`].
    ///
    /// # Errors
    /// As [`Store::add`], and [`ScheduleError::Corrupt`] on a bad entry.
    pub(crate) fn list(&mut self, limit: usize) -> Result<Vec<(u64, u64, ScheduledPush)>> {
        let result = self.up()?.list(limit);
        self.check(result)
    }

    /// Entries due at `now_ms`; none while the store is down. See [`Schedule::due`].
    ///
    /// # Errors
    /// As [`Store::list`].
    pub(crate) fn due(&mut self, now_ms: u64, max: usize) -> Result<Vec<(u64, ScheduledPush)>> {
        if self.schedule.is_none() {
            return Ok(Vec::new());
        }
        let result = self.up()?.due(now_ms, max);
        self.check(result)
    }

    /// Removes entries that were sent. If that fails the store goes down and the ids are
    /// removed after the reopen; they are never returned by [`Store::due`] meanwhile.
    pub(crate) fn delivered(&mut self, ids: &[u64]) {
        self.unremoved.extend_from_slice(ids);
        let pending = std::mem::take(&mut self.unremoved);
        match self.up().map(|s| s.remove(&pending)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.unremoved = pending;
                let _ = self.check::<()>(Err(e));
            }
            Err(_) => self.unremoved = pending,
        }
    }

    /// Runs `f` on the open database, for tables kept beside the schedule in the same file
    /// (the inbox journal): the same lock, integrity check, fault handling and reopening.
    /// A panic in redb becomes [`ScheduleError::Panicked`]; a store fault closes the file.
    ///
    /// # Errors
    /// [`ScheduleError::Unavailable`] while the store is down or if `f` brings it down;
    /// whatever else `f` returns.
    pub(crate) fn with_db<T>(&mut self, f: impl FnOnce(&redb::Database) -> Result<T>) -> Result<T> {
        let result = {
            let schedule = self.up()?;
            super::schedule::guard(|| f(schedule.db()))
        };
        self.check(result)
    }

    /// Reopens a store that is down, if its backoff has passed. Call on every timer tick:
    /// it costs nothing while healthy.
    pub(crate) fn tick(&mut self, now: Instant) {
        let Some(fault) = &mut self.fault else {
            return;
        };
        if now < fault.next_attempt {
            return;
        }
        fault.attempts += 1;
        let result = (self.open)().and_then(|mut schedule| {
            schedule.remove(&self.unremoved)?;
            Ok(schedule)
        });
        match result {
            Ok(schedule) => self.recovered(schedule, now),
            Err(e) => self.retry_later(&e, now),
        }
    }

    /// When the soonest entry is due; `None` while down (nothing is read then).
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.schedule.as_ref()?.next_at()
    }

    /// How many entries are pending (the count at the fault while down).
    pub(crate) fn len(&self) -> usize {
        self.schedule.as_ref().map_or(self.last_len, Schedule::len)
    }

    /// Whether the file is open (not down after a fault).
    pub(crate) fn is_up(&self) -> bool {
        self.schedule.is_some()
    }

    /// The store's health at `now`.
    pub(crate) fn health(&self, now: Instant) -> Health {
        Health {
            healthy: self.fault.is_none(),
            failing_for: self
                .fault
                .as_ref()
                .map_or(Duration::ZERO, |f| now.saturating_duration_since(f.since)),
            last_error: self.fault.as_ref().map(|f| f.last_error.clone()),
            reopen_attempts: self.fault.as_ref().map_or(0, |f| f.attempts),
            unremoved: self.unremoved.len(),
        }
    }

    /// The open schedule, or the error that says why there is none.
    fn up(&mut self) -> Result<&mut Schedule> {
        match (&mut self.schedule, &self.fault) {
            (Some(schedule), _) => Ok(schedule),
            (None, fault) => Err(ScheduleError::Unavailable {
                reason: fault
                    .as_ref()
                    .map_or_else(|| "closed".to_owned(), |f| f.last_error.clone()),
            }),
        }
    }

    /// Passes `result` on; a store fault closes the file and becomes
    /// [`ScheduleError::Unavailable`].
    fn check<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Err(e) if e.is_store_fault() => {
                let reason = e.to_string();
                self.fail(reason.clone(), Instant::now());
                Err(ScheduleError::Unavailable { reason })
            }
            other => other,
        }
    }

    /// Closes the file after a fault and logs it once.
    fn fail(&mut self, reason: String, now: Instant) {
        if let Some(schedule) = self.schedule.take() {
            self.last_len = schedule.len();
        }
        log::error!(
            "store {} failed: {reason}; scheduling and cancel are refused until it reopens (retried with backoff, see `pushman status`)",
            self.path.display()
        );
        self.fault = Some(Fault {
            since: now,
            last_error: reason,
            attempts: 0,
            next_attempt: now + FIRST_BACKOFF,
            last_log: now,
        });
    }

    /// A reopen failed: wait twice as long (at most [`MAX_BACKOFF`]) before the next.
    fn retry_later(&mut self, e: &ScheduleError, now: Instant) {
        let Some(fault) = &mut self.fault else {
            return;
        };
        fault.last_error = e.to_string();
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << fault.attempts.min(16))
            .min(MAX_BACKOFF);
        fault.next_attempt = now + wait;
        log::debug!(
            "store {}: reopen {} failed: {e}",
            self.path.display(),
            fault.attempts
        );
        if now.saturating_duration_since(fault.last_log) >= LOG_EVERY {
            fault.last_log = now;
            log::warn!(
                "store {} still unavailable after {} s and {} reopen attempts: {e}",
                self.path.display(),
                now.saturating_duration_since(fault.since).as_secs(),
                fault.attempts
            );
        }
    }

    /// The reopen worked (and the pending removals went through).
    fn recovered(&mut self, schedule: Schedule, now: Instant) {
        if let Some(fault) = self.fault.take() {
            log::warn!(
                "store {} reopened after {} s and {} attempts; {} sent pushes removed",
                self.path.display(),
                now.saturating_duration_since(fault.since).as_secs(),
                fault.attempts,
                self.unremoved.len()
            );
        }
        self.unremoved.clear();
        self.last_len = schedule.len();
        self.schedule = Some(schedule);
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
pub(crate) mod tests;
