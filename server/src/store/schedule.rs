//! Durable scheduled pushes: a redb file keyed by due time, so a restart loses none and
//! "what is due" is one range scan.
//!
//! # Delivery
//!
//! At least once: the daemon takes [`Schedule::due`] entries, sends them, then
//! [`Schedule::remove`]s them. A crash between the two sends them again after restart.
//!
//! # Tables
//!
//! ```text
//! pushes: (at_ms, id) -> JSON of ScheduledPush   ordered by time: `due` is a range scan
//! by_id:  id -> at_ms                            finds an entry's key for `cancel`/`remove`
//! meta:   "next_id" -> u64                       ids are never reused, even across restarts
//! ```

use pushman::push::command::StoredTarget;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    fmt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

const PUSHES: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("pushes");
const BY_ID: TableDefinition<'_, u64, u64> = TableDefinition::new("by_id");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const NEXT_ID: &str = "next_id";

/// A push waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScheduledPush {
    /// Who receives it.
    pub(crate) target: StoredTarget,
    /// The message text, exactly as it will be sent.
    pub(crate) data: String,
}

/// Why the schedule could not be read or written.
#[derive(Debug)]
pub(crate) enum ScheduleError {
    /// redb failed: I/O, a corrupt file, a failed commit. Boxed: redb's error is large.
    Db(Box<redb::Error>),
    /// Another process holds the file's lock (redb's `DatabaseAlreadyOpen`).
    Locked,
    /// redb panicked on the file: a page is damaged in a way its checks did not catch.
    Panicked,
    /// The store is closed after a fault and not yet reopened (see `push::store`); `reason`
    /// is the fault.
    Unavailable {
        /// The error that closed it, or that the last reopen failed with.
        reason: String,
    },
    /// The stored entry `id` is not a [`ScheduledPush`] (written by an incompatible version?).
    /// `cancel(id)` removes it.
    Corrupt {
        /// The entry's id.
        id: u64,
    },
    /// A push could not be encoded as JSON (serde_json refused it).
    Encode,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Db(e) => write!(f, "schedule database error: {e}"),
            Self::Locked => f.write_str("the file is locked by another process"),
            Self::Panicked => f.write_str("the file is damaged (the database library panicked)"),
            Self::Unavailable { reason } => write!(f, "store unavailable: {reason}"),
            Self::Corrupt { id } => write!(f, "scheduled push {id} is unreadable"),
            Self::Encode => f.write_str("scheduled push could not be encoded"),
        }
    }
}

impl std::error::Error for ScheduleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl ScheduleError {
    /// Whether the file itself failed (I/O, damage, a panic), so the handle must be closed
    /// and reopened; a bad entry or an unencodable push leaves the file usable.
    pub(crate) fn is_store_fault(&self) -> bool {
        matches!(
            self,
            Self::Db(_) | Self::Locked | Self::Panicked | Self::Unavailable { .. }
        )
    }

