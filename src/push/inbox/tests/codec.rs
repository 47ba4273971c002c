//! Records as bytes: round trips, and bad bytes refused without a panic.

use super::*;

/// One record of each kind, with strings that need care.
fn samples() -> Vec<Record> {
    let u = || StreamName::Uid("ü\"id".into());
    vec![
        Record::Epoch {
            epoch: Epoch(u64::MAX),
            high_water: 42,
        },
        Record::Open {
            stream: u(),
            next: 7,
            at_ms: 1_700_000_000_000,
        },
        Record::Append {
            stream: u(),
            offset: 7,
            at_ms: 1,
            payload: "{\"uid\":\"x\"}\n🚀".into(),
        },
        Record::Append {
            stream: StreamName::All,
            offset: 1,
            at_ms: 2,
            payload: "".into(),
        },
        Record::Delivered {
            stream: u(),
            through: 7,
        },
        Record::Evict {
            stream: StreamName::All,
            through: 1,
            at_ms: 3,
        },
        Record::Forget { stream: u() },
    ]
}

fn encode_all(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    records.iter().for_each(|r| r.encode(&mut out));
    out
}

#[test]
fn every_record_round_trips_alone_and_concatenated() {
    for r in samples() {
        let bytes = encode_all(std::slice::from_ref(&r));
        assert_eq!(Record::decode(&bytes), Ok((r.clone(), bytes.len())));
    }
    let all = samples();
    let bytes = encode_all(&all);
    let back: Result<Vec<_>, _> = Record::decode_all(&bytes).collect();
    assert_eq!(back, Ok(all));
}

#[test]
fn a_snapshot_survives_bytes_and_recovers() {
    let mut ib = inbox(Config {
        max_per_uid: 5,
        ..Config::default()
    });
    for i in 0..200u64 {
        ib.append(&format!("u{}", i % 7), format!("m{i}"), i);
        ib.append_all(format!("b{i}"), i);
    }
    ib.mark_delivered("u3", 1_000);
    let bytes = encode_all(&ib.snapshot().collect::<Vec<_>>());
    let records = Record::decode_all(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .expect("own bytes");
    let back = Inbox::recover(ib.config().clone(), records).expect("own snapshot");
    check(&back);
    assert!(back.snapshot().eq(ib.snapshot()));
}

#[test]
fn every_truncation_is_refused() {
    for r in samples() {
        let bytes = encode_all(std::slice::from_ref(&r));
        for cut in 0..bytes.len() {
            assert_eq!(
                Record::decode(&bytes[..cut]),
                Err(DecodeError::Truncated),
                "{r:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn bad_tags_utf8_and_lengths_are_refused() {
    assert_eq!(Record::decode(&[0]), Err(DecodeError::Tag(0)));
    assert_eq!(Record::decode(&[7]), Err(DecodeError::Tag(7)));
    assert_eq!(
        Record::decode(&[6, 2]),
        Err(DecodeError::Tag(2)),
        "stream kind"
    );
    let mut bad = vec![6, 1];
    bad.extend(2u64.to_le_bytes());
    bad.extend([0xff, 0xfe]);
    assert_eq!(Record::decode(&bad), Err(DecodeError::Utf8));
    // A length far past the input is refused before anything is allocated.
    let mut huge = vec![6, 1];
    huge.extend(u64::MAX.to_le_bytes());
    assert_eq!(Record::decode(&huge), Err(DecodeError::Truncated));
    assert!(!DecodeError::Tag(9).to_string().is_empty());
}

#[test]
fn decode_all_stops_at_the_first_error() {
    let mut bytes = encode_all(&samples()[..2]);
    bytes.push(99);
    bytes.extend(encode_all(&samples()[..1]));
    let got: Vec<_> = Record::decode_all(&bytes).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], Err(DecodeError::Tag(99)));
}

#[test]
fn random_bytes_never_panic_and_never_overrun() {
    let mut rng = Rng(0x5eed);
    let valid = encode_all(&samples());
    for _ in 0..20_000 {
        // Mutations of valid bytes reach deeper than pure noise.
        let mut bytes = valid.clone();
        for _ in 0..=rng.below(4) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] = rng.below(256) as u8;
        }
        bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
        let mut rest = &bytes[..];
        while let Ok((_, used)) = Record::decode(rest) {
            assert!(used > 0 && used <= rest.len());
            rest = &rest[used..];
        }
    }
}
