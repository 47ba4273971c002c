//! Offsets, resumes, gaps, the offline queue and the broadcast stream.

use super::*;

#[test]
fn offsets_are_consecutive_per_uid_and_never_reused_by_a_new_stream() {
    let mut ib = inbox(Config::default());
    assert_eq!([ib.append("a", "a1", 10), ib.append("a", "a2", 10)], [1, 2]);
    // b opens at the high-water mark: above every offset given out so far.
    let b1 = ib.append("b", "b1", 11);
    assert_eq!(b1, 3);
    assert_eq!(ib.append("a", "a3", 12), 3);
    assert_eq!(ib.append("b", "b2", 12), b1 + 1);
    assert_eq!(ib.last_offset("a"), Some(3));
    assert_eq!(ib.last_offset("nobody"), None);
    check(&ib);
}

#[test]
fn resume_replays_exactly_the_missed_messages_in_order() {
    let mut ib = inbox(Config::default());
    for i in 1..=5 {
        ib.append("u", format!("m{i}"), 100 + i);
    }
    let r = ib.resume("u", pos(2), 200);
    let Resume::Messages(replay) = r else {
        panic!("gap")
    };
    assert_eq!(replay.after(), 2, "the client's position comes first");
    assert_eq!(replay.len(), 3);
    assert_eq!(
        owned(replay),
        [(3, "m3".into()), (4, "m4".into()), (5, "m5".into())]
    );
    // Up to date: nothing, and no duplicate of the position itself.
    assert_eq!(messages(ib.since("u", E, 5, 201)), []);
    // From before the first message (offset 0 = "seen nothing").
    assert_eq!(messages(ib.since("u", E, 0, 202)).len(), 5);
    assert_eq!(ib.stats().replayed, 8);
    assert_eq!(ib.stats().gaps, 0);
    check(&ib);
}

#[test]
fn another_epoch_is_a_gap_with_the_current_position() {
    let mut ib = inbox(Config::default());
    ib.append("u", "m1", 1);
    ib.append("u", "m2", 2);
    let g = gap(ib.since("u", Epoch(E.0 + 1), 1, 3));
    assert_eq!(
        g,
        Gap {
            reason: GapReason::Epoch,
            first_available: 1,
            position: 2
        }
    );
    assert_eq!(ib.stats().gaps, 1);
    // Live messages then follow the reported position.
    assert_eq!(ib.append("u", "m3", 4), g.position + 1);
}

#[test]
fn a_position_past_the_end_is_a_gap() {
    let mut ib = inbox(Config::default());
    ib.append("u", "m1", 1);
    let g = gap(ib.since("u", E, 7, 2));
    assert_eq!((g.reason, g.position), (GapReason::Ahead, 1));
    let g = gap(ib.since("u", E, u64::MAX, 2));
    assert_eq!(g.reason, GapReason::Ahead);
}

#[test]
fn a_position_for_an_unknown_uid_is_a_gap_unless_nothing_can_have_been_missed() {
    let mut ib = inbox(Config::default());
    ib.append("other", "x", 1);
    ib.append("other", "y", 1);
    // "new" has never had a stream here: only "before everything this epoch gave out" is
    // known to have missed nothing.
    let hw = ib.high_water;
    let g = gap(ib.since("new", E, 1, 2));
    assert_eq!((g.reason, g.position), (GapReason::Evicted, hw - 1));
    // The stream is open now, so the position it reported stays valid.
    assert_eq!(messages(ib.since("new", E, hw - 1, 3)), []);
    assert_eq!(ib.append("new", "n1", 4), hw);
    check(&ib);
}

#[test]
fn several_tabs_share_one_stream_each_from_its_own_position() {
    let mut ib = inbox(Config::default());
    for i in 1..=6 {
        ib.append("u", format!("m{i}"), i);
    }
    let tab_a: Vec<_> = messages(ib.since("u", E, 2, 10))
        .into_iter()
        .map(|m| m.0)
        .collect();
    let tab_b: Vec<_> = messages(ib.since("u", E, 5, 10))
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(tab_a, [3, 4, 5, 6]);
    assert_eq!(tab_b, [6]);
    // Replays do not consume: a third tab still gets everything.
    assert_eq!(messages(ib.since("u", E, 0, 10)).len(), 6);
}

