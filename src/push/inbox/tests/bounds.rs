//! ttl, the per-uid cap, the global memory cap and bounded expiry.

use super::*;

#[test]
fn messages_leave_after_the_ttl_oldest_first() {
    let cfg = Config {
        ttl_ms: 300_000,
        ..Config::default()
    };
    let mut ib = inbox(cfg);
    ib.append("u", "m1", 1_000);
    ib.append("v", "v1", 1_500);
    ib.append("u", "m2", 2_000);
    assert_eq!(ib.next_deadline(), Some(301_000));
    assert_eq!(ib.expire(300_999, 100), 0);
    assert_eq!(ib.expire(301_000, 100), 1);
    assert_eq!(ib.next_deadline(), Some(301_500));
    assert_eq!(ib.expire(301_999, 100), 1, "v1");
    assert_eq!(ib.stats().evicted_ttl, 2);
    let g = gap(ib.since("u", E, 0, 302_000));
    assert_eq!((g.reason, g.first_available), (GapReason::Evicted, 2));
    assert_eq!(messages(ib.since("u", E, 1, 302_000)), [(2, "m2".into())]);
    check(&ib);
}

#[test]
fn a_stream_keeps_at_most_max_per_uid() {
    let mut ib = inbox(Config {
        max_per_uid: 3,
        ..Config::default()
    });
    for i in 1..=5 {
        ib.append("u", format!("m{i}"), i);
    }
    assert_eq!(ib.stats().messages, 3);
    assert_eq!(ib.stats().evicted_uid_cap, 2);
    assert_eq!(gap(ib.since("u", E, 1, 9)).first_available, 3);
    assert_eq!(messages(ib.since("u", E, 2, 9)).len(), 3);
    // Another uid is not affected by u's cap.
    ib.append("v", "v1", 9);
    assert_eq!(ib.stats().messages, 4);
    check(&ib);
}

#[test]
fn a_uid_that_never_comes_back_stays_within_its_cap() {
    let mut ib = inbox(Config {
        max_per_uid: 10,
        ..Config::default()
    });
    for t in 0..10 {
        ib.append("u", "x".repeat(100), t);
    }
    let ten = ib.stats().bytes;
    for t in 0..10_000 {
        ib.append("u", "x".repeat(100), t);
    }
    assert_eq!(ib.stats().bytes, ten, "no growth past the cap");
    assert_eq!(ib.stats().evicted_uid_cap, 10_000);
    assert_eq!(ib.pending("u"), 10, "the queue is capped too");
    check(&ib);
}

#[test]
fn the_memory_cap_evicts_the_oldest_message_of_any_uid() {
    let mut probe = inbox(Config::default());
    probe.append("u0", "x".repeat(100), 0);
    let per_uid = probe.stats().bytes - inbox(Config::default()).stats().bytes;
    let empty = inbox(Config::default()).stats().bytes;
    // Room for exactly 5 single-message uids.
    let cfg = Config {
        max_bytes: empty + 5 * per_uid,
        ..Config::default()
    };
    let mut ib = inbox(cfg.clone());
    for i in 0..8 {
        ib.append(&format!("u{i}"), "x".repeat(100), i);
        assert!(ib.stats().bytes <= cfg.max_bytes);
        check(&ib);
    }
    // u0..u2 (the oldest) lost their message, and then their tombstones went too.
    assert_eq!(ib.stats().evicted_memory, 3);
    assert_eq!(ib.stats().messages, 5);
    for i in 0..3 {
        assert_eq!(ib.last_offset(&format!("u{i}")), None, "u{i}");
    }
    for i in 3..8 {
        assert_eq!(ib.pending(&format!("u{i}")), 1, "u{i}");
    }
}

#[test]
fn tombstones_go_before_any_message_under_memory_pressure() {
    // What b with two messages costs, and what a's tombstone costs.
    let mut probe = inbox(Config::default());
    probe.append("b", "x".repeat(100), 0);
    probe.append("b", "x".repeat(100), 0);
    let b_alone = probe.stats().bytes;
    let tombstone = stream::STREAM_COST + 1;
    // Room for both but one byte.
    let cfg = Config {
        ttl_ms: 10,
        max_bytes: b_alone + tombstone - 1,
        ..Config::default()
    };
    let mut ib = inbox(cfg);
    ib.append("a", "x".repeat(100), 0);
    ib.expire(10, 100); // a is a tombstone now
    ib.append("b", "x".repeat(100), 20);
    assert_eq!(ib.stats().forgotten, 0);
    ib.append("b", "x".repeat(100), 21); // over the cap: a's tombstone pays, not b's message
    assert_eq!(ib.stats().forgotten, 1);
    assert_eq!(ib.stats().evicted_memory, 0);
    assert_eq!(ib.stats().messages, 2);
    check(&ib);
}

