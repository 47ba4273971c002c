//! The durable inbox (`inbox.durable`): the inbox's records in the store's file, committed
//! once per reactor turn before that turn's frames and acknowledgements leave, and read back
//! at start (docs/PROTOCOL.md §7).
//!
//! # Where
//!
//! One more table in `files.store`, beside the scheduled pushes: one file, one lock, one
//! integrity check, and the store's fault handling ([`Store::with_db`]: a failing file is
//! closed and reopened with backoff, `pushman status` shows it). A second file would need a
//! second copy of all of that, and an operator would have two files to back up and check.
//!
//! ```text
//! inbox_log: seq -> records   one value per commit (a turn's records, concatenated in the
//!                             library's encoding), or a chunk of a snapshot
//! ```
//!
//! # When
//!
//! The runtime holds every turn's output (`Runtime::hold_output`) and calls [`commit`] at
//! the turn's end: the turn's records go in one transaction, one sync, however many pushes
//! the turn carried. Replies to pushes wait in [`Journal`] for that commit; if it fails they
//! say so (`fail`, or `"ok":false` with the receipt) instead of acknowledging. The frames
//! of those pushes were in memory and may have reached connected clients all the same.
//!
//! # Snapshots
//!
//! The log is replaced by a snapshot of the inbox ([`Inbox::snapshot`]) at start, after a
//! failed commit (the memory then holds what the log lacks), and once the log has grown
//! well past what the inbox holds ([`compact_at`]), so it stays proportional to the inbox.
//!
//! # Start
//!
//! The records are applied in order ([`Inbox::recover`]): same epoch, same offsets, so
//! clients resume with no gap. No log, or one that does not decode or apply: a new epoch,
//! so a position from before is reported as a gap, never resumed wrongly.

use super::{schedule::ScheduleError, Store};
use crate::{
    api::{Compat, Reply},
    config::InboxSettings,
    replies::Ticket,
    state::Daemon,
};
use pushman::{
    push::inbox::{Epoch, Inbox, Record},
    Ctx,
};
use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("inbox_log");

/// A snapshot is written in values of about this size.
const CHUNK: usize = 1 << 20;

/// The log is compacted once it holds more than this many bytes beyond twice the last
/// snapshot: a snapshot costs what the inbox holds, so its cost per pushed byte is bounded.
const COMPACT_SLACK: u64 = 8 << 20;

/// The durable side of the inbox: where the log stands, replies waiting for the commit,
/// counters.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// The key of the next commit.
    next_seq: u64,
    /// Bytes written to the log since its last snapshot (the snapshot included).
    log_bytes: u64,
    /// Bytes of the last snapshot.
    snapshot_bytes: u64,
    /// The log lacks something the inbox holds (a failed commit, or not yet written since
    /// start): the next commit writes a snapshot instead of the turn's records.
    stale: bool,
    /// Replies to this turn's pushes, answered after the commit.
    held: Vec<Held>,
    /// Encoding buffer, kept between turns.
    buf: Vec<u8>,
    /// Counters for `status`.
    pub(crate) stats: JournalStatus,
}

/// A reply waiting for the turn's commit.
#[derive(Debug)]
struct Held {
    ticket: Ticket,
    reply: Reply,
    /// It announces a push the commit makes durable (else it only waits for its turn).
    pushed: bool,
}

/// What `status` reports about the journal (`inbox_journal`); counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalStatus {
    /// Bytes in the log now.
    pub(crate) bytes: u64,
    /// Commits (each one sync) of a turn's records.
    pub(crate) commits: u64,
    /// Time spent in commits, sync included (µs): over `commits`, a commit's average cost.
    #[serde(default)]
    pub(crate) commit_us: u64,
    /// Commits that failed (the pushes were not acknowledged).
    pub(crate) failures: u64,
    /// The last failure's error, `null` if none.
    pub(crate) last_error: Option<String>,
    /// Pushes answered with a failure because their commit failed.
    pub(crate) pushes_not_acked: u64,
    /// Records committed.
    pub(crate) records: u64,
    /// Messages recovered at start (0 when a new epoch began).
    pub(crate) recovered: u64,
    /// Snapshots written (start, compaction, after a failure).
    pub(crate) snapshots: u64,
}

/// Reads the inbox back from `store` (a new epoch if there is nothing to read, or it is
/// damaged), turns its journal on and writes the start snapshot. Never fails: the worst
/// case is a new, empty inbox, which clients detect as a gap.
pub(crate) fn open(store: &mut Store, settings: &InboxSettings) -> (Inbox, Journal) {
    let mut journal = Journal::default();
    let path = store.path().display().to_string();
    let mut inbox = match read(store) {
        Ok(records) if records.is_empty() => {
            log::info!("inbox journal in {path}: empty; new epoch");
            Inbox::new(settings.limits(), Epoch::random())
        }
        Ok(records) => match Inbox::recover(settings.limits(), records) {
            Ok(inbox) => {
                let s = inbox.stats();
                journal.stats.recovered = s.messages as u64;
                log::info!(
                    "inbox recovered from {path}: epoch {}, {} pushes of {} uids",
                    inbox.epoch(),
                    s.messages,
                    s.uids
                );
                inbox
            }
            Err(e) => fresh(settings, &path, &e),
        },
        Err(e) => fresh(settings, &path, &e),
    };
    inbox.enable_journal();
    journal.stale = true;
    if let Err(e) = journal.snapshot(store, &mut inbox) {
        log::error!("inbox journal in {path}: start snapshot failed ({e}); retried each turn");
    }
    (inbox, journal)
}

