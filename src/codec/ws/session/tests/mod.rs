//! Unit tests for the session: RFC 6455 §5.7 examples, chunking, fragmentation, closing.

use super::*;
use crate::codec::ws::test_util::{client, feed, feed_new, frame, server, Ev, KEY};

mod client_side;
mod errors;
mod fragments;

/// RFC 6455 §5.7: a single-frame masked text message.
const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

#[test]
fn rfc_masked_hello_is_text() {
    let mut ws = WsSession::new(1024);
    let (mut src, mut out) = (MASKED_HELLO.to_vec(), Vec::new());
    let got = ws.decode(&mut src, &mut out);
    assert_eq!(
        got,
        Ok(Decode::Done {
            item: Event::Text("Hello"),
            consumed: 11
        })
    );
    assert!(out.is_empty());
    assert_eq!(ws.state(), State::Open);
}

#[test]
fn rfc_unmasked_hello_is_rejected() {
    let mut ws = WsSession::new(1024);
    let (mut src, mut out) = (vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], Vec::new());
    assert_eq!(
        ws.decode(&mut src, &mut out),
        Err(ProtocolError::UnmaskedFrame)
    );
    assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xEA], "close 1002");
    assert_eq!(ws.state(), State::Closed);
}

#[test]
fn rfc_fragmented_hello() {
    // §5.7 "Hel" + "lo", masked as a client sends them (the RFC shows them unmasked).
    let mut stream = client(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
    stream.extend(client(&[0x80, 0x02, 0x6c, 0x6f]));
    let run = feed_new(&stream);
    assert_eq!(run.events, [Ev::Control, Ev::Text("Hello".into())]);
    assert_eq!((run.error, run.left, run.out.len()), (None, 0, 0));
}

#[test]
fn rfc_ping_gets_pong() {
    // §5.7's ping is unmasked, which a server must refuse; masked, it is answered.
    let unmasked = feed_new(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(unmasked.error, Some(ProtocolError::UnmaskedFrame));
    let run = feed_new(&client(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]));
    assert_eq!(run.events, [Ev::Control]);
    // §5.7: "Unmasked Pong response": 0x8a 0x05 "Hello".
    assert_eq!(run.out, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_256_and_64k_binary() {
    for len in [256usize, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let stream = frame(true, OpCode::Binary, &payload);
        let head: &[u8] = if len == 256 {
            &[0x82, 0xFE, 0x01, 0x00]
        } else {
            &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]
        };
        assert_eq!(&stream[..head.len()], head);
        assert_eq!(&stream[head.len()..head.len() + 4], &KEY);
        assert_eq!(feed_new(&stream).events, [Ev::Binary(payload)]);
    }
}

#[test]
fn pong_is_control() {
    let run = feed_new(&frame(true, OpCode::Pong, b"x"));
    assert_eq!((run.events, run.out), (vec![Ev::Control], vec![]));
}

/// A stream exercising every path: messages, fragments with controls between them, a
/// character split across fragments, and the close.
fn mixed_stream() -> Vec<u8> {
    let mut s = MASKED_HELLO.to_vec();
    s.extend(frame(true, OpCode::Binary, &[0, 1, 2, 255]));
    s.extend(frame(false, OpCode::Binary, b"ab"));
    s.extend(frame(true, OpCode::Ping, b"p"));
    s.extend(frame(false, OpCode::Continuation, b""));
    s.extend(frame(true, OpCode::Continuation, b"cd"));
    s.extend(frame(
        false,
        OpCode::Text,
        "h\u{e9}".as_bytes().split_last().unwrap().1,
    ));
    s.extend(frame(true, OpCode::Pong, b""));
    s.extend(frame(
        false,
        OpCode::Continuation,
        &[0xA9, b'l', 0xE2, 0x82],
    ));
    s.extend(frame(true, OpCode::Continuation, &[0xAC]));
    s.extend(frame(true, OpCode::Binary, &vec![9; 300]));
    s.extend(frame(true, OpCode::Close, &[0x03, 0xE8, b'o', b'k']));
    s
}

fn mixed_events() -> Vec<Ev> {
    vec![
        Ev::Text("Hello".into()),
        Ev::Binary(vec![0, 1, 2, 255]),
        Ev::Control,
        Ev::Control,
        Ev::Control,
        Ev::Binary(b"abcd".to_vec()),
        Ev::Control,
        Ev::Control,
        Ev::Control,
        Ev::Text("h\u{e9}l\u{20ac}".into()),
        Ev::Binary(vec![9; 300]),
        Ev::Close(Some(1000), "ok".into()),
    ]
}

#[test]
fn whole_stream() {
    let run = feed_new(&mixed_stream());
    assert_eq!(run.events, mixed_events());
    let mut expected_out = server(OpCode::Pong, b"p");
    expected_out.extend(server(OpCode::Close, &[0x03, 0xE8]));
    assert_eq!((run.out, run.error, run.left), (expected_out, None, 0));
}

#[test]
fn one_byte_at_a_time_equals_whole() {
    let stream = mixed_stream();
    let whole = feed(&mut WsSession::new(1 << 20), &stream, usize::MAX);
    for chunk in [1, 2, 3, 5, 7, 64] {
        assert_eq!(
            feed(&mut WsSession::new(1 << 20), &stream, chunk),
            whole,
            "chunk {chunk}"
        );
    }
}

#[test]
fn every_strict_prefix_needs_more_and_changes_nothing() {
    let frames = [
        MASKED_HELLO.to_vec(),
        frame(true, OpCode::Binary, &[7; 256]),
        frame(true, OpCode::Binary, &[7; 65536]),
        frame(true, OpCode::Ping, b"ping"),
        frame(true, OpCode::Close, &[0x03, 0xE8]),
    ];
    for f in &frames {
        let mut ws = WsSession::new(1 << 20);
        let step = if f.len() > 1000 { 997 } else { 1 };
        for i in (0..f.len()).step_by(step).chain([f.len() - 1]) {
            let (mut src, mut out) = (f[..i].to_vec(), Vec::new());
            assert_eq!(
                ws.decode(&mut src, &mut out),
                Ok(Decode::NeedMore),
                "prefix {i}"
            );
            assert_eq!(
                (&src[..], out.len()),
                (&f[..i], 0),
                "prefix {i} left untouched"
            );
        }
        let (mut src, mut out) = (f.clone(), Vec::new());
        assert!(
            matches!(ws.decode(&mut src, &mut out), Ok(Decode::Done { consumed, .. }) if consumed == f.len())
        );
    }
}

#[test]
fn round_trip_server_encodings() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let run = feed_new(&client(&server(OpCode::Binary, &payload)));
        assert_eq!(run.events, [Ev::Binary(payload)], "len {len}");
        let text = "\u{e9}".repeat(len / 2);
        let run = feed_new(&client(&server(OpCode::Text, text.as_bytes())));
        assert_eq!(run.events, [Ev::Text(text)], "text len {len}");
    }
}

