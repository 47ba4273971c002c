//! Unit tests for fragmented messages: reassembly, limits, memory, and UTF-8 checked
//! fragment by fragment.

use super::super::*;
use crate::codec::ws::test_util::{feed, feed_new, frame, Ev};

#[test]
fn idle_session_holds_no_buffer() {
    let mut ws = WsSession::new(1 << 20);
    let mut stream = frame(false, OpCode::Binary, &[1; 1000]);
    stream.extend(frame(true, OpCode::Continuation, &[2; 1000]));
    let run = feed(&mut ws, &stream, usize::MAX);
    assert_eq!(run.events.len(), 2);
    assert_eq!(ws.decode(&mut [], &mut Vec::new()), Ok(Decode::NeedMore));
    assert_eq!((ws.buf.capacity(), ws.message), (0, None));
}

#[test]
fn many_one_byte_fragments_reassemble() {
    const N: usize = 65_536;
    let mut stream = frame(false, OpCode::Text, b"a");
    for i in 1..N {
        stream.extend(frame(i == N - 1, OpCode::Continuation, b"a"));
    }
    let mut ws = WsSession::new(N);
    let mut out = Vec::new();
    let (mut at, mut controls) = (0, 0);
    loop {
        match ws.decode(&mut stream[at..], &mut out) {
            Ok(Decode::Done {
                item: Event::Control,
                consumed,
            }) => (at, controls) = (at + consumed, controls + 1),
            Ok(Decode::Done {
                item: Event::Text(text),
                consumed,
            }) => {
                assert_eq!((text.len(), text.bytes().all(|b| b == b'a')), (N, true));
                assert_eq!((at + consumed, controls), (stream.len(), N - 1));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    // One byte more would have been too big.
    let mut ws = WsSession::new(N - 1);
    assert_eq!(
        feed(&mut ws, &stream, usize::MAX).error,
        Some(ProtocolError::TooBig)
    );
}

#[test]
fn utf8_split_across_fragments_is_fine() {
    // U+1F600 is F0 9F 98 80, sent one byte per fragment.
    let mut stream = frame(false, OpCode::Text, &[0xF0]);
    stream.extend(frame(false, OpCode::Continuation, &[0x9F]));
    stream.extend(frame(false, OpCode::Continuation, &[0x98]));
    stream.extend(frame(true, OpCode::Continuation, &[0x80]));
    let run = feed_new(&stream);
    assert_eq!(run.events.last(), Some(&Ev::Text("\u{1F600}".into())));
}

#[test]
fn utf8_fails_fast_on_the_fragment_that_breaks_it() {
    let mut ws = WsSession::new(1024);
    let mut out = Vec::new();
    let mut first = frame(false, OpCode::Text, "h\u{e9}llo".as_bytes());
    let len = first.len();
    assert_eq!(
        ws.decode(&mut first, &mut out),
        Ok(Decode::Done {
            item: Event::Control,
            consumed: len
        })
    );
    let mut second = frame(false, OpCode::Continuation, &[b'x', 0xFF, b'y']);
    assert_eq!(
        ws.decode(&mut second, &mut out),
        Err(ProtocolError::InvalidUtf8)
    );
    assert_eq!(&out[2..4], &1007u16.to_be_bytes());
    // A sequence that can never complete fails before its continuation arrives:
    // F4 90 would exceed U+10FFFF.
    let mut stream = frame(false, OpCode::Text, b"ok\xF4");
    stream.extend(frame(false, OpCode::Continuation, &[0x90]));
    stream.extend(frame(true, OpCode::Continuation, &[0x80, 0x80]));
    let run = feed_new(&stream);
    assert_eq!(
        (run.events.len(), run.error),
        (1, Some(ProtocolError::InvalidUtf8))
    );
    // A character still cut when the message ends is invalid.
    let mut stream = frame(false, OpCode::Text, b"ok");
    stream.extend(frame(true, OpCode::Continuation, &[0xE2, 0x82]));
    assert_eq!(feed_new(&stream).error, Some(ProtocolError::InvalidUtf8));
}