#[test]
fn a_payload_over_the_memory_cap_gets_an_offset_but_is_not_kept() {
    let empty = inbox(Config::default()).stats().bytes;
    let cfg = Config {
        max_bytes: empty + 1_000,
        ..Config::default()
    };
    let mut ib = inbox(cfg.clone());
    let o = ib.append("u", "x".repeat(2_000), 0);
    assert_eq!(o, 1);
    assert!(ib.stats().bytes <= cfg.max_bytes);
    assert_eq!(ib.stats().evicted_memory, 1);
    // The stream went too (tombstones first): a client at 0 is told, not silently resumed.
    assert_eq!(gap(ib.since("u", E, 0, 1)).reason, GapReason::Evicted);
    check(&ib);
}

/// Calls `expire(now, budget)` until it finds no work; returns how many calls had some.
fn expire_all(ib: &mut Inbox, now: u64, budget: usize) -> usize {
    let mut calls = 0;
    loop {
        let done = ib.expire(now, budget);
        assert!(done <= budget);
        check(ib);
        if done == 0 {
            return calls;
        }
        calls += 1;
    }
}

#[test]
fn expire_does_bounded_work_per_call_and_finishes_over_several() {
    let cfg = Config {
        ttl_ms: 1_000,
        idle_ttl_ms: 1_000,
        ..Config::default()
    };
    let mut ib = inbox(cfg);
    for i in 0..1_000 {
        ib.append(&format!("u{}", i % 50), "m", i / 100);
    }
    assert_eq!(ib.next_deadline(), Some(1_000));
    assert_eq!(expire_all(&mut ib, 5_000, 64), 1_000_usize.div_ceil(64));
    assert_eq!((ib.stats().messages, ib.stats().uids), (0, 50));
    // The 50 tombstones are forgotten an idle_ttl after they emptied.
    assert_eq!(ib.next_deadline(), Some(6_000));
    assert_eq!(expire_all(&mut ib, 5_999, 64), 0);
    assert_eq!(expire_all(&mut ib, 6_000, 16), 4);
    assert_eq!(ib.stats().uids, 0);
    assert_eq!(ib.stats().bytes, inbox(Config::default()).stats().bytes);
    assert_eq!(ib.next_deadline(), None);
}

#[test]
fn time_never_runs_backwards_inside_the_inbox() {
    let mut ib = inbox(Config {
        ttl_ms: 1_000,
        ..Config::default()
    });
    ib.append("u", "late", 10_000);
    ib.append("u", "clock stepped back", 5_000);
    check(&ib);
    // The second counts from 10 000: both expire together, nothing early.
    assert_eq!(ib.expire(10_999, 10), 0);
    assert_eq!(ib.expire(11_000, 10), 2);
}

#[test]
fn bytes_count_payload_buffer_and_fixed_costs() {
    let mut ib = inbox(Config::default());
    let empty = ib.stats().bytes;
    ib.append("uid", "hello", 0);
    let first = ib.stats().bytes - empty;
    ib.append("uid", "hello!", 0);
    // A stream costs its fixed part and its uid; a message its record (text and a 16-byte
    // header), half of it again (the buffer's room to grow) and its share of the age queue.
    assert_eq!(
        first,
        stream::STREAM_COST + 3 + (16 + 5) + 11 + evict::AGE_COST
    );
    assert_eq!(ib.stats().bytes - empty - first, message_cost(6));
    assert_eq!(message_cost(6), (16 + 6) + 11 + 48);
    // Each member of a group keeps its own copy, and is counted for it.
    for m in ["a", "b", "c"] {
        ib.append(m, "group payload", 0);
    }
    assert_eq!(
        ib.stats().bytes - empty - first - message_cost(6),
        3 * (stream::STREAM_COST + 1 + message_cost(13))
    );
    check(&ib);
}

#[test]
fn smaller_caps_apply_at_once_on_reload_and_on_recovery() {
    let mut ib = inbox(Config::default());
    for i in 0..50 {
        ib.append(&format!("u{}", i % 5), "x".repeat(100), i);
    }
    let snapshot: Vec<Record> = ib.snapshot().collect();
    let small = Config {
        max_per_uid: 4,
        ..Config::default()
    };
    ib.set_config(small.clone());
    assert_eq!(ib.stats().messages, 5 * 4);
    assert_eq!(ib.stats().evicted_uid_cap, 5 * 6);
    check(&ib);
    // The same state recovered under the smaller caps is capped the same way.
    let back = Inbox::recover(small, snapshot).expect("own snapshot");
    assert_eq!(back.stats().messages, 5 * 4);
    check(&back);
    // And a smaller memory cap keeps the newest.
    let tight = Config {
        max_bytes: ib.stats().bytes / 2,
        ..ib.config().clone()
    };
    ib.set_config(tight.clone());
    assert!(ib.stats().bytes <= tight.max_bytes);
    assert!(ib.stats().evicted_memory > 0);
    assert_eq!(
        messages(ib.since("u4", E, ib.last_offset("u4").unwrap() - 1, 60)).len(),
        1
    );
    check(&ib);
}