#[test]
fn close_echo() {
    let run = feed_new(&frame(true, OpCode::Close, &[0x0B, 0xB8, b'b', b'y', b'e']));
    assert_eq!(run.events, [Ev::Close(Some(3000), "bye".into())]);
    // The echo carries the code, without the reason.
    assert_eq!(run.out, [0x88, 0x02, 0x0B, 0xB8]);
    // An empty close is echoed empty.
    let mut ws = WsSession::new(64);
    let run = feed(&mut ws, &frame(true, OpCode::Close, b""), 1);
    assert_eq!(
        (run.events, run.out),
        (vec![Ev::Close(None, String::new())], vec![0x88, 0x00])
    );
    assert_eq!(ws.state(), State::Closed);
}

#[test]
fn closed_session_consumes_nothing() {
    let mut ws = WsSession::new(64);
    feed(&mut ws, &frame(true, OpCode::Close, b""), usize::MAX);
    let (mut src, mut out) = (MASKED_HELLO.to_vec(), Vec::new());
    assert_eq!(ws.decode(&mut src, &mut out), Ok(Decode::NeedMore));
    assert_eq!((&src[..], out.len()), (&MASKED_HELLO[..], 0));
}

#[test]
fn closing_by_us() {
    let mut ws = WsSession::new(64);
    let mut out = Vec::new();
    ws.close(1001, "bye", &mut out);
    assert_eq!(out, [0x88, 0x05, 0x03, 0xE9, b'b', b'y', b'e']);
    assert_eq!(ws.state(), State::ClosingByUs);
    ws.close(1000, "again", &mut out);
    assert_eq!(out.len(), 7, "close is sent once");

    let mut stream = frame(true, OpCode::Text, &[0xFF]); // discarded, not even UTF-8 checked
    stream.extend(frame(true, OpCode::Continuation, b"x")); // no sequencing while closing
    stream.extend(frame(true, OpCode::Ping, b"p"));
    stream.extend(frame(true, OpCode::Close, &[0x03, 0xE8]));
    let run = feed(&mut ws, &stream, usize::MAX);
    let events = vec![
        Ev::Control,
        Ev::Control,
        Ev::Control,
        Ev::Close(Some(1000), String::new()),
    ];
    assert_eq!((run.events, run.out, run.error), (events, vec![], None));
    assert_eq!(ws.state(), State::Closed);
}

