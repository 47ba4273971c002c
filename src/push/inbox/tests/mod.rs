//! Unit tests for the inbox: each file takes one concern; `check` verifies the inbox's
//! internal invariants from scratch and runs after every step of the randomized tests.

use super::{stream::MESSAGE_COST, *};

mod bounds;
mod codec;
mod durable;
mod model;
mod resume;
mod wire;

const E: Epoch = Epoch(0xfeed);

fn inbox(config: Config) -> Inbox {
    Inbox::new(config, E)
}

fn pos(offset: Offset) -> Start {
    Start::After(Position { epoch: E, offset })
}

/// The messages of a `Resume`, or a panic naming the gap.
#[track_caller]
fn messages(r: Resume<'_>) -> Vec<(Offset, String)> {
    match r {
        Resume::Messages(m) => m.map(|(o, p)| (o, p.to_owned())).collect(),
        Resume::Gap(g) => panic!("expected messages, got {g:?}"),
    }
}

#[track_caller]
fn gap(r: Resume<'_>) -> Gap {
    match r {
        Resume::Gap(g) => g,
        Resume::Messages(m) => panic!("expected a gap, got {} messages", m.len()),
    }
}

fn owned(r: Replay<'_>) -> Vec<(Offset, String)> {
    r.map(|(o, p)| (o, p.to_owned())).collect()
}

/// Recomputes every derived quantity of `inbox` and compares.
#[track_caller]
fn check(inbox: &Inbox) {
    let (mut bytes, mut messages, mut uids) = (0, 0, 0);
    let (mut retained, mut idle) = (BTreeSet::new(), BTreeSet::new());
    for (id, s) in &inbox.streams {
        bytes += s.cost();
        messages += s.entries.len();
        assert!(
            s.first <= s.pending_from && s.pending_from <= s.next(),
            "stream {id}"
        );
        assert!(
            s.next() <= inbox.high_water,
            "stream {id} past the high-water mark"
        );
        assert!(s
            .entries
            .iter()
            .zip(s.entries.iter().skip(1))
            .all(|(a, b)| a.at_ms <= b.at_ms));
        match (&s.uid, s.entries.front()) {
            (Some(uid), _) => {
                uids += 1;
                assert_eq!(inbox.by_uid.get(uid), Some(&id));
            }
            (None, _) => assert_eq!(id, inbox.all),
        }
        retained.extend((s.first..s.next()).map(|offset| (id, offset)));
        if s.entries.is_empty() && id != inbox.all {
            idle.insert((s.touched_ms, id));
        }
    }
    assert_eq!(inbox.by_uid.len(), uids);
    assert_eq!(inbox.idle, idle);
    // The age queue names every retained message once (stale entries aside), oldest first
    // once sorted, and holds no more stale entries than its compaction allows.
    let live: Vec<(u64, usize, Offset)> = inbox
        .ages
        .iter()
        .filter_map(|&a| inbox.live_at(a).map(|at| (at, a.id, a.offset)))
        .collect();
    let named: BTreeSet<(usize, Offset)> = live.iter().map(|&(_, id, o)| (id, o)).collect();
    assert_eq!(named.len(), live.len(), "a message twice in the age queue");
    assert_eq!(named, retained);
    if inbox.ages_sorted {
        assert!(
            live.windows(2).all(|w| w[0].0 <= w[1].0),
            "age queue out of order"
        );
    }
    // What AGE_COST and AGE_BASE count is an upper bound of the queue's buffer.
    let ages = inbox.ages.capacity() * evict::AGE_SLOT;
    assert!(ages <= messages * evict::AGE_COST + evict::AGE_BASE);
    bytes += evict::AGE_BASE;
    let st = inbox.stats();
    assert_eq!((st.bytes, st.messages, st.uids), (bytes, messages, uids));
}

/// A small deterministic generator (xorshift64*), so the randomized tests need no crate
/// and fail the same way every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