/// A new inbox after the log could not be used.
fn fresh(settings: &InboxSettings, path: &str, e: &dyn std::fmt::Display) -> Inbox {
    log::error!("inbox journal in {path} unusable ({e}): starting a new epoch; clients' old positions are reported as gaps");
    Inbox::new(settings.limits(), Epoch::random())
}

/// Durable mode: reads the inbox back into the daemon, holds every turn's output until
/// [`commit`] has run at its end.
pub(crate) fn install(runtime: &mut pushman::Runtime<Daemon>) {
    let state = runtime.state();
    let (inbox, journal) = open(&mut state.schedule, &state.config.inbox);
    state.inbox = Some(inbox);
    state.journal = Some(journal);
    runtime.hold_output(true);
    runtime.on_turn_end(commit);
}

/// Why the log could not be read.
#[derive(Debug)]
enum ReadError {
    Store(ScheduleError),
    Decode(u64, pushman::push::inbox::DecodeError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::Decode(seq, e) => write!(f, "entry {seq}: {e}"),
        }
    }
}

/// Every record in the log, in order.
fn read(store: &mut Store) -> Result<Vec<Record>, ReadError> {
    let values = store.with_db(read_values).map_err(ReadError::Store)?;
    decode(values)
}

/// The log's values as `(seq, bytes)`, in order; none if there is no log.
fn read_values(db: &redb::Database) -> Result<Vec<(u64, Vec<u8>)>, ScheduleError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(LOG) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut values = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        values.push((k.value(), v.value().to_vec()));
    }
    Ok(values)
}

fn decode(values: Vec<(u64, Vec<u8>)>) -> Result<Vec<Record>, ReadError> {
    let mut records = Vec::new();
    for (seq, bytes) in values {
        for r in Record::decode_all(&bytes) {
            records.push(r.map_err(|e| ReadError::Decode(seq, e))?);
        }
    }
    Ok(records)
}

/// For `pushman store check`: what the inbox log holds, as a line, or `None` if the file
/// has none (`inbox.durable` never used).
pub(crate) fn check(db: &redb::Database) -> Option<String> {
    let records = match read_values(db).map_err(ReadError::Store).and_then(decode) {
        Ok(records) if records.is_empty() => return None,
        Ok(records) => records,
        Err(e) => {
            return Some(format!(
                "inbox log unreadable ({e}): the next start with inbox.durable begins a new epoch"
            ))
        }
    };
    let n = records.len();
    // Default bounds: the check reports what the log holds, not what a config keeps of it.
    let limits = pushman::push::inbox::Config {
        max_per_uid: usize::MAX,
        max_bytes: usize::MAX,
        ..Default::default()
    };
    Some(match Inbox::recover(limits, records) {
        Ok(inbox) => format!(
            "inbox log: {n} records, epoch {}, {} pushes of {} uids",
            inbox.epoch(),
            inbox.stats().messages,
            inbox.stats().uids
        ),
        Err(e) => format!(
            "inbox log does not fit together ({e}): the next start with inbox.durable begins a new epoch"
        ),
    })
}

impl Journal {
    /// Whether the turn-end hook has work: records or replies waiting, or a stale log to
    /// rewrite once the store is up. An idle turn costs nothing, and a store that is down is
    /// not retried every turn (its own reopen has a backoff).
    fn due(&self, inbox: &Inbox, store: &Store) -> bool {
        inbox.journal_len() > 0 || !self.held.is_empty() || (self.stale && store.is_up())
    }

    /// Commits the inbox's pending records (or a snapshot, if the log is stale or due for
    /// compaction) in one transaction.
    ///
    /// # Errors
    /// The store's error; the log is then stale (the next commit writes a snapshot).
    fn write(&mut self, store: &mut Store, inbox: &mut Inbox) -> Result<(), String> {
        if self.stale || self.log_bytes > compact_at(self.snapshot_bytes) {
            return self.snapshot(store, inbox);
        }
        if inbox.journal_len() == 0 {
            return Ok(());
        }
        self.buf.clear();
        let mut records = 0;
        for record in inbox.drain_journal() {
            record.encode(&mut self.buf);
            records += 1;
        }
        let (seq, buf) = (self.next_seq, &self.buf);
        let started = std::time::Instant::now();
        let result = store.with_db(|db| {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?.insert(seq, &buf[..])?;
            txn.commit()?;
            Ok(())
        });
        self.stats.commit_us += started.elapsed().as_micros() as u64;
        self.settle(result.map(|()| (1, buf.len() as u64, false)), records)
    }