#[test]
fn offline_queue_is_delivered_in_order_exactly_once() {
    let mut ib = inbox(Config::default());
    for i in 1..=3 {
        let o = ib.append("u", format!("m{i}"), i);
        assert!(ib.is_pending("u", o));
    }
    assert_eq!(ib.pending("u"), 3);
    let first_tab = ib.take_pending("u");
    assert_eq!(first_tab.after(), 0);
    assert_eq!(
        owned(first_tab),
        [(1, "m1".into()), (2, "m2".into()), (3, "m3".into())]
    );
    assert_eq!(ib.pending("u"), 0);
    // A second tab binding right after gets nothing again.
    assert_eq!(owned(ib.take_pending("u")), []);
    assert_eq!(ib.stats().pending_delivered, 3);
    // Online: a live push that a connection took is not queued.
    let o = ib.append("u", "live", 12);
    ib.mark_delivered("u", o);
    assert!(!ib.is_pending("u", o));
    // One nobody took (all tabs were closing) stays queued for the next first tab.
    let o = ib.append("u", "missed", 13);
    assert_eq!(owned(ib.take_pending("u")), [(o, "missed".into())]);
    assert_eq!(owned(ib.take_pending("nobody")), []);
    check(&ib);
}

#[test]
fn a_resume_counts_as_delivery_and_a_fresh_resume_client_can_take_the_queue() {
    let mut ib = inbox(Config::default());
    ib.append("u", "m1", 1);
    ib.append("u", "m2", 2);
    let Resume::Messages(r) = ib.resume("u", Start::Pending, 3) else {
        panic!("gap")
    };
    assert_eq!(r.after(), 0);
    assert_eq!(r.count(), 2);
    assert_eq!(ib.pending("u"), 0);
    ib.append("u", "m3", 4);
    // A resume-capable tab that comes back replays m3; a plain tab after it gets nothing.
    assert_eq!(messages(ib.since("u", E, 2, 5)), [(3, "m3".into())]);
    assert_eq!(owned(ib.take_pending("u")), []);
    // Live: nothing old, positioned at the end, and the queue is left for a plain tab.
    ib.append("u", "queued", 7);
    let Resume::Messages(r) = ib.resume("u", Start::Live, 7) else {
        panic!("gap")
    };
    assert_eq!((r.after(), r.len()), (4, 0));
    assert_eq!(ib.pending("u"), 1);
    // A gap also counts: the client reloads its state instead.
    ib.append("u", "m5", 8);
    gap(ib.since("u", Epoch(1), 3, 9));
    assert_eq!(ib.pending("u"), 0);
}

#[test]
fn broadcasts_have_their_own_stream_and_are_not_queued() {
    let mut ib = inbox(Config::default());
    assert_eq!(ib.append_all("b1", 1), 1);
    ib.append("u", "u1", 1);
    assert_eq!(
        ib.append_all("b2", 2),
        2,
        "consecutive whatever the uid streams do"
    );
    assert_eq!(ib.stats().uids, 1, "the broadcast stream is not a uid");
    let Resume::Messages(r) = ib.resume_all(Start::Pending) else {
        panic!("gap")
    };
    assert_eq!(
        (r.after(), r.len()),
        (2, 0),
        "Pending is Live for broadcasts"
    );
    assert!(matches!(ib.resume_all(pos(1)), Resume::Messages(r) if r.len() == 1));
    assert_eq!(gap(ib.resume_all(pos(3))).reason, GapReason::Ahead);
    check(&ib);
}

#[test]
fn a_client_that_saw_the_last_message_resumes_after_it_expired() {
    let cfg = Config {
        ttl_ms: 1_000,
        idle_ttl_ms: 60_000,
        ..Config::default()
    };
    let mut ib = inbox(cfg);
    ib.append("u", "m1", 0);
    ib.append("u", "m2", 0);
    assert_eq!(ib.expire(1_000, 100), 2);
    assert_eq!(ib.stats().messages, 0);
    // The stream is a tombstone: its position is still known.
    assert_eq!(messages(ib.since("u", E, 2, 2_000)), []);
    let g = gap(ib.since("u", E, 1, 2_000));
    assert_eq!(
        g,
        Gap {
            reason: GapReason::Evicted,
            first_available: 3,
            position: 2
        }
    );
    check(&ib);
}

