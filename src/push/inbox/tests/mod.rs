//! Unit tests for the inbox: each file takes one concern; `check` verifies the inbox's
//! internal invariants from scratch and runs after every step of the randomized tests.

use super::{stream::message_cost, *};

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
    for (id, s) in inbox.streams.iter() {
        bytes += s.cost();
        messages += s.messages.len();
        assert!(
            s.first <= s.pending_from && s.pending_from <= s.next(),
            "stream {id}"
        );
        assert!(
            s.next() <= inbox.high_water,
            "stream {id} past the high-water mark"
        );
        assert!(s
            .messages
            .iter()
            .zip(s.messages.iter().skip(1))
            .all(|(a, b)| a.0 <= b.0));
        // The buffer's bound, which the count relies on (see `messages::Messages`).
        let live: usize = s
            .messages
            .iter()
            .map(|(_, t)| messages::HEADER + t.len())
            .sum();
        assert!(s.messages.capacity() <= live + live / 2 + messages::SLACK);
        if !s.messages.is_empty() {
            assert_eq!(s.messages.iter().last().map(|m| m.0), Some(s.touched_ms));
        }
        match (&s.uid, s.messages.front_at()) {
            (Some(uid), _) => {
                uids += 1;
                assert_eq!(inbox.by_uid.get(uid), Some(&id));
            }
            (None, _) => assert_eq!(id, inbox.all),
        }
        retained.extend((s.first..s.next()).map(|offset| (id, offset)));
        if s.messages.is_empty() && id != inbox.all {
            idle.insert((s.touched_ms, id));
        }
    }
    assert_eq!(inbox.by_uid.len(), uids);
    assert_eq!(inbox.idle, idle);
    // The age queue names every retained message once (stale entries aside), oldest first
    // once sorted, and holds no more stale entries than its compaction allows.
    let live: Vec<(u64, usize, Offset)> = inbox
        .ages_in_order()
        .into_iter()
        .map(|(at, a, _)| (at, a.id as usize, a.offset))
        .collect();
    assert_eq!(
        live.len(),
        inbox.ages.iter().filter(|&&a| inbox.is_live(a)).count()
    );
    for (_, a, text) in inbox.ages_in_order() {
        assert!(a.len as usize == text.len() || a.len == u32::MAX);
    }
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
