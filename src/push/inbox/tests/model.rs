//! Randomized runs against a model: tabs that come and go while pushes arrive, checked for
//! no gap, no duplicate, and gaps that are true.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

const UIDS: u64 = 4;

/// One browser tab: resume-capable (has a position) or plain (gets the offline queue).
struct Tab {
    uid: String,
    resume: bool,
    online: bool,
    /// Resume tabs: the last offset seen (the position sent on reconnect).
    pos: Offset,
    /// Offsets received, in arrival order.
    seen: Vec<Offset>,
    /// `stats.forgotten` when it last got its position: a gap with nothing lost needs a
    /// forgotten tombstone since (its stream restarted higher, even while it was online).
    forgotten_then: u64,
}

/// What the server would do, by the module's call order, with every push checked.
struct Sim {
    ib: Inbox,
    tabs: Vec<Tab>,
    /// uid → offset → payload: every push ever appended.
    log: BTreeMap<String, BTreeMap<Offset, String>>,
    /// uid → offsets some tab received.
    delivered: BTreeMap<String, BTreeSet<Offset>>,
    now: u64,
    gaps: u64,
}

impl Sim {
    fn new(cfg: Config) -> Self {
        let tabs = (0..8)
            .map(|i| Tab {
                uid: format!("u{}", i % UIDS),
                resume: i % 3 != 0,
                online: false,
                pos: 0,
                seen: Vec::new(),
                forgotten_then: 0,
            })
            .collect();
        let (log, delivered) = (BTreeMap::new(), BTreeMap::new());
        Self {
            ib: inbox(cfg),
            tabs,
            log,
            delivered,
            now: 0,
            gaps: 0,
        }
    }

    fn push(&mut self, uid: &str) {
        let payload = format!("{uid}#{}", self.now);
        let o = self.ib.append(uid, payload.as_str(), self.now);
        let prev = self.log.entry(uid.into()).or_default().insert(o, payload);
        assert_eq!(prev, None, "offset {o} of {uid} given out twice");
        let mut took = false;
        let forgotten = self.ib.stats().forgotten;
        for t in self.tabs.iter_mut().filter(|t| t.online && t.uid == uid) {
            assert!(
                o > t.pos || !t.resume,
                "live offset {o} not after position {}",
                t.pos
            );
            t.pos = o;
            t.seen.push(o);
            t.forgotten_then = forgotten;
            took = true;
        }
        if took {
            self.ib.mark_delivered(uid, o);
            self.delivered.entry(uid.into()).or_default().insert(o);
        }
    }

    fn connect(&mut self, i: usize) {
        let (uid, first) = (
            self.tabs[i].uid.clone(),
            !self
                .tabs
                .iter()
                .any(|t| t.online && t.uid == self.tabs[i].uid),
        );
        let got: Vec<(Offset, String)> = if self.tabs[i].resume {
            let start = if self.tabs[i].seen.is_empty() {
                Start::Pending
            } else {
                pos(self.tabs[i].pos)
            };
            match self.ib.resume(&uid, start, self.now) {
                Resume::Messages(r) => {
                    self.tabs[i].pos = r.after();
                    r.map(|(o, p)| (o, p.to_owned())).collect()
                }
                Resume::Gap(g) => {
                    self.check_gap(i, g);
                    self.tabs[i].pos = g.position;
                    Vec::new()
                }
            }
        } else if first {
            owned(self.ib.take_pending(&uid))
        } else {
            Vec::new()
        };
        let forgotten = self.ib.stats().forgotten;
        let log = self.log.entry(uid.clone()).or_default();
        let t = &mut self.tabs[i];
        t.forgotten_then = forgotten;
        if t.resume && !got.is_empty() {
            // Exactly what followed its position: nothing skipped, nothing twice.
            let want: Vec<_> = log
                .range(t.pos + 1..)
                .map(|(&o, p)| (o, p.clone()))
                .collect();
            assert_eq!(got, want, "tab {i} resumed after {}", t.pos);
        }
        for (o, p) in &got {
            assert_eq!(
                log.get(o),
                Some(p),
                "tab {i}: offset {o} carries another payload"
            );
            assert!(
                self.delivered.entry(uid.clone()).or_default().insert(*o) || t.resume,
                "queued {o} delivered twice"
            );
            t.seen.push(*o);
            t.pos = *o;
        }
        t.online = true;
    }