#[test]
fn a_forgotten_stream_starts_above_its_old_offsets_so_old_positions_gap() {
    let cfg = Config {
        ttl_ms: 1_000,
        idle_ttl_ms: 5_000,
        ..Config::default()
    };
    let mut ib = inbox(cfg);
    for _ in 0..3 {
        ib.append("u", "old", 0);
    }
    ib.append("v", "v", 0);
    ib.expire(1_000, 100);
    assert_eq!(ib.expire(6_000, 100), 2, "both tombstones forgotten");
    assert_eq!((ib.stats().uids, ib.stats().forgotten), (0, 2));
    let new = ib.append("u", "new", 7_000);
    assert!(new > 3);
    // Every old position of u is a gap now, never a replay of the new stream.
    for old in 0..=3 {
        assert_eq!(
            gap(ib.since("u", E, old, 8_000)).reason,
            GapReason::Evicted,
            "{old}"
        );
    }
    check(&ib);
}

#[test]
fn epoch_is_16_hex_digits_on_the_wire() {
    let e = Epoch(0x00ab_cdef_0123_4567);
    assert_eq!(e.to_string(), "00abcdef01234567");
    assert_eq!("00abcdef01234567".parse(), Ok(e));
    assert!("xyz".parse::<Epoch>().is_err());
    assert!(
        "1234567890abcdef0".parse::<Epoch>().is_err(),
        "17 digits overflow"
    );
    assert_ne!(Epoch::random(), Epoch::random());
}

#[test]
fn settle_is_mark_delivered_or_is_pending_without_a_second_lookup() {
    let mut ib = inbox(Config::default());
    let a = ib.append_uid("u", "one", 1_000);
    assert!(ib.settle("u", a, false), "nobody took it: still queued");
    assert_eq!(ib.pending("u"), 1);
    let b = ib.append_uid("u", "two", 1_001);
    assert_eq!(b.offset, a.offset + 1);
    assert!(!ib.settle("u", b, true));
    assert_eq!(ib.pending("u"), 0, "taking the second delivers both");
    assert!(!ib.settle("u", a, false), "delivered is not pending");
    check(&ib);
}

/// An inbox that forgets a stream 10 ms after its last message, and its tombstone 10 ms
/// later: a slot is freed (and reused) within a test.
fn forgetful() -> Inbox {
    inbox(Config {
        ttl_ms: 10,
        idle_ttl_ms: 10,
        ..Config::default()
    })
}

#[test]
fn settle_after_the_stream_was_forgotten_and_its_slot_reused_touches_no_other_uid() {
    let mut ib = forgetful();
    let gone = ib.append_uid("gone", "m", 1_000);
    // Its message expires, then its tombstone is forgotten: the slot is free.
    ib.expire(2_000, 100);
    ib.expire(3_000, 100);
    assert_eq!(ib.last_offset("gone"), None);
    let other = ib.append_uid("other", "m", 3_000);
    assert_eq!(other.offset, gone.offset + 1);
    // A stale ticket for "gone": nothing happens to "other" (slot reused or not).
    assert!(!ib.settle("gone", gone, true));
    assert!(!ib.settle("gone", gone, false));
    assert_eq!(ib.pending("other"), 1);
    // A ticket whose uid is the slot's new owner but another stream: found by uid.
    let again = ib.append_uid("gone", "back", 3_001);
    assert!(ib.settle("gone", again, false));
    assert!(!ib.settle("gone", again, true));
    assert_eq!(ib.pending("gone"), 0);
    assert_eq!(ib.pending("other"), 1);
    check(&ib);
}

#[test]
fn a_kept_stream_reference_is_used_while_current_and_a_stale_one_falls_back_to_the_uid() {
    let mut ib = forgetful();
    let first = ib.append_uid_at(None, "gone", "m", 1_000);
    let known = first.stream();
    let second = ib.append_uid_at(Some(known), "gone", "n", 1_001);
    assert_eq!(second.stream(), known, "the same stream");
    assert_eq!(second.offset, first.offset + 1);
    // Forgotten (expired, then its tombstone too); its slot goes to another uid.
    ib.expire(2_000, 100);
    ib.expire(3_000, 100);
    assert_eq!(ib.last_offset("gone"), None);
    let other = ib.append_uid("other", "o", 3_000);
    // The stale reference does not append to "other", whose stream may sit in its slot.
    let back = ib.append_uid_at(Some(known), "gone", "back", 3_001);
    assert_ne!(back.stream(), known);
    assert_ne!(back.stream(), other.stream());
    assert_eq!(ib.last_offset("other"), Some(other.offset));
    assert_eq!(ib.last_offset("gone"), Some(back.offset));
    assert!(ib.settle("gone", back, false), "queued: nobody took it");
    assert_eq!(ib.pending("other"), 1);
    check(&ib);
}