    /// Whether the file is damaged (as opposed to unreadable, full or locked).
    pub(crate) fn is_corruption(&self) -> bool {
        match self {
            Self::Db(e) => match &**e {
                redb::Error::Corrupted(_) => true,
                // redb's "Not a redb database: magic number mismatch".
                redb::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
                _ => false,
            },
            Self::Panicked => true,
            _ => false,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for ScheduleError {
            fn from(e: $t) -> Self {
                match e.into() {
                    redb::Error::DatabaseAlreadyOpen => Self::Locked,
                    e => Self::Db(Box::new(e)),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// `Result` with [`ScheduleError`].
pub(crate) type Result<T> = std::result::Result<T, ScheduleError>;

/// The scheduled pushes: a redb file plus an in-memory index of due times.
pub(crate) struct Schedule {
    /// The file; every change is committed (durably) before the method returns.
    db: Database,
    /// `(at_ms, id)` of every entry, loaded at open: `next_at` and "nothing due yet" cost
    /// no disk I/O, which matters because the daemon asks on every timer tick.
    index: BTreeSet<(u64, u64)>,
    /// The id the next `add` gets. Advanced even if a commit fails, so an id that might
    /// have reached the disk is never handed out twice.
    next_id: u64,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("len", &self.index.len())
            .field("next_at", &self.next_at())
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl Schedule {
    /// Opens the schedule at `path`, creating the file and its tables if needed.
    ///
    /// Every page is checked first (redb's integrity check on open): a plain open trusts
    /// the file and may panic on a damaged page, this one reports it. It reads the whole
    /// file, which is small (one entry per pending push).
    ///
    /// # Errors
    /// [`ScheduleError::Locked`] if another process has it open; [`ScheduleError::Db`] if
    /// it cannot be created, read or committed, or is corrupt
    /// ([`ScheduleError::is_corruption`]); [`ScheduleError::Panicked`] if redb panicked.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        guard(|| {
            let db = Database::builder()
                .set_check_integrity_on_open(true)
                .create(path)?;
            Self::load(db)
        })
    }

    /// Opens the schedule in `backend` (tests inject faults through it; cluster mode keeps
    /// an empty one in memory).
    pub(crate) fn open_backend(backend: impl redb::StorageBackend) -> Result<Self> {
        guard(|| {
            let db = Database::builder()
                .set_check_integrity_on_open(true)
                .create_with_backend(backend)?;
            Self::load(db)
        })
    }

    /// Creates the tables if needed and builds the in-memory index.
    fn load(db: Database) -> Result<Self> {
        let txn = db.begin_write()?;
        let (index, next_id) = {
            let pushes = txn.open_table(PUSHES)?;
            txn.open_table(BY_ID)?;
            let meta = txn.open_table(META)?;
            let mut index = BTreeSet::new();
            for entry in pushes.iter()? {
                index.insert(entry?.0.value());
            }
            let stored = meta.get(NEXT_ID)?.map_or(1, |v| v.value());
            // Belt and braces: never below an id that is in the table.
            let seen = index.iter().map(|&(_, id)| id + 1).max().unwrap_or(1);
            (index, stored.max(seen))
        };
        txn.commit()?;
        Ok(Self { db, index, next_id })
    }

    /// Stores `push` to be sent at `at_ms` (unix milliseconds); returns its id. The entry
    /// is on disk when this returns.
    ///
    /// # Errors
    /// [`ScheduleError::Db`] if the commit fails; the push is then not scheduled.
    pub(crate) fn add(&mut self, at_ms: u64, push: &ScheduledPush) -> Result<u64> {
        let bytes = serde_json::to_vec(push).map_err(|_| ScheduleError::Encode)?;
        let id = self.next_id;
        self.next_id += 1;
        guard(|| self.insert(at_ms, id, &bytes))?;
        self.index.insert((at_ms, id));
        Ok(id)
    }

    /// Commits one entry.
    fn insert(&self, at_ms: u64, id: u64, bytes: &[u8]) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(PUSHES)?.insert((at_ms, id), bytes)?;
            txn.open_table(BY_ID)?.insert(id, at_ms)?;
            txn.open_table(META)?.insert(NEXT_ID, self.next_id)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Drops the entry `id`; `true` if there was one.
    ///
    /// # Errors
    /// [`ScheduleError::Db`] if the commit fails.
    pub(crate) fn cancel(&mut self, id: u64) -> Result<bool> {
        Ok(self.remove_ids(&[id])? == 1)
    }

    /// Drops delivered entries; unknown ids are ignored. Call after sending what
    /// [`Schedule::due`] returned.
    ///
    /// # Errors
    /// [`ScheduleError::Db`] if the commit fails (the entries stay and will be due again).
    pub(crate) fn remove(&mut self, ids: &[u64]) -> Result<()> {
        self.remove_ids(ids).map(drop)
    }

    /// Removes `ids` in one transaction; returns how many existed.
    fn remove_ids(&mut self, ids: &[u64]) -> Result<usize> {
        let removed = guard(|| self.delete(ids))?;
        for key in &removed {
            self.index.remove(key);
        }
        Ok(removed.len())
    }

    /// Commits the removal of `ids`; returns the keys that existed.
    fn delete(&self, ids: &[u64]) -> Result<Vec<(u64, u64)>> {
        let txn = self.db.begin_write()?;
        let mut removed = Vec::with_capacity(ids.len());
        {
            let mut pushes = txn.open_table(PUSHES)?;
            let mut by_id = txn.open_table(BY_ID)?;
            for &id in ids {
                let Some(at) = by_id.remove(id)?.map(|v| v.value()) else {
                    continue;
                };
                pushes.remove((at, id))?;
                removed.push((at, id));
            }
        }
        txn.commit()?;
        Ok(removed)
    }

    /// Up to `limit` entries as `(id, at_ms, push)`, soonest first (ties by id).
    ///
    /// # Errors
    /// [`ScheduleError::Db`] on a read failure, [`ScheduleError::Corrupt`] on a bad entry.
    pub(crate) fn list(&self, limit: usize) -> Result<Vec<(u64, u64, ScheduledPush)>> {
        self.scan(u64::MAX, limit)
            .map(|v| v.into_iter().map(|(at, id, p)| (id, at, p)).collect())
    }

    /// Up to `max` entries due at `now_ms` (`at_ms <= now_ms`) as `(id, push)`, oldest
    /// first. They stay stored until [`Schedule::remove`]d.
    ///
    /// # Errors
    /// As [`Schedule::list`].
    pub(crate) fn due(&self, now_ms: u64, max: usize) -> Result<Vec<(u64, ScheduledPush)>> {
        if !matches!(self.next_at(), Some(at) if at <= now_ms) {
            return Ok(Vec::new());
        }
        self.scan(now_ms, max)
            .map(|v| v.into_iter().map(|(_, id, p)| (id, p)).collect())
    }

    /// Up to `max` entries with `at_ms <= until`, in key order, as `(at_ms, id, push)`.
    fn scan(&self, until: u64, max: usize) -> Result<Vec<(u64, u64, ScheduledPush)>> {
        guard(|| self.read(until, max))
    }

    /// The range read behind [`Schedule::scan`].
    fn read(&self, until: u64, max: usize) -> Result<Vec<(u64, u64, ScheduledPush)>> {
        let txn = self.db.begin_read()?;
        let pushes = txn.open_table(PUSHES)?;
        let mut out = Vec::new();
        for entry in pushes.range(..=(until, u64::MAX))?.take(max) {
            let (key, value) = entry?;
            let (at, id) = key.value();
            let push =
                serde_json::from_slice(value.value()).map_err(|_| ScheduleError::Corrupt { id })?;
            out.push((at, id, push));
        }
        Ok(out)
    }

    /// When the soonest entry is due (unix ms), from memory; `None` if there are none.
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.index.first().map(|&(at, _)| at)
    }

    /// How many entries are stored.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The database, for the other tables kept in the same file (the inbox journal,
    /// `store::journal`).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Whether no entries are stored.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Runs a redb operation, turning a panic into [`ScheduleError::Panicked`]: redb trusts
/// pages it has not checked and may hit `unreachable!` on a damaged one. The last line of
/// defence (the integrity check on open catches what it can first), so a damaged file costs
/// the store, not the daemon. The default panic hook still prints the panic, which is the
/// evidence of a redb bug worth reporting.
pub(crate) fn guard<T>(op: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(op)).unwrap_or(Err(ScheduleError::Panicked))
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