    /// Replaces the log with the inbox's snapshot, in one transaction.
    fn snapshot(&mut self, store: &mut Store, inbox: &mut Inbox) -> Result<(), String> {
        inbox.drain_journal().for_each(drop);
        let inbox = &*inbox;
        let buf = &mut self.buf;
        let mut records = 0;
        let started = std::time::Instant::now();
        let result = store.with_db(|db| {
            let txn = db.begin_write()?;
            txn.delete_table(LOG)?;
            let (mut seq, mut bytes) = (0, 0);
            {
                let mut table = txn.open_table(LOG)?;
                buf.clear();
                for record in inbox.snapshot() {
                    record.encode(buf);
                    records += 1;
                    if buf.len() >= CHUNK {
                        table.insert(seq, &buf[..])?;
                        (seq, bytes) = (seq + 1, bytes + buf.len() as u64);
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    table.insert(seq, &buf[..])?;
                    (seq, bytes) = (seq + 1, bytes + buf.len() as u64);
                }
            }
            txn.commit()?;
            Ok((seq, bytes, true))
        });
        self.stats.commit_us += started.elapsed().as_micros() as u64;
        self.settle(result, records)
    }

    /// Books a commit's outcome: `(values, bytes, snapshot)` on success.
    fn settle(
        &mut self,
        result: Result<(u64, u64, bool), ScheduleError>,
        records: u64,
    ) -> Result<(), String> {
        match result {
            Ok((values, bytes, snapshot)) => {
                self.stats.commits += 1;
                self.stats.records += records;
                if snapshot {
                    self.stats.snapshots += 1;
                    (self.next_seq, self.log_bytes, self.snapshot_bytes) = (values, bytes, bytes);
                    self.stale = false;
                } else {
                    self.next_seq += values;
                    self.log_bytes += bytes;
                }
                self.stats.bytes = self.log_bytes;
                Ok(())
            }
            Err(e) => {
                // A store fault is logged by the store, once per outage.
                if !e.is_store_fault() {
                    log::error!("inbox journal commit failed: {e}");
                }
                self.stale = true;
                self.stats.failures += 1;
                let e = e.to_string();
                self.stats.last_error = Some(e.clone());
                Err(e)
            }
        }
    }
}

/// The log size past which it is compacted, for a last snapshot of `snapshot` bytes.
fn compact_at(snapshot: u64) -> u64 {
    snapshot.saturating_mul(2).saturating_add(COMPACT_SLACK)
}

/// Runs a backend command whose reply must not leave before the turn's commit. Returns the
/// reply if it can be answered now (no durable inbox, or nothing waits for a commit);
/// otherwise `ticket` is deferred and [`commit`] answers it.
pub(crate) fn after_commit(
    ctx: &mut Ctx<'_, Daemon>,
    ticket: Ticket,
    run: impl FnOnce(&mut Ctx<'_, Daemon>) -> Reply,
) -> Option<Reply> {
    let appended = |ctx: &Ctx<'_, Daemon>| ctx.state.inbox.as_ref().map(|i| i.stats().appended);
    if ctx.state.journal.is_none() {
        return Some(run(ctx));
    }
    let before = appended(ctx);
    let reply = run(ctx);
    let pushed = appended(ctx) != before;
    let pending = ctx.state.inbox.as_ref().map_or(0, Inbox::journal_len);
    let journal = ctx.state.journal.as_mut()?;
    if pending == 0 && journal.held.is_empty() {
        return Some(reply);
    }
    journal.held.push(Held {
        ticket,
        reply,
        pushed,
    });
    ticket.defer(ctx);
    None
}

/// The turn-end hook (`Runtime::on_turn_end`): commits the turn's records, then answers the
/// replies that waited for it: as they were if the commit worked, as failures otherwise.
pub(crate) fn commit(ctx: &mut Ctx<'_, Daemon>) {
    let Daemon {
        inbox: Some(inbox),
        journal: Some(journal),
        schedule,
        ..
    } = &mut *ctx.state
    else {
        return;
    };
    if !journal.due(inbox, schedule) {
        return;
    }
    let result = journal.write(schedule, inbox);
    let held = std::mem::take(&mut journal.held);
    if let Err(e) = &result {
        journal.stats.pushes_not_acked += held.iter().filter(|h| h.pushed).count() as u64;
        log::debug!(
            "inbox journal: {} replies answered with the failure: {e}",
            held.len()
        );
    }
    for h in held {
        let reply = match &result {
            Err(e) if h.pushed => not_acked(h.reply, e),
            _ => h.reply,
        };
        h.ticket.answer(ctx, reply);
    }
}

/// The reply to a push whose commit failed: push.php's `fail`; an extended push keeps its
/// receipt (who got the frame live) with `"ok": false` and the error.
fn not_acked(reply: Reply, error: &str) -> Reply {
    match reply {
        Reply::Compat(_) => Reply::Compat(Compat::Refused),
        Reply::Done(mut value) | Reply::Failed(mut value) => {
            value["ok"] = false.into();
            value["error"] = format!("inbox store failed, push not kept: {error}").into();
            Reply::Failed(value)
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
