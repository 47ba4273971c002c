//! One test per `ProtocolError` the session can raise: the error, the close frame it
//! writes, and the `Closed` state after it.

use super::super::*;
use crate::codec::ws::test_util::{error_close, feed, frame, KEY};

/// Feeds `stream` to a session with `max` bytes of limit; checks that `want` is raised,
/// its close frame is the only output, and the session is closed for good.
#[track_caller]
fn fails(max: usize, stream: &[u8], want: ProtocolError) {
    let mut ws = WsSession::new(max);
    let run = feed(&mut ws, stream, usize::MAX);
    assert_eq!(run.error, Some(want));
    assert_eq!(run.out, error_close(want));
    assert_eq!(ws.state(), State::Closed);
    assert_eq!((ws.buf.capacity(), ws.message), (0, None));
    let (mut again, mut out) = (stream.to_vec(), Vec::new());
    assert_eq!(ws.decode(&mut again, &mut out), Ok(Decode::NeedMore));
    assert!(out.is_empty());
}

/// A masked header with raw first byte `b0` and a short payload.
fn raw(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(true, OpCode::Binary, payload);
    f[0] = b0;
    f
}

#[test]
fn reserved_bits() {
    fails(64, &raw(0xC2, b"x"), ProtocolError::ReservedBits);
}

#[test]
fn reserved_opcode() {
    fails(64, &raw(0x83, b"x"), ProtocolError::ReservedOpcode(3));
    fails(64, &raw(0x8B, b"x"), ProtocolError::ReservedOpcode(0xB));
}

#[test]
fn unmasked_frame() {
    fails(64, &[0x82, 0x01, 0x00], ProtocolError::UnmaskedFrame);
}

#[test]
fn length_high_bit() {
    let mut f = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&KEY);
    fails(64, &f, ProtocolError::LengthHighBit);
}

#[test]
fn fragmented_control() {
    fails(64, &raw(0x09, b"x"), ProtocolError::FragmentedControl);
}

#[test]
fn control_too_long() {
    let mut f = frame(true, OpCode::Binary, &[0; 126]);
    f[0] = 0x89;
    fails(1024, &f, ProtocolError::ControlTooLong);
}

#[test]
fn unexpected_continuation() {
    fails(
        64,
        &frame(true, OpCode::Continuation, b"x"),
        ProtocolError::UnexpectedContinuation,
    );
}

#[test]
fn expected_continuation() {
    let mut s = frame(false, OpCode::Text, b"a");
    s.extend(frame(true, OpCode::Binary, b"b"));
    fails(64, &s, ProtocolError::ExpectedContinuation);
}

#[test]
fn invalid_utf8() {
    fails(
        64,
        &frame(true, OpCode::Text, &[b'a', 0xC0, 0x80]),
        ProtocolError::InvalidUtf8,
    );
    fails(
        64,
        &frame(true, OpCode::Close, &[0x03, 0xE8, 0xFF]),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn close_too_short() {
    fails(
        64,
        &frame(true, OpCode::Close, &[0x03]),
        ProtocolError::CloseTooShort,
    );
}

#[test]
fn invalid_close_code() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        let f = frame(true, OpCode::Close, &code.to_be_bytes());
        fails(64, &f, ProtocolError::InvalidCloseCode(code));
    }
}

#[test]
fn too_big_frame() {
    fails(
        4,
        &frame(true, OpCode::Binary, &[0; 5]),
        ProtocolError::TooBig,
    );
    fails(
        4,
        &frame(true, OpCode::Ping, &[0; 5]),
        ProtocolError::TooBig,
    );
}

#[test]
fn too_big_fragments() {
    let mut s = frame(false, OpCode::Binary, &[0; 3]);
    s.extend(frame(true, OpCode::Continuation, &[0; 2]));
    fails(4, &s, ProtocolError::TooBig);
}

#[test]
fn too_big_on_announced_length_alone() {
    // 2^63 - 1 bytes announced, no payload sent: refused from the header, nothing reserved.
    let mut f = vec![0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    f.extend_from_slice(&KEY);
    fails(1 << 20, &f, ProtocolError::TooBig);
    // A continuation within the limit by itself, but not added to what came before.
    let max = usize::MAX >> 1;
    let mut s = frame(false, OpCode::Binary, b"abc");
    s.extend_from_slice(&[0x80, 0xFF]);
    s.extend_from_slice(&(max as u64).to_be_bytes());
    s.extend_from_slice(&KEY);
    fails(max, &s, ProtocolError::TooBig);
}

#[test]
fn huge_limit_waits_without_reserving() {
    // With no limit to speak of, a 2^63 - 1 announcement is simply incomplete.
    let mut f = vec![0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    f.extend_from_slice(&KEY);
    let mut ws = WsSession::new(usize::MAX);
    assert_eq!(ws.decode(&mut f, &mut Vec::new()), Ok(Decode::NeedMore));
    assert_eq!(ws.buf.capacity(), 0);
}
