//! Unit tests of the inbox journal on an in-memory store file that can be made to fail.

use super::*;
use crate::store::health::tests::Disk;
use std::time::{Duration, Instant};

fn settings() -> InboxSettings {
    InboxSettings {
        enabled: true,
        durable: true,
        ..Default::default()
    }
}

/// The messages of `uid` as `(offset, text)`: all it retains.
fn messages(inbox: &mut Inbox, uid: &str) -> Vec<(u64, String)> {
    use pushman::push::inbox::{Position, Resume, Start};
    let mut offset = 0;
    loop {
        let start = Start::After(Position {
            epoch: inbox.epoch(),
            offset,
        });
        match inbox.resume(uid, start, 1) {
            Resume::Messages(m) => return m.map(|(o, t)| (o, t.to_string())).collect(),
            Resume::Gap(g) if offset == 0 => offset = g.first_available - 1,
            Resume::Gap(g) => panic!("gap: {g:?}"),
        }
    }
}

#[test]
fn a_reopened_store_gives_back_the_same_epoch_offsets_and_messages() {
    let disk = Disk::default();
    let mut store = disk.store();
    let (mut inbox, mut journal) = open(&mut store, &settings());
    let epoch = inbox.epoch();
    for i in 0..50 {
        inbox.append(&format!("u{}", i % 3), format!("m{i}"), 1_000 + i);
    }
    inbox.mark_delivered("u0", 2);
    journal.write(&mut store, &mut inbox).unwrap();
    assert_eq!(inbox.journal_len(), 0);
    let expected = messages(&mut inbox, "u1");
    drop(store);

    let mut store = disk.store();
    let (mut back, journal) = open(&mut store, &settings());
    assert_eq!(back.epoch(), epoch);
    assert_eq!(journal.stats.recovered, 50);
    assert_eq!(messages(&mut back, "u1"), expected);
    assert_eq!(expected.len(), 17);
    assert_eq!(back.pending("u0"), 17 - 2);
}

#[test]
fn a_turn_of_many_pushes_is_one_commit() {
    let disk = Disk::default();
    let mut store = disk.store();
    let (mut inbox, mut journal) = open(&mut store, &settings());
    let before = journal.stats.commits;
    for i in 0..1_000 {
        inbox.append("u", format!("m{i}"), 1_000);
    }
    journal.write(&mut store, &mut inbox).unwrap();
    assert_eq!(journal.stats.commits, before + 1);
    // Nothing new: no commit at all.
    journal.write(&mut store, &mut inbox).unwrap();
    assert_eq!(journal.stats.commits, before + 1);
}

#[test]
fn a_failed_commit_is_reported_and_the_next_one_after_the_reopen_is_a_full_snapshot() {
    let disk = Disk::default();
    let mut store = disk.store();
    let (mut inbox, mut journal) = open(&mut store, &settings());
    inbox.append("u", "before", 1_000);
    journal.write(&mut store, &mut inbox).unwrap();
    disk.set_full(true);
    inbox.append("u", "during", 1_001);
    let err = journal.write(&mut store, &mut inbox).unwrap_err();
    assert!(err.contains("No space") || err.contains("28"), "{err}");
    assert_eq!(journal.stats.failures, 1);
    assert!(!store.health(Instant::now()).healthy);
    // While down: refused, no panic; an idle turn does not retry.
    assert!(!journal.due(&inbox, &store), "idle while down");
    inbox.append("u", "still down", 1_002);
    assert!(journal.due(&inbox, &store));
    assert!(journal.write(&mut store, &mut inbox).is_err());
    assert!(!journal.due(&inbox, &store), "idle while down");
    assert_eq!(journal.stats.failures, 2);
    disk.set_full(false);
    store.tick(Instant::now() + Duration::from_secs(2));
    assert!(store.health(Instant::now()).healthy);
    // Up again: the stale log is due for its snapshot even without a new push.
    assert!(journal.due(&inbox, &store));
    let snapshots = journal.stats.snapshots;
    journal.write(&mut store, &mut inbox).unwrap();
    assert_eq!(journal.stats.snapshots, snapshots + 1);
    assert!(!journal.due(&inbox, &store));
    drop(store);
    let (mut back, _) = open(&mut disk.store(), &settings());
    let texts: Vec<String> = messages(&mut back, "u").into_iter().map(|m| m.1).collect();
    assert_eq!(texts, ["before", "during", "still down"]);
}

#[test]
fn a_damaged_log_starts_a_new_epoch() {
    let disk = Disk::default();
    let mut store = disk.store();
    let (mut inbox, mut journal) = open(&mut store, &settings());
    let epoch = inbox.epoch();
    inbox.append("u", "m", 1_000);
    journal.write(&mut store, &mut inbox).unwrap();
    store
        .with_db(|db| {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?.insert(u64::MAX, &[9u8, 9, 9][..])?;
            txn.commit()?;
            Ok(())
        })
        .unwrap();
    drop(store);
    let (back, journal) = open(&mut disk.store(), &settings());
    assert_ne!(back.epoch(), epoch);
    assert_eq!(back.stats().messages, 0);
    assert_eq!(journal.stats.recovered, 0);
}

#[test]
fn the_log_is_compacted_so_it_stays_near_what_the_inbox_holds() {
    let disk = Disk::default();
    let mut store = disk.store();
    let config = InboxSettings {
        max_per_uid: 10,
        ..settings()
    };
    let (mut inbox, mut journal) = open(&mut store, &config);
    let payload = "x".repeat(1_000);
    for turn in 0..200 {
        for i in 0..100 {
            inbox.append(&format!("u{i}"), payload.as_str(), 1_000 + turn);
        }
        journal.write(&mut store, &mut inbox).unwrap();
    }
    // 20 MB were pushed; the inbox keeps 100 uids × 10 pushes (about 1 MB).
    assert!(journal.stats.snapshots >= 2, "{:?}", journal.stats);
    assert!(
        journal.stats.bytes <= compact_at(journal.snapshot_bytes) + 200_000,
        "{:?}",
        journal.stats
    );
    drop(store);
    let (back, _) = open(&mut disk.store(), &config);
    assert_eq!(back.stats().messages, 1_000);
}
