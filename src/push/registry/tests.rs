//! Unit tests for the registry.

use super::*;

fn c(seq: u64) -> ConnId {
    ConnId::new(seq, seq as usize)
}

#[test]
fn two_tabs_unbind_older_keeps_newer() {
    let mut r = Registry::new();
    r.bind("alice", c(1));
    r.bind("alice", c(2));
    assert_eq!(r.conn_count("alice"), 2);
    assert_eq!(r.conns("alice").collect::<Vec<_>>(), [c(1), c(2)]);
    assert_eq!(r.uid_total(), 1);
    assert_eq!(r.conn_total(), 2);

    assert_eq!(r.unbind(c(1)).as_deref(), Some("alice"));
    assert!(r.is_online("alice"));
    assert_eq!(r.conns("alice").collect::<Vec<_>>(), [c(2)]);
    assert_eq!(r.uid_of(c(1)), None);
    assert_eq!(r.uid_of(c(2)), Some("alice"));

    assert_eq!(r.unbind(c(2)).as_deref(), Some("alice"));
    assert!(!r.is_online("alice"));
    assert_eq!(r.conn_count("alice"), 0);
    assert_eq!(r.conns("alice").count(), 0);
    assert_eq!((r.uid_total(), r.conn_total()), (0, 0));
}

#[test]
fn unbind_unknown_conn_is_none() {
    let mut r = Registry::new();
    assert_eq!(r.unbind(c(9)), None);
}

#[test]
fn rebind_moves_conn() {
    let mut r = Registry::new();
    r.bind("a", c(1));
    r.bind("a", c(1));
    assert_eq!(r.conn_total(), 1);
    r.bind("b", c(1));
    assert!(!r.is_online("a"));
    assert_eq!(r.uid_of(c(1)), Some("b"));
    assert_eq!(r.conns("b").collect::<Vec<_>>(), [c(1)]);
    assert_eq!((r.uid_total(), r.conn_total()), (1, 1));
}

#[test]
fn groups_hold_uids_while_offline() {
    let mut r = Registry::new();
    assert!(r.join("g", "bob"));
    assert!(!r.join("g", "bob"));
    assert!(r.join("g", "alice"));
    assert_eq!(r.members("g"), ["alice", "bob"]);
    assert!(r.group_conns("g").is_empty());

    r.bind("bob", c(1));
    r.bind("bob", c(2));
    r.bind("carol", c(3));
    assert_eq!(r.group_conns("g"), [c(1), c(2)]);
    r.unbind(c(1));
    r.unbind(c(2));
    assert_eq!(r.members("g"), ["alice", "bob"]);
    r.bind("bob", c(4));
    assert_eq!(r.group_conns("g"), [c(4)]);

    assert!(r.join("h", "carol"));
    assert_eq!(r.groups_total(), 2);
    assert_eq!(r.group_names(), ["g", "h"]);
    assert!(r.leave("h", "carol"));
    assert!(!r.leave("h", "carol"));
    assert_eq!(r.groups_total(), 1);
    assert!(r.members("h").is_empty());
    assert!(!r.leave("g", "nobody"));
    assert!(r.leave("g", "alice"));
    assert!(r.leave("g", "bob"));
    assert_eq!(r.groups_total(), 0);
}

#[test]
fn paging_is_sorted_and_stable() {
    let mut r = Registry::new();
    for (i, uid) in ["d", "b", "e", "a", "c"].iter().enumerate() {
        r.bind(uid, c(i as u64 + 1));
    }
    assert_eq!(r.online_uids(0, 2), ["a", "b"]);
    assert_eq!(r.online_uids(2, 2), ["c", "d"]);
    assert_eq!(r.online_uids(4, 2), ["e"]);
    assert!(r.online_uids(5, 2).is_empty());
    assert!(r.online_uids(0, 0).is_empty());
    assert_eq!(r.online_uids(0, usize::MAX).len(), 5);
}

#[test]
fn all_conns_lists_every_bound_conn() {
    let mut r = Registry::new();
    r.bind("a", c(1));
    r.bind("a", c(2));
    r.bind("b", c(3));
    let mut all: Vec<_> = r.all_conns().collect();
    all.sort();
    assert_eq!(all, [c(1), c(2), c(3)]);
}

#[test]
fn pages_of_many_uids_join_up_to_the_sorted_list() {
    let mut r = Registry::new();
    // 1,000 uids bound in a scrambled order (7 is coprime with 1,000).
    let uids: Vec<String> = (0..1000).map(|i| format!("u{:04}", i * 7 % 1000)).collect();
    for (i, uid) in uids.iter().enumerate() {
        r.bind(uid, c(i as u64 + 1));
    }
    let mut sorted: Vec<&str> = uids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    for limit in [1, 3, 64, 999, 1000] {
        let pages: Vec<&str> = (0..1000)
            .step_by(limit)
            .flat_map(|offset| r.online_uids(offset, limit))
            .collect();
        assert_eq!(pages, sorted, "limit {limit}");
    }
}

#[test]
fn tabs_stay_oldest_first_whatever_order_they_bind_in() {
    let mut r = Registry::new();
    r.bind("alice", c(3));
    r.bind("alice", c(1));
    r.bind("alice", c(2));
    r.bind("alice", c(2));
    assert_eq!(r.conns("alice").collect::<Vec<_>>(), [c(1), c(2), c(3)]);
}

#[test]
fn for_push_gives_the_conns_and_keeps_the_stream_until_the_uid_goes_offline() {
    use crate::push::inbox::{Config, Epoch, Inbox};
    let mut ib = Inbox::new(Config::default(), Epoch(1));
    let mut r = Registry::new();
    assert!(r.for_push("alice").is_none(), "offline");
    r.bind("alice", c(1));
    r.bind("alice", c(2));
    let target = r.for_push("alice").expect("online");
    assert_eq!(target.conns, [c(1), c(2)]);
    assert_eq!(*target.stream, None, "no push yet");
    let kept = ib.append_uid_at(None, "alice", "hi", 1_000).stream();
    *target.stream = Some(kept);
    assert_eq!(*r.for_push("alice").expect("online").stream, Some(kept));
    // Offline, then back: a fresh entry (the inbox's lookup finds the stream again).
    r.unbind(c(1));
    r.unbind(c(2));
    r.bind("alice", c(3));
    let target = r.for_push("alice").expect("online");
    assert_eq!((target.conns, *target.stream), (&[c(3)][..], None));
}

#[test]
fn tabs_grow_from_one_and_shrink_back_to_one_then_offline() {
    let mut r = Registry::new();
    r.bind("u", c(5));
    r.bind("u", c(5));
    assert_eq!(
        r.conns("u").collect::<Vec<_>>(),
        [c(5)],
        "binding twice is once"
    );
    r.bind("u", c(3));
    r.bind("u", c(9));
    assert_eq!(r.conns("u").collect::<Vec<_>>(), [c(3), c(5), c(9)]);
    r.unbind(c(5));
    r.unbind(c(9));
    assert_eq!(r.for_push("u").expect("online").conns, [c(3)]);
    r.bind("u", c(1));
    assert_eq!(r.conns("u").collect::<Vec<_>>(), [c(1), c(3)]);
    r.unbind(c(3));
    r.unbind(c(1));
    assert!(!r.is_online("u"));
    assert_eq!((r.uid_total(), r.conn_total()), (0, 0));
}
