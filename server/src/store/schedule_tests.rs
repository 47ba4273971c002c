//! Unit tests for the durable schedule, on files under the system temp dir.

use super::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh schedule file path, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pushman-schedule-{}-{}.redb",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        Self(path)
    }

    fn open(&self) -> Schedule {
        match Schedule::open(&self.0) {
            Ok(s) => s,
            Err(e) => panic!("open {}: {e}", self.0.display()),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn push(data: &str) -> ScheduledPush {
    ScheduledPush {
        target: StoredTarget::Uid("u".into()),
        data: data.into(),
    }
}

fn add(s: &mut Schedule, at: u64, data: &str) -> u64 {
    s.add(at, &push(data)).expect("add")
}

fn datas(v: &[(u64, ScheduledPush)]) -> Vec<&str> {
    v.iter().map(|(_, p)| p.data.as_str()).collect()
}

#[test]
fn add_list_cancel() {
    let f = TempFile::new();
    let mut s = f.open();
    assert!(s.is_empty());
    assert_eq!(s.next_at(), None);
    let b = add(&mut s, 200, "b");
    let a = add(&mut s, 100, "a");
    let c = add(&mut s, 300, "c");
    assert_eq!((a, b, c), (2, 1, 3));
    assert_eq!(s.len(), 3);
    assert_eq!(s.next_at(), Some(100));
    let list = s.list(10).expect("list");
    assert_eq!(
        list,
        [
            (a, 100, push("a")),
            (b, 200, push("b")),
            (c, 300, push("c"))
        ]
    );
    assert_eq!(s.list(1).expect("list").len(), 1);
    assert!(s.list(0).expect("list").is_empty());

    assert!(s.cancel(a).expect("cancel"));
    assert!(!s.cancel(a).expect("cancel again"));
    assert!(!s.cancel(999).expect("cancel unknown"));
    assert_eq!(s.len(), 2);
    assert_eq!(s.next_at(), Some(200));
}

#[test]
fn due_is_time_ordered_and_never_early() {
    let f = TempFile::new();
    let mut s = f.open();
    let late = add(&mut s, 500, "late");
    let t2 = add(&mut s, 300, "t300");
    let t1 = add(&mut s, 100, "t100");
    let tie = add(&mut s, 300, "t300b");
    assert!(s.due(99, 10).expect("due").is_empty());
    assert_eq!(datas(&s.due(100, 10).expect("due")), ["t100"]);
    let due = s.due(499, 10).expect("due");
    assert_eq!(due.iter().map(|d| d.0).collect::<Vec<_>>(), [t1, t2, tie]);
    assert_eq!(datas(&s.due(u64::MAX, 2).expect("due")), ["t100", "t300"]);
    // `due` does not remove; `remove` does, and ignores unknown ids.
    assert_eq!(s.len(), 4);
    s.remove(&[t1, t2, 12345]).expect("remove");
    assert_eq!(datas(&s.due(499, 10).expect("due")), ["t300b"]);
    s.remove(&[tie]).expect("remove");
    assert!(s.due(499, 10).expect("due").is_empty());
    assert_eq!(s.next_at(), Some(500));
    assert_eq!(s.due(500, 10).expect("due")[0].0, late);
    s.remove(&[]).expect("remove none");
    assert_eq!(s.len(), 1);
}

#[test]
fn entries_and_ids_survive_reopen() {
    let f = TempFile::new();
    let targets = [
        StoredTarget::Uid("u".into()),
        StoredTarget::Uids(vec!["a".into(), "b".into()]),
        StoredTarget::Group("g".into()),
        StoredTarget::All,
    ];
    let mut ids = Vec::new();
    {
        let mut s = f.open();
        for (i, target) in targets.iter().enumerate() {
            let p = ScheduledPush {
                target: target.clone(),
                data: format!("{{\"n\":{i}}}"),
            };
            ids.push(s.add(1000 + i as u64, &p).expect("add"));
        }
        // The highest id is cancelled: its number must still not come back.
        assert!(s.cancel(ids[3]).expect("cancel"));
    }
    let mut s = f.open();
    assert_eq!(s.len(), 3);
    assert_eq!(s.next_at(), Some(1000));
    let list = s.list(10).expect("list");
    for (i, (id, at, p)) in list.iter().enumerate() {
        assert_eq!((*id, *at), (ids[i], 1000 + i as u64));
        assert_eq!(p.target, targets[i]);
        assert_eq!(p.data, format!("{{\"n\":{i}}}"));
    }
    let next = add(&mut s, 1, "new");
    assert_eq!(next, ids[3] + 1);
    assert_eq!(s.next_at(), Some(1));
    drop(s);
    let s = f.open();
    assert_eq!(s.len(), 4);
    assert_eq!(s.list(1).expect("list")[0].0, next);
}

#[test]
fn open_twice_is_an_error() {
    let f = TempFile::new();
    let _s = f.open();
    let e = Schedule::open(&f.0).expect_err("second open");
    assert!(matches!(e, ScheduleError::Locked), "{e:?}");
    assert!(e.is_store_fault() && !e.is_corruption());
    assert_eq!(e.to_string(), "the file is locked by another process");
}

#[test]
fn corrupt_entry_is_reported_and_cancellable() {
    let f = TempFile::new();
    let mut s = f.open();
    let id = add(&mut s, 10, "ok");
    {
        let txn = s.db.begin_write().expect("txn");
        txn.open_table(PUSHES)
            .expect("table")
            .insert((10, id), &b"not json"[..])
            .expect("insert");
        txn.commit().expect("commit");
    }
    let e = s.due(10, 10).expect_err("corrupt");
    assert_eq!(e.to_string(), format!("scheduled push {id} is unreadable"));
    assert!(matches!(e, ScheduleError::Corrupt { id: i } if i == id));
    assert!(s.cancel(id).expect("cancel"));
    assert!(s.due(10, 10).expect("due").is_empty());
}

#[test]
fn a_panic_inside_redb_becomes_an_error() {
    let e = guard::<()>(|| panic!("unreachable page")).expect_err("panicked");
    assert!(matches!(e, ScheduleError::Panicked));
    assert!(e.is_store_fault() && e.is_corruption());
    assert_eq!(guard(|| Ok(7)).expect("no panic"), 7);
}

#[test]
fn a_damaged_page_is_reported_at_open_not_a_panic() {
    let f = TempFile::new();
    {
        let mut s = f.open();
        for i in 0..20 {
            add(&mut s, 1000 + i, &"x".repeat(100));
        }
    }
    let clean = std::fs::read(&f.0).expect("read");
    // Every page: each one either still opens (an unused page: the entries are intact) or
    // is refused as corrupt; none panics.
    let mut refused = 0;
    for page in 0..clean.len() / 4096 {
        let mut bytes = clean.clone();
        for b in &mut bytes[page * 4096..page * 4096 + 64] {
            *b ^= 0xff;
        }
        std::fs::write(&f.0, &bytes).expect("write");
        match Schedule::open(&f.0) {
            Ok(s) => assert_eq!(s.len(), 20, "page {page}"),
            Err(e) => {
                assert!(!matches!(e, ScheduleError::Panicked), "page {page}: {e}");
                refused += 1;
            }
        }
    }
    assert!(refused >= 2, "only {refused} damaged pages were noticed");
}
