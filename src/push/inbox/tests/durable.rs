//! The journal, snapshots and recovery.

use super::*;

fn snapshot(ib: &Inbox) -> Vec<Record> {
    ib.snapshot().collect()
}

fn outcome(r: Resume<'_>) -> Result<(Offset, Vec<(Offset, String)>), Gap> {
    match r {
        Resume::Messages(m) => Ok((m.after(), owned(m))),
        Resume::Gap(g) => Err(g),
    }
}

/// Drives `ib` through appends, deliveries, resumes, caps and expiry.
fn workload(ib: &mut Inbox, rng: &mut Rng, steps: std::ops::Range<u64>) {
    for t in steps {
        let uid = format!("u{}", rng.below(12));
        match rng.below(10) {
            0..=5 => {
                let o = ib.append(&uid, format!("{uid} at {t}"), t * 10);
                if rng.below(2) == 0 {
                    ib.mark_delivered(&uid, o);
                }
            }
            6 => drop(ib.append_all(format!("all at {t}"), t * 10)),
            7 => drop(ib.take_pending(&uid)),
            8 => drop(ib.since(&uid, E, rng.below(t + 1), t * 10)),
            _ => drop(ib.expire(t * 10, 5)),
        }
    }
}

#[test]
fn the_journal_replayed_rebuilds_the_same_inbox() {
    let cfg = Config {
        ttl_ms: 800,
        max_per_uid: 7,
        // Small enough that memory pressure evicts messages and forgets tombstones.
        max_bytes: 9_000,
        idle_ttl_ms: 1_500,
    };
    let mut ib = inbox(cfg.clone());
    ib.enable_journal();
    let mut log = vec![Record::Epoch {
        epoch: E,
        high_water: 1,
    }];
    let mut rng = Rng(7);
    for turn in 0..20 {
        workload(&mut ib, &mut rng, turn * 50..turn * 50 + 50);
        log.extend(ib.drain_journal()); // one reactor turn's batch
        let back = Inbox::recover(cfg.clone(), log.clone()).expect("own log");
        check(&back);
        assert_eq!(snapshot(&back), snapshot(&ib));
        assert_eq!(back.epoch(), E);
    }
    assert!(ib.stats().evicted_memory > 0 && ib.stats().evicted_uid_cap > 0);
    assert!(
        ib.stats().evicted_ttl > 0 && ib.stats().forgotten > 0,
        "{:?}",
        ib.stats()
    );
    assert_eq!(ib.drain_journal().count(), 0, "drained");
}

#[test]
fn a_snapshot_recovers_to_the_same_state_and_positions() {
    let cfg = Config {
        ttl_ms: 800,
        max_per_uid: 7,
        // Small enough that memory pressure evicts messages and forgets tombstones.
        max_bytes: 9_000,
        idle_ttl_ms: 1_500,
    };
    let mut ib = inbox(cfg.clone());
    workload(&mut ib, &mut Rng(99), 0..400);
    let mut back = Inbox::recover(cfg, ib.snapshot()).expect("own snapshot");
    check(&back);
    assert_eq!(snapshot(&back), snapshot(&ib));
    assert_eq!(back.stats().messages, ib.stats().messages);
    assert_eq!(back.next_deadline(), ib.next_deadline());
    // Every client position resumes the same way on both.
    let now = 4_000;
    for u in 0..12 {
        let uid = format!("u{u}");
        for o in 0..=ib.high_water {
            let a = outcome(ib.since(&uid, E, o, now));
            assert_eq!(a, outcome(back.since(&uid, E, o, now)), "{uid} since {o}");
        }
    }
    // And new appends continue the same offsets.
    assert_eq!(ib.append("u3", "next", now), back.append("u3", "next", now));
}

