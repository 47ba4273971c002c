//! Unit tests for the store's fault handling, on an in-memory redb file whose writes can
//! be made to fail with ENOSPC.

use super::*;
use pushman::push::command::StoredTarget;
use redb::{backends::InMemoryBackend, StorageBackend};
use std::{
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

/// One in-memory file shared by every (re)open, with a switch that makes writes fail.
#[derive(Debug, Clone, Default)]
pub(crate) struct Disk {
    bytes: Arc<InMemoryBackend>,
    full: Arc<AtomicBool>,
}

impl Disk {
    pub(crate) fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    fn check(&self) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    pub(crate) fn store(&self) -> Store {
        let disk = self.clone();
        Store::with_opener(
            Path::new("mem.redb"),
            Box::new(move || Schedule::open_backend(disk.clone())),
        )
        .expect("open the in-memory store")
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        self.bytes.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.bytes.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.bytes.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.check()?;
        self.bytes.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.bytes.write(offset, data)
    }
}

fn push(data: &str) -> ScheduledPush {
    ScheduledPush {
        target: StoredTarget::Uid("u".into()),
        data: data.into(),
    }
}

fn unavailable(e: ScheduleError) -> String {
    match e {
        ScheduleError::Unavailable { reason } => reason,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_write_fault_closes_the_store_refuses_calls_and_a_reopen_heals_it() {
    let disk = Disk::default();
    let mut store = disk.store();
    let kept = store.add(100, &push("kept")).expect("add");
    assert!(store.health(Instant::now()).healthy);

    disk.set_full(true);
    let reason = unavailable(store.add(200, &push("lost")).expect_err("disk full"));
    assert!(reason.contains("No space left"), "{reason}");
    let t0 = Instant::now();
    let h = store.health(t0);
    assert!(!h.healthy);
    assert_eq!(h.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(h.reopen_attempts, 0);
    // Down: every call is refused with the fault, nothing is due, the count is the last known.
    for e in [
        store.add(300, &push("x")).map(drop),
        store.cancel(kept).map(drop),
        store.list(10).map(drop),
    ] {
        assert!(unavailable(e.expect_err("down")).contains("No space left"));
    }
    assert!(store.due(u64::MAX, 10).expect("due while down").is_empty());
    assert_eq!(store.next_at(), None);
    assert_eq!(store.len(), 1);

    // Still full: the reopen fails and is counted; the store stays down.
    store.tick(t0 + MAX_BACKOFF);
    let h = store.health(t0 + MAX_BACKOFF);
    assert_eq!((h.healthy, h.reopen_attempts), (false, 1));

    disk.set_full(false);
    store.tick(t0 + 3 * MAX_BACKOFF);
    let h = store.health(t0 + 3 * MAX_BACKOFF);
    assert!(h.healthy, "{h:?}");
    assert_eq!((h.last_error, h.reopen_attempts), (None, 0));
    let list = store.list(10).expect("list after the reopen");
    assert_eq!(list.len(), 1, "the push refused while full must not exist");
    assert_eq!((list[0].0, list[0].1), (kept, 100));
    let next = store.add(400, &push("new")).expect("add after the reopen");
    assert!(next > kept);
    assert!(store.cancel(next).expect("cancel after the reopen"));
}

#[test]
fn a_failed_removal_is_never_due_again_and_is_removed_after_the_reopen() {
    let disk = Disk::default();
    let mut store = disk.store();
    let id = store.add(10, &push("due-once")).expect("add");
    let later = store.add(1_000, &push("later")).expect("add");
    let due = store.due(10, 100).expect("due");
    assert_eq!(due.iter().map(|d| d.0).collect::<Vec<_>>(), [id]);

    disk.set_full(true);
    store.delivered(&[id]);
    let h = store.health(Instant::now());
    assert_eq!((h.healthy, h.unremoved), (false, 1));
    // The scheduler's ticks while down: nothing comes back.
    for now in [10, 11, 5_000] {
        assert!(store.due(now, 100).expect("due").is_empty());
    }
    assert!(!store.cancel(id).expect("a sent push is not cancellable"));

    disk.set_full(false);
    store.tick(Instant::now() + MAX_BACKOFF);
    let h = store.health(Instant::now());
    assert_eq!((h.healthy, h.unremoved), (true, 0), "{h:?}");
    assert!(store.due(10, 100).expect("due").is_empty());
    assert_eq!(store.len(), 1);
    assert_eq!(
        store
            .due(5_000, 100)
            .expect("due")
            .iter()
            .map(|d| d.0)
            .collect::<Vec<_>>(),
        [later]
    );
    // And on disk: a fresh open does not see it either.
    drop(store);
    let fresh = Schedule::open_backend(disk.clone()).expect("reopen");
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh.next_at(), Some(1_000));
}

#[test]
fn reopens_back_off_to_at_most_one_per_max_backoff() {
    let disk = Disk::default();
    let mut store = disk.store();
    disk.set_full(true);
    store.add(1, &push("x")).expect_err("disk full");
    let t0 = Instant::now();
    // A minute of 20 ms ticks with the disk full. Attempts at 1, 3, 7, 15, then every
    // 10 s: 25 … 55, so 8; flat out it would be 3,000.
    let mut t = t0;
    while t < t0 + Duration::from_secs(60) {
        store.tick(t);
        t += Duration::from_millis(20);
    }
    let h = store.health(t);
    assert!(!h.healthy);
    assert_eq!(h.reopen_attempts, 8);
    assert!(h.failing_for >= Duration::from_secs(60));
}