#[test]
fn closing_by_us_still_checks_headers() {
    let mut ws = WsSession::new(64);
    ws.close(1000, "", &mut Vec::new());
    let run = feed(&mut ws, &[0x81, 0x01, b'x'], usize::MAX);
    assert_eq!(
        (run.error, run.out),
        (Some(ProtocolError::UnmaskedFrame), vec![])
    );
    let mut ws = WsSession::new(64);
    ws.close(1000, "", &mut Vec::new());
    let run = feed(&mut ws, &frame(true, OpCode::Binary, &[0; 65]), usize::MAX);
    assert_eq!(run.error, Some(ProtocolError::TooBig));
    let mut ws = WsSession::new(64);
    ws.close(1000, "", &mut Vec::new());
    let run = feed(
        &mut ws,
        &frame(true, OpCode::Close, &[0x03, 0xED]),
        usize::MAX,
    );
    assert_eq!(
        (run.error, run.out),
        (Some(ProtocolError::InvalidCloseCode(1005)), vec![])
    );
}

#[test]
fn close_reason_is_cut_on_a_char_boundary() {
    let mut ws = WsSession::new(64);
    let mut out = Vec::new();
    ws.close(4000, &"\u{20ac}".repeat(60), &mut out); // 180 bytes of 3-byte characters
    assert_eq!((out[0], out[1]), (0x88, 2 + 123));
    assert_eq!(std::str::from_utf8(&out[4..]).map(str::len), Ok(123));
    let mut out = Vec::new();
    let mut ws = WsSession::new(64);
    ws.close(4000, &"\u{e9}".repeat(70), &mut out); // 140 bytes; 123 would split a character
    assert_eq!(out[1], 2 + 122);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A tiny xorshift stands in for the fuzzer: random bytes, random chunking, and a mix of
    // random and well-formed frames; `feed` asserts 1 <= consumed <= len on every step.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut stream = Vec::new();
        for _ in 0..(next() % 6) {
            match next() % 3 {
                0 => stream.extend((0..next() % 40).map(|_| next() as u8)),
                1 => stream.extend(frame(
                    next() % 2 == 0,
                    OpCode::Continuation,
                    &[next() as u8; 3],
                )),
                _ => stream.extend(frame(next() % 2 == 0, OpCode::Text, &[next() as u8; 2])),
            }
        }
        let chunk = (next() % 9 + 1) as usize;
        feed(&mut WsSession::new((next() % 64) as usize), &stream, chunk);
    }
}