#[test]
fn journaled_changes_name_what_happened() {
    let mut ib = inbox(Config {
        max_per_uid: 1,
        ..Config::default()
    });
    ib.enable_journal();
    let a = ib.append("u", "one", 5);
    ib.append("u", "two", 6);
    ib.mark_delivered("u", a + 1);
    let u = || StreamName::Uid("u".into());
    let got: Vec<_> = ib.drain_journal().collect();
    assert_eq!(
        got,
        [
            Record::Open {
                stream: u(),
                next: 1,
                at_ms: 5
            },
            Record::Append {
                stream: u(),
                offset: 1,
                at_ms: 5,
                payload: "one".into()
            },
            Record::Append {
                stream: u(),
                offset: 2,
                at_ms: 6,
                payload: "two".into()
            },
            Record::Evict {
                stream: u(),
                through: 1,
                at_ms: 6
            },
            Record::Delivered {
                stream: u(),
                through: 2
            },
        ]
    );
}

#[test]
fn recovery_refuses_a_log_that_does_not_fit() {
    let u = || StreamName::Uid("u".into());
    let epoch = Record::Epoch {
        epoch: E,
        high_water: 1,
    };
    let open = Record::Open {
        stream: u(),
        next: 1,
        at_ms: 0,
    };
    let append = |offset| Record::Append {
        stream: u(),
        offset,
        at_ms: 0,
        payload: "p".into(),
    };
    let cases: [(Vec<Record>, ApplyError); 6] = [
        (vec![], ApplyError::Epoch),
        (vec![open.clone()], ApplyError::Epoch),
        (vec![epoch.clone(), epoch.clone()], ApplyError::Epoch),
        (
            vec![epoch.clone(), append(1)],
            ApplyError::NotOpen("u".into()),
        ),
        (
            vec![epoch.clone(), open.clone(), append(2)],
            ApplyError::Offset {
                expected: 1,
                got: 2,
            },
        ),
        (
            vec![
                epoch.clone(),
                open.clone(),
                Record::Evict {
                    stream: u(),
                    through: 1,
                    at_ms: 0,
                },
            ],
            ApplyError::Beyond(u()),
        ),
    ];
    for (log, want) in cases {
        let got = Inbox::recover(Config::default(), log.clone()).expect_err("refused");
        assert_eq!(got, want, "{log:?}");
        assert!(!got.to_string().is_empty());
    }
    let mut ib = Inbox::recover(Config::default(), [epoch, open.clone(), append(1)]).unwrap();
    assert_eq!(ib.apply(open), Err(ApplyError::Reopen(u())));
    assert_eq!(
        ib.apply(Record::Forget { stream: u() }),
        Err(ApplyError::Beyond(u()))
    );
    assert_eq!(
        ib.apply(Record::Forget {
            stream: StreamName::All
        }),
        Err(ApplyError::Beyond(StreamName::All))
    );
    assert_eq!(
        ib.apply(Record::Delivered {
            stream: u(),
            through: 2
        }),
        Err(ApplyError::Beyond(u()))
    );
    // The failed records changed nothing; a replayed eviction is idempotent.
    assert_eq!(
        ib.apply(Record::Evict {
            stream: u(),
            through: 0,
            at_ms: 0
        }),
        Ok(())
    );
    assert_eq!(messages(ib.since("u", E, 0, 1)), [(1, "p".into())]);
}

#[test]
fn the_high_water_mark_survives_even_when_every_stream_was_forgotten() {
    let cfg = Config {
        ttl_ms: 10,
        idle_ttl_ms: 10,
        ..Config::default()
    };
    let mut ib = inbox(cfg.clone());
    for _ in 0..5 {
        ib.append("u", "m", 0);
    }
    ib.expire(10, 100);
    ib.expire(20, 100);
    assert_eq!(ib.stats().uids, 0);
    let mut back = Inbox::recover(cfg, ib.snapshot()).unwrap();
    // u's old position 3 must not land inside a new stream numbered from 1 again.
    assert!(back.append("u", "new", 30) > 5);
    assert_eq!(gap(back.since("u", E, 3, 30)).reason, GapReason::Evicted);
}
