//! The `since` parameter and the frames of the resume protocol.

use super::super::wire::{bound_frame, gap_frame, msg_frame, Since, SinceError, Stream};
use super::*;
use serde_json::{json, Value};

fn parse(frame: &str) -> Value {
    serde_json::from_str(frame).expect("a frame is one JSON object")
}

#[test]
fn since_round_trips_with_and_without_the_broadcast_offset() {
    let full = Since {
        epoch: Epoch(0xc0ffee),
        uid: 17,
        all: Some(4),
    };
    assert_eq!(full.to_string(), "0000000000c0ffee:17:4");
    assert_eq!("0000000000c0ffee:17:4".parse(), Ok(full));
    let uid_only = Since { all: None, ..full };
    assert_eq!("c0ffee:17".parse(), Ok(uid_only));
    let max = format!("ffffffffffffffff:{}:{}", u64::MAX, u64::MAX);
    assert_eq!(max.parse::<Since>().map(|s| s.uid), Ok(u64::MAX));
}

#[test]
fn since_refuses_every_malformed_value() {
    let cases = [
        ("", SinceError::Shape),
        ("c0ffee", SinceError::Shape),
        ("c0ffee:1:2:3", SinceError::Shape),
        (":1", SinceError::Epoch),
        ("xyz:1", SinceError::Epoch),
        ("+c0ffee:1", SinceError::Epoch),
        ("10000000000000000:1", SinceError::Epoch),
        ("c0ffee:", SinceError::Offset),
        ("c0ffee:-1", SinceError::Offset),
        ("c0ffee:+1", SinceError::Offset),
        ("c0ffee: 1", SinceError::Offset),
        ("c0ffee:1:", SinceError::Offset),
        ("c0ffee:18446744073709551616", SinceError::Offset),
        ("c0ffee:1:x", SinceError::Offset),
    ];
    for (input, want) in cases {
        assert_eq!(input.parse::<Since>(), Err(want), "{input:?}");
    }
    let long = format!("c0ffee:{}", "1".repeat(100_000));
    assert_eq!(
        long.parse::<Since>(),
        Err(SinceError::Shape),
        "refused before any scan"
    );
    assert!(!SinceError::Offset.to_string().is_empty());
}

#[test]
fn frames_are_the_documented_json() {
    let e = Epoch(0xc0ffee);
    assert_eq!(
        bound_frame("u1", e, 17, 4),
        r#"{"pushman":"bound","uid":"u1","e":"0000000000c0ffee","o":17,"a":4}"#
    );
    assert_eq!(
        gap_frame(Stream::Uid, GapReason::Evicted),
        r#"{"pushman":"gap","s":"uid","reason":"evicted"}"#
    );
    assert_eq!(
        gap_frame(Stream::All, GapReason::Epoch),
        r#"{"pushman":"gap","s":"all","reason":"epoch"}"#
    );
    assert_eq!(
        parse(&gap_frame(Stream::Uid, GapReason::Ahead))["reason"],
        "ahead"
    );
    assert_eq!(
        msg_frame(Stream::Uid, 18, "hi"),
        r#"{"pushman":"msg","o":18,"d":"hi"}"#
    );
    assert_eq!(
        msg_frame(Stream::All, 5, "all"),
        r#"{"pushman":"msg","a":5,"d":"all"}"#
    );
}

#[test]
fn d_carries_the_plain_frame_exactly_whatever_it_holds() {
    // A compat line is JSON itself; data may hold quotes, backslashes, controls, non-ASCII.
    let texts = [
        r#"{"uid":"u1","percent":"88%"}"#,
        "line\nbreak\ttab\u{0}nul\u{1f}",
        r#"quote " backslash \ slash /"#,
        "ünïcödé 🚀 \u{2028}",
        "",
    ];
    for text in texts {
        let v = parse(&msg_frame(Stream::Uid, 1, text));
        assert_eq!(v, json!({"pushman": "msg", "o": 1, "d": text}));
    }
    let v = parse(&bound_frame("a\"b\\c", Epoch(1), 0, 0));
    assert_eq!(v["uid"], "a\"b\\c");
}