    /// A gap must be true: a message after the position is gone, or a tombstone was
    /// forgotten since the tab left (its stream restarted higher).
    fn check_gap(&mut self, i: usize, g: Gap) {
        self.gaps += 1;
        let t = &self.tabs[i];
        assert_eq!(g.reason, GapReason::Evicted, "tab {i}");
        let lost = self
            .log
            .get(&t.uid)
            .and_then(|l| l.range(t.pos + 1..).next())
            .is_some_and(|(&o, _)| o < g.first_available);
        assert!(
            lost || self.ib.stats().forgotten > t.forgotten_then,
            "tab {i}: gap after {} with nothing lost",
            t.pos
        );
    }

    fn step(&mut self, rng: &mut Rng) {
        self.now += rng.below(40);
        match rng.below(10) {
            0..=4 => self.push(&format!("u{}", rng.below(UIDS))),
            5 | 6 => {
                let i = rng.below(self.tabs.len() as u64) as usize;
                if !self.tabs[i].online {
                    self.connect(i);
                }
            }
            7 | 8 => {
                let i = rng.below(self.tabs.len() as u64) as usize;
                self.tabs[i].online = false;
            }
            _ => drop(self.ib.expire(self.now, 3)),
        }
        check(&self.ib);
        for t in &self.tabs {
            assert!(
                t.seen.windows(2).all(|w| w[0] < w[1]),
                "a tab saw an offset twice or out of order"
            );
        }
    }
}

#[test]
fn with_room_for_everything_every_tab_gets_every_push_once_in_order() {
    let cfg = Config {
        ttl_ms: u64::MAX / 2,
        max_per_uid: usize::MAX,
        ..Config::default()
    };
    for seed in 1..=20 {
        let mut sim = Sim::new(cfg.clone());
        let mut rng = Rng(seed);
        for _ in 0..2_000 {
            sim.step(&mut rng);
        }
        for i in 0..sim.tabs.len() {
            if !sim.tabs[i].online {
                sim.connect(i);
            }
        }
        assert_eq!(sim.gaps, 0);
        for (i, t) in sim.tabs.iter().enumerate() {
            if t.resume && !t.seen.is_empty() {
                // From its first message on, a resume tab missed nothing.
                let all: Vec<_> = sim.log[&t.uid]
                    .range(t.seen[0]..)
                    .map(|(&o, _)| o)
                    .collect();
                assert_eq!(t.seen, all, "seed {seed} tab {i}");
            }
        }
        // Every push reached some tab, or is still queued for the uid's next first tab.
        for (uid, log) in &sim.log {
            let delivered = sim.delivered.get(uid).cloned().unwrap_or_default();
            let queued: BTreeSet<_> = sim.ib.take_pending(uid).map(|(o, _)| o).collect();
            assert!(
                delivered.is_disjoint(&queued),
                "seed {seed}: {uid} queued what it had"
            );
            let all: BTreeSet<_> = log.keys().copied().collect();
            assert_eq!(&delivered | &queued, all, "seed {seed}: {uid} lost a push");
        }
    }
}

#[test]
fn under_pressure_tabs_get_a_true_gap_or_exactly_what_they_missed() {
    let (mut gaps, mut total) = (0, Stats::default());
    for seed in 1..=20 {
        // Odd seeds squeeze memory, even ones the ttl and the per-uid cap.
        let cfg = match seed % 2 {
            1 => Config {
                ttl_ms: 2_000,
                max_per_uid: 6,
                max_bytes: 1_500,
                idle_ttl_ms: 3_000,
            },
            _ => Config {
                ttl_ms: 300,
                max_per_uid: 6,
                max_bytes: 4_000,
                idle_ttl_ms: 600,
            },
        };
        let mut sim = Sim::new(cfg.clone());
        let mut rng = Rng(seed);
        for _ in 0..3_000 {
            sim.step(&mut rng);
            assert!(sim.ib.stats().bytes <= cfg.max_bytes);
        }
        gaps += sim.gaps;
        let st = sim.ib.stats();
        total.evicted_ttl += st.evicted_ttl;
        total.evicted_uid_cap += st.evicted_uid_cap;
        total.evicted_memory += st.evicted_memory;
        total.forgotten += st.forgotten;
    }
    assert!(gaps > 0, "the pressure runs never produced a gap");
    let t = &total;
    assert!(
        t.evicted_ttl > 0 && t.evicted_uid_cap > 0 && t.evicted_memory > 0 && t.forgotten > 0,
        "{t:?}"
    );
}
